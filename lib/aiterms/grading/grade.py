"""Autograde a class: `make grade SUBMISSIONS=<folder>` (`python -m aiterms.grading <folder>`).

<folder>/<student>/<assignment>/<notebook>.ipynb (or <folder>/<student>.zip holding them)
    -> gradebook (gradebook.db, or the db_url in nbgrader_config.py), autograded/, feedback/ (HTML), grades.csv,
       and a summary table.

A task's points must not depend on anything the learner's code can change, so each submission is graded twice:

1. **the judge** (:mod:`aiterms.grading.judge`) runs the learner's cells in a sandbox on secret cases and compares
   the plain results with reference outputs computed here: its verdict is the points;
2. **the in-kernel run** prepares the notebook with nbgrader's own autograde steps (test and locked cells restored
   from the gradebook, outputs cleared) in this process, then executes it in a kernel inside the sandbox
   (:mod:`aiterms.grading.kernel`), for the visible tests and the feedback. Cells that the judge saw loop, crash
   or exhaust memory are replaced by a note first, so this run ends; a kernel that dies anyway still leaves the
   outputs of the cells before.

Both run in a grading server (:mod:`aiterms.grading.server`, one per thread) in the bubblewrap sandbox
(:mod:`aiterms.grading.sandbox`): each run is a fresh process with its own namespaces and limits, forked from one
that has already imported PyTorch and the kernel, so a submission costs about a second, not two Python starts.

Then, in this trusted process only: the judge's points go into the course gradebook, the feedback notebook gets
a line per task saying what the grader found, `nbgrader generate_feedback` writes the HTML (hidden tests removed)
and `nbgrader export` writes grades.csv. Submissions are graded in parallel (--jobs). Regrading is idempotent:
everything is recomputed from the submitted files, with the same secret cases (the salt in <course>/.grading-salt).
Late submissions (timestamp.txt after the assignment's due date) are flagged.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import nbformat
from tqdm import tqdm

import aiterms

from aiterms.grading import sandbox, similarity
from aiterms.grading.course import ROOT, tool_env
from aiterms.grading.judge import Judge

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MAX_NOTEBOOK_BYTES = 20 * 2**20
KERNEL_CELL_TIMEOUT = 15        # seconds per cell in the in-kernel run
BUDGET = 120.0                  # seconds per submission: the judge and the in-kernel run together
KERNEL_MIN_SECONDS = 10         # an in-kernel run needs at least this much of the budget left, else it is skipped


@dataclass
class Submission:
    student: str
    assignment: str
    notebook: Path                # inside <course>/submitted
    timestamp: datetime | None


# ------------------------------------------------------------------------------------------------ collecting
def _assignments(course: Path) -> set[str]:
    return {p.name for p in (course / "solutions").iterdir() if p.is_dir()}


def _timestamp(folder: Path) -> datetime | None:
    from nbgrader.utils import parse_utc
    f = folder / "timestamp.txt"
    try:
        return parse_utc(f.read_text().strip()) if f.is_file() else None
    except Exception:
        return None


def collect(inbox: Path, course: Path) -> tuple[list[Submission], list[str]]:
    """Gather submissions from folders and zip files into <course>/submitted. Returns (submissions, warnings)."""
    known, target, warnings = _assignments(course), course / "submitted", []
    same = inbox.resolve() == target.resolve()

    def place(student: str, assignment: str, name: str, data: bytes, stamp: bytes | None) -> None:
        folder = target / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        if stamp is not None:
            (folder / "timestamp.txt").write_bytes(stamp[:100])

    for entry in sorted(inbox.iterdir()) if inbox.is_dir() else []:
        student = entry.stem if entry.suffix == ".zip" else entry.name
        if not STUDENT_ID.match(student):
            warnings.append(f"skipped {entry.name}: not a valid student id")
            continue
        if entry.is_dir() and not same:
            for folder in sorted(p for p in entry.iterdir() if p.is_dir()):
                if folder.name not in known:
                    warnings.append(f"skipped {student}/{folder.name}: no such assignment")
                    continue
                for nb in sorted(folder.glob("*.ipynb")):
                    if nb.stat().st_size > MAX_NOTEBOOK_BYTES:
                        warnings.append(f"skipped {nb}: larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
                        continue
                    stamp = (folder / "timestamp.txt").read_bytes() if (folder / "timestamp.txt").is_file() else None
                    place(student, folder.name, nb.name, nb.read_bytes(), stamp)
        elif entry.suffix == ".zip":
            try:
                with zipfile.ZipFile(entry) as z:
                    placed = 0
                    for m in z.infolist():  # a member's name is never used as a path: only to find its assignment
                        parts = Path(m.filename).parts
                        if m.is_dir() or "__MACOSX" in parts or parts[-1].startswith("."):
                            continue
                        assignment = next((p for p in parts[:-1] if p in known), Path(m.filename).stem)
                        if not m.filename.endswith(".ipynb") or assignment not in known:
                            warnings.append(f"skipped {entry.name}:{m.filename[:100]}: not a notebook of a known "
                                            f"assignment (<assignment>/<assignment>.ipynb)")
                            continue
                        if m.file_size > MAX_NOTEBOOK_BYTES:
                            warnings.append(f"skipped {entry.name}:{m.filename[:100]}: too large")
                            continue
                        try:
                            data = z.read(m)
                        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as e:
                            warnings.append(f"skipped {entry.name}:{m.filename[:100]}: unreadable ({e})")
                            continue
                        place(student, assignment, f"{assignment}.ipynb", data, None)
                        placed += 1
                    if not placed:
                        warnings.append(f"skipped {entry.name}: no notebook of a known assignment in it")
            except (zipfile.BadZipFile, OSError) as e:
                warnings.append(f"skipped {entry.name}: not a readable zip file ({e})")
        elif not entry.is_dir():
            warnings.append(f"skipped {entry.name}: expected a folder <student>/<assignment>/ or a <student>.zip file")

    found = []
    for folder in sorted(p for p in target.glob("*/*") if p.is_dir()) if target.is_dir() else []:
        student, assignment = folder.parent.name, folder.name
        if assignment in known and STUDENT_ID.match(student):
            for nb in sorted(folder.glob("*.ipynb")):
                found.append(Submission(student, assignment, nb, _timestamp(folder)))
    return found, warnings


# ------------------------------------------------------------------------------------------------ the course
def grading_salt(course: Path) -> str:
    """The secret that seeds the judge's cases: created once per course, kept out of git and out of the sandbox."""
    path = course / ".grading-salt"
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def db_url(course: Path) -> str:
    """The gradebook URL from the course's nbgrader_config.py (a relative SQLite path is relative to the course)."""
    from traitlets.config.loader import PyFileConfigLoader
    url = "sqlite:///gradebook.db"
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        url = config.CourseDirectory.get("db_url", url)
    except Exception:
        pass
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{course / url[len('sqlite:///'):]}"
    return url


