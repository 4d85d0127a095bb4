"""The full training pipeline, end to end in minutes: `python -m aiterms.pipeline` (or `make models`).

    collection -> processing -> pretraining -> SFT -> (RL) -> evaluation -> export (-> deployment)

1. **Collection**: a messy "scraped" corpus of arithmetic lines (:func:`aiterms.supervised_data.collect`), with
   duplicates, malformed lines, wrong answers and leaked test problems; the held-out test problems are drawn first.
2. **Processing**: parse, verify, deduplicate, decontaminate, split (:func:`aiterms.supervised_data.process`).
3. **Pretraining**: next-token prediction on every character of the clean corpus (``"47+85=132"``).
4. **SFT**: from the pretrained weights, two models with the same budget: step-by-step (chain of thought) and
   direct answers, loss on the response only (:mod:`aiterms.sft`). The step-by-step run stops once it is **RL-ready**:
   right on ``rl_ready`` (half) of a validation set of ``hard_digits`` problems, checked every ``rl_ready_every``
   steps. *When* that happens is chaotic (it moves by hundreds of steps between seeds and CPU kernels, because the
   model learns the harder size in a sudden rise); *where* the model is then is not, so RL always starts from a model
   that is right about half of the time on the hard problems. The direct model trains as many steps.
5. **RL**: GRPO (chapter 7, :mod:`aiterms.grpo`) from the step-by-step SFT model, on ``hard_digits`` problems that
   are not in the held-out hard set, rewarded for a right answer (plus a little for the format); its greedy pass@1 on
   the held-out hard set is logged during training (``metrics["rl"]["history"]``).
6. **Evaluation**: greedy accuracy by problem size on the held-out test problems, for the three models; on a harder
   set (``hard_digits``, rare in training) the step-by-step model's greedy pass@1 and sampled pass@k, the starting
   point of reinforcement learning (``hard``), and the same after GRPO (``hard_rl``).
7. **Export**: checkpoints (``pretrained.pt``, ``sft-cot.pt``, ``sft-direct.pt``, ``rl-grpo.pt``) and
   ``metrics.json`` in ``out``.
8. **Reward models** (chapters 12 and 14, :func:`aiterms.prm.train_reward_models`): two process reward models (exact
   and Monte Carlo step labels) and an outcome reward model for the step-by-step model's answers (``prm.pt``,
   ``prm-mc.pt``, ``orm.pt``; ``metrics["reward_models"]``).
   **Deployment**: ``python -m aiterms.serve --checkpoint <out>/sft-cot.pt``.

Deterministic for a seed, the CPU's float kernels, a number of torch threads per process (``threads``, default 1:
with another number the sums inside training run in another order, and after thousands of steps the models differ)
and a number of processes (``processes``, default 2, one per core of a small machine: SFT and GRPO run
data-parallel, :func:`aiterms.distributed.data_parallel`); every setting is in :class:`PipelineConfig`. Another
machine gives other models, with the same metrics inside the bands of :data:`BANDS` (``tools/bench_robustness.py``):
the course ships the checkpoints of one run (:mod:`aiterms.checkpoints`), so every reader sees the same models.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from aiterms import arithmetic, grpo, prm, supervised_data
from aiterms.evaluation import score, solve
from aiterms.sft import TrainConfig, pretrain_examples, sft_examples, train
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

#: what the RL stage is (chapter 7); ``metrics["rl"]["stage"]``
RL_STAGE = "GRPO (chapter 7) from sft-cot on hard_digits problems"
#: ``metrics["rl"]`` when the stage is skipped (``PipelineConfig.rl = None``)
RL_SKIPPED = "not run (PipelineConfig.rl is None)"


@dataclass
class PipelineConfig:
    """Every setting of the pipeline (CleanRL style). The defaults are the canonical run that made the released
    checkpoints (:mod:`aiterms.checkpoints`); ``tests/test_checkpoints.py`` checks that ``metrics.json`` matches them.
    """

    seed: int = 0
    threads: int = 1                           # torch threads per process: fixed, so every machine trains alike
    processes: int = 2                         # SFT and GRPO data-parallel in this many processes, the direct SFT
                                               # beside evaluation (1: everything in this process)
    out: str = "checkpoints"
    digits: tuple[int, ...] = (1, 2, 3)        # problem sizes the models are trained and tested on
    hard_digits: int = 4                       # the harder set: rarer in training, room for RL to improve
    hard_weight: float = 0.3                   # hard problems in the SFT data, relative to the largest size
    min_share: float = 0.25                    # each size at least this share of the largest (small sizes repeat)
    ops: tuple[str, ...] = ("+", "-")
    raw_lines: int = 100000                    # collected lines: more distinct problems generalise more reliably
    test_per_size: int = 200                   # held-out test problems per trained size (fewer for 1 digit)
    hard_test: int = 1000                      # held-out hard problems: a gain of 5 points is > 3 standard errors
    pass_k: int = 8
    sampled_problems: int = 400                # of the hard set, for sampled pass@1, pass@k and majority vote
    temperature: float = 1.0
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64                           # (128 learned no faster per step, at twice the cost per step)
    block_size: int = 96
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(steps=300, lr=3e-3))
    sft: TrainConfig = field(default_factory=lambda: TrainConfig(steps=3000, lr=3e-3))
    # RL-ready: the step-by-step SFT stops once its greedy accuracy on `rl_ready_problems` validation problems of
    # hard_digits digits reaches `rl_ready` (checked every `rl_ready_every` steps; None: train all `sft.steps`). When
    # SFT ends is chaotic (it depends on the CPU's float kernels), where it ends is not: RL starts from a model that
    # is right about half of the time, and whose samples are right often enough to learn from.
    rl_ready: float | None = 0.5
    rl_ready_problems: int = 200
    rl_ready_every: int = 50
    # the RL stage (chapter 7; None: skip): Dr. GRPO's settings (no std scaling, a constant normaliser, no KL) and a
    # learning rate decaying to 0, which rose fastest on this task in tools/bench_grpo.py
    rl: grpo.GRPOConfig | None = field(default_factory=lambda: grpo.GRPOConfig(
        steps=200, eval_every=50, loss_type="dr_grpo", scale_std=False, beta=0.0, lr=2e-4, decay=True))
    rl_pool: int = 4000                        # hard_digits problems drawn for RL (minus the held-out hard set)
    # chapter 14's PRM and ORM (None: skip)
    reward_models: prm.PRMConfig | None = field(default_factory=lambda: prm.PRMConfig(val_problems=100))

    @classmethod
    def from_dict(cls, values: dict) -> PipelineConfig:
        """The config recorded in ``metrics.json`` (``metrics["config"]``), rebuilt with its nested configs."""
        values = dict(values)
        for name, kind in (("pretrain", TrainConfig), ("sft", TrainConfig), ("rl", grpo.GRPOConfig),
                           ("reward_models", prm.PRMConfig)):
            if isinstance(values.get(name), dict):
                values[name] = kind(**values[name])
        for name in ("digits", "ops"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain JSON values (what ``metrics.json`` records)."""
        return json.loads(json.dumps(asdict(self), default=str))


