"""The judge: a task's points computed outside the learner's kernel, so nothing the learner's code patches counts.

For one submitted notebook:

1. its learner cells are read as text (never executed here): every code cell that is not one of the source's
   locked or test cells, whatever its metadata says;
2. for each task, the cells it needs are found by name (the cell that defines the function, then the cells defining
   the names those use), so a cell that kills its process only costs the tasks that depend on it;
3. the task's cases are drawn from the course's secret salt, and the reference outputs are computed here, in the
   trusted process;
4. the learner's cells run in ``aiterms.grading.worker``, in a fresh run of a grading server
   (``aiterms.grading.server``) inside the sandbox (``aiterms.grading.sandbox``): no instructor files, a copy of
   ``aiterms`` whose graded reference functions raise instead of answering, time and memory limits, one forked
   process per job; it sends back plain data only;
5. the results are compared here. A task earns its points if every case matches, else none.
"""
from __future__ import annotations

import ast
import compileall
import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import aiterms
from aiterms import grading
from aiterms.grading import sandbox
from aiterms.grading.course import ROOT

MAX_NOTEBOOK_BYTES = 20 * 2**20
REFERENCE_UNAVAILABLE = "ReferenceUnavailable"


@dataclass
class TaskVerdict:
    function: str
    test_cell: str
    points: float
    max_points: float
    message: str
    errored: bool = False   # the code failed to run (raised, timed out, crashed), as opposed to a wrong answer


@dataclass
class Verdict:
    tasks: list[TaskVerdict]
    bad_cells: dict[int, str] = field(default_factory=dict)  # notebook cell index -> what it did when run alone
    problem: str = ""                                          # the notebook as a whole (unreadable, ...)
    seconds: float = 0.0                                       # grading time of the whole submission
    run_problem: str = ""                                      # why the in-kernel run did not reach the end
    manual: dict[str, float] = field(default_factory=dict)     # test cell -> score set by hand, kept (grade.record)
    manual_dropped: bool = False                               # scores set by hand were dropped: the notebook changed
    written: dict[str, float | None] = field(default_factory=dict)  # written answer cell -> score by hand (None: not
                                                                    # graded yet); never part of the judge's points

    @property
    def score(self) -> float:
        """The judge's points."""
        return sum(t.points for t in self.tasks)

    @property
    def final_score(self) -> float:
        """The points in the gradebook: a score set by hand replaces the judge's for its task."""
        return sum(self.manual.get(t.test_cell, t.points) for t in self.tasks)


# CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread: two threads in ast.parse at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905; seen in our CI).
# aiterms.grading.grade judges submissions in threads, so every parse here takes this lock.
_AST_LOCK = threading.Lock()


def _parse(source: str) -> ast.Module:
    with _AST_LOCK:
        return ast.parse(source)


# ------------------------------------------------------------------------------------------------ the stripped library
def strip_references(destination: Path, forbidden: list[str]) -> Path:
    """Copy ``aiterms`` to ``destination``/aiterms with each forbidden function's body replaced by a raise."""
    source = Path(aiterms.__file__).resolve().parent
    target = destination / "aiterms"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    by_module: dict[str, set[str]] = {}
    for name in forbidden:
        module, _, function = name.partition(":")
        by_module.setdefault(module, set()).add(function)
    for module, functions in by_module.items():
        path = target.joinpath(*module.split(".")[1:]).with_suffix(".py")
        tree = _parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in functions:
                node.body = _parse(
                    f"raise __import__('aiterms.grading').grading.ReferenceUnavailable("
                    f"'{module}.{node.name} is not available at grading: implement it yourself')").body
        path.write_text(ast.unparse(tree) + "\n")
    compileall.compile_dir(target, quiet=2)  # the sandbox is read-only: its Python cannot write bytecode there
    return target


