"""Hidden checks of exercise 3 (supervised training data): normalise_key, deduplicate, split, to_pairs.

Cases are plain data: a problem is ``[a, b, op]`` (``[47, 85, "+"]``), which ``call`` turns into a
:class:`~aiterms.arithmetic.Problem`; results come back as the same lists. ``split`` has many right answers (any
shuffle of the keys will do), so it is graded by its properties (:func:`compare_split`), not against the reference's
exact output.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable

from aiterms import grading
from aiterms.arithmetic import Problem
from aiterms.grading.tasks import Task

ASSIGNMENT = "03-supervised-data"

#: splits with at least this many distinct keys and every fraction at least SEED_MIN_FRACTION must change with the
#: seed: a fixed split (no shuffle, or a shuffle that ignores the seed) is wrong. Two different seeds give the same
#: partition of 30 keys into parts of >= 30 % with probability below 1e-7 for any proper shuffle.
SEED_MIN_KEYS = 30
SEED_MIN_FRACTION = 0.3


# ------------------------------------------------------------------------------------------------ helpers
def _problem(spec: list) -> Problem:
    a, b, op = spec
    return Problem(a, b, op)


def _plain_problem(p: Any, what: str) -> list:
    if not isinstance(p, Problem):
        raise TypeError(f"{what} should hold Problem objects, got {type(p).__name__}")
    return [p.a, p.b, p.op]


def _key(spec: list) -> tuple:
    """normalise_key on a plain problem (written out here: the grader never calls the graded reference)."""
    a, b, op = spec
    return (op, min(a, b), max(a, b)) if op == "+" else (op, a, b)


def _draw_problem(rng: random.Random, max_digits: int, ops: tuple[str, ...] = ("+", "-")) -> list:
    d = rng.randint(1, max_digits)
    low, high = (0 if d == 1 else 10 ** (d - 1)), 10 ** d
    a, b, op = rng.randrange(low, high), rng.randrange(low, high), rng.choice(ops)
    if op == "-" and a < b:
        a, b = b, a
    return [a, b, op]


def _surface(spec: list, rng: random.Random) -> list:
    """The same problem, operands swapped half of the time when it is an addition."""
    a, b, op = spec
    return [b, a, op] if op == "+" and rng.random() < 0.5 else [a, b, op]


def _messy_list(rng: random.Random, distinct: int, max_digits: int, copies: float) -> list[list]:
    """``distinct`` different problems (by key), with about ``copies`` extra copies each (some commuted), shuffled."""
    keys, out = set(), []
    while len(keys) < distinct:
        p = _draw_problem(rng, max_digits)
        if _key(p) not in keys:
            keys.add(_key(p))
            out.append(p)
    extra = [_surface(rng.choice(out), rng) for _ in range(round(copies * distinct))]
    out = out + extra
    rng.shuffle(out)
    return out


def _same(got: Any, expected: Any) -> bool:
    """Exact equality of plain data, with types: ints (not bools), strings, lists."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(_same, got, expected))
    return type(got) is type(expected) and got == expected


# ------------------------------------------------------------------------------------------------ normalise_key
def key_cases(rng: random.Random) -> list[dict]:
    fixed = [[47, 85, "+"], [85, 47, "+"], [85, 47, "-"], [7, 7, "+"], [7, 7, "-"], [0, 5, "+"], [5, 0, "+"],
             [5, 0, "-"], [100, 99, "-"], [1, 999999, "+"]]
    cases = [{"problem": p} for p in fixed]
    for i in range(20):
        p = _draw_problem(rng, 6)
        if p[2] == "+" and i % 2 == 0 and p[0] < p[1]:  # make sure both orders of an addition come up
            p = [p[1], p[0], "+"]
        cases.append({"problem": p})
    return cases


def call_key(fn: Callable, case: dict) -> Any:
    key = fn(_problem(case["problem"]))
    return [type(key).__name__, key if isinstance(key, (tuple, list, str, int, float)) else repr(key)]


def compare_key(got: Any, expected: Any, case: dict) -> str | None:
    got, expected = grading.to_plain(got), grading.to_plain(expected)
    kind, key = got
    if kind != "tuple":
        return f"normalise_key should return a tuple (op, a, b), got a {kind}"
    if not _same(key, expected[1]):
        return "the key is wrong"
    return None


def describe_key(case: dict) -> str:
    a, b, op = case["problem"]
    return f"{a}{op}{b}"


