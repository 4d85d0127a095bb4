"""Chapters 10 and 11 at a larger scale than their pages can afford: reward-model accuracy against the number of
comparisons on a big held-out set, best-of-N over-optimisation up to N = 64, the AI judge's position bias, and the
band of chapter 10's RL runs (GRPO against the learned reward, beta 0 and 0.5) over GRPO seeds 0-2.

    .venv/bin/python tools/bench_rlhf.py [--checkpoints checkpoints] [--quick]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.
Everything runs on one thread, deterministic for the seeds below (a few minutes on an idle 2-core machine).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def rows(checkpoints: str | Path = ROOT / "checkpoints", quick: bool = False) -> list[dict]:
    import torch
    from aiterms import ai_judge, arithmetic, preferences, reward_model
    from aiterms.rollout import sample_group
    from aiterms.transformer import GPT
    torch.set_num_threads(1)
    checkpoints = Path(checkpoints)
    cot, direct = GPT.load(checkpoints / "sft-cot.pt"), GPT.load(checkpoints / "sft-direct.pt")
    annotators = preferences.AnnotatorConfig()
    n_train, n_test = (256, 256) if quick else (1024, 1024)
    out = []

    start = time.perf_counter()
    pairs = preferences.annotate(preferences.sample_pairs([cot, cot, direct], n_train + n_test, 4, seed=11),
                                 annotators, seed=11)
    train, test = pairs.subset(slice(0, n_train)), pairs.subset(slice(n_train, None))
    truth = test.true_label()
    strict = [i for i, t in enumerate(truth) if t >= 0]
    hard = [i for i in strict if "|" in test.a[i] and "|" in test.b[i]]
    label_q = sum(test.label[i] == truth[i] for i in strict) / len(strict)
    out.append({"what": f"rlhf: sample and label {len(pairs)} pairs", "seconds": time.perf_counter() - start,
                "result": f"labels agree with the true order on {label_q:.1%} ({len(strict)} strict, "
                          f"{len(hard)} hard)"})
    models = {}
    for n in ([64, 256] if quick else [16, 64, 256, 1024]):
        start = time.perf_counter()
        sub = train.subset(slice(0, n))
        chosen, rejected = sub.chosen_rejected()
        models[n], _ = reward_model.train(cot, sub.problems, chosen, rejected,
                                          reward_model.RewardModelConfig(epochs=3, lr=1e-3))
        acc = reward_model.evaluate(models[n], test)["true_accuracy"]
        acc_hard = reward_model.evaluate(models[n], test.subset(hard))["true_accuracy"]
        out.append({"what": f"rlhf: reward model on {n} comparisons", "seconds": time.perf_counter() - start,
                    "result": f"held-out accuracy {acc:.1%}, on hard pairs {acc_hard:.1%}"})

    start = time.perf_counter()
    rm = models[max(models)]
    problems = arithmetic.sample_problems(32 if quick else 128, 4, seed=99, ops=("+", "-"))
    N = 16 if quick else 64
    roll = sample_group(cot, problems, N, temperature=1.3, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        learned = reward_model.rewards(rm, [p for p in problems for _ in range(N)], roll.responses).view(-1, N)
    true_u = torch.tensor([preferences.utility(problems[i], r, annotators)
                           for i, r in zip(roll.prompt_index, roll.responses)]).view(-1, N)
    curve = []
    n = 1
    while n <= N:
        pick = learned[:, :n].argmax(1, keepdim=True)
        curve.append(f"N={n}: {learned[:, :n].gather(1, pick).mean():+.2f}/{true_u[:, :n].gather(1, pick).mean():.2f}")
        n *= 4
    out.append({"what": "rlhf: best-of-N, learned reward / true utility of the pick",
                "seconds": time.perf_counter() - start, "result": "; ".join(curve)})

    start = time.perf_counter()
    jtrain = train.subset(slice(0, 128 if quick else 256))
    judge, _ = ai_judge.train_judge(cot, jtrain.problems, jtrain.a, jtrain.b, jtrain.label)
    p_ab, p_ba = judge(test.problems, test.a, test.b), judge(test.problems, test.b, test.a)
    bias = ai_judge.position_bias(p_ab, p_ba)
    both = (p_ab + 1 - p_ba) / 2
    agree = lambda p: ai_judge.agreement_rate(p[strict], [truth[i] for i in strict])
    out.append({"what": f"rlaif: judge on {len(jtrain)} labels, {len(test)} test pairs",
                "seconds": time.perf_counter() - start,
                "result": f"P(first) {bias['first_preferred']:.3f}, consistency {bias['consistency']:.1%}, "
                          f"true-order agreement one order {agree(p_ab):.1%} / both orders {agree(both):.1%}"})
    out += rl_band_rows(cot, direct, annotators, seeds=(0,) if quick else (0, 1, 2))
    return out


def rl_band_rows(cot, direct, annotators, seeds=(0, 1, 2)) -> list[dict]:
    """Chapter 10's RLHF runs (its pairs, reward model and settings) for several GRPO seeds: the first and last 10
    steps' means of the learned reward, the true utility and the right answers, per beta."""
    import copy

    import torch
    from aiterms import arithmetic, grpo, preferences, reward_model
    pairs = preferences.annotate(preferences.sample_pairs([cot, cot, direct], 384, digits=4, seed=7), annotators,
                                 seed=7)
    train = pairs.subset(slice(0, 256))
    rm, _ = reward_model.train(cot, train.problems, *train.chosen_rejected(),
                               reward_model.RewardModelConfig(epochs=3, lr=1e-3, seed=0))
    problems = arithmetic.sample_problems(400, 4, seed=99, ops=("+", "-"))
    out = []
    for beta in (0.0, 0.5):
        start, cells = time.perf_counter(), []
        for seed in seeds:
            config = grpo.GRPOConfig(steps=60, prompts_per_step=8, group_size=4, lr=1e-4, beta=beta, warmup=2,
                                     max_new_tokens=48, seed=seed)
            _, h = grpo.train(copy.deepcopy(cot), problems, config,
                              reward_fn=lambda ps, rs: reward_model.rewards(rm, ps, rs).tolist(),
                              track={"u": lambda ps, rs: [preferences.utility(p, r, annotators)
                                                          for p, r in zip(ps, rs)]})
            mean = lambda key, part: sum(part(h[key])) / len(part(h[key]))  # noqa: E731
            first, last = (lambda xs: xs[:10]), (lambda xs: xs[-10:])
            cells.append(f"seed {seed}: reward {mean('reward', first):.3f}->{mean('reward', last):.3f}, true utility "
                         f"{mean('u', first):.2f}->{mean('u', last):.2f}, right {mean('correct', first):.0%}->"
                         f"{mean('correct', last):.0%}")
        out.append({"what": f"rlhf: GRPO against the learned reward, beta {beta:g}, 60 steps",
                    "seconds": time.perf_counter() - start, "result": "; ".join(cells)})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--quick", action="store_true", help="smaller sets (about a minute)")
    args = parser.parse_args(argv)
    from aiterms.display import markdown_table
    print(markdown_table(["what", "seconds", "result"],
                         [(r["what"], f"{r['seconds']:.1f}", r["result"]) for r in rows(args.checkpoints, args.quick)]))


if __name__ == "__main__":
    main()
