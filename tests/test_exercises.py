"""The nbgrader round trip of every exercise: release in sync, solution full marks, release zero, wrong answers caught,
feedback without hidden tests."""
from __future__ import annotations

import csv
import importlib
import json
from html import unescape

import nbformat
import pytest

from nbtools import ROOT, answer_cells, fill, make_course, read, scores

ASSIGNMENT = "14-beam-search"
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
POINTS = {"test_greedy_decode": 2, "test_beam_step": 3, "test_beam_search": 5}
TEST_OF = {"greedy_decode": "test_greedy_decode", "beam_step": "test_beam_step", "beam_search": "test_beam_search"}
wrong = importlib.import_module("wrong.ex14_beam_search")


def wrong_answers() -> dict[str, tuple[str, str]]:
    """student id -> (task's answer cell, wrong source)."""
    out = {f"wrong-{task}-{name}": (task, src) for task, variants in wrong.WRONG.items() for name, src in variants.items()}
    solution = answer_cells(read(SOURCE))["beam_search"]
    for name, edits in wrong.BEAM_SEARCH_EDITS.items():
        src = solution if name != "calls_reference" else read(SOURCE).cells[
            [c.metadata.get("nbgrader", {}).get("grade_id") for c in read(SOURCE).cells].index("beam_search")].source
        for old, new in edits:
            assert old in src, f"edit {name!r} no longer applies to the solution: {old!r}"
            src = src.replace(old, new)
        out[f"wrong-beam_search-{name}"] = ("beam_search", src)
    return out


def test_release_is_in_sync(tmp_path):
    """The committed exercises/ equal a fresh `nbgrader generate_assignment` of solutions/."""
    from release import release
    release([ASSIGNMENT], tmp_path)
    fresh, committed = read(tmp_path / ASSIGNMENT / RELEASE.name), read(RELEASE)
    assert json.dumps(fresh, sort_keys=True) == json.dumps(committed, sort_keys=True), (
        "exercises/ is out of date: run `make release` and commit the result")


def test_release_has_no_solutions_or_hidden_tests():
    text = RELEASE.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "check_task"):
        assert marker not in text
    stubs = [c for c in read(RELEASE).cells if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert len(stubs) == len(answer_cells(read(SOURCE)))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """Grade a class: the solution, the untouched release and every wrong implementation, with tools/grade.py."""
    from grade import grade
    tmp = tmp_path_factory.mktemp("class")
    course = make_course(tmp)
    release, solution = read(RELEASE), answer_cells(read(SOURCE))
    class_ = {"solution": fill(release, solution), "unmodified": release}
    for student, (task, src) in wrong_answers().items():
        class_[student] = fill(release, {**solution, task: src})
    for student, nb in class_.items():
        path = tmp / "inbox" / student / ASSIGNMENT / RELEASE.name
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    table = grade(tmp / "inbox", course)
    return course, scores(course, ASSIGNMENT), table, class_


pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading-14")]


def test_solution_gets_full_marks(graded_class):
    _, got, _, _ = graded_class
    assert got["solution"] == POINTS


def test_unmodified_release_gets_zero(graded_class):
    _, got, _, _ = graded_class
    assert got["unmodified"] == {k: 0 for k in POINTS}


@pytest.mark.parametrize("student", sorted(wrong_answers()))
def test_wrong_implementation_loses_its_task(graded_class, student):
    _, got, _, _ = graded_class
    task = TEST_OF[wrong_answers()[student][0]]
    assert got[student][task] < POINTS[task], f"{student} was not caught by the hidden tests of {task}"
    # the other tasks keep their points (a wrong task 2 may sink task 3, which uses it)
    for other, points in POINTS.items():
        if other != task and not (task == "test_beam_step" and other == "test_beam_search"):
            assert got[student][other] == points, f"{student} lost points on {other}"


def test_at_least_four_wrong_implementations_per_task():
    counts = {}
    for task, _ in wrong_answers().values():
        counts[task] = counts.get(task, 0) + 1
    assert set(counts) == set(TEST_OF) and min(counts.values()) >= 4, counts


def test_feedback_and_grades_csv(graded_class):
    course, got, table, class_ = graded_class
    files = sorted((course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    assert len(files) == len(class_)
    for f in files:
        html = unescape(f.read_text())
        for secret in ("BEGIN HIDDEN TESTS", f'check_task("{ASSIGNMENT}"'):
            assert secret not in html, f"{f} shows hidden test source ({secret!r})"
    assert "visible tests passed - more tests run at grading" in (course / "feedback" / "solution" / ASSIGNMENT /
                                                                   f"{ASSIGNMENT}.html").read_text()
    wrong_html = (course / "feedback" / "wrong-beam_search-top_k_per_beam" / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert "beam_search: hidden case" in wrong_html.read_text()
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert {r["student_id"] for r in rows} == set(class_)
    by_student = {r["student_id"]: float(r["score"]) for r in rows}
    assert by_student["solution"] == sum(POINTS.values()) and by_student["unmodified"] == 0
    assert "beam_search" in table and "errored" in table and "late: none" in table
