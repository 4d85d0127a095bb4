"""Chapter 14's measurements: training the PRM and the ORM, Monte Carlo label quality, and choosing answers with them.

    .venv/bin/python tools/bench_prm.py [--checkpoint checkpoints/sft-cot.pt] [--out /tmp/bench-prm] [--n 4 16]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.

1. **Training** (:func:`aiterms.prm.train_reward_models`, default :class:`~aiterms.prm.PRMConfig`, one thread):
   seconds (Monte Carlo labelling and in total), agreement of the soft (> 1/2) and hard (any completion right) MC
   labels with the true step labels, and on held-out responses the PRM's step AUC and both models' outcome AUC.
2. **Choosing answers** on the first 200 of the pipeline's held-out hard problems (4-digit, seed + 2000, the set of
   ``metrics.json``'s "hard"), ``N`` samples each at temperature 1: accuracy of the first sample, majority vote,
   best-of-N and weighted majority vote with the ORM and with the PRM (min and last aggregations), and pass@N.
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
    row = {"what": f"train PRM + ORM (default PRMConfig: {m['train_responses']} responses, "
                   f"{m['mc_labels']} MC step labels)",
           "seconds": time.perf_counter() - start, "labelling s": f"{m['label_seconds']:.1f}",
           "MC soft agreement": f"{m['mc_agreement']:.1%}", "MC hard agreement": f"{m['mc_hard_agreement']:.1%}",
           "PRM step AUC": f"{m['prm_step_auc']:.3f}", "PRM outcome AUC": f"{m['prm_outcome_auc']:.3f}",
           "ORM outcome AUC": f"{m['orm_outcome_auc']:.3f}"}
    return row, m


def choose_rows(checkpoint: str, out: str, ns: list[int], problems: int = 200, seed: int = 0) -> list[dict]:
    import torch

    from aiterms import arithmetic, prm
    from aiterms.evaluation import majority_vote
    from aiterms.transformer import GPT
    policy = GPT.load(checkpoint)
    PRM, ORM = prm.load_reward_model(Path(out) / "prm.pt"), prm.load_reward_model(Path(out) / "orm.pt")
    test = arithmetic.sample_problems(problems, 4, seed=seed + 2000, ops=("+", "-"))
    N = max(ns)
    start = time.perf_counter()
    rows, responses = prm.sample_responses(policy, test, N, 1.0, torch.Generator().manual_seed(seed + 12))
    answers = [arithmetic.extract_answer(r) for r in responses]
    steps = prm.step_scores(PRM, rows, responses)
    scores = {"ORM": prm.outcome_scores(ORM, rows, responses),
              "PRM min": [prm.aggregate_step_scores(s, "min") for s in steps],
              "PRM last": [prm.aggregate_step_scores(s, "last") for s in steps]}
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
    parser.add_argument("--out", default=None, help="folder for prm.pt and orm.pt (default: a temporary one)")
    parser.add_argument("--n", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    from aiterms.display import markdown_table
    for row in rows(args.checkpoint, args.out, tuple(args.n)):
        keys = list(row)
        print(markdown_table(keys, [[f"{row[k]:.1f}" if k == "seconds" else row[k] for k in keys]]))
        print()


if __name__ == "__main__":
    main()