def shown_url(url: str) -> str:
    """The gradebook URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def check_gradebook(url: str) -> None:
    """Connect to a database gradebook once before grading, so that an unreachable one stops the run at once, with a
    message, before anything is graded or written (SQLite files are created by nbgrader when missing)."""
    if url.startswith("sqlite:"):
        return
    import sqlalchemy
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as e:
        why = str(e).strip().splitlines()
        raise SystemExit(f"the gradebook {shown_url(url)} cannot be reached ({type(e).__name__}: "
                         f"{why[0] if why else 'no message'}); check db_url in nbgrader_config.py, the server and "
                         f"the driver (psycopg for postgresql://). Nothing was graded or written.") from None


#: the PostgreSQL advisory lock that lets one grader at a time write a shared gradebook (any constant; "aiterms")
GRADEBOOK_LOCK = 0x6169_7465_726D_73


@contextmanager
def gradebook_writer(url: str) -> Iterator[None]:
    """Hold the shared gradebook's write lock: graders that share one PostgreSQL gradebook (several course folders,
    one db_url) would otherwise create its tables, or the same learner's row, at the same moment, and one of them
    fails on a unique constraint. A session-level advisory lock, released when the block ends (or the process dies).
    SQLite gradebooks belong to one course folder: nothing to lock."""
    import sqlalchemy
    if sqlalchemy.engine.make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": GRADEBOOK_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": GRADEBOOK_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def nbgrader(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=ERROR"], cwd=cwd, env=tool_env(),
                          capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"nbgrader {' '.join(args[:2])} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done


def register(assignment: str, course: Path, url: str, duedate: str | None) -> None:
    """Record the assignment's notebooks, cells and points in a gradebook (no learner code runs here)."""
    with tempfile.TemporaryDirectory() as release:
        nbgrader(course, "generate_assignment", assignment, "--force", "--create",
                 f"--CourseDirectory.release_directory={release}", f"--CourseDirectory.db_url={url}")
    if duedate:
        from nbgrader.api import Gradebook
        with Gradebook(url) as gb:
            gb.update_or_create_assignment(assignment, duedate=duedate)


