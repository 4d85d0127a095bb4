"""Autograde a folder of submissions: `make grade SUBMISSIONS=<folder>`.

<folder>/<student>/<assignment>/<notebook>.ipynb  ->  gradebook.db, autograded/, feedback/ (HTML), grades.csv,
and a summary table on the terminal.

Steps (all nbgrader, run in the course directory, where nbgrader_config.py is):
1. `generate_assignment` records each assignment's notebooks, cells and points in the gradebook (its release goes to
   a temporary folder, so exercises/ is left alone);
2. the submissions are copied into submitted/ (unless they are already there);
3. `autograde --force` runs every submission in a fresh kernel with the hidden tests put back (regrading is
   idempotent: it starts from the submitted files again);
4. `generate_feedback --force` writes one HTML file per notebook, with hidden tests removed;
5. `export` writes grades.csv, and the table below is printed from the gradebook.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, tool_env


def nbgrader(course: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=course, env=tool_env(),
                   check=True)


def collect(submissions: Path, course: Path) -> dict[str, list[str]]:
    """Copy ``submissions`` into ``course``/submitted; return {assignment: [students]}."""
    found: dict[str, list[str]] = {}
    target = course / "submitted"
    for notebook in sorted(submissions.glob("*/*/*.ipynb")):
        student, assignment = notebook.parent.parent.name, notebook.parent.name
        if not (course / "solutions" / assignment).is_dir():
            print(f"skipping {notebook}: no assignment {assignment!r} in solutions/", file=sys.stderr)
            continue
        found.setdefault(assignment, [])
        if student not in found[assignment]:
            found[assignment].append(student)
        if submissions.resolve() != target.resolve():
            dest = target / student / assignment / notebook.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(notebook, dest)
    return found


def summary(course: Path, found: dict[str, list[str]]) -> str:
    """A table per assignment: each task's mean and how many got full, partial or zero points."""
    from nbgrader.api import Gradebook

    lines = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for assignment, students in found.items():
            tasks: dict[str, list[float]] = {}
            maxima: dict[str, float] = {}
            totals = []
            for student in students:
                sub = gb.find_submission(assignment, student)
                totals.append(sub.score)
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        tasks.setdefault(grade.name, []).append(grade.score)
                        maxima[grade.name] = grade.max_score
            lines.append(f"\n{assignment}: {len(students)} submission(s), "
                         f"mean total {sum(totals) / len(totals):.2f} / {sum(maxima.values()):g}")
            lines.append(f"{'task':<24}{'max':>5}{'mean':>7}{'full':>6}{'partial':>9}{'zero':>6}")
            for name, scores in tasks.items():
                full = sum(s == maxima[name] for s in scores)
                zero = sum(s == 0 for s in scores)
                lines.append(f"{name:<24}{maxima[name]:>5g}{sum(scores) / len(scores):>7.2f}{full:>6}"
                             f"{len(scores) - full - zero:>9}{zero:>6}")
    return "\n".join(lines)


def grade(submissions: Path, course: Path = ROOT) -> str:
    found = collect(submissions, course)
    if not found:
        raise SystemExit(f"no submissions found under {submissions} (expected <student>/<assignment>/*.ipynb)")
    with tempfile.TemporaryDirectory() as release:
        for assignment in found:
            nbgrader(course, "generate_assignment", assignment, "--force", "--create",
                     f"--CourseDirectory.release_directory={release}")
    for assignment, students in found.items():
        print(f"autograding {len(students)} submission(s) of {assignment} ...", flush=True)
        nbgrader(course, "autograde", assignment, "--create", "--force")
        nbgrader(course, "generate_feedback", assignment, "--force")
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    table = summary(course, found)
    print(table)
    print(f"\ngradebook: {course / 'gradebook.db'}\nfeedback:  {course / 'feedback'}\ngrades:    {course / 'grades.csv'}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, help="folder laid out <student>/<assignment>/*.ipynb")
    parser.add_argument("--course", type=Path, default=ROOT,
                        help="course directory holding nbgrader_config.py and solutions/ (default: the repo)")
    args = parser.parse_args()
    grade(args.submissions, args.course.resolve())


if __name__ == "__main__":
    main()
