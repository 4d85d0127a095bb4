"""Hidden checks of the graded exercises, declared once per task and used in two places.

A :class:`Task` says what a graded task is: the learner's function, its points, how to draw test cases as plain
data (numbers, lists, dicts: never objects), how to turn a case into a call, the reference implementation, how to
compare results, and which ``aiterms`` functions the learner must not call.

* In the notebook, a task's hidden test cell is one line, ``check_task("16-beam-search", "greedy_decode",
  greedy_decode)``: it draws the *public* cases and compares in the kernel, so the feedback can say what went wrong.
* At grading, the judge (``aiterms.grading.judge``) draws *secret* cases (seeded by the course's grading salt),
  computes the reference outputs in a trusted process, runs the learner's code in a sandboxed process that only gets the cases and
  sends back plain data, and compares there. Only the judge's verdict becomes points: nothing the learner's code can
  patch in its own process changes it.
"""
from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from aiterms.grading.compare import check_cases, compare_values
from aiterms.grading.course import ASSIGNMENTS as COURSE_ASSIGNMENTS, module_name

#: assignment -> module that declares its TASKS
ASSIGNMENTS = {a: f"aiterms.grading.assignments.{module_name(a)}" for a in COURSE_ASSIGNMENTS}

#: the seed of the cases that the in-kernel hidden tests draw (the judge uses a secret one)
PUBLIC_SEED = "public"


@dataclass(frozen=True)
class Task:
    """One graded task of an exercise."""

    function: str                                   # the learner's function name (= the answer cell's grade_id)
    test_cell: str                                  # grade_id of its test cell in the notebook
    points: float
    cases: Callable[[random.Random], list[dict]]    # plain-data cases drawn from a seeded rng
    call: Callable[[Callable, dict], Any]           # call(function, case) -> raw result
    reference: str                                  # "module:function" of the reference implementation
    compare: Callable[[Any, Any, dict], str | None] = compare_values  # (got, expected, case)
    describe: Callable[[dict], str] | None = None   # short description of a case for messages
    forbid: tuple[str, ...] = field(default=())     # "module:function"s the learner's code must not call


def resolve(name: str) -> Callable:
    """``"aiterms.beam_search:beam_step"`` -> the function."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def tasks(assignment: str) -> list[Task]:
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {sorted(ASSIGNMENTS)}, got {assignment!r}")
    return list(importlib.import_module(ASSIGNMENTS[assignment]).TASKS)


def task(assignment: str, function: str) -> Task:
    for t in tasks(assignment):
        if t.function == function:
            return t
    raise ValueError(f"assignment {assignment!r} has no task {function!r}")


def forbidden(assignment: str) -> list[str]:
    """Every reference function that an assignment's learners must not call (the union over its tasks)."""
    return sorted({name for t in tasks(assignment) for name in (t.reference, *t.forbid)})


def draw_cases(task: Task, assignment: str, seed: str) -> list[dict]:
    """The cases of ``task`` for a seed string (public in the kernel, the course's secret salt in the judge)."""
    return task.cases(random.Random(f"{seed}:{assignment}:{task.function}"))


def ipython_to_python(src: str) -> str:
    """A cell's source as the kernel runs it: IPython syntax (magics, shell escapes) turned into Python calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(src)
    except Exception:  # IPython missing, or a cell it cannot transform: leave it to fail as plain Python
        return src


def check_task(assignment: str, function_name: str, function: Callable) -> None:
    """The in-kernel hidden test of one task: public cases, reference disabled while the learner's code runs."""
    t = task(assignment, function_name)
    cases = draw_cases(t, assignment, PUBLIC_SEED)
    check_cases(
        t.function, lambda case: t.call(function, case), reference=lambda case: t.call(resolve(t.reference), case),
        cases=[((case,), {}) for case in cases], compare=t.compare,
        forbid=[resolve(name) for name in forbidden(assignment)],
        describe=(lambda args, kwargs: t.describe(args[0])) if t.describe else None)
