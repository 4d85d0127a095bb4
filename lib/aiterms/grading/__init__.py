"""Grading: the exercises' hidden tests, and ``make grade`` (``python -m aiterms.grading <folder>``).

One package, one name scheme: assignment ``NN-topic`` is the folder ``solutions/NN-topic/`` and the module
``aiterms.grading.assignments.exNN_topic`` that declares its tasks.

* :mod:`~aiterms.grading.compare`: comparing results with the reference's (plain data, tolerances, the shared
  :func:`plain_compare` head), and :func:`check_cases`, with the reference disabled while the learner's code runs;
* :mod:`~aiterms.grading.tasks`: :class:`Task` (what a graded task is: cases, call, reference, comparison) and
  :func:`check_task`, the one-line hidden test cell of the notebooks;
* :mod:`~aiterms.grading.assignments`: the tasks of each assignment;
* :mod:`~aiterms.grading.course`: the repository's paths and :data:`ASSIGNMENTS`, the one list of assignments;
* the grader, run by instructors (not in the learner release): :mod:`~aiterms.grading.grade` (collect, judge, run
  for feedback, gradebook, feedback, CSV), :mod:`~aiterms.grading.judge` (points computed outside the learner's
  kernel), :mod:`~aiterms.grading.worker` (runs the learner's cells), :mod:`~aiterms.grading.kernel` (the
  in-kernel run), :mod:`~aiterms.grading.server` (the grading server: a fresh, isolated run per submission) and
  :mod:`~aiterms.grading.sandbox` (bubblewrap); :mod:`~aiterms.grading.similarity` (the similarity report) and
  :mod:`~aiterms.grading.adjust` (scores set by hand).
"""
from aiterms.grading.compare import (RAISED, TOL, VISIBLE_PASSED, ReferenceCalled, ReferenceUnavailable,
                                     TaskFailed, check_cases, close, compare_gradient, compare_tokens,
                                     compare_values,
                                     plain_compare, reference_disabled, to_plain, visible_tests_passed)
from aiterms.grading.course import ASSIGNMENTS
from aiterms.grading.tasks import (PUBLIC_SEED, Task, check_task, draw_cases, forbidden, ipython_to_python,
                                   resolve, task, tasks)

__all__ = ["ASSIGNMENTS", "PUBLIC_SEED", "RAISED", "TOL", "VISIBLE_PASSED", "ReferenceCalled",
           "ReferenceUnavailable", "Task", "TaskFailed", "check_cases", "check_task", "close", "compare_gradient",
           "compare_tokens", "compare_values", "draw_cases", "forbidden", "ipython_to_python", "plain_compare", "reference_disabled",
           "resolve", "task", "tasks", "to_plain", "visible_tests_passed"]