class ReadyCheck:
    """``until`` of the step-by-step SFT (:func:`aiterms.sft.train`): true once the model's greedy accuracy on
    ``problems`` reaches ``target``. Each rank of a data-parallel group answers its share and the counts are summed,
    so every rank gets the same answer; ``curve`` records every check."""

    def __init__(self, problems: list[arithmetic.Problem], target: float):
        self.problems, self.target, self.curve = problems, target, []

    def __call__(self, model: GPT) -> bool:
        from aiterms.distributed import all_sum, rank_and_world
        rank, world = rank_and_world()
        mine = self.problems[rank::world]
        right = all_sum([float(sum(_right(mine, solve(model, mine, "cot"))))])[0]
        self.curve.append(right / len(self.problems))
        return self.curve[-1] >= self.target


def _sft(model: GPT, pairs: list[tuple[str, str]], block_size: int, config: TrainConfig,
         until: ReadyCheck | None = None, check_every: int = 100, desc: str = "SFT", progress: bool = False
         ) -> tuple[GPT, dict]:
    """One SFT run (in this process, or in each process of a data-parallel group): the model and ``{"losses",
    "curve" (the checks of ``until``), "seconds"}``."""
    start = time.perf_counter()
    losses = train(model, sft_examples(pairs, block_size), config, desc=desc, progress=progress, until=until,
                   check_every=check_every)
    return model, {"losses": losses, "curve": None if until is None else until.curve,
                   "seconds": time.perf_counter() - start}


