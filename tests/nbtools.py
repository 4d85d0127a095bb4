"""Helpers for tests that build, release and grade exercise notebooks."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> source of the autograded answer cells (solution markers removed)."""
    return {c.metadata.nbgrader["grade_id"]: MARKERS.sub("", c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def fill(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of the release notebook with the given answer cells' sources replaced."""
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def make_course(tmp: Path) -> Path:
    """A throwaway course directory: the repo's nbgrader_config.py and (a link to) its solutions/."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "solutions").symlink_to(ROOT / "solutions")
    (course / ".grading-salt").write_text("tests")  # fixed secret cases: tests are deterministic
    return course


WRITTEN = "written_answer"   # the grade id of every exercise's written answer (graded by hand, not by the judge)


def scores(course: Path, assignment: str, written: bool = False) -> dict[str, dict[str, float]]:
    """student -> {grade cell id: score} from the course's gradebook (the written answer only if ``written``)."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student.id] = {g.name: g.score for nb in sub.notebooks for g in nb.grades
                                   if written or g.name != WRITTEN}
    return out