# ------------------------------------------------------------------------------------------------ the in-kernel run
def sanitised(sub: Submission, bad_cells: dict[int, str], template_db: Path) -> nbformat.NotebookNode:
    """nbgrader's autograde sanitising, in the trusted process: outputs cleared, kernelspec reset, every test and
    locked cell restored from the gradebook (edited, deleted or stripped ones too), and the cells the judge saw hang
    or crash replaced by a short error."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                        OverwriteKernelspec)
    nb = nbformat.reads(sub.notebook.read_text(), as_version=4)  # (joins multi-line sources, unlike json.loads)
    for index, what in bad_cells.items():
        nb.cells[index].source = f"raise RuntimeError({f'not run at grading: when the grader ran this cell, it {what}'!r})"
    resources = {"nbgrader": {"db_url": f"sqlite:///{template_db}", "assignment": sub.assignment,
                              "notebook": sub.notebook.stem, "student": sub.student}}
    for step in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(), OverwriteCells(add_missing_cells=True),
                 CheckCellMetadata()):
        nb, resources = step.preprocess(nb, resources)
    for i, cell in enumerate(nb.cells):  # cells nbgrader restored come without an id
        cell.setdefault("id", f"restored-{i}")
    return nb


def run_in_kernel(sub: Submission, bad_cells: dict[int, str], server: sandbox.Server, template_db: Path,
                  seconds: float) -> tuple[dict | None, str]:
    """Run the sanitised submission in a kernel, in a run of the grading server (:mod:`aiterms.grading.kernel`),
    for at most ``seconds``. Returns (executed notebook or None, problem)."""
    try:
        nb = nbformat.writes(sanitised(sub, bad_cells, template_db))
    except Exception as e:
        return None, f"the notebook could not be prepared for running ({type(e).__name__})"
    env = sandbox.minimal_env(JUPYTER_RUNTIME_DIR="/tmp/.runtime", IPYTHONDIR="/tmp/.ipython",
                              JUPYTER_CONFIG_DIR="/tmp/.jupyter")
    outcome = server.run("notebook", {"notebook": nb, "cell_timeout": KERNEL_CELL_TIMEOUT, "seconds": seconds - 2},
                         timeout=seconds, env=env, max_output=4 * MAX_NOTEBOOK_BYTES)  # 2 s: start and stop
    if outcome.returncode != 0 or outcome.truncated or not outcome.stdout:
        return None, f"running the notebook {outcome.describe()}"
    try:
        nb = nbformat.reads(outcome.stdout.decode(), as_version=4)
        problem = str(nb.metadata.pop("grading_problem", ""))[:200]
        from nbgrader.preprocessors import LimitOutput
        nb, _ = LimitOutput().preprocess(nb, {})
        return json.loads(nbformat.writes(nb)), problem
    except Exception:
        return None, "the notebook's run left an unreadable result"


# Learners' outputs and Markdown are shown to the learner and to the instructor (formgrader): only text, tables,
# lists, links and images survive; scripts, event handlers, styles, frames and anything that loads a resource go.
SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em", "h1",
             "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "ol", "p", "pre", "s", "samp", "small",
             "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"]
SAFE_ATTRIBUTES = {"*": ["class", "title"], "a": ["href", "title"], "td": ["colspan", "rowspan"],
                   "th": ["colspan", "rowspan"]}


def safe(nb: dict, assignment: str) -> dict:
    """The notebook with every output and every learner Markdown cell sanitised by nbconvert's SanitizeHTML
    (bleach, a whitelist): HTML and Markdown outputs keep only :data:`SAFE_TAGS`; JavaScript, SVG and other rich
    outputs are dropped; text, tracebacks and PNG/JPEG images stay. Markdown cells whose text is exactly one of the
    released notebook's are the course's own and are kept as they are."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    sanitizer = SanitizeHTML(tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, strip=True, strip_comments=True)
    release = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    course_text = {c.source for c in release.cells if c.cell_type == "markdown"}
    node = nbformat.reads(json.dumps(nb), as_version=4)  # (joins list sources)
    for i, cell in enumerate(node.cells):
        if cell.get("cell_type") == "markdown" and cell.source in course_text:
            continue
        sanitizer.preprocess_cell(cell, {}, i)
    return json.loads(nbformat.writes(node))


