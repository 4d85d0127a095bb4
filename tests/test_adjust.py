"""Scores set by hand (`make adjust`, or formgrader's manual grading) survive regrading while the submission is
unchanged, are dropped when it changes, and show in the summary, grading-log.csv, grades.csv and the feedback."""
from __future__ import annotations

import csv
from html import unescape

import nbformat
import pytest

from aiterms.grading import sandbox
from nbtools import ROOT, answer_cells, fill, make_course, read, scores

pytestmark = pytest.mark.skipif(bool(sandbox.missing()), reason=f"no sandbox here: {sandbox.missing()}")

A = "16-beam-search"
RELEASE, SOURCE = ROOT / "exercises" / A / f"{A}.ipynb", ROOT / "solutions" / A / f"{A}.ipynb"
FULL = {"test_greedy_decode": 2, "test_beam_step": 3, "test_beam_search": 5}


def submit(inbox, student: str, answers: dict) -> None:
    path = inbox / student / A / f"{A}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fill(read(RELEASE), answers), path)


def log(course) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader((course / "grading-log.csv").open())}


def grades_csv(course) -> dict[str, float]:
    return {r["student_id"]: float(r["score"]) for r in csv.DictReader((course / "grades.csv").open())}


def test_scores_set_by_hand_survive_regrading_until_the_submission_changes(tmp_path):
    from nbgrader.api import Gradebook

    from aiterms.grading.adjust import adjust
    from aiterms.grading.grade import grade

    course, inbox = make_course(tmp_path), tmp_path / "inbox"
    solution = answer_cells(read(SOURCE))
    submit(inbox, "alice", solution)
    submit(inbox, "bob", {k: v for k, v in solution.items() if k != "greedy_decode"})  # greedy_decode left undone
    grade(inbox, course, jobs=2)
    assert scores(course, A)["bob"]["test_greedy_decode"] == 0

    # the command, and formgrader's way (the gradebook's manual_score) for alice
    said = adjust("bob", A, "greedy_decode", 1.5, "partial credit: your plan in the Markdown is right", course)
    assert "1.5 / 2 now" in said
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("test_beam_step", A, A, "alice").manual_score = 2.0
        gb.db.commit()
    assert grades_csv(course)["bob"] == 9.5
    feedback = unescape((course / "feedback" / "bob" / A / f"{A}.html").read_text())
    assert "partial credit: your plan in the Markdown is right" in feedback

    table = grade(inbox, course, jobs=2)  # unchanged submissions: both kept
    assert scores(course, A)["bob"]["test_greedy_decode"] == 1.5
    assert scores(course, A)["alice"]["test_beam_step"] == 2.0
    assert grades_csv(course) == {"alice": 9.0, "bob": 9.5}
    rows = log(course)
    assert (rows["bob"]["score"], rows["bob"]["judge_score"], rows["bob"]["manual"]) == ("9.5", "8", "greedy_decode=1.5")
    assert (rows["alice"]["score"], rows["alice"]["manual"]) == ("9", "beam_step=2")
    assert "set by hand: alice (beam_step=2), bob (greedy_decode=1.5)" in table
    autograded = (course / "autograded" / "bob" / A / f"{A}.ipynb").read_text()
    assert "Instructor: 1.5 / 2 points (set by hand)" in autograded
    assert "partial credit" in unescape((course / "feedback" / "bob" / A / f"{A}.html").read_text())

    submit(inbox, "bob", solution)  # a new submission: the hand-set score and comment go, the judge's points count
    table = grade(inbox, course, jobs=2)
    assert scores(course, A)["bob"] == FULL and scores(course, A)["alice"]["test_beam_step"] == 2.0
    assert log(course)["bob"]["manual"] == "dropped: the submission changed"
    assert "bob (dropped: the submission changed)" in table
    assert "partial credit" not in unescape((course / "feedback" / "bob" / A / f"{A}.html").read_text())

    adjust("alice", A, "beam_step", None, course=course)  # --clear
    assert scores(course, A)["alice"] == FULL


def test_adjust_says_what_is_wrong(tmp_path):
    from aiterms.grading.adjust import adjust
    course = make_course(tmp_path)
    with pytest.raises(SystemExit, match="no gradebook"):
        adjust("bob", A, "beam_step", 1, course=course)
    with pytest.raises(SystemExit, match="unknown assignment"):
        adjust("bob", "99-nothing", "beam_step", 1, course=course)
    with pytest.raises(SystemExit, match="has no task 'beam'; its tasks are: greedy_decode, beam_step, beam_search"):
        adjust("bob", A, "beam", 1, course=course)
    with pytest.raises(SystemExit, match="out of range for beam_step: expected 0 to 3"):
        adjust("bob", A, "beam_step", 4, course=course)
    from aiterms.grading.grade import db_url, register
    register(A, course, db_url(course), None)  # the assignment is in the gradebook; nobody's submission is
    with pytest.raises(SystemExit, match="no graded submission of 16-beam-search by 'bob'"):
        adjust("bob", A, "beam_step", 1, course=course)


def test_written_answers_are_graded_by_hand_and_kept(tmp_path):
    """Each exercise's written answer needs a person: after grading it is flagged for manual grading with no score
    (not the judge's), `make adjust TASK=written_answer` grades it within its points, and a regrade keeps it."""
    from nbgrader.api import Gradebook

    from aiterms.grading.adjust import adjust
    from aiterms.grading.grade import grade

    course, inbox = make_course(tmp_path), tmp_path / "inbox"
    solution = answer_cells(read(SOURCE))
    release = read(RELEASE)
    cell = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_answer")
    assert cell.cell_type == "markdown" and cell.source.strip() == "YOUR ANSWER HERE", "the release hides the rubric"
    submit(inbox, "alice", {**solution, "written_answer": "Each token adds a negative log-probability ..."
                                                          "<script>window.planted = 1</script>"})
    table = grade(inbox, course, jobs=1)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        g = gb.find_grade("written_answer", A, A, "alice")
        assert g.auto_score is None and g.needs_manual_grade and g.max_score == 1
    assert scores(course, A)["alice"] == FULL, "the judge's points do not include the written answer"
    assert "written answers (graded by hand in formgrader, not in the points above): 0 of 1 graded" in table
    feedback = (course / "feedback" / "alice" / A / f"{A}.html").read_text()
    assert "negative log-probability" in feedback and "<script>window.planted" not in feedback, "sanitised"
    with pytest.raises(SystemExit, match="out of range"):
        adjust("alice", A, "written_answer", 2.0, course=course)
    assert "1 / 1 now" in adjust("alice", A, "written_answer", 1.0, "clear and complete", course)
    assert grades_csv(course)["alice"] == 11.0
    table = grade(inbox, course, jobs=1)  # unchanged: the hand-given point stays
    assert scores(course, A, written=True)["alice"]["written_answer"] == 1.0
    assert "1 of 1 graded" in table
