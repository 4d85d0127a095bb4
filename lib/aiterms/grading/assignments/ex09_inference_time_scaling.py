"""Hidden checks of exercise 9 (inference-time scaling): majority_vote and adaptive_vote.

Cases are plain data. ``majority_vote``: ``{"answers": [3, None, 5, 3]}`` (ints and ``None``), with ties, a
``None`` majority, all ``None`` and empty lists. ``adaptive_vote``: ``{"stream": [...], "max_samples", "batch_size",
"min_votes", "agreement"}``; :func:`call_adaptive_vote` turns the stream into a sampler that hands the answers out in
order, and the result is ``[[answer, n], [b, ...]]``: the function's return value and the batch
sizes it asked for. A raised ``ValueError`` (bad settings) is the plain value ``"ValueError"``.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "09-inference-time-scaling"
ERROR = "ValueError"


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    return type(value).__name__


def _answers(rng: random.Random, n: int, none_rate: float) -> list:
    values = rng.sample(range(100, 10000), rng.randint(1, 4))
    return [None if rng.random() < none_rate else rng.choice(values) for _ in range(n)]


# ------------------------------------------------------------------------------------------------ majority_vote
def majority_vote_cases(rng: random.Random) -> list[dict]:
    fixed = [[7], [3, 5, 5], [5, 3, 3, 5], [3, 5], [5, 3], [None, None, 4], [None, 4, None, 9, None], [None],
             [None, None], [], [2, 1, 1, 2, 3, 3], [9, 1, 1, 9, None, None, None], [0, 0, 1], [1000, 999, 999, 1000]]
    cases = [{"answers": a} for a in fixed]
    for _ in range(24):
        cases.append({"answers": _answers(rng, rng.randint(1, 12), rng.choice([0.0, 0.2, 0.5]))})
    for _ in range(8):  # ties on purpose: two answers with the same count, in a random order
        a, b = rng.sample(range(10, 100), 2)
        k = rng.randint(1, 3)
        answers = [a] * k + [b] * k + [None] * rng.randint(0, k + 1)
        rng.shuffle(answers)
        cases.append({"answers": answers})
    return cases


def call_majority_vote(fn: Callable, case: dict) -> Any:
    return fn(list(case["answers"]))


@grading.plain_compare()
def compare_majority_vote(got: Any, expected: Any, case: dict) -> str | None:
    if expected is None:
        return None if got is None else "should be None: no answer could be read"
    if _kind(got) != _kind(expected):
        return f"should return one of the answers (an int), got {_kind(got)}"
    return None if got == expected else "the answer is wrong"


def describe_answers(case: dict) -> str:
    return f"answers {case['answers']}"


# ------------------------------------------------------------------------------------------------ adaptive_vote
def adaptive_vote_cases(rng: random.Random) -> list[dict]:
    def case(stream, m, b, k, agr):
        return {"stream": stream, "max_samples": m, "batch_size": b, "min_votes": k, "agreement": agr}

    cases = [
        case([7, 7, 3, 3, 3, 3], 6, 2, 2, 0.6),
        case([1, 2, 1, 1, 5, 5], 6, 2, 2, 0.6),
        case([1, 2, 1, 2, 1, 2, 2], 7, 2, 2, 0.6),            # never 60%: the last round is cut to the budget
        case([4, None, None, 4, 4, 4], 6, 2, 2, 0.6),         # Nones count in the share
        case([4, None, 4, 4, None, 4], 6, 3, 2, 0.6),
        case([None] * 5, 5, 3, 2, 0.5),
        case([3, 5, 5, 3, None], 5, 1, 6, 0.5),               # min_votes > max_samples: plain majority, tie
        case([9], 1, 4, 1, 1.0),                              # a batch larger than the budget
        case([6, 6, 6, 2], 4, 1, 3, 0.75),                    # exactly at the thresholds: stop
        case([6, 2, 6, 2, 6, 2], 6, 2, 3, 0.5),               # 2 of 4 is 50% but only 2 votes; 3 of 6
        case([8, 8, 8, 8, 8, 8], 6, 2, 3, 0.6),               # needs 3 votes: two rounds
        case([1, 2, 3, 4, 5, 6, 7, 8], 8, 3, 1, 0.3),         # one vote is enough once it is 33%
        case([5, 1, 1, 5, 5, 1, 1], 7, 2, 2, 1.0),
        case([1, 1], 2, 2, 2, 0.6),
        case([1, 1], 0, 2, 2, 0.6),                           # bad settings
        case([1, 1], 2, 0, 2, 0.6),
        case([1, 1], 2, 2, 0, 0.6),
        case([1, 1], 2, 2, 2, 0.0),
        case([1, 1], 2, 2, 2, 1.5),
        case([1, 1], -2, 2, 2, 0.6),
    ]
    for _ in range(26):
        m = rng.randint(1, 16)
        cases.append(case(_answers(rng, m, rng.choice([0.0, 0.1, 0.3])), m, rng.randint(1, 5), rng.randint(1, 5),
                          rng.choice([0.5, 0.6, 2 / 3, 0.75, 0.8, 1.0])))
    return cases


def call_adaptive_vote(fn: Callable, case: dict) -> Any:
    stream, requests = list(case["stream"]), []

    def sample(b):
        if not isinstance(b, int) or isinstance(b, bool) or b < 1:
            raise RuntimeError(f"sample was called with {b!r}: it needs a positive int")
        start = sum(requests)
        requests.append(b)
        if start + b > len(stream):
            raise RuntimeError(f"asked for more than max_samples={case['max_samples']} answers in all")
        return stream[start:start + b]

    try:
        result = fn(sample, case["max_samples"], case["batch_size"], case["min_votes"], case["agreement"])
    except ValueError:
        return ERROR
    return [result, requests]


@grading.plain_compare()
def compare_adaptive_vote(got: Any, expected: Any, case: dict) -> str | None:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError for these settings"
    if got == ERROR:
        return "raised ValueError for valid settings"
    (result, requests), ((e_answer, e_n), e_requests) = got, expected
    if not isinstance(result, list) or len(result) != 2:
        return "should return a pair (answer, number of answers drawn)"
    answer, n = result
    if requests != e_requests:
        if sum(requests) != sum(e_requests):
            return "drew the wrong number of answers (stopped too early or too late)"
        return "asked sample() for the wrong batch sizes"
    if _kind(n) != "an int" or n != e_n:
        return "the number of answers drawn (second item) is wrong"
    if e_answer is None:
        return None if answer is None else "the answer should be None: no answer could be read"
    if _kind(answer) != _kind(e_answer) or answer != e_answer:
        return "the answer (first item) is wrong"
    return None


def describe_adaptive(case: dict) -> str:
    return (f"stream {case['stream']}, max_samples={case['max_samples']}, batch_size={case['batch_size']}, "
            f"min_votes={case['min_votes']}, agreement={case['agreement']:.3g}")


FORBID = ("aiterms.evaluation:majority_vote", "aiterms.test_time:adaptive_vote")

TASKS = [
    Task("majority_vote", "test_majority_vote", 2, majority_vote_cases, call_majority_vote,
         "aiterms.evaluation:majority_vote", compare=compare_majority_vote, describe=describe_answers, forbid=FORBID),
    Task("adaptive_vote", "test_adaptive_vote", 3, adaptive_vote_cases, call_adaptive_vote,
         "aiterms.test_time:adaptive_vote", compare=compare_adaptive_vote, describe=describe_adaptive, forbid=FORBID),
]
