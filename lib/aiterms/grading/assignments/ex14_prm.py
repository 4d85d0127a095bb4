"""Hidden checks of exercise 14 (process reward models): mc_labels, aggregate_step_scores, best_of_n,
weighted_majority_vote.

Cases are plain data: ``{"step_scores": [0.9, 0.5], "method": "min"}`` and ``{"answers": [132, None, 122],
"scores": [0.75, 0.5, 0.125]}``. Scores are multiples of 1/64, so that sums are exact in any order (float32
included) and ties are real ties: the tie rules (first response, first answer) are checked exactly. Invalid input
(a score outside ``[0, 1]``, lists of different lengths, an unknown method, no step scores) must raise
``ValueError``, which becomes the plain value ``["raised", "ValueError"]``.

Monte Carlo labels: ``{"outcomes": [[True, False], [], [0, 0, 1]], "final_correct": True, "hard": False}``, the
rollout outcomes of each prefix (as bools, or now and then as 0 / 1), some prefixes without rollouts, and invalid
outcomes; the labels are fractions with small denominators and are compared as floats.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "14-prm"

FORBID = ("aiterms.prm:aggregate_step_scores", "aiterms.prm:best_of_n", "aiterms.prm:weighted_majority_vote",
          "aiterms.prm:_check_probabilities", "aiterms.prm:_check_votes", "aiterms.prm:mc_labels",
          "aiterms.prm:mc_step_labels")

#: the plain value of "raised ValueError"
RAISED = grading.RAISED


def _score(rng: random.Random) -> float:
    """A probability on the 1/64 grid, with 0 and 1 now and then."""
    r = rng.random()
    if r < 0.05:
        return 0.0
    if r < 0.1:
        return 1.0
    return rng.randint(1, 63) / 64


def _calling(fn: Callable, *args: Any) -> Any:
    try:
        return ["returned", fn(*args)]
    except ValueError:
        return list(RAISED)




# ------------------------------------------------------------------------------------------------ aggregate
def aggregate_cases(rng: random.Random) -> list[dict]:
    fixed = [
        ([0.9, 0.5, 0.75], "min"), ([0.9, 0.5, 0.75], "prod"), ([0.9, 0.5, 0.75], "last"),
        ([0.25, 1.0, 1.0, 0.5], "min"), ([0.25, 1.0, 1.0, 0.5], "prod"), ([0.25, 1.0, 1.0, 0.5], "last"),
        ([0.6], "min"), ([0.6], "prod"), ([0.6], "last"),                     # one step
        ([0.8, 0.0, 0.9], "prod"), ([0.8, 0.0, 0.9], "min"),                  # a zero
        ([1.0, 1.0], "prod"), ([0.5, 0.5, 0.5, 0.5, 0.5], "prod"),
        ([0.1, 0.9], "last"), ([0.9, 0.1], "last"),
        ([], "min"), ([], "prod"), ([], "last"),                              # no scores
        ([0.5, 1.5], "min"), ([0.5, -0.25], "prod"), ([1.25], "last"),        # not probabilities
        ([0.5, 0.75], "max"), ([0.5, 0.75], "mean"), ([0.5, 0.75], "Min"),    # unknown methods
    ]
    cases = [{"step_scores": s, "method": m} for s, m in fixed]
    for i in range(24):
        scores = [_score(rng) for _ in range(rng.randint(1, 8))]
        if i % 8 == 7:
            scores[rng.randrange(len(scores))] = rng.choice([1.0 + rng.randint(1, 64) / 64, -rng.randint(1, 64) / 64])
        cases.append({"step_scores": scores, "method": rng.choice(["min", "prod", "last"])})
    return cases


def call_aggregate(fn: Callable, case: dict) -> Any:
    return _calling(fn, list(case["step_scores"]), case["method"])


@grading.plain_compare("should raise ValueError: no step scores, a score outside [0, 1] or an unknown method",
                       "raised ValueError for an input it should accept")
def compare_aggregate(got: Any, expected: Any, case: dict) -> str | None:
    value = got[1]
    if isinstance(value, list) and len(value) == 1:   # a one-element tensor or array
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"should return a number, got {type(value).__name__}"
    return grading.compare_values(float(value), expected[1])


def describe_aggregate(case: dict) -> str:
    return f"step_scores={case['step_scores']}, method={case['method']!r}"


# ------------------------------------------------------------------------------------------------ votes
def _answers(rng: random.Random, n: int) -> list[int | None]:
    right = rng.randint(1000, 19998)
    pool = [right] + [right + rng.choice([-1, 1]) * 10 ** rng.randint(0, 3) for _ in range(rng.randint(1, 3))]
    return [None if rng.random() < 0.12 else rng.choice(pool) for _ in range(n)]


def _vote_cases(rng: random.Random, fixed: list[tuple[list, list]], count: int) -> list[dict]:
    cases = [{"answers": a, "scores": s} for a, s in fixed]
    for i in range(count):
        n = rng.randint(1, 12)
        answers, scores = _answers(rng, n), [_score(rng) for _ in range(n)]
        if i % 9 == 4:      # a score that is no probability
            scores[rng.randrange(n)] = rng.choice([1.0 + rng.randint(1, 64) / 64, -rng.randint(1, 64) / 64])
        elif i % 9 == 7:    # lists of different lengths
            scores = scores[:-1] if n > 1 and rng.random() < 0.5 else scores + [_score(rng)]
        cases.append({"answers": answers, "scores": scores})
    return cases


COMMON_FIXED = [
    ([], []),                                                   # no responses: no answer
    ([None, None], [0.5, 0.75]),                                # no response has an answer
    ([132], [0.25]),
    ([132, 122], [0.5]),                                        # different lengths
    ([132, 122], [0.5, 0.25, 0.75]),
    ([132, 122], [0.5, 1.25]),                                  # not probabilities
    ([132, 122], [-0.125, 0.5]),
    ([None, 122], [1.5, 0.5]),                                  # also the score of a response without an answer
]


def best_of_n_cases(rng: random.Random) -> list[dict]:
    fixed = COMMON_FIXED + [
        ([132, 122, 142], [0.25, 0.875, 0.5]),
        ([132, 122, 132, 122], [0.5, 0.75, 0.75, 0.25]),        # a tie: the first of the tied responses
        ([122, 132, 132], [0.5, 0.5, 0.5]),                     # all tied
        ([None, 132, 122], [0.875, 0.5, 0.25]),                 # the best response has no answer: skipped
        ([132, 122, 122, 122], [0.625, 0.5, 0.5, 0.5]),         # best-of-N is no vote
        ([132, 122], [0.0, 0.0]),                               # zero scores still pick an answer
        ([0, 5], [0.75, 0.25]),                                 # 0 is an answer
        ([1132, 132, 1132], [1.0, 0.125, 0.25]),
    ]
    return _vote_cases(rng, fixed, 28)


def weighted_vote_cases(rng: random.Random) -> list[dict]:
    fixed = COMMON_FIXED + [
        ([132, 122, 122], [0.875, 0.375, 0.375]),               # weights beat counts
        ([132, 122, 122], [0.625, 0.375, 0.375]),               # counts and weights agree
        ([132, 122, 142, 122], [0.9375, 0.5, 0.25, 0.5]),       # the best single response is outvoted
        ([122, 132, 132, 122], [0.25, 0.5, 0.25, 0.5]),         # a tie: the answer that appears first
        ([132, 122, 122, 132], [0.5, 0.25, 0.25, 0.0]),         # a tie, reached through a zero vote
        ([None, None, 122, 132], [1.0, 1.0, 0.25, 0.125]),      # None does not vote
        ([132, 122, 122, 122, 122], [0.75, 0.125, 0.125, 0.125, 0.125]),  # mean would prefer 132, sum too
        ([132, 122, 122, 122], [0.5, 0.375, 0.375, 0.375]),     # mean prefers 132, the sum 122
        ([132, 122], [0.0, 0.0]),                               # all weights zero: the first answer
        ([0, 5, 5], [0.75, 0.25, 0.25]),                        # 0 is an answer
    ]
    return _vote_cases(rng, fixed, 32)


def call_vote(fn: Callable, case: dict) -> Any:
    return _calling(fn, list(case["answers"]), list(case["scores"]))


@grading.plain_compare("should raise ValueError: lists of different lengths, or a score outside [0, 1]",
                       "raised ValueError for an input it should accept")
def compare_vote(got: Any, expected: Any, case: dict) -> str | None:
    g, e = got[1], expected[1]
    if e is None:
        return None if g is None else "should be None: no response has an answer"
    if g is None:
        return "returned None, but some response has an answer"
    if isinstance(g, bool) or not isinstance(g, int):
        return f"should return one of the answers (an int here), got {type(g).__name__}"
    return None if g == e else "picked the wrong answer"


def describe_vote(case: dict) -> str:
    return f"answers={case['answers']}, scores={case['scores']}"


# ------------------------------------------------------------------------------------------------ mc_labels
def mc_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"outcomes": [[True, True, False, True], [False, False, True, False], [False] * 4], "final_correct": False,
         "hard": False},                                                       # 0.75, 0.25, 0, then the outcome
        {"outcomes": [[True, True, False, True], [False, False, True, False], [False] * 4], "final_correct": False,
         "hard": True},
        {"outcomes": [], "final_correct": True, "hard": False},               # one segment: its own outcome
        {"outcomes": [[True, False], []], "final_correct": True, "hard": False},   # a prefix without rollouts: 0
        {"outcomes": [[]], "final_correct": False, "hard": True},
        {"outcomes": [[1, 0, 0], [1, 1, 1]], "final_correct": 1, "hard": False},   # 0 / 1 count as outcomes
        {"outcomes": [[False, False], [True, True]], "final_correct": False, "hard": True},  # a late recovery
        {"outcomes": [[0.5, 1.0]], "final_correct": True, "hard": False},     # not an outcome
        {"outcomes": [[True], [2]], "final_correct": True, "hard": False},
        {"outcomes": [[True]], "final_correct": "yes", "hard": False},
    ]
    for i in range(16):
        k = rng.randint(0, 6)
        n = rng.choice([1, 2, 4, 8, 16])
        p_right = [rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]) for _ in range(k)]
        outcomes = [[] if rng.random() < 0.08 else [rng.random() < p for _ in range(n)] for p in p_right]
        cases.append({"outcomes": outcomes, "final_correct": rng.random() < 0.5, "hard": i % 3 == 0})
    return cases


def call_mc(fn: Callable, case: dict) -> Any:
    out = _calling(fn, [list(o) for o in case["outcomes"]], case["final_correct"], case["hard"])
    if out[0] == "returned":
        labels = out[1]
        if not isinstance(labels, (list, tuple)):
            raise TypeError(f"mc_labels should return a list of floats, got {type(labels).__name__}")
        out[1] = [float(x) for x in labels]
    return out


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_mc(got: Any, expected: Any, case: dict) -> str | None:
    return grading.compare_values(got[1], expected[1])


def describe_mc(case: dict) -> str:
    return (f"{len(case['outcomes']) + 1} segment(s), rollouts per prefix {[len(o) for o in case['outcomes']]}, "
            f"hard={case['hard']}")


TASKS = [
    Task("mc_labels", "test_mc_labels", 3, mc_cases, call_mc, "aiterms.prm:mc_labels", compare=compare_mc,
         describe=describe_mc, forbid=FORBID),
    Task("aggregate_step_scores", "test_aggregate_step_scores", 2, aggregate_cases, call_aggregate,
         "aiterms.prm:aggregate_step_scores", compare=compare_aggregate, describe=describe_aggregate, forbid=FORBID),
    Task("best_of_n", "test_best_of_n", 2, best_of_n_cases, call_vote, "aiterms.prm:best_of_n",
         compare=compare_vote, describe=describe_vote, forbid=FORBID),
    Task("weighted_majority_vote", "test_weighted_majority_vote", 3, weighted_vote_cases, call_vote,
         "aiterms.prm:weighted_majority_vote", compare=compare_vote, describe=describe_vote, forbid=FORBID),
]
