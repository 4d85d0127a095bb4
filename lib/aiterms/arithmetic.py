"""The arithmetic task: multi-digit addition and subtraction, whose answers and steps can be checked exactly.

A :class:`Problem` is ``a + b`` or ``a - b`` (with ``a >= b``, so results stay non-negative). Its prompt is
``"47+85="``, and a model answers in one of two formats:

* **direct** (``fmt="direct"``): the answer alone, ``"132"``.
* **step-by-step** (``fmt="cot"``, chain of thought): one step per column, from the rightmost digit, separated by
  ``|``, then the answer after ``=``::

      47+85=   ->   7+5+0=12|4+8+1=13|=132
      85-47=   ->   15-7-0=8|8-4-1=3|=38

  Every step is a true equation about column ``i`` (``i = 0`` is the units), with ``x_i``, ``y_i`` the i-th digits
  from the right of ``a`` and ``b`` (0 past the end of the shorter number) and ``c_i`` the carry (or borrow) flowing
  in (``c_0 = 0``)::

      addition     "x+y+c=s"      s = x_i + y_i + c_i (0..19)   digit d_i = s mod 10, carry out c_{i+1} = s // 10
      subtraction  "m-y-c=d"      m = 10 c_{i+1} + x_i,  d_i = m - y_i - c_i (0..9),  borrow out c_{i+1} = 1 iff
                                  x_i - y_i - c_i < 0 (the borrowed ten is written in front of x_i)

  There are ``n = max(len(str(a)), len(str(b)))`` steps; the answer ``a + b`` (or ``a - b``) is written in plain
  decimal, so for addition it is the last carry followed by ``d_{n-1} ... d_0``, and for subtraction
  ``d_{n-1} ... d_0`` without leading zeros. The carry of each step is visible in the next one (its third number), so a
  wrong digit, a wrong sum and a wrong carry are each caught at the step that makes them (:func:`verify_steps`).

Grading (:func:`extract_answer`, :func:`is_well_formed`, :func:`reward`) reads plain text, as a model writes it.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from numbers import Integral
from typing import Sequence

from aiterms.decoding import check_positive_int

OPS: tuple[str, ...] = ("+", "-")
FORMATS: tuple[str, ...] = ("direct", "cot")
MAX_DIGITS = 6

_INT = r"(?:0|-?[1-9]\d*)"                      # a canonical integer: no leading zeros, no "-0"
_ADD_STEP = re.compile(r"(\d)\+(\d)\+([01])=(1?\d)")
_SUB_STEP = re.compile(r"(1?\d)-(\d)-([01])=(\d)")
_ANSWER = re.compile(r"=?(-?\d+)")              # what extract_answer accepts as the final segment


@dataclass(frozen=True)
class Problem:
    """``a op b`` with non-negative integers ``a``, ``b``; ``op`` is ``"+"`` or ``"-"`` (then ``a >= b``)."""

    a: int
    b: int
    op: str = "+"

    def __post_init__(self):
        for name in ("a", "b"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        if self.op == "-" and self.a < self.b:
            raise ValueError(f"for op '-', a must be >= b so that the result is non-negative, got {self.a}-{self.b}")

    @property
    def answer(self) -> int:
        """The exact result, ``a + b`` or ``a - b``."""
        return self.a + self.b if self.op == "+" else self.a - self.b

    @property
    def num_steps(self) -> int:
        """Columns of the step-by-step format: ``max(len(str(a)), len(str(b)))``."""
        return max(len(str(self.a)), len(str(self.b)))


@dataclass(frozen=True)
class Step:
    """One column of the step-by-step format, as written (the fields reproduce the text, see :attr:`text`).

    ``top``, ``bottom``: the column's digits of ``a`` and ``b``; ``carry_in``: the carry/borrow used (0 or 1);
    ``carry_out``: the carry/borrow produced; ``digit``: the result digit of the column.
    """

    op: str
    top: int
    bottom: int
    carry_in: int
    carry_out: int
    digit: int

    @property
    def text(self) -> str:
        """``"x+y+c=s"`` (``s = 10 carry_out + digit``) or ``"m-y-c=d"`` (``m = 10 carry_out + top``)."""
        if self.op == "+":
            return f"{self.top}+{self.bottom}+{self.carry_in}={10 * self.carry_out + self.digit}"
        return f"{10 * self.carry_out + self.top}-{self.bottom}-{self.carry_in}={self.digit}"

    @property
    def is_true(self) -> bool:
        """Whether the equation holds: ``x + y + c = 10 c_out + d``, or ``10 c_out + x - y - c = d``."""
        if self.op == "+":
            return self.top + self.bottom + self.carry_in == 10 * self.carry_out + self.digit
        return 10 * self.carry_out + self.top - self.bottom - self.carry_in == self.digit


def _check_problem(problem: Problem) -> Problem:
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be an aiterms.arithmetic.Problem, got {type(problem).__name__}")
    return problem


def _check_fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    return fmt


def _check_response(response: str) -> str:
    if not isinstance(response, str):
        raise ValueError(f"response must be a str, got {type(response).__name__}")
    return response


# ---------------------------------------------------------------- problems
def sample_problems(n: int, digits: int, seed: int, ops: Sequence[str] = ("+",)) -> list[Problem]:
    """``n`` random problems whose operands both have exactly ``digits`` digits (``0..9`` when ``digits == 1``).

    Each problem draws its operation uniformly from ``ops`` and ``a``, ``b`` uniformly from
    ``[10**(digits-1), 10**digits)``; for ``"-"`` the two are swapped if needed so that ``a >= b``. Problems may
    repeat (there are only 100 one-digit additions). Deterministic: the same arguments give the same list
    (Python's ``random.Random(seed)``, stable across platforms and versions).

    Raises:
        ValueError: ``n < 1``, ``digits`` not in ``1..6``, an empty ``ops`` or an unknown operation.
    """
    check_positive_int("n", n)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be an integer in 1..{MAX_DIGITS}, got {digits!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if isinstance(ops, str):
        ops = tuple(ops)
    ops = tuple(ops)
    if not ops or any(op not in OPS for op in ops):
        raise ValueError(f"ops must be a non-empty sequence of operations from {OPS}, got {ops!r}")
    rng = random.Random(seed)
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10 ** digits
    problems = []
    for _ in range(n):
        op = rng.choice(ops)
        a, b = rng.randrange(low, high), rng.randrange(low, high)
        if op == "-" and a < b:
            a, b = b, a
        problems.append(Problem(a, b, op))
    return problems


def prompt(problem: Problem) -> str:
    """The prompt of both formats: ``f"{a}{op}{b}="``, e.g. ``"47+85="``."""
    p = _check_problem(problem)
    return f"{p.a}{p.op}{p.b}="


def parse_prompt(text: str) -> Problem:
    """The :class:`Problem` of a prompt ``"47+85="`` (inverse of :func:`prompt`); ``ValueError`` if it is not one."""
    m = re.fullmatch(r"(\d+)([+-])(\d+)=", text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"text must be a prompt like '47+85=', got {text!r}")
    return Problem(int(m.group(1)), int(m.group(3)), m.group(2))


def direct_response(problem: Problem) -> str:
    """The direct format: the answer in decimal, ``"132"`` for ``47+85``."""
    return str(_check_problem(problem).answer)


def gold_steps(problem: Problem) -> list[Step]:
    """The ``n`` correct steps of ``problem``, units column first (see the module docstring for the equations)."""
    p = _check_problem(problem)
    steps, carry = [], 0
    for i in range(p.num_steps):
        x, y = p.a // 10 ** i % 10, p.b // 10 ** i % 10
        if p.op == "+":
            total = x + y + carry
            step = Step("+", x, y, carry, total // 10, total % 10)
        else:
            diff = x - y - carry
            step = Step("-", x, y, carry, int(diff < 0), diff + 10 * int(diff < 0))
        steps.append(step)
        carry = step.carry_out
    return steps


def cot_response(problem: Problem) -> str:
    """The step-by-step format: ``"|".join(step texts) + "|=" + answer``, e.g. ``"7+5+0=12|4+8+1=13|=132"``."""
    return "|".join(step.text for step in gold_steps(problem)) + f"|={_check_problem(problem).answer}"


def response(problem: Problem, fmt: str) -> str:
    """:func:`direct_response` or :func:`cot_response`, by ``fmt`` (``"direct"`` or ``"cot"``)."""
    return direct_response(problem) if _check_fmt(fmt) == "direct" else cot_response(problem)


# ---------------------------------------------------------------- reading a response
def split_response(response: str) -> tuple[list[str], str | None]:
    """Split a step-by-step response at ``|`` into its step segments and its answer segment.

    The answer segment is the last segment if it starts with ``=`` (``None`` otherwise, e.g. for a response cut off
    mid-step); every other segment is a step segment, well formed or not.
    ``"7+5+0=12|4+8+1=13|=132"`` -> ``(["7+5+0=12", "4+8+1=13"], "=132")``; ``"7+5+0=12|4+8"`` -> ``(["7+5+0=12",
    "4+8"], None)``.
    """
    segments = _check_response(response).split("|")
    if segments[-1].startswith("="):
        return segments[:-1], segments[-1]
    return segments, None


def parse_step(text: str) -> Step:
    """Parse one step, ``"x+y+c=s"`` or ``"m-y-c=d"`` (digits, carries 0/1, ``s`` in 0..19, ``m`` in 0..19).

    Only the syntax is checked (``"7+5+0=3"`` parses; :attr:`Step.is_true` says it is false).

    Raises:
        ValueError: if ``text`` is not a step.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if m := _ADD_STEP.fullmatch(text):
        x, y, c, s = map(int, m.groups())
        return Step("+", x, y, c, s // 10, s % 10)
    if m := _SUB_STEP.fullmatch(text):
        top, y, c, d = map(int, m.groups())
        return Step("-", top % 10, y, c, top // 10, d)
    raise ValueError(f"text must be a step like '7+5+0=12' or '15-7-0=8', got {text!r}")


def parse_steps(response: str) -> list[Step]:
    """All steps of a step-by-step response, in order (the answer segment excluded; see :func:`split_response`).

    Raises:
        ValueError: naming the first segment that is not a step.
    """
    steps = []
    for i, text in enumerate(split_response(response)[0]):
        try:
            steps.append(parse_step(text))
        except ValueError:
            raise ValueError(f"response: step {i} ({text!r}) is not a step like '7+5+0=12' or '15-7-0=8'") from None
    return steps


def verify_steps(problem: Problem, response: str) -> list[bool]:
    """Check every step of a step-by-step response exactly against the problem.

    Step ``i`` is correct iff it parses and equals the i-th gold step: the problem's operation, the digits ``x_i``,
    ``y_i`` of column ``i``, the true carry ``c_i`` flowing in, and the (unique) true result. A step that repeats an
    earlier mistake (e.g. uses a wrong carry produced by the step before) is therefore wrong too.

    Returns:
        one bool per step, ``max(len(step segments), problem.num_steps)`` of them: a missing step (response too short)
        and a step beyond the last column count as ``False``. ``all(verify_steps(p, r))`` means the whole computation
        is written and right; the answer segment is checked by :func:`extract_answer`, not here.
    """
    gold = gold_steps(problem)
    texts, _ = split_response(response)
    checks = []
    for i in range(max(len(texts), len(gold))):
        if i >= len(texts) or i >= len(gold):
            checks.append(False)
            continue
        try:
            checks.append(parse_step(texts[i]) == gold[i])
        except ValueError:
            checks.append(False)
    return checks


def extract_answer(response: str) -> int | None:
    """The final answer of a response of either format, or ``None`` when there is none.

    The final segment (after the last ``|``; the whole response if there is none) must be an integer, optionally after
    one ``=``: ``"132"`` -> 132, ``"...|=132"`` -> 132, ``"=0132"`` -> 132. Anything else is ``None``: an empty
    response, a response cut off in a step (``"7+5+0=12|4+8+1=13"``), text after the answer (``"=132|"``), spaces.
    """
    m = _ANSWER.fullmatch(_check_response(response).rsplit("|", 1)[-1])
    return int(m.group(1)) if m else None


def is_well_formed(response: str, fmt: str) -> bool:
    """Whether ``response`` has the syntax of ``fmt``, right or wrong.

    ``"direct"``: a canonical integer (``"132"``; not ``"0132"``, not ``""``). ``"cot"``: at least one step, every
    step parses (:func:`parse_step`), all with the same operation, then a final ``"=<canonical integer>"``.
    """
    _check_fmt(fmt)
    _check_response(response)
    if fmt == "direct":
        return re.fullmatch(_INT, response) is not None
    texts, answer = split_response(response)
    if answer is None or re.fullmatch("=" + _INT, answer) is None:
        return False
    try:
        ops = {parse_step(t).op for t in texts}
    except ValueError:
        return False
    return len(ops) == 1


def correctness_reward(problem: Problem, response: str) -> float:
    """``1.0`` if :func:`extract_answer` gives the problem's answer, else ``0.0`` (a verifiable outcome reward)."""
    return float(extract_answer(response) == _check_problem(problem).answer)


def format_reward(response: str, fmt: str) -> float:
    """``1.0`` if :func:`is_well_formed` (``response``, ``fmt``), else ``0.0``."""
    return float(is_well_formed(response, fmt))


def reward(problem: Problem, response: str, fmt: str, format_weight: float = 0.1) -> float:
    """Correctness plus format, as in DeepSeek-R1's rule-based rewards (DeepSeek-AI, 2025), scaled to ``[0, 1]``::

        r = (1 - w) * correctness_reward + w * format_reward,     w = format_weight

    With the default ``w = 0.1``: 1.0 for a right, well-formed response, 0.9 right but malformed, 0.1 wrong but well
    formed, 0.0 otherwise. ``format_weight=0`` gives the bare correctness reward.
    """
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight!r}")
    return (1 - format_weight) * correctness_reward(problem, response) + format_weight * format_reward(response, fmt)