def rebuilt(sub: Submission) -> dict:
    """When the in-kernel run failed: the release notebook with the learner's answer cells, not run."""
    release = json.loads((ROOT / "exercises" / sub.assignment / f"{sub.assignment}.ipynb").read_text())
    try:
        answers = {c.metadata.nbgrader.grade_id: c.source for c in
                   nbformat.reads(sub.notebook.read_text(), as_version=4).cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    except Exception:
        answers = {}
    for c in release["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers and c.get("metadata", {}).get("nbgrader", {}).get("solution"):
            c["source"] = answers[gid]
    return release


def annotate(nb: dict, verdict, problem: str) -> dict:
    """Add the grader's verdict to the feedback notebook: a summary at the top, one line under each test cell.

    Error tracebacks in test cells are cut to their last line, so no hidden-test line can ever show."""
    by_cell = {t.test_cell: t for t in verdict.tasks}
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if c.get("cell_type") != "code" or gid not in by_cell:
            continue
        outputs = []
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                o = {**o, "traceback": [f"{o.get('ename', 'Error')}: {o.get('evalue', '')}"]}
            outputs.append(o)
        t = by_cell[gid]
        outputs.append({"output_type": "stream", "name": "stdout",
                        "text": f"Grader: {t.points:g} / {t.max_points:g} points. {t.message}\n"})
        c["outputs"] = outputs
    lines = [f"**Graded by the course's grader: {verdict.score:g} / {sum(t.max_points for t in verdict.tasks):g} "
             f"points.** Points come from hidden tests run on fresh cases outside your notebook; the outputs below "
             f"come from running your notebook and show the visible tests."]
    for t in verdict.tasks:
        lines.append(f"- `{t.function}`: {t.points:g} / {t.max_points:g}: {t.message}")
    if problem:
        lines.append(f"\nYour notebook could not be run to the end at grading ({problem}); it is shown as submitted.")
    for what in verdict.bad_cells.values():
        lines.append(f"\nA cell was not run in the feedback notebook: when the grader ran it, it {what}.")
    nb["cells"].insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    return nb


# ------------------------------------------------------------------------------------------------ the whole class
def grade_one(sub: Submission, judges: dict, servers: "queue.Queue[sandbox.Server]", templates: dict,
              budget: float = BUDGET, run_notebook: bool = True):
    """Judge one submission and (unless ``run_notebook`` is false) run it for feedback, within ``budget`` seconds
    in all, with a grading server of ``servers`` (given back when done)."""
    server = servers.get()
    try:
        return _grade_one(sub, judges, server, templates, budget, run_notebook)
    finally:
        servers.put(server)


def _grade_one(sub: Submission, judges: dict, server: sandbox.Server, templates: dict, budget: float,
               run_notebook: bool):
    start = time.monotonic()
    verdict = judges[sub.assignment].judge(sub.notebook, server, budget=budget)
    left = budget - (time.monotonic() - start)
    if verdict.problem:
        nb, problem = None, verdict.problem
    elif not run_notebook:
        nb, problem = None, "graded for points only (--points-only): the notebook was not run for feedback"
    elif left < KERNEL_MIN_SECONDS:
        nb, problem = None, f"the time budget ({budget:g} s) was used up before it could be run for feedback"
    else:
        nb, problem = run_in_kernel(sub, verdict.bad_cells, server, templates[sub.assignment], left)
    if nb is None:
        nb = rebuilt(sub)
        nb["cells"] = [{**c, "outputs": []} if c.get("cell_type") == "code" else c for c in nb["cells"]]
    verdict.seconds, verdict.run_problem = time.monotonic() - start, problem
    return sub, verdict, annotate(safe(nb, sub.assignment), verdict, problem)


SUBMISSION_HASH = "aiterms_submission_sha256"  # in the autograded notebook's metadata: what was graded


def record(url: str, course: Path, results: list) -> None:
    """Write the judge's points into the course gradebook and the feedback notebooks into autograded/.

    A score or comment set by hand (in formgrader, or with ``make adjust``) is kept if the submitted notebook is
    the one graded before (same SHA-256, kept in the autograded notebook's metadata), and dropped if it changed;
    ``verdict.manual`` lists the kept ones and the feedback notebook says so under the task's test cell."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)  # raised inside nbgrader's add_submission
    with Gradebook(url) as gb:
        for sub, verdict, nb in results:
            out = course / "autograded" / sub.student / sub.assignment / sub.notebook.name
            digest = hashlib.sha256(sub.notebook.read_bytes()).hexdigest()
            try:
                unchanged = json.loads(out.read_text())["metadata"].get(SUBMISSION_HASH) == digest
            except (OSError, ValueError, KeyError, AttributeError):
                unchanged = False
            gb.update_or_create_student(sub.student)
            try:
                submission = gb.find_submission(sub.assignment, sub.student)
            except MissingEntry:
                submission = gb.add_submission(sub.assignment, sub.student)
            submission.timestamp = sub.timestamp
            points = {t.test_cell: t.points for t in verdict.tasks}
            for notebook in submission.notebooks:
                if notebook.name != sub.notebook.stem:
                    continue
                for grade in notebook.grades:
                    written = grade.name not in points       # a written answer: only the instructor grades it
                    grade.auto_score = None if written else points[grade.name]
                    if grade.manual_score is not None:
                        if not unchanged:
                            grade.manual_score, verdict.manual_dropped = None, True
                        elif not written:
                            verdict.manual[grade.name] = grade.manual_score
                    if written:
                        verdict.written[grade.name] = grade.manual_score
                    grade.needs_manual_grade = written and grade.manual_score is None
                for comment in notebook.comments:
                    if comment.manual_comment is not None and not unchanged:
                        comment.manual_comment, verdict.manual_dropped = None, True
            gb.db.commit()
            nb["metadata"][SUBMISSION_HASH] = digest
            _note_manual(nb, verdict)
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nbformat.from_dict(nb), out)


def _note_manual(nb: dict, verdict) -> None:
    """Under each test cell whose score the instructor set by hand: a line saying so."""
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in verdict.manual:
            task = next(t for t in verdict.tasks if t.test_cell == gid)
            c.setdefault("outputs", []).append(
                {"output_type": "stream", "name": "stdout",
                 "text": f"Instructor: {verdict.manual[gid]:g} / {task.max_points:g} points (set by hand).\n"})


def _manual_text(verdict) -> str:
    by_cell = {t.test_cell: t.function for t in verdict.tasks}
    kept = "; ".join(f"{by_cell.get(cell, cell)}={score:g}" for cell, score in verdict.manual.items())
    return kept or ("dropped: the submission changed" if verdict.manual_dropped else "")


def write_log(path: Path, results: list, budget: float, skipped: list[str] = ()) -> None:
    """One row per graded notebook (its score in the gradebook, the judge's, the scores set by hand, how long
    grading it took, whether it used up its budget, and what went wrong if anything), and one per entry of the inbox
    that was skipped (with the reason)."""
    import csv
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "assignment", "notebook", "score", "max_score", "judge_score", "manual", "seconds",
                      "budget_used_up", "note"])
        for warning in skipped:
            out.writerow(["", "", "", "", "", "", "", "", "", warning])
        for sub, verdict, _ in results:
            messages = [t.message for t in verdict.tasks] + [verdict.run_problem]
            used_up = any("time budget" in m for m in messages)
            out.writerow([sub.student, sub.assignment, sub.notebook.name, f"{verdict.final_score:g}",
                          f"{sum(t.max_points for t in verdict.tasks):g}", f"{verdict.score:g}",
                          _manual_text(verdict), f"{verdict.seconds:.1f}", "yes" if used_up else "no",
                          verdict.problem or verdict.run_problem])


def summary(results: list, url: str) -> str:
    """Per assignment: the mean, each task's spread of scores (as in the gradebook: a score set by hand counts),
    the scores set by hand, and the late submissions."""
    from nbgrader.api import Gradebook
    lines = []
    by_assignment: dict[str, list] = {}
    for r in results:
        by_assignment.setdefault(r[0].assignment, []).append(r)
    with Gradebook(url) as gb:
        for assignment, rows in by_assignment.items():
            maximum = sum(t.max_points for t in rows[0][1].tasks)
            mean = sum(v.final_score for _, v, _ in rows) / len(rows)
            lines += [f"\n{assignment}: {len(rows)} submission(s), mean {mean:.2f} / {maximum:g}",
                      f"{'task':<16}{'max':>5}{'mean':>7}{'full':>6}{'partial':>9}{'zero':>6}{'errored':>9}"
                      f"{'by hand':>9}"]
            for i, t0 in enumerate(rows[0][1].tasks):
                scores = [v.manual.get(t0.test_cell, v.tasks[i].points) for _, v, _ in rows]
                full = sum(s == t0.max_points for s in scores)
                zero = sum(s == 0 for s in scores)
                errored = sum(v.tasks[i].errored for _, v, _ in rows)
                by_hand = sum(t0.test_cell in v.manual for _, v, _ in rows)
                lines.append(f"{t0.function:<16}{t0.max_points:>5g}{sum(scores) / len(scores):>7.2f}{full:>6}"
                             f"{len(scores) - full - zero:>9}{zero:>6}{errored:>9}{by_hand:>9}")
            manual = [f"{sub.student} ({_manual_text(v)})" for sub, v, _ in rows if v.manual or v.manual_dropped]
            lines.append(f"set by hand: {', '.join(manual) if manual else 'none'}")
            written = [score for _, v, _ in rows for score in v.written.values()]
            if written:
                lines.append(f"written answers (graded by hand in formgrader, not in the points above): "
                             f"{sum(s is not None for s in written)} of {len(written)} graded")
            late = []
            for sub, _, _ in rows:
                s = gb.find_submission(assignment, sub.student)
                if s.total_seconds_late > 0:
                    late.append(f"{sub.student} ({s.total_seconds_late / 3600:.1f} h)")
            lines.append(f"late: {', '.join(late) if late else 'none'}")
    return "\n".join(lines)


def grade(inbox: Path, course: Path = ROOT, jobs: int = 2, duedate: str | None = None,
          job_timeout: float = 10.0, budget: float = BUDGET,
          run_notebooks: bool | Callable[[Submission], bool] = True,
          similarity_threshold: float = similarity.THRESHOLD) -> str:
    """Grade every submission in ``inbox`` (and what is already in <course>/submitted); returns the summary table.
    ``run_notebooks``: run each notebook in a kernel for its feedback (true), or not (false: points only,
    faster), or a predicate saying which submissions to run. ``similarity_threshold``: the score from which the
    similarity report (:mod:`aiterms.grading.similarity`) flags a pair."""

    course = course.resolve()
    why = sandbox.missing()
    if why:
        raise SystemExit(f"grading runs learners' code in a bubblewrap sandbox, which cannot run here: {why}")
    url = db_url(course)
    check_gradebook(url)
    subs, warnings = collect(inbox, course)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not subs:
        raise SystemExit(f"no submissions found under {inbox} (expected <student>/<assignment>/*.ipynb or "
                         f"<student>.zip)")
    salt = grading_salt(course)
    scratch = Path(tempfile.mkdtemp(prefix="aiterms-grade-"))
    servers: queue.Queue[sandbox.Server] = queue.Queue()
    started: list[sandbox.Server] = []
    try:
        assignments = sorted({s.assignment for s in subs})
        templates = {a: scratch / f"template-{a}.db" for a in assignments}
        # the course gradebook, and a private copy for the kernels; one at a time: two nbgrader runs in the same
        # course folder at once can fail
        for a in assignments:
            with gradebook_writer(url):
                register(a, course, url, duedate)
            if url.startswith("sqlite:///"):  # the kernels' copy: the course gradebook as it is now
                shutil.copy(url[len("sqlite:///"):], templates[a])
            else:
                register(a, course, f"sqlite:///{templates[a]}", None)
        judges = {a: Judge(a, salt, scratch, job_timeout=job_timeout) for a in assignments}
        # one grading server per thread; its sandbox shows the Python environment, the library, and the stripped
        # library of each assignment (mounted over the library in judge runs only)
        shown = [Path(sys.prefix), Path(sys.base_prefix), Path(aiterms.__file__).resolve().parent,
                 *[(j.library, j.library_inside) for j in judges.values()]]
        started += [sandbox.Server(shown) for _ in range(jobs)]
        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(sandbox.Server.start, started))
        except RuntimeError as e:
            raise SystemExit(f"grading runs learners' code in a grading server in the bubblewrap sandbox: {e}")
        for server in started:
            servers.put(server)
        results = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(grade_one, s, judges, servers, templates, budget,
                                   run_notebooks(s) if callable(run_notebooks) else run_notebooks) for s in subs]
            for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="submission"):
                results.append(future.result())
        results.sort(key=lambda r: (r[0].assignment, r[0].student))
        with gradebook_writer(url):
            record(url, course, results)
        for assignment in judges:
            nbgrader(course, "generate_feedback", assignment, "--force")
        nbgrader(course, "export", "--to", str(course / "grades.csv"))
        write_log(course / "grading-log.csv", results, budget, warnings)
        table = summary(results, url)
        notebooks: dict[str, dict[str, list[Path]]] = {}
        for sub, _, _ in results:
            notebooks.setdefault(sub.assignment, {}).setdefault(sub.student, []).append(sub.notebook)
        table += "\n\n" + "\n".join(similarity.report(course, notebooks, similarity_threshold))
    finally:
        for server in started:
            server.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print(table)
    print(f"\ngradebook: {shown_url(url)}\nfeedback:  {course / 'feedback'}\ngrades:    {course / 'grades.csv'}\n"
          f"log:       {course / 'grading-log.csv'} (seconds per submission, budget {budget:g} s)\n"
          f"similar:   {course / 'similarity.csv'} and {course / 'similarity'}/<assignment>.html")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of <student>/<assignment>/*.ipynb or <student>.zip")
    parser.add_argument("--course", type=Path, default=ROOT,
                        help="course directory holding nbgrader_config.py and solutions/ (default: the repo)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="submissions graded at once")
    parser.add_argument("--duedate", help="set the assignment's due date, e.g. '2026-12-01 17:00:00 UTC'")
    parser.add_argument("--job-timeout", type=float, default=10.0,
                        help="seconds the judge gives one task (its cells and all its cases)")
    parser.add_argument("--budget", type=float, default=BUDGET,
                        help=f"seconds one submission may use in all, judge and in-kernel run (default {BUDGET:g})")
    parser.add_argument("--points-only", action="store_true",
                        help="do not run the notebooks for feedback (the points are the same; faster)")
    parser.add_argument("--similarity-threshold", type=float, default=similarity.THRESHOLD,
                        help="flag two learners' code (or one's and the library's) from this similarity score, 0-1 "
                             f"(default {similarity.THRESHOLD:g}); points never change")
    args = parser.parse_args()
    grade(args.submissions, args.course, jobs=args.jobs, duedate=args.duedate, job_timeout=args.job_timeout,
          budget=args.budget, run_notebooks=not args.points_only, similarity_threshold=args.similarity_threshold)


if __name__ == "__main__":
    main()
