"""Comparing a learner's results with the reference's: the helpers of the exercises' visible and hidden tests.

A graded task's hidden tests compare the learner's function with its reference in ``aiterms`` on many seeded cases::

    check_cases("greedy_decode", greedy_decode, reference=ref.greedy_decode, cases=[(args, kwargs), ...],
                compare=compare_tokens, forbid=[ref.greedy_decode, ...])

Design rules, so that grading is fair and feedback is useful without giving hidden tests away:

* expected outputs are computed *before* the learner's function runs, from the reference;
* while the learner's function runs, the ``forbid`` functions are disabled (their code is swapped for one that
  raises), so a function that merely calls the reference earns nothing, however it imported it;
* the learner's output is converted to plain Python numbers before comparison, so returned objects cannot
  decide their own equality;
* a failure raises :class:`TaskFailed`, whose rendering in Jupyter is one line: the task, the case number and what
  was wrong, never a traceback line from the hidden test.
"""
from __future__ import annotations

import functools
import inspect
import math
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

VISIBLE_PASSED = "visible tests passed - more tests run at grading"


class TaskFailed(AssertionError):
    """A failed check. Jupyter shows only its one-line message (no traceback, so no hidden-test source)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ReferenceCalled(TaskFailed):
    """Raised when a learner's function calls the reference implementation it was asked to write."""


class ReferenceUnavailable(ReferenceCalled):
    """Raised at grading by the reference functions a task asks learners to write (they are stripped there)."""


def visible_tests_passed() -> None:
    """Print the end-of-visible-tests message (grading runs more tests, so never say "all tests passed")."""
    print(VISIBLE_PASSED)


def _raise_reference_called(*args: Any, **kwargs: Any) -> Any:
    # Runs with the *reference's* globals (its __code__ is swapped in), so it may only use builtins.
    raise __import__("aiterms.grading.compare").grading.compare.ReferenceCalled(
        "your function called the aiterms reference implementation; a task must do the work itself")


@contextmanager
def reference_disabled(functions: Iterable[Callable]) -> Iterator[None]:
    """Within the block, calling any of ``functions`` (by any name or alias) raises :class:`ReferenceCalled`.

    A decorated function (``functools.wraps``, e.g. ``@torch.no_grad()``) is disabled at its innermost function
    (``inspect.unwrap``), whose code object has no closure to keep."""
    saved = []
    try:
        for f in functions:
            f = inspect.unwrap(f)
            saved.append((f, f.__code__, f.__defaults__, f.__kwdefaults__))
            f.__code__, f.__defaults__, f.__kwdefaults__ = _raise_reference_called.__code__, None, None
        yield
    finally:
        for f, code, defaults, kwdefaults in saved:
            f.__code__, f.__defaults__, f.__kwdefaults__ = code, defaults, kwdefaults


