"""The full training pipeline, end to end in minutes: `python -m aiterms.pipeline` (or `make models`).

    collection -> processing -> pretraining -> SFT -> (RL) -> evaluation -> export (-> deployment)

1. **Collection**: a messy "scraped" corpus of arithmetic lines (:func:`aiterms.supervised_data.collect`), with
   duplicates, malformed lines, wrong answers and leaked test problems; the held-out test problems are drawn first.
2. **Processing**: parse, verify, deduplicate, decontaminate, split (:func:`aiterms.supervised_data.process`).
3. **Pretraining**: next-token prediction on every character of the clean corpus (``"47+85=132"``).
4. **SFT**: from the pretrained weights, two models with the same budget: step-by-step (chain of thought) and
   direct answers, loss on the response only (:mod:`aiterms.sft`).
5. **RL**: GRPO (chapter 16, :mod:`aiterms.grpo`) from the step-by-step SFT model, on ``hard_digits`` problems that
   are not in the held-out hard set, rewarded for a right answer (plus a little for the format); its greedy pass@1 on
   the held-out hard set is logged during training (``metrics["rl"]["history"]``).
6. **Evaluation**: greedy accuracy by problem size on the held-out test problems, for the three models; on a harder
   set (``hard_digits``, rare in training) the step-by-step model's greedy pass@1 and sampled pass@k, the starting
   point of reinforcement learning (``hard``), and the same after GRPO (``hard_rl``).
7. **Export**: checkpoints (``pretrained.pt``, ``sft-cot.pt``, ``sft-direct.pt``, ``rl-grpo.pt``) and
   ``metrics.json`` in ``out``.
8. **Reward models** (chapters 9 and 12, :func:`aiterms.prm.train_reward_models`): a process reward model and an
   outcome reward model for the step-by-step model's answers (``prm.pt``, ``orm.pt``; ``metrics["reward_models"]``).
   **Deployment**: ``python -m aiterms.serve --checkpoint <out>/sft-cot.pt``.

Deterministic for a seed, a number of torch threads per process (``threads``, default 1: with another number the sums
inside training run in another order, and after thousands of steps the models differ) and a number of processes
(``processes``, default 2, one per core of a small machine: the two SFT runs train side by side, and GRPO runs
data-parallel, :func:`aiterms.grpo.train_parallel`, whose ranks sample their own answers); every setting is in
:class:`PipelineConfig`.
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from aiterms import arithmetic, grpo, prm, supervised_data
from aiterms.evaluation import score, solve
from aiterms.sft import TrainConfig, pretrain_examples, sft_examples, train
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

#: what the RL stage is (chapter 16); ``metrics["rl"]["stage"]``
RL_STAGE = "GRPO (chapter 16) from sft-cot on hard_digits problems"
#: ``metrics["rl"]`` when the stage is skipped (``PipelineConfig.rl = None``)
RL_SKIPPED = "not run (PipelineConfig.rl is None)"


@dataclass
class PipelineConfig:
    seed: int = 0
    threads: int = 1                           # torch threads per process: fixed, so every machine trains alike
    processes: int = 2                         # SFT cot and direct side by side; GRPO data-parallel (1: in-process)
    out: str = "checkpoints"
    digits: tuple[int, ...] = (1, 2, 3)        # problem sizes the models are trained and tested on
    hard_digits: int = 4                       # the harder set: rare in training, room for RL to improve
    hard_weight: float = 0.3                   # hard problems in the SFT data, relative to the largest size
    min_share: float = 0.25                    # each size at least this share of the largest (small sizes repeat)
    ops: tuple[str, ...] = ("+", "-")
    raw_lines: int = 24000
    test_per_size: int = 200
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 96
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(steps=300, lr=3e-3))
    sft: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2500, lr=3e-3))
    pass_k: int = 8
    temperature: float = 1.0
    # the RL stage (chapter 16; None: skip): Dr. GRPO's settings (no std scaling, a constant normaliser, no KL) and a
    # learning rate decaying to 0, which rose fastest on this task in tools/bench_grpo.py
    rl: grpo.GRPOConfig | None = field(default_factory=lambda: grpo.GRPOConfig(
        steps=240, eval_every=20, loss_type="dr_grpo", scale_std=False, beta=0.0, lr=2e-4, decay=True))
    rl_pool: int = 4000                        # hard_digits problems drawn for RL (minus the held-out hard set)
    reward_models: prm.PRMConfig | None = field(default_factory=prm.PRMConfig)  # chapter 12's PRM and ORM; None: skip


def _sft(pretrained: str, pairs: list[tuple[str, str]], block_size: int, config: TrainConfig, threads: int,
         desc: str, progress: bool = False) -> tuple[GPT, float, float]:
    """One SFT run from the pretrained checkpoint (run in a worker process or in this one): the model, its last
    loss and its own duration in seconds."""
    start = time.perf_counter()
    torch.set_num_threads(threads)
    model = GPT.load(pretrained)
    loss = train(model, sft_examples(pairs, block_size), config, desc=desc, progress=progress)[-1]
    return model, loss, time.perf_counter() - start


def _by_size(problems: list[arithmetic.Problem]) -> dict[int, list[arithmetic.Problem]]:
    out: dict[int, list[arithmetic.Problem]] = {}
    for p in problems:
        out.setdefault(len(str(max(p.a, p.b))), []).append(p)
    return dict(sorted(out.items()))


def run(config: PipelineConfig, progress: bool = True) -> dict:
    """Run every stage; write the checkpoints and metrics.json into ``config.out``; return the metrics."""
    for name in ("threads", "processes"):
        if isinstance(getattr(config, name), bool) or not isinstance(getattr(config, name), int) \
                or getattr(config, name) < 1:
            raise ValueError(f"config.{name} must be an integer >= 1, got {getattr(config, name)!r}")
    begin = time.perf_counter()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    timings, metrics = {}, {"config": json.loads(json.dumps(asdict(config), default=str))}
    say = print if progress else (lambda *a, **k: None)

    # 1. collection: the test set first, then a messy corpus that leaks some of it
    start = time.perf_counter()
    test = []
    for d in config.digits:  # at most a fifth of a size's distinct problems, so that training keeps the rest
        space = len({supervised_data.normalise_key(p) for p in
                     arithmetic.sample_problems(2000, d, seed=config.seed, ops=config.ops)})
        drawn = arithmetic.sample_problems(4 * config.test_per_size, d, seed=config.seed + 1000 + d, ops=config.ops)
        unique = list({supervised_data.normalise_key(p): p for p in drawn}.values())
        test += unique[:min(config.test_per_size, space // 5)]
    hard = arithmetic.sample_problems(config.test_per_size, config.hard_digits, seed=config.seed + 2000,
                                      ops=config.ops)
    raw = supervised_data.collect(config.raw_lines, config.digits, seed=config.seed, ops=config.ops,
                                  test_problems=test)
    timings["collection"] = time.perf_counter() - start

    # 2. processing
    start = time.perf_counter()
    data = supervised_data.process(raw, test, seed=config.seed)
    timings["processing"] = time.perf_counter() - start
    metrics["data"] = data.report
    say(data.table())

    # 3. pretraining on the clean corpus: every character
    start = time.perf_counter()
    model = GPT.from_seed(GPTConfig(TOKENIZER.vocab_size, config.block_size, config.n_layer, config.n_head,
                                    config.n_embd), config.seed)
    texts = [arithmetic.prompt(p) + arithmetic.direct_response(p) for p in data.train]
    metrics["pretrain_loss"] = train(model, pretrain_examples(texts, config.block_size), config.pretrain,
                                     desc="pretraining", progress=progress)[-1]
    model.save(out / "pretrained.pt", stage="pretrained")
    timings["pretraining"] = time.perf_counter() - start

    # 4. SFT: step-by-step and direct, same budget, same data. Deduplication leaves few small problems (there are
    #    only 155 one-digit ones), so small sizes are repeated up to a minimum share; a few harder problems join.
    groups = _by_size(data.train)
    largest = max(len(g) for g in groups.values())
    balanced = []
    for g in groups.values():
        n = max(len(g), int(config.min_share * largest))
        balanced += (g * (n // len(g) + 1))[:n]
    extra = arithmetic.sample_problems(max(1, int(config.hard_weight * largest)), config.hard_digits,
                                       seed=config.seed + 3000, ops=config.ops)
    hard_keys = {supervised_data.normalise_key(p) for p in hard}
    extra = [p for p in extra if supervised_data.normalise_key(p) not in hard_keys]
    metrics["sft_examples"] = {"by_digits": {d: len(g) for d, g in _by_size(balanced).items()},
                               "hard": len(extra)}
    models = {}
    jobs = {fmt: (str(out / "pretrained.pt"), supervised_data.to_pairs(balanced + extra, fmt), config.block_size,
                  config.sft, config.threads, f"SFT ({fmt})") for fmt in ("cot", "direct")}
    side = None                # (timings: each run's own duration; side by side they overlap)
    if config.processes > 1:   # the direct model trains in a second process while this one trains the cot model
        side = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        direct = side.submit(_sft, *jobs["direct"])
    models["cot"], metrics["sft_cot_loss"], timings["sft_cot"] = _sft(*jobs["cot"], progress=progress)
    if side is not None:
        with side:
            models["direct"], metrics["sft_direct_loss"], timings["sft_direct"] = direct.result()
    else:
        models["direct"], metrics["sft_direct_loss"], timings["sft_direct"] = _sft(*jobs["direct"],
                                                                                  progress=progress)

    # 5. RL: GRPO from the step-by-step model on hard problems that are not held out
    start = time.perf_counter()
    metrics["rl"] = RL_SKIPPED
    if config.rl is not None:
        pool = [p for p in arithmetic.sample_problems(config.rl_pool, config.hard_digits, seed=config.seed + 4000,
                                                      ops=config.ops)
                if supervised_data.normalise_key(p) not in hard_keys]
        if config.processes > 1:
            models["rl"], history = grpo.train_parallel(copy.deepcopy(models["cot"]), pool, config.rl,
                                                        config.processes, eval_problems=hard)
        else:
            models["rl"], history = grpo.train(copy.deepcopy(models["cot"]), pool, config.rl, eval_problems=hard,
                                               progress=progress)
        metrics["rl"] = {"stage": RL_STAGE, "digits": config.hard_digits, "problems": len(pool), "history": history}
    timings["rl"] = time.perf_counter() - start

    # 6. evaluation
    start = time.perf_counter()
    for name, m in models.items():
        fmt = "direct" if name == "direct" else "cot"
        metrics[f"{name}_accuracy_by_digits"] = {
            d: score(ps, solve(m, ps, fmt))["accuracy"] for d, ps in _by_size(test).items()}
        metrics[f"{name}_accuracy"] = score(test, solve(m, test, fmt))["accuracy"]
    for name, key in [("cot", "hard")] + ([("rl", "hard_rl")] if "rl" in models else []):
        sampled = solve(models[name], hard, "cot", samples=config.pass_k, temperature=config.temperature,
                        seed=config.seed)
        metrics[key] = {"digits": config.hard_digits,
                        "greedy_pass@1": score(hard, solve(models[name], hard, "cot"))["accuracy"],
                        **{f"sampled_{k}": v for k, v in score(hard, sampled, k=config.pass_k).items()}}
    timings["evaluation"] = time.perf_counter() - start

    # 7. export
    for fmt in ("cot", "direct"):
        models[fmt].save(out / f"sft-{fmt}.pt", stage=f"sft-{fmt}", accuracy=metrics[f"{fmt}_accuracy"])
    if "rl" in models:
        models["rl"].save(out / "rl-grpo.pt", stage="rl-grpo", accuracy=metrics["rl_accuracy"],
                          hard_greedy_pass_at_1=metrics["hard_rl"]["greedy_pass@1"])

    # 8. reward models for search and selection (chapters 9 and 12): a process and an outcome reward model, trained
    #    on the step-by-step model's answers to hard_digits problems labelled by Monte Carlo rollouts
    start = time.perf_counter()
    if config.reward_models is not None:
        rm = prm.train_reward_models(out / "sft-cot.pt", out, config.reward_models, progress=progress)
        metrics["reward_models"] = {k: v for k, v in rm.items() if k not in ("config", "policy")}
        timings["reward_models"] = time.perf_counter() - start
    metrics["seconds"] = timings
    metrics["wall_seconds"] = time.perf_counter() - begin   # less than the sum of the stages when runs overlap
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    say(table(metrics))
    return metrics


def table(metrics: dict) -> str:
    """The metrics after each stage, as text."""
    s, d, h = metrics["seconds"], metrics["data"], metrics["hard"]
    k = next(key for key in h if key.startswith("sampled_pass@") and key != "sampled_pass@1")
    rows = [("collection", f"{d['raw lines']} raw lines", s["collection"]),
            ("processing", f"kept {d['kept']} (train {d['train']}, val {d['val']})", s["processing"]),
            ("pretraining", "final loss {:.3f}".format(metrics["pretrain_loss"]), s["pretraining"])]
    for fmt in ("cot", "direct"):
        acc = ", ".join(f"{n}d {v:.0%}" for n, v in metrics[f"{fmt}_accuracy_by_digits"].items())
        rows.append((f"SFT {fmt}", "loss {:.3f}; accuracy {}".format(metrics[f"sft_{fmt}_loss"], acc),
                     s[f"sft_{fmt}"]))
    hr = metrics.get("hard_rl")
    if hr is None:
        rows.append(("RL", metrics["rl"], s["rl"]))
    else:
        rows.append(("RL (GRPO)", "{} steps; {}-digit greedy pass@1 {:.0%} -> {:.0%}".format(
            len(metrics["rl"]["history"]["step"]), h["digits"], h["greedy_pass@1"], hr["greedy_pass@1"]), s["rl"]))
    for name, x in (("SFT cot", h), ("GRPO", hr))[:1 if hr is None else 2]:
        rows.append(("evaluation", "{}-digit ({}): greedy {:.0%}, sampled pass@1 {:.0%}, {} {:.0%}".format(
            x["digits"], name, x["greedy_pass@1"], x["sampled_pass@1"], k[len("sampled_"):], x[k]),
            s["evaluation"] if x is (hr or h) else float("nan")))
    if "reward_models" in metrics:
        r = metrics["reward_models"]
        rows.append(("reward models", "PRM step AUC {:.2f}; outcome AUC: PRM {:.2f}, ORM {:.2f}".format(
            r["prm_step_auc"] or float("nan"), r["prm_outcome_auc"] or float("nan"),
            r["orm_outcome_auc"] or float("nan")), s["reward_models"]))
    rows.append(("total", "wall clock" + (" (the two SFT runs side by side)" if metrics.get("wall_seconds", 1e9)
                                          < sum(s.values()) - 1 else ""), metrics.get("wall_seconds", sum(s.values()))))
    lines = [f"{'stage':<14}{'result':<66} seconds"]
    lines += [f"{stage:<14}{result:<66}" + ("" if sec != sec else f"{sec:>8.1f}") for stage, result, sec in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the training pipeline and export the course's checkpoints.")
    parser.add_argument("--out", default="checkpoints", help="folder for the checkpoints and metrics.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run(PipelineConfig(seed=args.seed, out=args.out))


if __name__ == "__main__":
    main()
