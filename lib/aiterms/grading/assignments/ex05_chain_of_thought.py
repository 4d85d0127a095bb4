"""Hidden checks of exercise 5 (chain-of-thought reasoning): parse_steps, verify_steps, extract_answer.

Cases are plain data: ``{"problem": [a, b, op], "response": "7+5+0=12|4+8+1=13|=132"}``. The responses are what a
step-by-step model might write: right, with a wrong digit, a wrong carry or borrow (also one carried on through the
following steps), a step about the wrong digits, missing or extra steps, steps in the wrong order, cut off, in the
direct format, with spaces, or garbage. A reference that raises ``ValueError`` (a malformed response for
``parse_steps``) gives the plain value ``"ValueError"``, and so must the learner's function: :func:`_calling` turns a
raised ``ValueError`` into that value for both.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from aiterms import grading
from aiterms.arithmetic import Problem, gold_steps
from aiterms.grading.tasks import Task

ASSIGNMENT = "05-chain-of-thought"

#: the plain value of "raised ValueError"
ERROR = "ValueError"
FIELDS = ("op", "top", "bottom", "carry_in", "carry_out", "digit")


# ------------------------------------------------------------------------------------------------ responses
def _problem(rng: random.Random) -> tuple[int, int, str]:
    """Operands of 1..6 digits, often of different lengths."""
    op = rng.choice("+-")
    la = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5, 6])
    lb = rng.randint(1, la)
    a = rng.randrange(0 if la == 1 else 10 ** (la - 1), 10 ** la)
    b = rng.randrange(0 if lb == 1 else 10 ** (lb - 1), 10 ** lb)
    if op == "+" and rng.random() < 0.5:
        a, b = b, a
    if op == "-" and a < b:
        a, b = b, a
    return a, b, op


def _text(op: str, x: int, y: int, c: int) -> tuple[str, int]:
    """The true step for column digits x, y and carry c (right or wrong for the problem): (text, carry out)."""
    if op == "+":
        s = x + y + c
        return f"{x}+{y}+{c}={s}", s // 10
    d = x - y - c
    borrow = int(d < 0)
    return f"{10 * borrow + x}-{y}-{c}={d + 10 * borrow}", borrow


def _join(texts: list[str], answer: int | str | None) -> str:
    return "|".join(texts) + ("" if answer is None else f"|={answer}")


def _response(rng: random.Random, a: int, b: int, op: str, kind: str) -> str:
    p = Problem(a, b, op)
    steps = gold_steps(p)
    texts = [s.text for s in steps]
    n, answer = len(steps), p.answer
    k = rng.randrange(n)
    if kind == "correct":
        return _join(texts, answer)
    if kind == "wrong_digit":  # a false equation in step k
        s = steps[k]
        if op == "+":
            wrong = rng.choice([v for v in range(20) if v != 10 * s.carry_out + s.digit])
            texts[k] = f"{s.top}+{s.bottom}+{s.carry_in}={wrong}"
        else:
            wrong = rng.choice([v for v in range(10) if v != s.digit])
            texts[k] = f"{10 * s.carry_out + s.top}-{s.bottom}-{s.carry_in}={wrong}"
        return _join(texts, answer)
    if kind == "wrong_carry":  # step k uses the wrong carry in, but its equation is true
        s = steps[k]
        texts[k] = _text(op, s.top, s.bottom, 1 - s.carry_in)[0]
        return _join(texts, answer)
    if kind == "carried_on":  # a wrong carry in step k, used consistently by every later step
        carry = 1 - steps[k].carry_in
        for i in range(k, n):
            texts[i], carry = _text(op, steps[i].top, steps[i].bottom, carry)
        return _join(texts, answer)
    if kind == "wrong_digits":  # a true equation about the wrong digit of a column
        s = steps[k]
        other = rng.choice([v for v in range(10) if v != s.top])
        texts[k] = _text(op, other, s.bottom, s.carry_in)[0]
        return _join(texts, answer)
    if kind == "missing":
        del texts[k]
        return _join(texts, answer)
    if kind == "extra":
        texts.append("0+0+0=0" if op == "+" else "0-0-0=0")
        return _join(texts, answer)
    if kind == "reversed":
        return _join(texts[::-1], answer)
    if kind == "wrong_answer":
        return _join(texts, answer + rng.choice([-10, -1, 1, 100]) if answer >= 10 else answer + 1)
    if kind == "no_answer":
        return _join(texts, None)
    if kind == "truncated":
        full = _join(texts, answer)
        return full[:rng.randrange(1, len(full))]
    if kind == "direct":
        return str(answer)
    if kind == "other_op":  # the steps of the other operation on the same operands
        other = Problem(max(a, b), min(a, b), "-") if op == "+" else Problem(a, b, "+")
        return _join([s.text for s in gold_steps(other)], other.answer)
    if kind == "space":
        full = _join(texts, answer)
        i = rng.randrange(len(full) + 1)
        return full[:i] + " " + full[i:]
    if kind == "garbage":
        alphabet = rng.choice(["0123456789+-=|", "0123456789+-=| abcxyz"])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
    raise ValueError(f"unknown kind {kind!r}")


KINDS = ("correct", "correct", "correct", "wrong_digit", "wrong_carry", "carried_on", "wrong_digits", "missing",
         "extra", "reversed", "wrong_answer", "no_answer", "truncated", "truncated", "direct", "other_op", "space",
         "garbage")


def _random_cases(rng: random.Random, count: int, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    cases = []
    for _ in range(count):
        a, b, op = _problem(rng)
        cases.append({"problem": [a, b, op], "response": _response(rng, a, b, op, rng.choice(kinds))})
    return cases


def _cases(fixed: list[tuple[int, int, str, str]]) -> list[dict]:
    return [{"problem": [a, b, op], "response": r} for a, b, op, r in fixed]


# ------------------------------------------------------------------------------------------------ calling and comparing
def _calling(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, with a raised ``ValueError`` (the documented error) turned into the plain value ``"ValueError"``."""
    try:
        return fn(*args)
    except ValueError:
        return ERROR


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, str):
        return "a str"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _error_problem(got: Any, expected: Any) -> str | None | bool:
    """The message if one side raised ValueError and the other did not; ``False`` if neither raised."""
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError: the response is not well formed"
    if got == ERROR:
        return "raised ValueError for a response it should accept"
    return False


