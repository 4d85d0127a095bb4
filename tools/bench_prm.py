"""Chapter 14's measurements: training the reward models, Monte Carlo label quality, and choosing answers with them.

    .venv/bin/python tools/bench_prm.py [--checkpoint checkpoints/sft-cot.pt] [--out /tmp/bench-prm] [--n 4 16]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.

1. **Training** (:func:`aiterms.prm.train_reward_models`, default :class:`~aiterms.prm.PRMConfig`, one thread):
   seconds (Monte Carlo labelling and in total), agreement of the soft (> 1/2) and hard (any completion right) MC
   labels with the true step labels, and on held-out responses the step AUC (every step; steps up to the first
   mistake) of the PRM on exact labels, the PRM on Monte Carlo labels and the ORM, and the ORM's outcome AUC.
2. **Choosing answers** on 200 held-out 4-digit problems (seed + 2000), ``N`` samples each at temperature 1: accuracy
   of the first sample, majority vote, best-of-N and weighted majority vote with each reward model, pass@N, and the
   PRM-weighted vote minus majority vote with its paired standard error.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def train_row(checkpoint: str, out: str) -> tuple[dict, dict]:
    from aiterms import prm
    start = time.perf_counter()
    m = prm.train_reward_models(checkpoint, out, prm.PRMConfig())
    row = {"what": f"train PRM, MC-PRM, ORM (default PRMConfig: {m['train_responses']} responses, "
                   f"{m['mc_labels']} MC step labels)",
           "seconds": time.perf_counter() - start, "labelling s": f"{m['label_seconds']:.1f}",
           "MC soft agreement": f"{m['mc_agreement']:.1%}", "MC hard agreement": f"{m['mc_hard_agreement']:.1%}",
           **{f"{name} step AUC (first errors)": f"{m[key + '_step_auc']:.3f} ({m[key + '_first_error_auc']:.3f})"
              for name, key in (("PRM", "prm"), ("MC-PRM", "prm_mc"), ("ORM", "orm"))},
           "ORM outcome AUC": f"{m['orm_outcome_auc']:.3f}"}
    return row, m


def choose_rows(checkpoint: str, out: str, ns: list[int], problems: int = 200, seed: int = 0) -> list[dict]:
    import torch

    from aiterms import arithmetic, prm
    from aiterms.evaluation import majority_vote
    from aiterms.transformer import GPT
    policy = GPT.load(checkpoint)
    models = {name: prm.load_reward_model(Path(out) / f"{name}.pt") for name in prm.REWARD_MODELS}
    test = arithmetic.sample_problems(problems, 4, seed=seed + 2000, ops=("+", "-"))
    N = max(ns)
    start = time.perf_counter()
    rows, responses = prm.sample_responses(policy, test, N, 1.0, torch.Generator().manual_seed(seed + 12))
    answers = [arithmetic.extract_answer(r) for r in responses]
    scores = {name.upper(): [prm.aggregate_step_scores(s, "min") for s in prm.step_scores(model, rows, responses)]
              for name, model in models.items()}
    seconds = time.perf_counter() - start
    methods = {"first": lambda a, k: a[0], "majority": lambda a, k: majority_vote(a),
               **{f"{name} best": (lambda name: lambda a, k: prm.best_of_n(a, scores[name][k]))(name)
                  for name in scores},
               **{f"{name} vote": (lambda name: lambda a, k: prm.weighted_majority_vote(a, scores[name][k]))(name)
                  for name in scores}}
    out_rows = []
    for n in ns:
        row = {"what": f"choose among N={n} samples, {problems} held-out 4-digit problems", "seconds": seconds}
        for name, choose in methods.items():
            hits = sum(choose(answers[i * N:i * N + n], slice(i * N, i * N + n)) == p.answer
                       for i, p in enumerate(test))
            row[name] = f"{hits / problems:.1%}"
        row["pass@N"] = f"{sum(p.answer in answers[i * N:i * N + n] for i, p in enumerate(test)) / problems:.1%}"
        diff = [float(methods["PRM vote"](answers[i * N:i * N + n], slice(i * N, i * N + n)) == p.answer)
                - float(majority_vote(answers[i * N:i * N + n]) == p.answer) for i, p in enumerate(test)]
        mean = sum(diff) / problems
        se = (sum((d - mean) ** 2 for d in diff) / (problems - 1) / problems) ** 0.5
        row["PRM vote - majority"] = f"{mean:+.1%} +- {se:.1%}"
        out_rows.append(row)
    return out_rows


def rows(checkpoint: str | None = None, out: str | None = None, ns: tuple[int, ...] = (4, 16)) -> list[dict]:
    import torch
    torch.set_num_threads(1)
    checkpoint = checkpoint or str(ROOT / "checkpoints" / "sft-cot.pt")
    with tempfile.TemporaryDirectory() as tmp:
        out = out or tmp
        train, _ = train_row(checkpoint, out)
        return [train, *choose_rows(checkpoint, out, list(ns))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "sft-cot.pt"))
    parser.add_argument("--out", default=None, help="folder for prm.pt, prm-mc.pt and orm.pt (default: a temporary one)")
    parser.add_argument("--n", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    from aiterms.display import markdown_table
    for row in rows(args.checkpoint, args.out, tuple(args.n)):
        keys = list(row)
        print(markdown_table(keys, [[f"{row[k]:.1f}" if k == "seconds" else row[k] for k in keys]]))
        print()


if __name__ == "__main__":
    main()
