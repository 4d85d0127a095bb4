"""The nbgrader round trip of every exercise (every assignment registered in aiterms.grading.ASSIGNMENTS):
the release is in sync and clean, the solution gets full marks, the untouched release zero, every wrong answer in
tests/wrong/ loses its task, and the feedback shows no hidden test.

To keep the class small, the wrong answers travel together: submission k of an assignment holds the k-th wrong answer
of every task that has one (the solution elsewhere), so a task's points are checked against its own wrong answer, and
tasks without one in that submission must keep theirs. (tests/test_checks.py also runs each wrong answer alone.)"""
from __future__ import annotations

import csv
import importlib
import json
from html import unescape

import nbformat
import pytest

from aiterms import grading
from nbtools import ROOT, answer_cells, fill, make_course, read, scores

ASSIGNMENTS = sorted(grading.ASSIGNMENTS)


def source(a: str):
    return ROOT / "solutions" / a / f"{a}.ipynb"


def release_path(a: str):
    return ROOT / "exercises" / a / f"{a}.ipynb"


def points(a: str) -> dict[str, float]:
    return {t.test_cell: t.points for t in grading.tasks(a)}


def grade_cell_of(a: str, function: str) -> str:
    return grading.task(a, function).test_cell


def wrong_answers(a: str) -> dict[str, tuple[str, str]]:
    """student id -> (task's function, wrong source), from tests/wrong/ex<NN_topic>.py."""
    module = importlib.import_module(f"wrong.ex{a.replace('-', '_')}")
    return {f"wrong-{name}": answer for name, answer in module.wrong_answers(answer_cells(read(source(a)))).items()}


WRONG_CASES = [(a, student) for a in ASSIGNMENTS for student in sorted(wrong_answers(a))]


def wrong_submissions(a: str) -> dict[str, dict[str, str]]:
    """submission name -> {function: wrong source}: the k-th wrong answer of every task, together."""
    by_function: dict[str, list[str]] = {}
    for student in sorted(wrong_answers(a)):
        by_function.setdefault(wrong_answers(a)[student][0], []).append(student)
    rounds = max(len(v) for v in by_function.values())
    return {f"wrong-round{k}": {f: students[k] for f, students in by_function.items() if k < len(students)}
            for k in range(rounds)}


def submission_of(a: str, student: str) -> tuple[str, dict[str, str]]:
    """(the submission holding this wrong answer, {function: wrong answer's student name} of that submission)."""
    return next((name, held) for name, held in wrong_submissions(a).items() if student in held.values())


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_release_is_in_sync(a, tmp_path):
    """The committed exercises/ equal a fresh `nbgrader generate_assignment` of solutions/."""
    from release import release
    release([a], tmp_path)
    fresh, committed = read(tmp_path / a / f"{a}.ipynb"), read(release_path(a))
    assert json.dumps(fresh, sort_keys=True) == json.dumps(committed, sort_keys=True), (
        "exercises/ is out of date: run `make release` and commit the result")


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(a):
    text = release_path(a).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "check_task"):
        assert marker not in text
    stubs = [c for c in read(release_path(a)).cells if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert len(stubs) == len(answer_cells(read(source(a))))


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_at_least_four_wrong_implementations_per_task(a):
    counts: dict[str, int] = {}
    for function, _ in wrong_answers(a).values():
        counts[function] = counts.get(function, 0) + 1
    assert set(counts) == {t.function for t in grading.tasks(a)} and min(counts.values()) >= 4, counts


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """One class with, per assignment, the solution, the untouched release and every wrong implementation,
    graded once with aiterms.grading.grade. Student ids are "<assignment>--<who>"."""
    from aiterms.grading.grade import grade
    tmp = tmp_path_factory.mktemp("class")
    course = make_course(tmp)
    students = {}
    for a in ASSIGNMENTS:
        release, solution = read(release_path(a)), answer_cells(read(source(a)))
        students[(a, "solution")] = fill(release, solution)
        students[(a, "unmodified")] = release
        wrong = wrong_answers(a)
        for name, held in wrong_submissions(a).items():
            students[(a, name)] = fill(release, {**solution, **{f: wrong[w][1] for f, w in held.items()}})
    for (a, who), nb in students.items():
        path = tmp / "inbox" / f"{a}--{who}" / a / f"{a}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    # the notebooks of the wrong submissions are not run for feedback (points only): their points are what counts
    table = grade(tmp / "inbox", course, run_notebooks=lambda sub: sub.student.endswith(("--solution", "--unmodified")))
    got = {(a, student.split("--", 1)[1]): s for a in ASSIGNMENTS for student, s in scores(course, a).items()}
    return course, got, table, students


pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_solution_gets_full_marks(graded_class, a):
    assert graded_class[1][(a, "solution")] == points(a)


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_unmodified_release_gets_zero(graded_class, a):
    assert graded_class[1][(a, "unmodified")] == {k: 0 for k in points(a)}


@pytest.mark.parametrize("a,student", WRONG_CASES)
def test_wrong_implementation_loses_its_task(graded_class, a, student):
    name, held = submission_of(a, student)
    got = graded_class[1][(a, name)]
    function = wrong_answers(a)[student][0]
    cell = grade_cell_of(a, function)
    assert got[cell] < points(a)[cell], f"{student} was not caught by the hidden tests of {cell}"
    # tasks with no wrong answer in this submission, that use no function that has one, keep their points
    solution = answer_cells(read(source(a)))
    for t in grading.tasks(a):
        uses = any(f"{f}(" in solution[t.function] for f in held if f != t.function)
        if t.function not in held and not uses:
            assert got[t.test_cell] == t.points, f"{name} (with {student}) lost points on {t.test_cell}"


def test_feedback_and_grades_csv(graded_class):
    course, got, table, students = graded_class
    for (a, who) in students:
        html = unescape((course / "feedback" / f"{a}--{who}" / a / f"{a}.html").read_text())
        for secret in ("BEGIN HIDDEN TESTS", f'check_task("{a}"'):
            assert secret not in html, f"{a}--{who}'s feedback shows hidden test source ({secret!r})"
        if who == "solution":
            assert "visible tests passed - more tests run at grading" in html
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert {(r["assignment"], r["student_id"]) for r in rows} >= {(a, f"{a}--{w}") for a, w in students}
    score = {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows}
    for a in ASSIGNMENTS:
        assert score[(a, f"{a}--solution")] == sum(points(a).values()) and score[(a, f"{a}--unmodified")] == 0
    assert "errored" in table and "late: none" in table