# ------------------------------------------------------------------------------------------------ deduplicate
def dedup_cases(rng: random.Random) -> list[dict]:
    cases = [{"problems": []},
             {"problems": [[47, 85, "+"]]},
             {"problems": [[85, 47, "+"], [47, 85, "+"], [85, 47, "-"]]},     # keep the first, as written
             {"problems": [[3, 3, "+"], [3, 3, "-"], [3, 3, "+"], [0, 0, "+"], [0, 0, "-"]]},
             {"problems": [[12, 30, "+"], [30, 12, "+"], [30, 12, "-"], [42, 12, "-"], [12, 30, "+"]]},
             {"problems": [[1, 2, "+"], [3, 4, "+"], [5, 6, "+"]]},                          # nothing to drop
             {"problems": [[9, 8, "+"]] * 4}]                                                   # all one key
    for i in range(18):
        cases.append({"problems": _messy_list(rng, rng.randint(2, 30), rng.choice([1, 2, 3]),
                                              rng.choice([0.3, 0.6, 1.0]))})
    return cases


def call_dedup(fn: Callable, case: dict) -> Any:
    kept, dropped = fn([_problem(p) for p in case["problems"]])
    return [[_plain_problem(p, "the kept list") for p in kept], dropped]


def compare_dedup(got: Any, expected: Any, case: dict) -> str | None:
    got, expected = grading.to_plain(got), grading.to_plain(expected)
    kept, dropped = got
    exp_kept, exp_dropped = expected
    if len(kept) != len(exp_kept):
        return f"kept {len(kept)} problem{'s' * (len(kept) != 1)}, expected {len(exp_kept)}"
    for i, (g, e) in enumerate(zip(kept, exp_kept)):
        if not _same(g, e):
            return f"kept problem {i} is wrong (keep the first problem of each key, as it was written, in input order)"
    if isinstance(dropped, bool) or not isinstance(dropped, int):
        return f"the number dropped should be an int, got {type(dropped).__name__}"
    if dropped != exp_dropped:
        return "the number dropped is wrong (it counts the problems removed)"
    return None


def describe_dedup(case: dict) -> str:
    return f"{len(case['problems'])} problems"


# ------------------------------------------------------------------------------------------------ split
def split_cases(rng: random.Random) -> list[dict]:
    cases = [{"problems": [], "fractions": [0.9, 0.1], "seed": 0},
             {"problems": [[47, 85, "+"]], "fractions": [0.5, 0.5], "seed": 1},
             {"problems": [[47, 85, "+"], [85, 47, "+"]], "fractions": [0.5, 0.5], "seed": 2},
             {"problems": _messy_list(rng, 12, 2, 0.5), "fractions": [1.0], "seed": 3},
             {"problems": _messy_list(rng, 12, 2, 0.5), "fractions": [0.0, 1.0], "seed": 4},
             {"problems": _messy_list(rng, 20, 2, 1.0), "fractions": [0.8, 0.1, 0.1], "seed": 5},
             # many keys, large parts: the split must depend on the seed
             {"problems": _messy_list(rng, 40, 2, 0.5), "fractions": [0.5, 0.5], "seed": 6},
             {"problems": _messy_list(rng, 60, 3, 0.3), "fractions": [0.34, 0.33, 0.33], "seed": 7}]
    choices = [[0.9, 0.1], [0.8, 0.2], [0.5, 0.5], [0.7, 0.3], [0.6, 0.4], [0.6, 0.2, 0.2], [0.8, 0.1, 0.1],
               [0.4, 0.3, 0.3], [0.25, 0.25, 0.25, 0.25]]
    for i in range(20):
        fractions = choices[i % len(choices)]
        cases.append({"problems": _messy_list(rng, rng.randint(10, 60), rng.choice([2, 3]),
                                              rng.choice([0.2, 0.5, 1.0])),
                      "fractions": fractions, "seed": rng.randrange(10**6)})
    return cases


def call_split(fn: Callable, case: dict) -> Any:
    """The split for the case's seed, again for the same seed, and for another seed (fresh input lists each time)."""
    out = []
    for seed in (case["seed"], case["seed"], case["seed"] + 1):
        parts = fn([_problem(p) for p in case["problems"]], tuple(case["fractions"]), seed)
        out.append([[_plain_problem(p, "each part") for p in part] for part in parts])
    return out


def _partition(parts: list) -> list[set]:
    return [{_key(p) for p in part} for part in parts]


