"""Hidden checks of exercise 12 (inference-time scaling): vote_curve and adaptive_vote.

Cases are plain data. ``vote_curve``: ``{"answers": [[3, None, 5, 3], ...], "tokens": [[...], ...], "targets": [...],
"ns": [...]}``, per problem its sampled answers (ints and ``None``) and their generated tokens, with ties, pools of
different sizes and invalid input; the result is one ``[n, accuracy, tokens]`` per ``n``. ``adaptive_vote``: ``{"stream": [...], "max_samples", "batch_size",
"min_votes", "agreement"}``; :func:`call_adaptive_vote` turns the stream into a sampler that hands the answers out in
order, and the result is ``[[answer, n], [b, ...]]``: the function's return value and the batch
sizes it asked for. A raised ``ValueError`` (bad settings) is the plain value ``"ValueError"``.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "12-inference-time-scaling"
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


# ------------------------------------------------------------------------------------------------ vote_curve
def vote_curve_cases(rng: random.Random) -> list[dict]:
    def case(answers, tokens, targets, ns):
        return {"answers": answers, "tokens": tokens, "targets": targets, "ns": ns}

    cases = [
        case([[7113, 7103, 7113, None], [5, 6, 6, 6]], [[30, 31, 29, 40], [20, 20, 22, 21]], [7113, 6], [1, 2, 4]),
        case([[3, 5, 5], [5, 3, 3]], [[1, 2, 3], [4, 5, 6]], [3, 3], [1, 2, 3]),          # ties: the first answer
        case([[None, None], [None, 4]], [[10, 10], [10, 12]], [4, 4], [1, 2]),            # None never wins
        case([[1, 2, 3], [1, 2]], [[5, 5, 5], [6, 6]], [1, 2], [2]),                      # pools of different sizes
        case([[1, 2, 3], [1, 2]], [[5, 5, 5], [6, 6]], [1, 2], [3]),                      # n beyond the smaller pool
        case([[1, 2]], [[5, 5]], [1], [0]),                                               # n must be >= 1
        case([[1, 2]], [[5, 5, 5]], [1], [1]),                                            # a token count too many
        case([[1, 2], [3]], [[5, 5], [6]], [1], [1]),                                     # a target missing
        case([], [], [], [1]),                                                            # no problem
        case([[1, 2], []], [[5, 5], []], [1, 2], [1]),                                    # a problem without samples
    ]
    for _ in range(20):
        problems, pool = rng.randint(1, 8), rng.randint(1, 10)
        answers = [_answers(rng, pool + rng.randint(0, 2), rng.choice([0.0, 0.2, 0.4])) for _ in range(problems)]
        tokens = [[rng.randint(8, 60) for _ in a] for a in answers]
        targets = [rng.choice([x for x in a if x is not None] or [1]) if rng.random() < 0.7 else 1 for a in answers]
        ns = sorted(rng.sample(range(1, pool + 1), rng.randint(1, min(4, pool))))
        cases.append(case(answers, tokens, targets, ns))
    return cases


def call_vote_curve(fn: Callable, case: dict) -> Any:
    try:
        rows = fn([list(a) for a in case["answers"]], [list(t) for t in case["tokens"]], list(case["targets"]),
                  list(case["ns"]))
    except ValueError:
        return ERROR
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"vote_curve should return a list of dicts, got {type(rows).__name__}")
    return [[r.get("n"), r.get("accuracy"), r.get("tokens")] for r in rows]


@grading.plain_compare()
def compare_vote_curve(got: Any, expected: Any, case: dict) -> str | None:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError for this input"
    if got == ERROR:
        return "raised ValueError for valid input"
    if len(got) != len(expected):
        return f"should return one row per n ({len(expected)}), got {len(got)}"
    for (n, acc, tok), (e_n, e_acc, e_tok) in zip(got, expected):
        if n != e_n:
            return "the rows' \"n\" should be the ns asked for, in their order"
        if grading.compare_values(acc, e_acc):
            return f"the accuracy at n = {e_n} is wrong"
        if grading.compare_values(tok, e_tok):
            return f"the mean tokens per problem at n = {e_n} are wrong"
    return None


def describe_vote_curve(case: dict) -> str:
    return (f"{len(case['answers'])} problem(s), pools of {[len(a) for a in case['answers']]} samples, "
            f"ns = {case['ns']}")


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


FORBID = ("aiterms.test_time:vote_curve", "aiterms.test_time:adaptive_vote", "aiterms.test_time:adaptive_curve",
          "aiterms.test_time:best_of_n_curve")

TASKS = [
    Task("vote_curve", "test_vote_curve", 3, vote_curve_cases, call_vote_curve, "aiterms.test_time:vote_curve",
         compare=compare_vote_curve, describe=describe_vote_curve, forbid=FORBID),
    Task("adaptive_vote", "test_adaptive_vote", 3, adaptive_vote_cases, call_adaptive_vote,
         "aiterms.test_time:adaptive_vote", compare=compare_adaptive_vote, describe=describe_adaptive, forbid=FORBID),
]