def to_plain(value: Any) -> Any:
    """Tensors, arrays, tuples and named tuples -> nested lists of Python ints/floats/bools/str (or raise)."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"expected numbers, lists or tensors, got {type(value).__name__}")


TOL = 1e-5  # relative tolerance of float comparisons (see close)


def compare_tokens(got: Any, expected: Any, *case: Any) -> str | None:
    """Token lists must be equal, element for element. Returns a problem description or ``None``."""
    try:
        got, expected = to_plain(got), to_plain(expected)
    except TypeError as e:
        return f"could not read the result: {e}"
    if not isinstance(got, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in got):
        return f"expected a list of token ids (ints), got {got!r}"
    if got != expected:
        if len(got) != len(expected):
            return f"returned {len(got)} tokens, expected {len(expected)}"
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        return f"the tokens differ from position {first} on"
    return None


def close(a: float, b: float, tol: float = TOL) -> bool:
    """``|a - b| <= tol * max(1, |b|)`` (both -inf counts as equal)."""
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def compare_gradient(got: Any, expected: list[float], name: str) -> str | None:
    """A loss's gradient (a flat list) with respect to ``name``: within ``1e-5 + 1e-4 * |expected|`` element for
    element, else the message that the value is right and the gradient wrong (call it after the value matched)."""
    if not isinstance(got, list) or len(got) != len(expected) or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) or not abs(x - y) <= 1e-5 + 1e-4 * abs(y)
            for x, y in zip(got, expected)):
        return f"the loss has the right value but the wrong gradient with respect to {name}"
    return None


def compare_values(got: Any, expected: Any, *case: Any) -> str | None:
    """Structures must match: same nesting and lengths, equal ints, floats within :func:`close`.
    (Extra arguments, the case, are ignored: comparators are called as ``compare(got, expected, *args)``.)

    Returns a short description of the first difference (where, not what the hidden answer is), or ``None``.
    """
    try:
        got, expected = to_plain(got), to_plain(expected)
    except TypeError as e:
        return f"could not read the result: {e}"

    def walk(g: Any, e: Any, path: str) -> str | None:
        if isinstance(e, list):
            if not isinstance(g, list):
                return f"{path} should be a sequence, got {type(g).__name__}"
            if len(g) != len(e):
                return f"{path} has {len(g)} items, expected {len(e)}"
            for i, (gi, ei) in enumerate(zip(g, e)):
                problem = walk(gi, ei, f"{path}[{i}]")
                if problem:
                    return problem
            return None
        if isinstance(g, bool) or not isinstance(g, (int, float)):
            return f"{path} should be a number, got {g!r}"
        if isinstance(e, int):
            return None if g == e else f"{path} is wrong"
        return None if close(float(g), e) else f"{path} is wrong (off by more than {TOL:g})"

    return walk(got, expected, "the result")


#: the plain value a task's ``call`` returns when the function raised ValueError (as it must on bad input)
RAISED = ["raised", "ValueError"]


def plain_compare(should_raise: str | None = "should raise ValueError for these inputs",
                  should_accept: str = "raised ValueError for inputs it should accept"):
    """The head that compare functions share, as a decorator: both results are made plain data (a result that
    cannot be read is a problem), and when either is :data:`RAISED` (the task's ``call`` caught a ValueError) the
    verdict is given here: ``should_raise`` or ``should_accept``, or by the compare function itself when
    ``should_raise`` is None. The decorated ``compare(got, expected, *case)`` then compares plain results."""
    def decorate(compare: Callable[..., str | None]) -> Callable[..., str | None]:
        @functools.wraps(compare)
        def wrapped(got: Any, expected: Any, *case: Any) -> str | None:
            try:
                got, expected = to_plain(got), to_plain(expected)
            except TypeError as e:
                return f"could not read the result: {e}"
            if should_raise is not None and expected == RAISED:
                return None if got == RAISED else should_raise
            if should_raise is not None and got == RAISED:
                return should_accept
            return compare(got, expected, *case)
        return wrapped
    return decorate


def check_cases(name: str, function: Callable, *, reference: Callable, cases: Sequence[tuple[tuple, dict]],
                compare: Callable[[Any, Any], str | None], forbid: Iterable[Callable] = (),
                describe: Callable[[tuple, dict], str] | None = None) -> None:
    """Run ``function`` on every case and compare with ``reference``; raise :class:`TaskFailed` on the first miss.

    Args:
        name: the task's function name, for messages.
        function: the learner's function.
        reference: the reference implementation (called before ``function``, with the same arguments).
        cases: ``(args, kwargs)`` pairs.
        compare: ``compare(got, expected, *args)`` -> ``None`` if right, else a short description of the problem
            (``args`` are the case's arguments, for comparisons that must look at the input).
        forbid: reference functions that ``function`` must not call.
        describe: optional short description of a case for the failure message.
    """
    forbid = list(forbid)
    for i, (args, kwargs) in enumerate(cases, start=1):
        where = f"{name}: hidden case {i} of {len(cases)}"
        if describe is not None:
            where += f" ({describe(args, kwargs)})"
        try:
            expected = reference(*args, **kwargs)
        except Exception as e:  # a bug in the exercise, not the learner's: say so, without a traceback
            raise TaskFailed(f"{where}: the reference failed ({type(e).__name__}); please tell your instructor") from None
        try:
            with reference_disabled(forbid):
                got = function(*args, **kwargs)
        except TaskFailed as e:
            raise type(e)(f"{where}: {e}") from None
        except Exception as e:  # the learner's code failed: report it as the task's failure, briefly
            raise TaskFailed(f"{where}: raised {type(e).__name__}: {e}") from None
        try:
            problem = compare(got, expected, *args)
        except Exception as e:
            problem = f"could not read the result ({type(e).__name__}: {e})"
        if problem:
            raise TaskFailed(f"{where}: {problem}")
    print(f"{name}: {len(cases)} hidden cases passed")
