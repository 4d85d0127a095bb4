"""Hidden checks of exercise 8 (the full training pipeline): parse_line, pass_at_k, majority_vote.

Cases are plain data: a raw line is a string (``{"line": " 047 + 85 = 0132 "}``), pass@k gets three ints, majority
vote a list of ints and ``None``\\ s. ``parse_line`` returns a :class:`~aiterms.supervised_data.ParsedLine`, which
``call`` turns into ``[a, b, op, claimed]`` (or ``None`` for a rejected line) before it is compared.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from aiterms import grading
from aiterms.grading.tasks import Task
from aiterms.supervised_data import collect_with_kinds

ASSIGNMENT = "08-pipeline"


def _same(got: Any, expected: Any) -> bool:
    """Exact equality of plain data, with types: ints (not bools), strings, ``None``, lists."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(_same, got, expected))
    return type(got) is type(expected) and got == expected


# ------------------------------------------------------------------------------------------------ parse_line
#: Designed lines, every kind of mess the collected corpus has and a few more: (line, accepted?) is documented by
#: the reference, not here; the order is the order of the public and secret cases.
PARSE_EDGE_LINES = [
    "47+85=132",                 # canonical
    "85-47=38",                  # subtraction
    "47+85=133",                 # a wrong answer still parses: verifying is the next step's job
    " 47 + 85 = 132 ",           # spaces around everything
    "047+85=0132",               # leading zeros
    "00-0=00",                   # zeros only
    "5-5=0",
    "47\t+ 85 =132\n",           # tabs and newlines are whitespace too
    "4 7+85=132",                # whitespace inside a number is removed as well
    "123456789+987654321=1111111110",  # long numbers
    "47-85=38",                  # a subtraction with a < b: no negative results in this task
    "47-85=-38",
    "47+=132",                   # missing operands
    "+85=132",
    "47+85=",                    # no answer
    "",                          # empty and blank lines
    "  ",
    "\t",
    "lorem ipsum",
    "47++85=132",                # doubled symbols
    "47+85==132",
    "47+85=132=132",
    "47+8",                      # cut off
    "47 plus 85 is 132",         # words
    "47+85=13x",                 # a look-alike character
    "4O+85=125",
    "47*85=3995",                # an operation the task does not have
    "-47+85=38",                 # signs
    "47+-85=38",
    "47+85=132.",
    "=",
]


def _mutate(line: str, rng: random.Random) -> str:
    """A variant of a valid line: whitespace, zeros or a stray character somewhere."""
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(ch + rng.choice(["", "", " ", "\t"]) for ch in line)
    if kind == 1:
        i = rng.randrange(len(line) + 1)
        return line[:i] + rng.choice(["x", "=", "+", "-", ".", "0", "00"]) + line[i:]
    if kind == 2:
        i = rng.randrange(len(line))
        return line[:i] + line[i + 1:]
    if kind == 3:
        return rng.choice([" ", "\n", "  "]) + line + rng.choice(["", " ", "\r\n"])
    return line.replace("=", "=0", 1) if rng.random() < 0.5 else "0" + line


def parse_line_cases(rng: random.Random) -> list[dict]:
    cases = [{"line": line} for line in PARSE_EDGE_LINES]
    lines = collect_with_kinds(400, (1, 2, 3), seed=rng.randrange(10**6), test_problems=[],
                               wrong_rate=0.15, malformed_rate=0.25, near_dup_rate=0.15, noise_rate=0.3)
    by_kind: dict[str, list[str]] = {}
    for line, kind in lines:
        by_kind.setdefault(kind, []).append(line)
    for kind, count in (("clean", 3), ("noisy", 5), ("near_duplicate", 4), ("wrong", 3), ("malformed", 10)):
        cases += [{"line": line} for line in rng.sample(by_kind[kind], min(count, len(by_kind[kind])))]
    valid = by_kind["clean"] + by_kind["wrong"]
    cases += [{"line": _mutate(rng.choice(valid), rng)} for _ in range(10)]
    return cases


def call_parse_line(fn: Callable, case: dict) -> Any:
    parsed = fn(case["line"])
    if parsed is None:
        return None
    return [parsed.problem.a, parsed.problem.b, parsed.problem.op, parsed.claimed]