# ------------------------------------------------------------------------------------------------ reading the notebook
def _grade_ids(nb: dict) -> dict[str, dict]:
    return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def setup_cells(source_nb: dict) -> list[str]:
    """The source's locked code cells that are neither answers nor tests (imports, the toy model, ...)."""
    out = []
    for c in source_nb["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if c["cell_type"] == "code" and meta.get("locked") and not meta.get("grade") and not meta.get("solution"):
            out.append(_source(c))
    return out


def learner_cells(submission: dict, source_nb: dict, release_nb: dict) -> list[tuple[int, str]]:
    """(index, source) of every code cell the learner wrote: not a locked or test cell of the source or release
    (recognised by its grade_id, or by its text when the metadata was stripped)."""
    fixed_ids = {gid for gid, c in _grade_ids(source_nb).items()
                 if not c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    fixed_sources = {_source(c).strip() for nb in (source_nb, release_nb) for c in nb["cells"]
                     if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                     in fixed_ids}
    out = []
    for i, c in enumerate(submission.get("cells", [])):
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        meta = c.get("metadata", {}) if isinstance(c.get("metadata"), dict) else {}
        gid = meta.get("nbgrader", {}).get("grade_id") if isinstance(meta.get("nbgrader"), dict) else None
        if gid in fixed_ids or _source(c).strip() in fixed_sources:
            continue
        out.append((i, _source(c)))
    return out


def _names(src: str) -> tuple[set[str], set[str]] | None:
    """(names a cell defines at top level, names it uses anywhere), or None if it does not parse."""
    try:
        tree = _parse(grading.ipython_to_python(src))
    except SyntaxError:
        return None
    defines: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:  # module level, including inside if/try/with/for blocks
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defines.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defines.update((a.asname or a.name).split(".")[0] for a in node.names)
            else:
                for name, value in ast.iter_fields(node):
                    values = value if isinstance(value, list) else [value]
                    if name in ("body", "orelse", "finalbody"):
                        visit([v for v in values if isinstance(v, ast.stmt)])
                    elif name == "handlers":
                        visit([stmt for h in values for stmt in h.body])
                    else:
                        defines.update(n.id for v in values if isinstance(v, ast.AST) for n in ast.walk(v)
                                       if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))

    visit(tree.body)
    uses = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return defines, uses


def needed_cells(cells: list[tuple[int, str]], function: str) -> list[int] | None:
    """Positions (in ``cells``) of the cells that ``function`` needs, in notebook order; None if none defines it."""
    parsed = [_names(src) for _, src in cells]

    def definer(name: str) -> int | None:
        found = [i for i, p in enumerate(parsed) if p is not None and name in p[0]]
        return found[-1] if found else None  # the last definition wins, as after "Run All"

    start = definer(function)
    if start is None:
        return None
    needed, todo = {start}, [start]
    while todo:
        for name in parsed[todo.pop()][1]:
            j = definer(name)
            if j is not None and j not in needed:
                needed.add(j)
                todo.append(j)
    return sorted(needed)


def needed_definer(cells: list[tuple[int, str]], function: str) -> int | None:
    """Position (in ``cells``) of the last cell that defines ``function``."""
    found = [i for i, (_, src) in enumerate(cells) if (p := _names(src)) is not None and function in p[0]]
    return found[-1] if found else None


# ------------------------------------------------------------------------------------------------ judging
class Judge:
    """Judges the submissions of one assignment. Create once per grading run: cases and references are shared."""

    def __init__(self, assignment: str, salt: str, scratch: Path, job_timeout: float = 10.0, mem_mb: int = 2048):
        self.assignment = assignment
        self.source_nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
        self.release_nb = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
        self.setup = setup_cells(self.source_nb)
        self.tasks = grading.tasks(assignment)
        self.cases = {t.function: grading.draw_cases(t, assignment, salt) for t in self.tasks}
        self.expected = {t.function: [grading.to_plain(t.call(grading.resolve(t.reference), c))
                                      for c in self.cases[t.function]] for t in self.tasks}
        self.library = strip_references(scratch / f"judge-lib-{assignment}", grading.forbidden(assignment))
        self.library_inside = Path("/grading") / assignment / "aiterms"  # where a grading server shows it
        self.scratch, self.job_timeout, self.mem_mb = scratch, job_timeout, mem_mb

    def judge(self, notebook: Path, server: sandbox.Server, budget: float = 120.0) -> Verdict:
        """Points for each task of ``notebook``; the learner's code runs in a run of ``server`` (a grading server
        whose sandbox shows :attr:`library` at :attr:`library_inside`) and gets at most ``budget`` seconds in
        all."""

        def zero(message: str) -> Verdict:
            return Verdict([TaskVerdict(t.function, t.test_cell, 0, t.points, message, True) for t in self.tasks],
                           problem=message)

        try:
            if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
                return zero("the notebook is too large to grade")
            submission = json.loads(notebook.read_text())
            assert isinstance(submission.get("cells"), list)
        except Exception:
            return zero("the notebook could not be read (is it a valid .ipynb file?)")

        cells = learner_cells(submission, self.source_nb, self.release_nb)
        jobs, job_of = [], {}
        for t in self.tasks:  # only the cells a task needs run: a looping cell no task needs costs nothing here
            needed = needed_cells(cells, t.function)
            if needed is not None:
                job_of[t.function] = len(jobs)
                jobs.append({"function": t.function, "cells": needed, "definer": needed_definer(cells, t.function),
                             "cases": self.cases[t.function]})
        budget = max(budget, 2.0)
        request = {"assignment": self.assignment, "setup": self.setup, "cells": [src for _, src in cells],
                   "timeout": self.job_timeout, "budget": budget - 2, "jobs": jobs}  # 2 s: starting, replying
        outcome = server.run("judge", {"judge": request}, timeout=budget, mem_mb=self.mem_mb,
                             library=(self.library_inside, Path(aiterms.__file__).resolve().parent))
        try:
            replies = json.loads(outcome.stdout)
            assert isinstance(replies, list) and len(replies) == len(jobs)
        except Exception:
            return zero(f"the grader's process {outcome.describe()} (it runs your cells)")

        verdict = Verdict([])
        for t in self.tasks:
            reply = replies[job_of[t.function]] if t.function in job_of else None
            verdict.tasks.append(self._task_verdict(t, reply, budget))
            if reply is not None and reply["status"] in ("timeout", "crashed", "budget") \
                    and reply.get("culprit") is not None:
                index = cells[reply["culprit"]][0]
                what = f"{t.function} {reply['detail']}" if reply.get("in_function") else reply["detail"]
                verdict.bad_cells.setdefault(index, what)
        return verdict

    def _task_verdict(self, t: grading.Task, reply: dict | None, budget: float) -> TaskVerdict:
        def fail(message: str, errored: bool = False) -> TaskVerdict:
            return TaskVerdict(t.function, t.test_cell, 0, t.points, message, errored)

        if reply is None:
            return fail(f"no function named {t.function} was found in your cells", errored=True)
        if reply.get("status") == "budget":
            return fail(f"{t.function}: not graded: your submission used up its time budget ({budget:g} s for all "
                        f"its tasks) before this task was done (slow or looping cells?)", errored=True)
        if reply.get("status") != "ok":
            return fail(f"{t.function}: {reply.get('detail', 'failed')}", errored=True)
        results, cases = reply.get("results", []), self.cases[t.function]
        if len(results) != len(cases):
            return fail(f"{t.function}: the grader got no answer for some cases")
        for i, (result, expected, case) in enumerate(zip(results, self.expected[t.function], cases), start=1):
            where = f"{t.function}: hidden case {i} of {len(cases)}"
            if t.describe:
                where += f" ({t.describe(case)})"
            if not isinstance(result, dict) or "ok" not in result:
                error = str(result.get("error", "no result")) if isinstance(result, dict) else "no result"
                if error.startswith(REFERENCE_UNAVAILABLE):
                    return fail(f"{t.function} called the aiterms reference implementation, which is not "
                                f"available at grading: a task must do the work itself")
                return fail(f"{where}: raised {error}", errored=True)
            problem = t.compare(result["ok"], expected, case)
            if problem:
                return fail(f"{where}: {problem}")
        return TaskVerdict(t.function, t.test_cell, t.points, t.points, f"all {len(cases)} hidden cases passed")
