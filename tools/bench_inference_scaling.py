"""Benchmark: inference-time scaling of the step-by-step model on more problems than chapter 12's page uses.

Same methods and the same unit of compute (generated tokens per problem) as ``book/12-inference-time-scaling.ipynb``:
greedy, majority vote at N = 1..16, best-of-N with the ORM, the PRM and the exact checker (oracle), step beam search
guided by the PRM, MCTS over steps with the exact checker (oracle), and the adaptive vote (stop once the answers
agree) against fixed majority votes. Needs ``checkpoints/sft-cot.pt`` and the reward models ``checkpoints/prm.pt``,
``checkpoints/orm.pt`` (``make models``).

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_inference_scaling.py            # 200 four-digit problems
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_inference_scaling.py --quick    # 40
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
POOL = 16


def rows(quick: bool = False, checkpoints: Path = ROOT / "checkpoints") -> list[dict]:
    from aiterms import prm
    from aiterms import test_time as tt
    from aiterms.arithmetic import extract_answer, sample_problems
    from aiterms.evaluation import solve
    from aiterms.step_search import StepSearchConfig, step_mcts, verifier
    from aiterms.transformer import GPT

    torch.set_num_threads(1)
    model = GPT.load(checkpoints / "sft-cot.pt")
    PRM, ORM = (prm.load_reward_model(checkpoints / f"{k}.pt") for k in ("prm", "orm"))
    problems = sample_problems(40 if quick else 200, 4, seed=2024, ops=("+", "-"))
    targets = [p.answer for p in problems]
    out: list[dict] = []

    def row(what, setting, seconds, accuracy, tokens, **extra):
        out.append({"what": what, "setting": setting, "seconds": round(seconds, 2), "accuracy": f"{accuracy:.1%}",
                    "tokens/problem": f"{tokens:.0f}", **{k: str(v) for k, v in extra.items()}})

    t = time.perf_counter()
    greedy = [r[0] for r in solve(model, problems, "cot")]
    row("greedy", "1 sample", time.perf_counter() - t,
        sum(extract_answer(r) == a for r, a in zip(greedy, targets)) / len(problems),
        sum(len(r) + 1 for r in greedy) / len(problems))

    t = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    pool = [tt.sample_responses(model, p, POOL, 1.0, g) for p in problems]
    sample_s = time.perf_counter() - t
    responses, tokens = [x for x, _ in pool], [k for _, k in pool]
    answers = [[extract_answer(r) for r in rs] for rs in responses]
    correct = [[a == t for a in ans] for ans, t in zip(answers, targets)]
    for r in tt.vote_curve(answers, tokens, targets, [1, 2, 4, 8, 16]):
        row("majority vote", f"N = {r['n']}", sample_s * r["n"] / POOL, r["accuracy"], r["tokens"])

    flat_p = [p for p, rs in zip(problems, responses) for _ in rs]
    flat_r = [r for rs in responses for r in rs]
    t = time.perf_counter()
    orm_s = prm.outcome_scores(ORM, flat_p, flat_r)
    prm_s = [prm.aggregate_step_scores(s, "min") for s in prm.step_scores(PRM, flat_p, flat_r)]
    score_s = time.perf_counter() - t
    split = lambda v: [v[i * POOL:(i + 1) * POOL] for i in range(len(problems))]
    scorers = {"ORM": split(orm_s), "PRM (min)": split(prm_s),
               "exact checker (oracle)": [[float(verifier(p, r)[1]) for r in rs] for p, rs in zip(problems, responses)]}
    for name, sc in scorers.items():
        pair = tt.pairwise_accuracy(sc, correct)
        for r in tt.best_of_n_curve(answers, sc, tokens, targets, [4, 16]):
            row(f"best-of-N, {name}", f"N = {r['n']}", (sample_s + score_s) * r["n"] / POOL, r["accuracy"],
                r["tokens"], pairwise=f"{pair:.2f}")

    guide = tt.prm_scorer(PRM, "min")
    for width, expand in [(1, 2), (2, 2), (2, 4), (4, 4)]:
        t = time.perf_counter()
        runs = [tt.step_beam_search(model, p, guide, width, expand, seed=i) for i, p in enumerate(problems)]
        row("step beam search, PRM", f"beam {width}, expand {expand}", time.perf_counter() - t,
            sum(r["answer"] == a for r, a in zip(runs, targets)) / len(problems),
            sum(r["tokens"] for r in runs) / len(problems))
    for budget in [300, 600]:
        t = time.perf_counter()
        runs = [step_mcts(model, p, StepSearchConfig(token_budget=budget), seed=i) for i, p in enumerate(problems)]
        row("MCTS over steps (oracle)", f"budget {budget}", time.perf_counter() - t,
            sum(r["correct"] for r in runs) / len(problems), sum(r["tokens"] for r in runs) / len(problems))
    for agreement in (0.5, 0.6):
        for r in tt.adaptive_curve(answers, tokens, targets, POOL, 2, [2, 3, 4], agreement):
            row("adaptive vote", f"min_votes {r['min_votes']}, agreement {agreement}", 0.0, r["accuracy"],
                r["tokens"], samples=f"{r['samples']:.1f}")
    return out


if __name__ == "__main__":
    table = rows(quick="--quick" in sys.argv)
    keys = list(dict.fromkeys(k for r in table for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in table:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