def compare_parse_line(got: Any, expected: Any, case: dict) -> str | None:
    try:
        got = grading.to_plain(got)
    except TypeError as e:
        return f"could not read the result: {e}"
    if _same(got, expected):
        return None
    if expected is None:
        return "returned a parsed line, but the rules reject this line (expected None)"
    if got is None:
        return "returned None, but this line is well formed (after removing whitespace)"
    for name, g, e in zip(("a", "b", "op", "claimed"), got, expected):
        if not _same(g, e):
            return f"the parsed {name} is wrong" if name != "claimed" else "the claimed answer is wrong"
    return "the result is wrong"


def describe_parse_line(case: dict) -> str:
    return f"line {case['line']!r}"


# ------------------------------------------------------------------------------------------------ pass_at_k
PASS_EDGE_CASES = [
    (1, 0, 1), (1, 1, 1),        # one sample
    (5, 0, 3), (10, 0, 10),      # no correct sample: 0
    (5, 5, 5), (10, 10, 1),      # all correct: 1
    (10, 3, 1),                  # k = 1: c / n
    (10, 3, 10),                 # k = n: 1 as soon as c > 0
    (10, 8, 3), (10, 7, 4),      # n - c < k: every k-subset has a correct sample
    (10, 7, 3),                  # n - c == k: one subset without
    (200, 1, 100),               # exactly 1/2
    (2000, 17, 500),             # C(n, k) does not fit in a float
    (10000, 3, 2500), (5000, 4999, 2), (3000, 1500, 1500),
]


def pass_at_k_cases(rng: random.Random) -> list[dict]:
    cases = [{"n": n, "c": c, "k": k} for n, c, k in PASS_EDGE_CASES]
    for i in range(30):
        n = rng.choice([rng.randint(2, 20), rng.randint(2, 200), rng.randint(100, 3000)])
        c = rng.randint(1, n - 1)
        k = rng.randint(2, n) if i % 3 else rng.randint(2, max(2, min(n, 16)))
        cases.append({"n": n, "c": c, "k": k})
    return cases


def call_pass_at_k(fn: Callable, case: dict) -> Any:
    return fn(case["n"], case["c"], case["k"])


def compare_pass_at_k(got: Any, expected: Any, case: dict) -> str | None:
    problem = grading.compare_values(got, expected)
    return problem and problem.replace("the result", "pass@k")


def describe_pass_at_k(case: dict) -> str:
    return f"n={case['n']}, c={case['c']}, k={case['k']}"


# ------------------------------------------------------------------------------------------------ majority_vote
VOTE_EDGE_CASES = [
    [], [None], [None, None, None],          # nothing to vote on
    [7], [0], [0, None, None],               # 0 is an answer like any other
    [132, 133, 132], [-3, 5, -3],
    [1, 2, 2, 1], [2, 1, 1, 2],              # ties: the tied answer seen first
    [None, None, None, 5],                   # unparseable outputs do not vote
    [None, 4, None, 9, 9, None, 4],
    [5, 3, 3, 5, 8, 8, 8, 3, 5],
    [10, 2, 2, 10, 1, 1],
]


def majority_vote_cases(rng: random.Random) -> list[dict]:
    cases = [{"answers": list(a)} for a in VOTE_EDGE_CASES]
    for _ in range(25):
        pool = rng.sample(range(-5, 40), rng.randint(1, 4))
        answers = [rng.choice(pool + [None] * rng.randint(0, 3)) for _ in range(rng.randint(1, 16))]
        cases.append({"answers": answers})
    return cases


def call_majority_vote(fn: Callable, case: dict) -> Any:
    return fn(list(case["answers"]))


def compare_majority_vote(got: Any, expected: Any, case: dict) -> str | None:
    try:
        got = grading.to_plain(got)
    except TypeError as e:
        return f"could not read the result: {e}"
    if _same(got, expected):
        return None
    if expected is None:
        return "returned an answer, but there is nothing to vote on (expected None)"
    return "returned None, but some answers can vote" if got is None else "the result is wrong"


def describe_majority_vote(case: dict) -> str:
    return f"answers={case['answers']!r}"


TASKS = [
    Task("parse_line", "test_parse_line", 3, parse_line_cases, call_parse_line,
         "aiterms.supervised_data:parse_line", compare=compare_parse_line, describe=describe_parse_line),
    Task("pass_at_k", "test_pass_at_k", 3, pass_at_k_cases, call_pass_at_k, "aiterms.evaluation:pass_at_k",
         compare=compare_pass_at_k, describe=describe_pass_at_k),
    Task("majority_vote", "test_majority_vote", 2, majority_vote_cases, call_majority_vote,
         "aiterms.evaluation:majority_vote", compare=compare_majority_vote, describe=describe_majority_vote),
]
