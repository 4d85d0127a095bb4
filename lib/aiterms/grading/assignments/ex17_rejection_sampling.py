"""Hidden checks of exercise 17 (rejection sampling): accept_reject and rft_dataset.

Cases are plain data. ``accept_reject``: lists ``p_x``, ``q_x``, ``u`` and a number ``M`` (the call builds numpy
arrays); proposals at the bound (``p = M q``), with ``p = 0``, with ``q = p = 0``, exact ties ``u = p / (M q)``, and
bad inputs that must raise ``ValueError`` (a bound that is too small, ``q = 0 < p``, ``u`` outside ``[0, 1)``,
``M <= 0``, negative densities, mismatched shapes). ``rft_dataset``: problems as ``[a, b, op]`` and, per problem, the
responses a sampling model might give: right (and repeated), wrong, right but malformed (the other format, a leading
zero, spaces), right answer with wrong steps (well formed, and distinct); some problems appear twice; ``max_per_prompt``
from 1 to 4, and bad values. A raised ``ValueError`` is compared as the plain value ``"ValueError"``.
"""
from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np

from aiterms import grading
from aiterms.arithmetic import Problem, cot_response, gold_steps
from aiterms.grading.tasks import Task

ASSIGNMENT = "17-rejection-sampling"

ERROR = "ValueError"
COUNTS = ("responses", "wrong", "malformed", "duplicates", "over_cap", "kept", "prompts_with_data")
FORBID = ("aiterms.rejection_sampling:accept_reject", "aiterms.rejection_sampling:acceptance_ratio",
          "aiterms.rejection_sampling:rejection_sample", "aiterms.rejection_sampling:accept_by_score",
          "aiterms.rejection_sampling:rft_dataset")