def _in_processes(fn, model: GPT, processes: int, *args, **kwargs):
    """``fn(model, ...)`` data-parallel in ``processes`` processes (:func:`aiterms.distributed.data_parallel`), or
    here when ``processes`` is 1."""
    if processes == 1:
        return fn(model, *args, **kwargs)
    from aiterms.distributed import data_parallel
    return data_parallel(fn, model, processes, *args, **kwargs)


def _by_size(problems: list[arithmetic.Problem]) -> dict[int, list[arithmetic.Problem]]:
    out: dict[int, list[arithmetic.Problem]] = {}
    for p in problems:
        out.setdefault(len(str(max(p.a, p.b))), []).append(p)
    return dict(sorted(out.items()))


def held_out_problems(config: PipelineConfig) -> tuple[list[arithmetic.Problem], list[arithmetic.Problem]]:
    """The problems no stage ever trains on, drawn before anything else: ``test`` (up to ``test_per_size`` of each
    trained size, at most a fifth of a size's distinct problems so that training keeps the rest) and ``hard``
    (``hard_test`` problems of ``hard_digits`` digits, on which the RL stage is evaluated)."""
    test = []
    for d in config.digits:
        space = len({supervised_data.normalise_key(p) for p in
                     arithmetic.sample_problems(2000, d, seed=config.seed, ops=config.ops)})
        drawn = arithmetic.sample_problems(4 * config.test_per_size, d, seed=config.seed + 1000 + d, ops=config.ops)
        unique = list({supervised_data.normalise_key(p): p for p in drawn}.values())
        test += unique[:min(config.test_per_size, space // 5)]
    hard = arithmetic.sample_problems(config.hard_test, config.hard_digits, seed=config.seed + 2000, ops=config.ops)
    return test, hard


def _without(problems: list[arithmetic.Problem], *excluded: list[arithmetic.Problem]) -> list[arithmetic.Problem]:
    keys = {supervised_data.normalise_key(p) for ps in excluded for p in ps}
    return [p for p in problems if supervised_data.normalise_key(p) not in keys]


def standard_error(right: list[bool]) -> float:
    """Standard error of an accuracy measured on ``len(right)`` independent problems: ``sqrt(p (1 - p) / n)``."""
    p = sum(right) / len(right)
    return math.sqrt(p * (1 - p) / len(right))


def paired_gain(before: list[bool], after: list[bool]) -> dict[str, float]:
    """The change in accuracy between two models on the same problems, and its standard error ``sd(d) / sqrt(n)``
    over the per-problem differences ``d_i = after_i - before_i`` (pairing removes the problems' own difficulty)."""
    d = [float(a) - float(b) for a, b in zip(after, before)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / max(1, len(d) - 1))
    return {"gain": mean, "se": sd / math.sqrt(len(d))}


def machine() -> dict[str, str]:
    """What trained the checkpoints: PyTorch's version and CPU kernels (``ATEN_CPU_CAPABILITY``), the processor."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "processor": model, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "system": platform.platform()}


def run(config: PipelineConfig, progress: bool = True) -> dict:
    """Run every stage; write the checkpoints and metrics.json into ``config.out``; return the metrics."""
    for name in ("threads", "processes"):
        if isinstance(getattr(config, name), bool) or not isinstance(getattr(config, name), int) \
                or getattr(config, name) < 1:
            raise ValueError(f"config.{name} must be an integer >= 1, got {getattr(config, name)!r}")
    if config.rl_ready is not None and not 0 < config.rl_ready <= 1:
        raise ValueError(f"config.rl_ready must be in (0, 1] or None, got {config.rl_ready!r}")
    begin = time.perf_counter()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    timings, metrics = {}, {"config": config.to_dict(), "machine": machine()}
    say = print if progress else (lambda *a, **k: None)

    # 1. collection: the held-out problems first, then a messy corpus that leaks some of them
    start = time.perf_counter()
    test, hard = held_out_problems(config)
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

    # 4. SFT: step-by-step and direct, same data. Deduplication leaves few small problems (there are only 155
    #    one-digit ones), so small sizes are repeated up to a minimum share; harder problems join, and a few more of
    #    them (never trained on) tell when the step-by-step model is ready for RL.
    groups = _by_size(data.train)
    largest = max(len(g) for g in groups.values())
    balanced = []
    for g in groups.values():
        n = max(len(g), int(config.min_share * largest))
        balanced += (g * (n // len(g) + 1))[:n]
    ready = _without(arithmetic.sample_problems(2 * config.rl_ready_problems, config.hard_digits,
                                                seed=config.seed + 2500, ops=config.ops), hard)
    ready = ready[:config.rl_ready_problems]
    extra = _without(arithmetic.sample_problems(max(1, int(config.hard_weight * largest)), config.hard_digits,
                                                seed=config.seed + 3000, ops=config.ops), hard, ready)
    metrics["sft_examples"] = {"by_digits": {d: len(g) for d, g in _by_size(balanced).items()},
                               "hard": len(extra)}
    models, pairs = {}, {fmt: supervised_data.to_pairs(balanced + extra, fmt) for fmt in ("cot", "direct")}
    check = ReadyCheck(ready, config.rl_ready) if config.rl_ready is not None else None
    start = time.perf_counter()
    models["cot"], result = _in_processes(_sft, GPT.load(out / "pretrained.pt"), config.processes, pairs["cot"],
                                          config.block_size, config.sft, check, config.rl_ready_every,
                                          "SFT (cot)", progress and config.processes == 1)
    steps = len(result["losses"])
    metrics["sft_cot_loss"], metrics["sft_cot_steps"] = result["losses"][-1], steps
    timings["sft_cot"] = time.perf_counter() - start
    metrics["rl_ready"] = {"target": config.rl_ready, "problems": len(ready), "every": config.rl_ready_every,
                           "curve": result["curve"]}
    # 5. RL: GRPO from the step-by-step model on hard problems that are not held out
    start = time.perf_counter()
    metrics["rl"] = RL_SKIPPED
    if config.rl is not None:
        pool = _without(arithmetic.sample_problems(config.rl_pool, config.hard_digits, seed=config.seed + 4000,
                                                   ops=config.ops), hard)
        if config.processes > 1:
            models["rl"], history = grpo.train_parallel(copy.deepcopy(models["cot"]), pool, config.rl,
                                                        config.processes, eval_problems=hard)
        else:
            models["rl"], history = grpo.train(copy.deepcopy(models["cot"]), pool, config.rl, eval_problems=hard,
                                               progress=progress)
        metrics["rl"] = {"stage": RL_STAGE, "digits": config.hard_digits, "problems": len(pool), "history": history}
    timings["rl"] = time.perf_counter() - start

    # the direct model: the same data, the same number of steps on the same learning-rate schedule. With two or
    # more processes it trains in a side process while this one evaluates and trains the reward models.
    direct = (GPT.load(out / "pretrained.pt"), pairs["direct"], config.block_size,
              dataclasses.replace(config.sft, stop=steps), None, 100, "SFT (direct)")
    side = None
    if config.processes > 1:
        side = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        direct_job = side.submit(_sft_side, config.threads, *direct)
    else:
        start = time.perf_counter()
        models["direct"], result = _sft(*direct, progress=progress)
        timings["sft_direct"] = time.perf_counter() - start

    # 6. evaluation, with standard errors: greedy accuracy by size on the test problems, and on the hard set greedy
    #    pass@1 (all of it) and sampled pass@1, pass@k and majority vote (its first `sampled_problems`)
    start = time.perf_counter()
    for name in ("cot", "rl"):
        if name in models:
            _evaluate_by_size(metrics, name, models[name], test)
    sampled_set = hard[:config.sampled_problems]
    greedy_right = {}
    for name, key in [("cot", "hard")] + ([("rl", "hard_rl")] if "rl" in models else []):
        greedy_right[name] = _right(hard, solve(models[name], hard, "cot"))
        sampled = solve(models[name], sampled_set, "cot", samples=config.pass_k, temperature=config.temperature,
                        seed=config.seed)
        metrics[key] = {"digits": config.hard_digits, "problems": len(hard), "sampled_problems": len(sampled_set),
                        "greedy_pass@1": sum(greedy_right[name]) / len(hard),
                        "greedy_se": standard_error(greedy_right[name]),
                        **{f"sampled_{k}": v for k, v in score(sampled_set, sampled, k=config.pass_k).items()}}
    if "rl" in models:
        metrics["rl_gain"] = paired_gain(greedy_right["cot"], greedy_right["rl"])
    timings["evaluation"] = time.perf_counter() - start

    # 7. export
    models["cot"].save(out / "sft-cot.pt", stage="sft-cot", accuracy=metrics["cot_accuracy"])
    if "rl" in models:
        models["rl"].save(out / "rl-grpo.pt", stage="rl-grpo", accuracy=metrics["rl_accuracy"],
                          hard_greedy_pass_at_1=metrics["hard_rl"]["greedy_pass@1"])

    # 8. reward models for search and selection (chapters 12 and 14): two process reward models (exact and Monte Carlo
    #    step labels) and an outcome reward model, trained on the step-by-step model's answers to 4-digit problems
    start = time.perf_counter()
    if config.reward_models is not None:
        rm = prm.train_reward_models(out / "sft-cot.pt", out, config.reward_models, progress=progress)
        metrics["reward_models"] = {k: v for k, v in rm.items() if k not in ("config", "policy")}
        timings["reward_models"] = time.perf_counter() - start

    if side is not None:
        with side:
            state, result, timings["sft_direct"] = direct_job.result()
        models["direct"] = GPT.load(out / "pretrained.pt")
        models["direct"].load_state_dict(state)
        models["direct"].eval()
    metrics["sft_direct_loss"], metrics["sft_direct_steps"] = result["losses"][-1], len(result["losses"])
    _evaluate_by_size(metrics, "direct", models["direct"], test)
    models["direct"].save(out / "sft-direct.pt", stage="sft-direct", accuracy=metrics["direct_accuracy"])
    metrics["seconds"] = timings
    metrics["wall_seconds"] = time.perf_counter() - begin   # less than the sum of the stages: the direct SFT overlaps
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    say(table(metrics))
    return metrics


@dataclass(frozen=True)
class Band:
    """A metric of :func:`run` that the book relies on, and the range the book states for it: every run (seeds 0-2,
    under two CPU kernels: ``tools/bench_robustness.py``) must land inside, and chapter 8 asserts that the released
    checkpoints' value is inside."""

    label: str
    value: Callable[[dict], float]
    low: float | None = None
    high: float | None = None
    percent: bool = True          # an accuracy (shown as a percentage) rather than a plain number

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def show(self, value: float) -> str:
        return f"{100 * value:.1f}%" if self.percent else f"{value:.2f}"

    def text(self) -> str:
        """The band in words, as the book prints it: "40%-75%", "at least 90%", "at most 10%"."""
        if self.low is not None and self.high is not None:
            return f"{self.show(self.low).replace('.0%', '%')}-{self.show(self.high).replace('.0%', '%')}"
        if self.low is not None:
            return f"at least {self.show(self.low).replace('.0%', '%')}"
        return f"at most {self.show(self.high).replace('.0%', '%')}"


def band_text(band: Band) -> str:
    return band.text()


#: what the book states about every run of the pipeline (see :class:`Band`); keys are used by the chapters
BANDS: tuple[Band, ...] = (
    # one-digit test problems are few (about 20) and unseen; the model saw the rest of them many times
    Band("SFT step by step: 1-digit accuracy", lambda m: m["cot_accuracy_by_digits"]["1"], 0.7),
    Band("SFT step by step: 2- and 3-digit accuracy", lambda m: min(m["cot_accuracy_by_digits"]["2"],
                                                                    m["cot_accuracy_by_digits"]["3"]), 0.9),
    Band("SFT direct: 3-digit accuracy", lambda m: m["direct_accuracy_by_digits"]["3"], None, 0.1),
    Band("step by step minus direct, 3 digits", lambda m: m["cot_accuracy_by_digits"]["3"]
         - m["direct_accuracy_by_digits"]["3"], 0.8),
    Band("RL-ready: 4-digit greedy pass@1 (SFT)", lambda m: m["hard"]["greedy_pass@1"], 0.4, 0.65),
    Band("RL-ready: 4-digit sampled pass@8 (SFT)", lambda m: m["hard"]["sampled_pass@8"], 0.6),
    Band("RL (GRPO): gain in 4-digit greedy pass@1", lambda m: m["rl_gain"]["gain"], 0.1),
    Band("RL (GRPO): gain / its standard error", lambda m: m["rl_gain"]["gain"] / m["rl_gain"]["se"], 5.0,
         percent=False),
    Band("after RL: 4-digit greedy pass@1", lambda m: m["hard_rl"]["greedy_pass@1"], 0.65),
    Band("after RL: 3-digit accuracy", lambda m: m["rl_accuracy_by_digits"]["3"], 0.9),
    # the reward models (chapters 12 and 14): exact step labels give the best PRM, Monte Carlo labels a weaker one
    Band("PRM (exact labels) step AUC", lambda m: m["reward_models"]["prm_step_auc"], 0.93, percent=False),
    Band("PRM (exact) minus PRM (MC) step AUC", lambda m: m["reward_models"]["prm_step_auc"]
         - m["reward_models"]["prm_mc_step_auc"], 0.03, percent=False),
    Band("ORM outcome AUC", lambda m: m["reward_models"]["orm_outcome_auc"], 0.85, percent=False),
)


def _sft_side(threads: int, *args) -> tuple[dict, dict, float]:
    """:func:`_sft` in a side process (``threads`` torch threads): the weights, the result and the wall seconds."""
    start = time.perf_counter()
    torch.set_num_threads(threads)
    model, result = _sft(*args)
    return model.state_dict(), result, time.perf_counter() - start


def _evaluate_by_size(metrics: dict, name: str, model: GPT, test: list[arithmetic.Problem]) -> None:
    """Greedy accuracy (and its standard error) of ``model`` on the test problems, by size and in all."""
    fmt = "direct" if name == "direct" else "cot"
    right = {d: _right(ps, solve(model, ps, fmt)) for d, ps in _by_size(test).items()}
    metrics[f"{name}_accuracy_by_digits"] = {d: sum(r) / len(r) for d, r in right.items()}
    metrics[f"{name}_se_by_digits"] = {d: standard_error(r) for d, r in right.items()}
    metrics[f"{name}_accuracy"] = sum(sum(r) for r in right.values()) / len(test)


def _right(problems: list[arithmetic.Problem], responses: list[list[str]]) -> list[bool]:
    """Whether the first response to each problem has the right final answer."""
    return [arithmetic.extract_answer(rs[0]) == p.answer for p, rs in zip(problems, responses)]


def table(metrics: dict) -> str:
    """The metrics after each stage, as text (accuracies with their standard errors)."""
    s, d, h = metrics["seconds"], metrics["data"], metrics["hard"]
    k = next(key for key in h if key.startswith("sampled_pass@") and key != "sampled_pass@1")
    rows = [("collection", f"{d['raw lines']} raw lines", s["collection"]),
            ("processing", f"kept {d['kept']} (train {d['train']}, val {d['val']})", s["processing"]),
            ("pretraining", "final loss {:.3f}".format(metrics["pretrain_loss"]), s["pretraining"])]
    for fmt in ("cot", "direct"):
        acc = ", ".join(f"{n}d {v:.0%}" for n, v in metrics[f"{fmt}_accuracy_by_digits"].items())
        rows.append((f"SFT {fmt}", "{} steps, loss {:.3f}; {}".format(
            metrics.get(f"sft_{fmt}_steps", "?"), metrics[f"sft_{fmt}_loss"], acc), s[f"sft_{fmt}"]))
    hr = metrics.get("hard_rl")
    if hr is None:
        rows.append(("RL", metrics["rl"], s["rl"]))
    else:
        g = metrics["rl_gain"]
        rows.append(("RL (GRPO)", "{} steps; {}-digit greedy pass@1 {:.1%} -> {:.1%} ({:+.1f} +- {:.1f})".format(
            len(metrics["rl"]["history"]["step"]), h["digits"], h["greedy_pass@1"], hr["greedy_pass@1"],
            100 * g["gain"], 100 * g["se"]), s["rl"]))
    for name, x in (("SFT cot", h), ("GRPO", hr))[:1 if hr is None else 2]:
        rows.append(("evaluation", "{}-digit ({}): greedy {:.1%} +- {:.1%}; sampled pass@1 {:.0%}, {} {:.0%}".format(
            x["digits"], name, x["greedy_pass@1"], x.get("greedy_se", float("nan")), x["sampled_pass@1"],
            k[len("sampled_"):], x[k]), s["evaluation"] if x is (hr or h) else float("nan")))
    if "reward_models" in metrics:
        r = metrics["reward_models"]
        rows.append(("reward models", "step AUC: PRM {:.2f}, PRM (MC labels) {:.2f}; outcome AUC: ORM {:.2f}".format(
            r["prm_step_auc"] or float("nan"), r["prm_mc_step_auc"] or float("nan"),
            r["orm_outcome_auc"] or float("nan")), s["reward_models"]))
    rows.append(("total", "wall clock", metrics.get("wall_seconds", sum(s.values()))))
    lines = [f"{'stage':<14}{'result':<72} seconds"]
    lines += [f"{stage:<14}{result:<72}" + ("" if sec != sec else f"{sec:>8.1f}") for stage, result, sec in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from aiterms import checkpoints
    parser = argparse.ArgumentParser(description="Run the training pipeline and write checkpoints and metrics.json.")
    parser.add_argument("--out", default="_build/models",
                        help="folder for the checkpoints and metrics.json (default: _build/models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="allow writing into the released checkpoints/ folder (replacing the course's models)")
    args = parser.parse_args(argv)
    if Path(args.out).resolve() == checkpoints.RELEASED.resolve() and not args.force:
        parser.error(f"--out {args.out} is the folder of the released checkpoints; pass --force to replace them "
                     "(`make models OUT=checkpoints FORCE=1`)")
    run(PipelineConfig(seed=args.seed, out=args.out))


if __name__ == "__main__":
    main()
