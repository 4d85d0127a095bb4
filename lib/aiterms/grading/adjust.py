"""Set a task's score (and a comment) by hand: `make adjust STUDENT=... ASSIGNMENT=... TASK=... SCORE=...
[COMMENT=...]` (`python -m aiterms.grading.adjust`).

It writes what formgrader's manual grading writes: the test cell's ``manual_score`` in the gradebook (it replaces the
judge's points for that task), and a ``manual_comment`` on the task's answer cell; then regenerates the learner's
feedback and ``grades.csv``. A later ``make grade`` keeps it as long as the learner's submitted notebook is the one
that was graded, and drops it (saying so in the summary and ``grading-log.csv``) if they submitted a new one.
``--clear`` gives the task back the judge's points. ``TASK=written_answer`` grades the exercise's written answer (a
Markdown cell that only people grade; formgrader lists the ungraded ones), with the same rules.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aiterms import grading
from aiterms.grading.course import ROOT


#: the grade id of each exercise's written answer (a Markdown cell graded by hand; never part of the judge's points)
WRITTEN = "written_answer"


def written_points(assignment: str) -> float:
    """The points of the assignment's written answer cell, from its source notebook."""
    import json
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    for c in nb["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == WRITTEN:
            return float(meta["points"])
    raise SystemExit(f"assignment {assignment} has no written answer")


def adjust(student: str, assignment: str, task: str, score: float | None, comment: str | None = None,
           course: Path = ROOT) -> str:
    """Set (``score`` a number) or clear (None) the score of ``task`` (its function name or test cell) in
    ``student``'s submission of ``assignment``; returns a line saying what was done."""
    from nbgrader.api import Gradebook, MissingEntry

    from aiterms.grading.grade import db_url, gradebook_writer, nbgrader

    course = course.resolve()
    if assignment not in grading.ASSIGNMENTS:
        raise SystemExit(f"unknown assignment {assignment!r}; the course's are: {', '.join(grading.ASSIGNMENTS)}")
    tasks = grading.tasks(assignment)
    found = [t for t in tasks if task in (t.function, t.test_cell)]
    if task in ("written", WRITTEN):   # the written answer: graded by hand only, worth its cell's points
        from types import SimpleNamespace
        found = [SimpleNamespace(function=WRITTEN, test_cell=WRITTEN, points=written_points(assignment))]
    if not found:
        raise SystemExit(f"assignment {assignment} has no task {task!r}; its tasks are: "
                         f"{', '.join(t.function for t in tasks)}, and the written answer ({WRITTEN})")
    t = found[0]
    if score is not None and not 0 <= score <= t.points:
        raise SystemExit(f"score {score:g} is out of range for {t.function}: expected 0 to {t.points:g}")
    url = db_url(course)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise SystemExit(f"no gradebook at {url}: run `make grade` first")
    try:
        gb = Gradebook(url)
    except Exception as e:
        raise SystemExit(f"the gradebook {url} cannot be opened: {type(e).__name__}: {e}") from None
    with gradebook_writer(url), gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            students = sorted(s.student.id for s in gb.find_assignment(assignment).submissions) \
                if assignment in {a.name for a in gb.assignments} else []
            raise SystemExit(f"no graded submission of {assignment} by {student!r} in the gradebook "
                             f"({len(students)} graded: {', '.join(students[:20]) or 'none'})") from None
        grades = [(nb, g) for nb in submission.notebooks for g in nb.grades if g.name == t.test_cell]
        if not grades:
            raise SystemExit(f"the gradebook has no score for {t.function} ({t.test_cell}) in {student}'s "
                             f"{assignment}: run `make grade` first")
        notebook, grade = grades[0]
        grade.manual_score = score
        if comment is not None:
            comments = [c for c in notebook.comments if c.name == t.function] or list(notebook.comments)
            if not comments:
                raise SystemExit(f"{assignment} has no answer cell to attach a comment to")
            comments[0].manual_comment = comment
        gb.db.commit()
        final = grade.score
    nbgrader(course, "generate_feedback", assignment, "--student", student, "--force")
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    what = f"set by hand to {score:g}" if score is not None else "given back the judge's points"
    return (f"{student} / {assignment} / {t.function}: {what} ({final:g} / {t.points:g} now); feedback and "
            f"grades.csv updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("student")
    parser.add_argument("assignment", help="e.g. 16-beam-search")
    parser.add_argument("task", help="the task's function name (e.g. beam_step) or its test cell")
    parser.add_argument("score", nargs="?", type=float, help="the points to give (0 to the task's maximum)")
    parser.add_argument("--comment", help="a comment the learner sees on the task's answer cell")
    parser.add_argument("--clear", action="store_true", help="remove the score set by hand")
    parser.add_argument("--course", type=Path, default=ROOT, help="course directory (default: the repo)")
    args = parser.parse_args()
    if (args.score is None) == (not args.clear):
        parser.error("give a SCORE, or --clear")
    print(adjust(args.student, args.assignment, args.task, None if args.clear else args.score, args.comment,
                 args.course))


if __name__ == "__main__":
    main()
