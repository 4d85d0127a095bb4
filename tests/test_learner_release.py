"""The learners' repository (`make learner-release`): what learners need and nothing of the instructors'.

Builds a release, checks that no solution, hidden test, grading tool or instructor file is in it, that its
dependencies resolve to the learner set (none of the peers used only by tests and benchmarks), and runs the learner's
second command, an exercise's visible tests, against the release's own library: it fails on the exercise as handed
out and passes once the answers are filled in."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import tools_path  # noqa: F401 (tools/ on sys.path)
from nbtools import ROOT, answer_cells, fill, read

pytestmark = [pytest.mark.slow]
A = "16-beam-search"
DEV_ONLY = {"transformers", "trl", "stable-baselines3", "open-spiel", "pytest", "nbval", "selenium", "copydetect",
            "psycopg", "datasets", "pyarrow"}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    import learner_release
    return learner_release.release(tmp_path_factory.mktemp("learners") / "ai-model-terms")


def test_the_release_holds_what_learners_need_and_no_instructor_file(release):
    import learner_release
    assert sorted(p.name for p in release.iterdir()) == sorted(
        [".aiterms-learner-release", ".git", ".gitignore", "Makefile", "README.md", "_config.yml", "_toc.yml", "binder",
         "book", "checkpoints", "constraints.txt", "exercises", "lib", "pyproject.toml", "requirements.txt", "setup.mk"])
    assert learner_release.check(release) == []
    assert len(learner_release.solution_snippets()) > 50  # the check has something to look for
    grading = sorted(p.name for p in (release / "lib" / "aiterms" / "grading").glob("*.py"))
    assert grading == ["__init__.py", "compare.py", "course.py", "tasks.py"]
    exercises = sorted(p.name for p in (release / "exercises").iterdir())
    assert exercises == sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    log = subprocess.run(["git", "-C", str(release), "log", "--oneline"], capture_output=True, text=True).stdout
    assert len(log.splitlines()) == 1


def test_a_solution_in_a_release_is_caught(release, tmp_path):
    import learner_release
    nb = release / "exercises" / A / f"{A}.ipynb"
    original = nb.read_text()
    try:
        nbformat.write(fill(read(nb), answer_cells(read(ROOT / "solutions" / A / f"{A}.ipynb"))), nb)
        assert any("holds solution code" in p for p in learner_release.check(release))
    finally:
        nb.write_text(original)
    with pytest.raises(SystemExit, match="is not an earlier learner release"):
        learner_release.release(tmp_path)  # an existing folder of something else is never replaced


def test_learners_install_the_learner_set_only(release):
    assert not (release / "requirements-dev.txt").exists()
    make = subprocess.run(["make", "-n", "book", f"EXERCISE={A}", "check"], cwd=release, capture_output=True,
                          text=True)
    assert make.returncode == 0, make.stderr
    assert "pip install -r requirements.txt -c constraints.txt" in make.stdout and "requirements-dev" not in make.stdout
    assert f"nbgrader validate exercises/{A}/{A}.ipynb" in make.stdout
    report = release / "_build" / "pip-report.json"
    report.parent.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                           "-r", "requirements.txt", "-c", "constraints.txt", "--report", str(report)],
                          cwd=release, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {i["metadata"]["name"].lower().replace("_", "-") for i in json.loads(report.read_text())["install"]}
    assert {"torch", "nbgrader", "jupyter-book", "jupyterlab"} <= names
    assert not names & DEV_ONLY, names & DEV_ONLY


def test_an_exercises_visible_tests_run_on_the_releases_library(release, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(release / "lib")}  # the release's aiterms, not the course's
    where = subprocess.run([sys.executable, "-c", "import aiterms; print(aiterms.__file__)"], env=env,
                           capture_output=True, text=True, cwd=release)
    assert where.stdout.startswith(str(release / "lib")), where
    nbgrader = [str(Path(sys.executable).parent / "nbgrader"), "validate"]
    handed_out = subprocess.run(nbgrader + [f"exercises/{A}/{A}.ipynb"], cwd=release, env=env, capture_output=True,
                                text=True)
    assert "NotImplementedError" in handed_out.stdout + handed_out.stderr
    done = tmp_path / f"{A}.ipynb"
    answers = answer_cells(read(ROOT / "solutions" / A / f"{A}.ipynb"))
    nbformat.write(fill(read(release / "exercises" / A / f"{A}.ipynb"), answers), done)
    unanswered = subprocess.run(nbgrader + [str(done)], cwd=release, env=env, capture_output=True, text=True)
    assert "You did not provide a response" in unanswered.stdout, "validate reminds learners of the written answer"
    nbformat.write(fill(read(release / "exercises" / A / f"{A}.ipynb"),
                        {**answers, "written_answer": "Each extra token adds a negative log-probability."}), done)
    solved = subprocess.run(nbgrader + [str(done)], cwd=release, env=env, capture_output=True, text=True)
    assert "Success! Your notebook passes all the tests." in solved.stdout, solved.stdout[-2000:] + solved.stderr[-2000:]