def _calling(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return ERROR


# ------------------------------------------------------------------------------------------------ accept_reject
def _case(p, q, u, M) -> dict:
    return {"p_x": list(p), "q_x": list(q), "u": list(u), "M": M}


def _random_case(rng: random.Random, n: int, M: float) -> dict:
    q = [round(rng.uniform(0.01, 1.0), 4) for _ in range(n)]
    ratios = [rng.choice([0.0, 1.0, rng.random(), rng.random(), rng.random()]) for _ in range(n)]
    p = [M * qi * r for qi, r in zip(q, ratios)]
    u = [rng.random() for _ in range(n)]
    for i in range(n):
        if rng.random() < 0.15:  # an exact tie u == p / (M q), written with numbers that are exact in binary
            q[i], p[i], u[i] = 0.5, 0.25 * M, 0.5
    return _case(p, q, u, M)


def accept_reject_cases(rng: random.Random) -> list[dict]:
    cases = [
        _case([0.5, 0.5, 0.0, 0.4, 0.1], [0.5, 0.5, 0.3, 0.2, 0.2], [0.49, 0.5, 0.0, 0.999, 0.3], 2.0),
        _case([0.25, 0.0, 0.0], [1.0, 1.0, 0.0], [0.25, 0.0, 0.0], 1.0),        # tie rejected; p = 0 never accepted
        _case([0.3, 0.3], [0.1, 0.1], [0.2, 0.4], 3.0),                        # at the bound: ratio 1
        _case([0.75, 0.2], [0.5, 0.5], [0.6, 0.3], 1.5),                       # ratios 1 and 0.2667
        _case([0.1, 0.6, 0.2], [0.4, 0.2, 0.4], [0.2, 0.9, 0.3], 4.0),         # M > 1: ratios 1/16, 3/4, 1/8
        _case([2.0, 5.0], [1.0, 1.0], [0.3, 0.3], 10.0),                       # unnormalised p: ratios 0.2, 0.5
        _case([0.7], [0.7], [0.0], 1.0),
        _case([], [], [], 2.0),                                                # no proposals: nothing accepted
        # bad inputs
        _case([0.5, 0.9], [0.5, 0.4], [0.1, 0.1], 2.0),                        # 0.9 > 2 * 0.4: M too small
        _case([0.2, 0.2], [0.5, 0.1], [0.9, 0.9], 1.5),                        # too small at a rejected-looking u
        _case([0.1], [0.0], [0.5], 100.0),                                     # q = 0 < p: no M bounds it
        _case([0.1, 0.1], [0.5, 0.5], [0.1, 1.0], 1.0),                        # u = 1 is not in [0, 1)
        _case([0.1], [0.5], [-0.01], 1.0),
        _case([0.1], [0.5], [0.5], 0.0),                                       # M <= 0
        _case([0.1], [0.5], [0.5], -2.0),
        _case([-0.1, 0.2], [0.5, 0.5], [0.5, 0.5], 1.0),                       # a negative density
        _case([0.1, 0.2], [0.5, -0.5], [0.5, 0.5], 1.0),
        _case([0.1, 0.2], [0.5], [0.5, 0.5], 1.0),                             # shapes differ
        _case([0.1, 0.2], [0.5, 0.5], [0.5], 1.0),
    ]
    for i in range(20):
        M = rng.choice([1.0, 1.25, 2.0, 3.5, 10.0])
        case = _random_case(rng, rng.randint(1, 12), M)
        if i % 5 == 4:  # one proposal above the bound, somewhere
            j = rng.randrange(len(case["p_x"]))
            case["p_x"][j] = M * case["q_x"][j] * rng.choice([1.01, 1.5, 3.0])
        cases.append(case)
    return cases


def call_accept_reject(fn: Callable, case: dict) -> Any:
    out = _calling(fn, np.array(case["p_x"], dtype=float), np.array(case["q_x"], dtype=float),
                   np.array(case["u"], dtype=float), case["M"])
    if isinstance(out, str) and out == ERROR:
        return ERROR
    return np.asarray(out).tolist() if isinstance(out, np.ndarray) else out


@grading.plain_compare()
def compare_accept_reject(got: Any, expected: Any, case: dict) -> str | None:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError for these inputs"
    if got == ERROR:
        return "raised ValueError for inputs it should accept"
    if not isinstance(got, list) or len(got) != len(expected):
        return f"should return {len(expected)} accept/reject decisions (one per proposal)"
    for i, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(g, bool):
            return f"decision {i} should be a bool (True/False), got {type(g).__name__}"
        if g != e:
            return f"decision {i} is wrong"
    return None


def describe_accept_reject(case: dict) -> str:
    return f"{len(case['p_x'])} proposals, M={case['M']:g}"


# ------------------------------------------------------------------------------------------------ rft_dataset
def _problem(rng: random.Random) -> list:
    digits = rng.choice([1, 2, 3, 4])
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10 ** digits
    a, b, op = rng.randrange(low, high), rng.randrange(low, high), rng.choice("+-")
    if op == "-" and a < b:
        a, b = b, a
    return [a, b, op]


def _response(rng: random.Random, p: Problem, fmt: str, kind: str) -> str:
    right = cot_response(p) if fmt == "cot" else str(p.answer)
    if kind == "right":
        return right
    if kind == "wrong":
        wrong = p.answer + rng.choice([1, 10, 100]) if p.answer >= 1 else 7
        return right.rsplit("=", 1)[0] + f"={wrong}" if fmt == "cot" else str(wrong)
    if kind == "cut":
        return right[:rng.randrange(len(right))]
    if kind == "other_format":          # right answer, the other format
        return str(p.answer) if fmt == "cot" else cot_response(p)
    if kind == "leading_zero":          # right answer, "=0132" / "0132": extract_answer reads it, not well formed
        return right.rsplit("=", 1)[0] + f"=0{p.answer}" if fmt == "cot" else f"0{p.answer}"
    if kind == "space":
        i = rng.randrange(len(right) + 1)
        return right[:i] + " " + right[i:] if i < len(right) else " " + right
    if kind == "wrong_steps":           # right answer, well formed, a wrong step: a different response
        if fmt == "direct":
            return f"={p.answer}"       # for the direct format: right answer, malformed
        steps = [s.text for s in gold_steps(p)]
        k = rng.randrange(len(steps))
        steps[k] = steps[k][:-1] + str((int(steps[k][-1]) + rng.randint(1, 9)) % 10)
        return "|".join(steps) + f"|={p.answer}"
    raise ValueError(kind)


KINDS = ("right", "right", "right", "right", "wrong", "wrong", "cut", "other_format", "leading_zero", "space",
         "wrong_steps", "wrong_steps")


def _rft_case(rng: random.Random, fmt: str | None = None) -> dict:
    fmt = fmt or rng.choice(["cot", "cot", "cot", "direct"])
    problems = [_problem(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.4:  # a problem sampled twice: one prompt
        problems.insert(rng.randrange(len(problems) + 1), rng.choice(problems))
    responses = []
    for a, b, op in problems:
        p = Problem(a, b, op)
        responses.append([_response(rng, p, fmt, rng.choice(KINDS)) for _ in range(rng.randint(0, 8))])
    return {"problems": problems, "responses": responses, "fmt": fmt, "max_per_prompt": rng.randint(1, 4)}


def rft_dataset_cases(rng: random.Random) -> list[dict]:
    p, q = Problem(47, 85, "+"), Problem(85, 47, "-")
    rp, rq = cot_response(p), cot_response(q)
    cases = [
        {"problems": [[47, 85, "+"], [85, 47, "-"], [1, 1, "+"]],
         "responses": [[rp, "7+5+0=12|4+8+1=13|=133", rp, "132", "7+5+0=12|4+8+1=13|=0132"], [rq, "garbage"], []],
         "fmt": "cot", "max_per_prompt": 4},
        {"problems": [[47, 85, "+"], [47, 85, "+"]],                 # one prompt twice: cap and duplicates span both
         "responses": [[rp, "7+5+0=12|4+8+0=12|=132"], [rp, "7+5+0=2|4+8+1=13|=132", rp]],
         "fmt": "cot", "max_per_prompt": 2},
        {"problems": [[47, 85, "+"]], "responses": [["7+5+0=2|4+8+1=13|=132", "7+5+0=12|4+8+0=12|=132", rp, rp]],
         "fmt": "cot", "max_per_prompt": 1},                          # the cap keeps the first, even with wrong steps
        {"problems": [[47, 85, "+"]], "responses": [["132", "0132", "=132", "132", "133", rp]], "fmt": "direct",
         "max_per_prompt": 3},
        {"problems": [[85, 47, "-"]], "responses": [["132", "0132", rq + " ", rq, rq]], "fmt": "cot",
         "max_per_prompt": 3},                                        # malformed duplicates stay malformed
        {"problems": [[0, 0, "+"]], "responses": [["0+0+0=0|=0", "=0", "0", "0+0+0=0|=00"]], "fmt": "cot",
         "max_per_prompt": 2},
        {"problems": [[47, 85, "+"]], "responses": [[]], "fmt": "cot", "max_per_prompt": 1},
        {"problems": [[47, 85, "+"]], "responses": [[rp]], "fmt": "cot", "max_per_prompt": 0},     # bad cap
        {"problems": [[47, 85, "+"]], "responses": [[rp]], "fmt": "cot", "max_per_prompt": -1},
        {"problems": [[47, 85, "+"], [1, 2, "+"]], "responses": [[rp]], "fmt": "cot", "max_per_prompt": 2},  # lengths
    ]
    cases += [_rft_case(rng, "cot") for _ in range(16)] + [_rft_case(rng) for _ in range(8)]
    return cases


def call_rft_dataset(fn: Callable, case: dict) -> Any:
    out = _calling(fn, [Problem(*x) for x in case["problems"]], [list(r) for r in case["responses"]],
                   fmt=case["fmt"], max_per_prompt=case["max_per_prompt"])
    if isinstance(out, str) and out == ERROR:
        return ERROR
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("rft_dataset should return a tuple (pairs, counts)")
    pairs, counts = out
    if not isinstance(counts, dict) or set(counts) != set(COUNTS):
        raise TypeError(f"counts should be a dict with exactly the keys {', '.join(COUNTS)}")
    if not isinstance(pairs, list) or not all(isinstance(x, tuple) and len(x) == 2 and all(isinstance(s, str)
                                                                                           for s in x) for x in pairs):
        raise TypeError("pairs should be a list of (prompt, response) tuples of strings")
    return [[list(x) for x in pairs], [counts[k] for k in COUNTS]]


@grading.plain_compare()
def compare_rft_dataset(got: Any, expected: Any, case: dict) -> str | None:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError for these arguments"
    if got == ERROR:
        return "raised ValueError for arguments it should accept"
    (gp, gc), (ep, ec) = got, expected
    for name, g, e in zip(COUNTS, gc, ec):
        if isinstance(g, bool) or not isinstance(g, int):
            return f"counts[{name!r}] should be an int"
        if g != e:
            return f"counts[{name!r}] is wrong"
    if len(gp) != len(ep):
        return f"returned {len(gp)} pairs, expected {len(ep)}"
    for i, (g, e) in enumerate(zip(gp, ep)):
        if g != e:
            return f"pair {i} is wrong (the wrong pair, or the right pairs in the wrong order)"
    return None


def describe_rft_dataset(case: dict) -> str:
    n = sum(len(r) for r in case["responses"])
    return (f"{len(case['problems'])} problems, {n} responses, fmt={case['fmt']!r}, "
            f"max_per_prompt={case['max_per_prompt']}")


TASKS = [
    Task("accept_reject", "test_accept_reject", 3, accept_reject_cases, call_accept_reject,
         "aiterms.rejection_sampling:accept_reject", compare=compare_accept_reject, describe=describe_accept_reject,
         forbid=FORBID),
    Task("rft_dataset", "test_rft_dataset", 4, rft_dataset_cases, call_rft_dataset,
         "aiterms.rejection_sampling:rft_dataset", compare=compare_rft_dataset, describe=describe_rft_dataset,
         forbid=FORBID),
]