def compare_split(got: Any, expected: Any, case: dict) -> str | None:
    """Properties, not the reference's exact split: one part per fraction; every problem in exactly one part; no key
    in two parts; part j holds K f_j of the K distinct keys, give or take one; the same seed gives the same split;
    with many keys and no small part, another seed gives another split."""
    parts, again, other = grading.to_plain(got)
    fractions = case["fractions"]
    if len(parts) != len(fractions):
        return f"returned {len(parts)} parts, expected one per fraction ({len(fractions)})"
    given = Counter(tuple(p) for p in case["problems"])
    if Counter(tuple(p) for part in parts for p in part) != given:
        return "the parts do not hold exactly the input problems: every problem must land in exactly one part"
    keys = _partition(parts)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if keys[i] & keys[j]:
                return (f"parts {i} and {j} share a problem (the same under normalise_key): a leak; all problems of "
                        f"one key must go to the same part")
    total = len({_key(list(p)) for p in given})
    for j, (k, f) in enumerate(zip(keys, fractions)):
        if abs(len(k) - total * f) > 1 + 1e-9:
            return (f"part {j} holds {len(k)} of the {total} distinct problems (keys); fraction {f} asks for about "
                    f"{total * f:g}")
    if _partition(again) != keys:
        return "two calls with the same seed gave different splits: shuffle with random.Random(seed)"
    if total >= SEED_MIN_KEYS and min(fractions) >= SEED_MIN_FRACTION and _partition(other) == keys:
        return "a different seed gave the same split: shuffle the keys with random.Random(seed)"
    return None


def describe_split(case: dict) -> str:
    return f"{len(case['problems'])} problems, fractions={tuple(case['fractions'])}, seed={case['seed']}"


# ------------------------------------------------------------------------------------------------ to_pairs
def pairs_cases(rng: random.Random) -> list[dict]:
    cases = [{"problems": [], "fmt": "direct"},
             {"problems": [[47, 85, "+"], [85, 47, "-"]], "fmt": "direct"},
             {"problems": [[47, 85, "+"], [85, 47, "-"]], "fmt": "cot"},
             {"problems": [[85, 47, "+"], [0, 0, "+"], [0, 0, "-"], [999, 1, "+"], [1000, 1, "-"]], "fmt": "cot"},
             {"problems": [[85, 47, "+"], [12345, 6, "+"], [12345, 6, "-"], [7, 0, "-"]], "fmt": "direct"},
             {"problems": [[47, 85, "+"], [9, 3, "-"]]},                    # fmt left at its default
             {"problems": [[47, 85, "+"]], "fmt": "steps"}]                 # unknown format: ValueError
    for i in range(18):
        cases.append({"problems": [_draw_problem(rng, 5) for _ in range(rng.randint(1, 6))],
                      "fmt": ["direct", "cot"][i % 2]})
    return cases


def call_pairs(fn: Callable, case: dict) -> Any:
    problems = [_problem(p) for p in case["problems"]]
    try:
        pairs = fn(problems, case["fmt"]) if "fmt" in case else fn(problems)
    except ValueError:
        return "ValueError"
    return [list(pair) if isinstance(pair, (tuple, list)) else pair for pair in pairs]


def compare_pairs(got: Any, expected: Any, case: dict) -> str | None:
    fmt = case.get("fmt", "direct")
    got, expected = grading.to_plain(got), grading.to_plain(expected)
    if expected == "ValueError":
        return None if got == "ValueError" else f"fmt={fmt!r} is not a format: raise a ValueError"
    if got == "ValueError":
        return f"raised ValueError for fmt={fmt!r}"
    if not isinstance(got, list):
        return f"expected a list of (prompt, response) pairs, got {type(got).__name__}"
    if len(got) != len(expected):
        return f"returned {len(got)} pairs, expected {len(expected)} (one per problem)"
    for i, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(g, list) or len(g) != 2:
            return f"pair {i} should be a (prompt, response) tuple"
        if not _same(g[0], e[0]):
            return f"pair {i}: the prompt is wrong"
        if not _same(g[1], e[1]):
            return f"pair {i}: the response is wrong (fmt={fmt!r})"
    return None


def describe_pairs(case: dict) -> str:
    return f"{len(case['problems'])} problems, fmt={case['fmt']!r}" if "fmt" in case else \
        f"{len(case['problems'])} problems, fmt left at its default"


FORBID = tuple(f"aiterms.supervised_data:{name}" for name in
               ("normalise_key", "deduplicate", "decontaminate", "split", "to_pairs", "process")) + \
    tuple(f"aiterms.arithmetic:{name}" for name in ("prompt", "direct_response", "response"))

TASKS = [
    Task("normalise_key", "test_normalise_key", 2, key_cases, call_key, "aiterms.supervised_data:normalise_key",
         compare=compare_key, describe=describe_key, forbid=FORBID),
    Task("deduplicate", "test_deduplicate", 3, dedup_cases, call_dedup, "aiterms.supervised_data:deduplicate",
         compare=compare_dedup, describe=describe_dedup, forbid=FORBID),
    Task("split", "test_split", 3, split_cases, call_split, "aiterms.supervised_data:split",
         compare=compare_split, describe=describe_split, forbid=FORBID),
    Task("to_pairs", "test_to_pairs", 2, pairs_cases, call_pairs, "aiterms.supervised_data:to_pairs",
         compare=compare_pairs, describe=describe_pairs, forbid=FORBID),
]
