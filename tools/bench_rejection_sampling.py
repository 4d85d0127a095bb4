"""Chapter 17's measurements: classic rejection sampling against 1/M, and rejection-sampling fine-tuning (RFT).

    .venv/bin/python tools/bench_rejection_sampling.py [--checkpoint checkpoints/sft-cot.pt] [--only classic|rft]
                                                       [--rounds 3] [--prompts 1000] [--mix 0.25]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.

1. **Classic**: the two-normal mixture of the chapter, sampled through a wide normal proposal with ``M`` at 1.02, 2 and
   5 times the tightest bound (20,000 samples each): measured acceptance rate against ``1/M``, and the distance of
   the samples' histogram from the target (total variation over 80 bins), also with a bound that is too small
   (``strict=False``: the samples follow ``min(p, Mq)``).
2. **RFT**: from the step-by-step SFT model, ``rounds`` rounds of: ``prompts`` training problems (4-digit, never the
   pipeline's 200 held-out ones; a share ``mix`` of them 2- and 3-digit problems, which the model already solves and
   which act as a replay of what it knows), 8 samples each at temperature 1, :func:`rft_dataset` (at most 4 per
   prompt), 200 SFT steps (batch 64, lr 3e-4). Reported: greedy pass@1 on the held-out 4-digit problems after each
   round, and greedy accuracy on 200 3-digit test problems (the pipeline's draw) before and after, to see forgetting.
   Runs once with ``mix`` and once with 4-digit prompts only. On one thread; a few minutes each.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def classic_rows() -> list[dict]:
    import numpy as np

    from aiterms import rejection_sampling as rs

    def normal(x, mu, sd):
        return np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    def target(x):
        return 0.3 * normal(x, -1.0, 1.0) + 0.7 * normal(x, 1.5, 0.5)

    grid = np.linspace(-8, 8, 4001)
    tight = rs.smallest_bound(target(grid), normal(grid, 0.0, 3.0))
    edges = np.linspace(-5, 5, 81)
    mids = (edges[1:] + edges[:-1]) / 2
    expected = target(mids) / target(mids).sum()
    out = []
    for factor in (1.02, 2.0, 5.0, 0.5):
        M = factor * tight
        start = time.perf_counter()
        x, stats = rs.rejection_sample(target, lambda g, b: g.normal(0.0, 3.0, b), lambda v: normal(v, 0.0, 3.0), M,
                                       20_000, np.random.default_rng(0), strict=factor >= 1)
        seconds = time.perf_counter() - start
        hist = np.histogram(x, bins=edges)[0]
        out.append({"what": f"classic rejection sampling, M = {factor:g} x tightest ({M:.2f}), 20,000 samples",
                    "seconds": seconds, "acceptance": f"{stats.acceptance_rate:.4f}", "1/M": f"{1 / M:.4f}",
                    "TV to target": f"{rs.total_variation(hist / hist.sum(), expected):.3f}",
                    "violations": str(stats.violations)})
    return out


def rft_row(checkpoint: str, rounds: int = 3, prompts: int = 1000, mix: float = 0.25, steps: int = 200) -> dict:
    import random

    import torch

    from aiterms import arithmetic, supervised_data
    from aiterms import rejection_sampling as rs
    from aiterms.evaluation import score, solve
    from aiterms.sft import TrainConfig
    from aiterms.transformer import GPT

    from aiterms import checkpoints
    torch.set_num_threads(1)
    policy = GPT.load(checkpoint)
    ops = ("+", "-")
    test, hard = checkpoints.held_out()              # the pipeline's held-out problems: never trained on here either
    held_out = hard[:200]                            # evaluated on the first 200 of the 1000 hard problems
    three = [p for p in test if p.num_steps == 3]
    banned = {supervised_data.normalise_key(p) for p in hard + test}
    pool = [p for p in arithmetic.sample_problems(3 * prompts + 1000, 4, seed=4000, ops=ops)
            if supervised_data.normalise_key(p) not in banned]
    n_small = int(mix * prompts)
    small = [p for d in (2, 3) for p in arithmetic.sample_problems(3 * n_small + 50, d, seed=5000 + d, ops=ops)
             if supervised_data.normalise_key(p) not in banned]
    random.Random(0).shuffle(small)
    three_before = score(three, solve(policy, three, "cot"))["accuracy"]
    history: dict = {}
    start = time.perf_counter()
    # each round gets fresh problems: rounds x (prompts - n_small) 4-digit and n_small smaller ones
    big = prompts - n_small
    problems = [p for r in range(rounds) for p in pool[r * big:(r + 1) * big] + small[r * n_small:(r + 1) * n_small]]
    config = rs.RFTConfig(rounds=1, k=8, max_per_prompt=4,
                          sft=TrainConfig(steps=steps, batch_size=64, lr=3e-4, warmup=10))
    passes = [score(held_out, solve(policy, held_out, "cot"))["accuracy"]]
    kept = []
    for r in range(rounds):
        chunk = problems[r * prompts:(r + 1) * prompts]
        cfg = rs.RFTConfig(**{**config.__dict__, "seed": r})
        _, h = rs.rft(policy, chunk, cfg, eval_problems=held_out)
        passes.append(h["eval_pass@1"][-1])
        kept.append(h["kept"][0])
    seconds = time.perf_counter() - start
    three_after = score(three, solve(policy, three, "cot"))["accuracy"]
    what = (f"RFT {rounds} rounds x {prompts} prompts x 8 samples, {steps} SFT steps/round, "
            + (f"{mix:.0%} 2-3-digit prompts" if mix else "4-digit prompts only"))
    return {"what": what, "seconds": seconds,
            "4-digit greedy pass@1 by round": " -> ".join(f"{p:.1%}" for p in passes),
            "gain (points)": f"{100 * (passes[-1] - passes[0]):+.1f}",
            "kept per round": ", ".join(map(str, kept)),
            "3-digit accuracy": f"{three_before:.1%} -> {three_after:.1%}"}


def rows(checkpoint: str = str(ROOT / "checkpoints" / "sft-cot.pt"), only: str | None = None, rounds: int = 3,
         prompts: int = 1000, mix: float = 0.25) -> list[dict]:
    out = []
    if only in (None, "classic"):
        out += classic_rows()
    if only in (None, "rft"):
        out.append(rft_row(checkpoint, rounds, prompts, mix))
        out.append(rft_row(checkpoint, rounds, prompts, 0.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "sft-cot.pt"))
    parser.add_argument("--only", choices=["classic", "rft"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--mix", type=float, default=0.25)
    args = parser.parse_args()
    for row in rows(args.checkpoint, args.only, args.rounds, args.prompts, args.mix):
        print(" | ".join([row["what"], f"{row['seconds']:.1f} s"] +
                         [f"{k}: {v}" for k, v in row.items() if k not in ("what", "seconds")]), flush=True)


if __name__ == "__main__":
    main()