def _same(got: Any, expected: Any) -> bool:
    """Equal, and of the same kind (``True`` is not ``1``, ``"3"`` is not ``3``)."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(_same, got, expected))
    return _kind(got) == _kind(expected) and got == expected


def call_parse_steps(fn: Callable, case: dict) -> Any:
    steps = _calling(fn, case["response"])
    if steps == ERROR:
        return ERROR
    return [[getattr(s, name) for name in FIELDS] for s in steps]


@grading.plain_compare()
def compare_parse_steps(got: Any, expected: Any, case: dict) -> str | None:
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    if not isinstance(got, list):
        return f"should return a list of Step objects, got {_kind(got)}"
    if len(got) != len(expected):
        return f"returned {len(got)} steps, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        for name, gv, ev in zip(FIELDS, g, e):
            if not _same(gv, ev):
                return f"step {i}: {name} is wrong" + ("" if _kind(gv) == _kind(ev) else
                                                      f" (should be {_kind(ev)}, got {_kind(gv)})")
    return None


def call_verify_steps(fn: Callable, case: dict) -> Any:
    return _calling(fn, Problem(*case["problem"]), case["response"])


@grading.plain_compare()
def compare_verify_steps(got: Any, expected: Any, case: dict) -> str | None:
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    if not isinstance(got, list):
        return f"should return a list of bools, got {_kind(got)}"
    if len(got) != len(expected):
        return f"returned {len(got)} checks, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(g, bool):
            return f"the result[{i}] should be a bool (True/False), got {_kind(g)}"
        if g != e:
            return f"the result[{i}] is wrong"
    return None


def call_extract_answer(fn: Callable, case: dict) -> Any:
    return _calling(fn, case["response"])


@grading.plain_compare()
def compare_extract_answer(got: Any, expected: Any, case: dict) -> str | None:
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    if expected is None:
        return None if got is None else "should be None: this response has no final answer"
    if _kind(got) != "an int":
        return f"should be an int, got {_kind(got)}"
    return None if got == expected else "the answer is wrong"


def describe_response(case: dict) -> str:
    return f"response {case['response']!r}"


def describe_problem_response(case: dict) -> str:
    a, b, op = case["problem"]
    return f"problem {a}{op}{b}=, response {case['response']!r}"


# ------------------------------------------------------------------------------------------------ cases
def parse_steps_cases(rng: random.Random) -> list[dict]:
    fixed = [
        (47, 85, "+", "7+5+0=12|4+8+1=13|=132"),
        (85, 47, "-", "15-7-0=8|8-4-1=3|=38"),
        (0, 0, "+", "0+0+0=0|=0"),
        (10, 1, "-", "10-1-0=9|1-0-1=0|=9"),
        (47, 85, "+", "7+5+0=10|=10"),            # s = 10: carry 1, digit 0
        (19, 9, "-", "19-9-1=9|=9"),              # a syntactically fine step, m = 19
        (47, 85, "+", "7+5+0=3|4+8+1=13|=32"),    # a false step still parses
        (47, 85, "+", "9+9+1=19|=19"),
        (47, 85, "+", "7+5+0=12|4+8+1=13"),       # no answer segment: two steps
        (47, 85, "+", "=132"),                    # no steps at all
        (47, 85, "+", "7+5+0=12|15-7-0=8|=82"),   # mixed operations parse (syntax only)
        (47, 85, "+", "7+5+0=12|4+8"),            # cut off in a step
        (47, 85, "+", "7+5+0=12|4+8+1=13|"),      # an empty segment at the end
        (47, 85, "+", "132"),                     # the direct format
        (47, 85, "+", ""),
        (47, 85, "+", "7+5+0=123|=123"),          # extra characters after a step
        (47, 85, "+", "7+5+0=012|=12"),           # a leading zero
        (47, 85, "+", "7+5+2=14|=14"),            # a carry of 2
        (47, 85, "+", "7+5+0=20|=20"),            # a sum above 19
        (85, 47, "-", "20-9-1=10|=10"),
        (47, 85, "+", "7 + 5 + 0 = 12|=12"),
        (47, 85, "+", "7+5+0=12|=13|=132"),       # an answer segment in the middle is not a step
        (47, 85, "+", "7+5=12|=12"),
    ]
    return _cases(fixed) + _random_cases(rng, 24)


def verify_steps_cases(rng: random.Random) -> list[dict]:
    fixed = [
        (47, 85, "+", "7+5+0=12|4+8+1=13|=132"),
        (85, 47, "-", "15-7-0=8|8-4-1=3|=38"),
        (47, 85, "+", "7+5+0=12|4+8+0=12|=122"),  # carry ignored: a true equation, a wrong carry
        (85, 47, "-", "15-7-0=8|8-4-0=4|=48"),    # borrow ignored
        (47, 85, "+", "7+5+0=13|4+8+1=13|=133"),  # a wrong digit
        (47, 75, "+", "7+2+0=9|4+7+0=11|=119"),   # wrong digits in step 0, its carry used consistently after
        (47, 85, "+", "7+5+0=12|=12"),            # a missing step
        (47, 85, "+", "7+5+0=12|4+8+1=13|0+0+1=1|=1132"),  # an extra step
        (47, 85, "+", "7+5+0=12|4+8"),            # cut off
        (47, 85, "+", "7+5+0=12|4+8+1=13"),       # no answer segment
        (47, 85, "+", "132"),
        (47, 85, "+", ""),
        (47, 85, "+", "=132"),
        (47, 85, "+", "4+8+1=13|7+5+0=12|=132"),  # steps in the wrong order
        (47, 85, "+", "7+5+0=12|4+8+1=13|=999"),  # right steps, wrong answer: not this function's business
        (85, 47, "-", "5+7+0=12|8+4+1=13|=132"),  # the other operation
        (105, 7, "+", "5+7+0=12|0+0+1=1|1+0+0=1|=112"),
        (7, 105, "+", "7+5+0=12|0+0+1=1|0+1+0=1|=112"),  # the bottom digit is that of b, also when b is longer
        (100, 1, "-", "10-1-0=9|10-0-1=9|1-0-1=0|=99"),
        (1000, 1, "-", "10-1-0=9|10-0-1=9|10-0-1=9|1-0-1=0|=999"),
        (0, 0, "+", "0+0+0=0|=0"),
        (5, 3, "-", "5-3-0=2|=2"),
        (52, 48, "-", "12-8-0=4|5-4-1=0|=4"),
        (47, 85, "+", "7+5+0=12 |4+8+1=13|=132"),
    ]
    return _cases(fixed) + _random_cases(rng, 26)


def extract_answer_cases(rng: random.Random) -> list[dict]:
    responses = ["7+5+0=12|4+8+1=13|=132", "132", "=0132", "0", "=0", "-5", "=-5", "", "=", "|=132",
                 "7+5+0=12|4+8+1=13",     # cut off before the answer
                 "7+5+0=12|4+8+1=13|",    # an empty last segment
                 "7+5+0=12",              # one step, no answer
                 "=132|", " 132", "=132 ", "= 132", "==132", "=+132", "+132", "1_32", "13=2", "12|132",
                 "7+5+0=12|=13|=132", "132|=7", "abc"]
    return _cases([(47, 85, "+", r) for r in responses]) + _random_cases(rng, 16)


FORBID = ("aiterms.arithmetic:parse_steps", "aiterms.arithmetic:verify_steps", "aiterms.arithmetic:extract_answer",
          "aiterms.arithmetic:parse_step", "aiterms.arithmetic:split_response", "aiterms.arithmetic:gold_steps",
          "aiterms.arithmetic:cot_response")

TASKS = [
    Task("parse_steps", "test_parse_steps", 3, parse_steps_cases, call_parse_steps,
         "aiterms.arithmetic:parse_steps", compare=compare_parse_steps, describe=describe_response, forbid=FORBID),
    Task("verify_steps", "test_verify_steps", 3, verify_steps_cases, call_verify_steps,
         "aiterms.arithmetic:verify_steps", compare=compare_verify_steps, describe=describe_problem_response,
         forbid=FORBID),
    Task("extract_answer", "test_extract_answer", 2, extract_answer_cases, call_extract_answer,
         "aiterms.arithmetic:extract_answer", compare=compare_extract_answer, describe=describe_response,
         forbid=FORBID),
]
