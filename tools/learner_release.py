"""Write the learners' repository: `make learner-release OUT=<folder>` (default _build/learner-release).

The course repository is the instructors': it holds `solutions/` (every answer, and the hidden tests), the tests
with their wrong implementations, the grading tools and the benchmarks. Learners get a repository made from it by
this script, with

* the book (`book/`, `_config.yml`, `_toc.yml`), the released exercises (`exercises/`), the released models
  (`checkpoints/`), Binder's files, `pyproject.toml` and the lock (`constraints.txt`);
* the library `lib/aiterms/` without the grader (:data:`GRADER`): learners keep what the exercises' test cells call
  (``aiterms.grading``'s comparison helpers and task declarations), not the judge, the sandbox or the reports;
* `requirements.txt` only (no `requirements-dev.txt`: the peers used by tests and benchmarks, the grading tools);
* its own `Makefile` and `README.md` (`tools/learner/`): set up and build the book, check an exercise (the
  environment's rules are the course's, `setup.mk`).

Never copied: `solutions/`, `tests/`, `tools/`, `.ci/`, `nbgrader_config.py`, `.grading-salt`, a gradebook, any
submission or feedback, build outputs. The release is checked before it is written: no file may hold a solution
cell's code or nbgrader's solution and hidden-test markers (:func:`check`). It is a git repository with one commit,
ready to push where learners clone from.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from common import ROOT

COPIED = ["book", "exercises", "checkpoints", "binder", "_config.yml", "_toc.yml", "pyproject.toml",
          "constraints.txt", "requirements.txt", "setup.mk", "lib"]
GRADER = ["__main__.py", "grade.py", "judge.py", "worker.py", "server.py", "kernel.py", "sandbox.py", "adjust.py",
          "similarity.py"]
LEARNER = ROOT / "tools" / "learner"
GITIGNORE = """.venv/
__pycache__/
*.egg-info/
.ipynb_checkpoints/
.jupyter_cache/
_build/
_vendor/
"""
MARKERS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "BEGIN HIDDEN TESTS")


def solution_snippets() -> list[str]:
    """Distinctive lines of every solution in solutions/ (at least 40 characters, and not also in a cell the
    learner is given, such as a visible test that makes the same call): none may appear in the exercises."""
    snippets = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        given = "\n".join("".join(c["source"]) for c in cells
                          if not c.get("metadata", {}).get("nbgrader", {}).get("solution"))
        for cell in cells:
            source = "".join(cell["source"])
            if not cell.get("metadata", {}).get("nbgrader", {}).get("solution") or "### BEGIN SOLUTION" not in source:
                continue
            body = source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
            snippets += [line.strip() for line in body.splitlines() if len(line.strip()) >= 40
                         and line.strip() not in given]
    return snippets


def check(out: Path) -> list[str]:
    """Problems of a release: instructor files present, or solution text in any file."""
    problems = [f"{name} must not be in the release" for name in
                ("solutions", "tests", "tools", ".ci", "nbgrader_config.py", ".grading-salt", "gradebook.db",
                 "requirements-dev.txt", "submitted", "autograded", "feedback")
                if (out / name).exists()]
    problems += [f"lib/aiterms/grading/{name} (the grader) must not be in the release" for name in GRADER
                 if (out / "lib" / "aiterms" / "grading" / name).exists()]
    snippets = solution_snippets()
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.parts):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for marker in MARKERS if path.suffix in (".ipynb", ".py") else ():  # (the guides explain the markers)
            if marker in text:
                problems.append(f"{path.relative_to(out)} holds nbgrader's marker {marker!r}")
        # the library's reference implementations are the learners' anyway; solutions are checked in exercises
        if path.suffix == ".ipynb" and path.parts[len(out.parts)] == "exercises":
            problems += [f"{path.relative_to(out)} holds solution code: {s[:60]!r}" for s in snippets if s in text]
    return problems


def release(out: Path) -> Path:
    out = out.resolve()
    if out.exists():
        if not (out / ".aiterms-learner-release").exists():
            raise SystemExit(f"{out} exists and is not an earlier learner release: choose an empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".jupyter_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=ignore)
        else:
            shutil.copy2(source, out / name)
    for name in GRADER:
        (out / "lib" / "aiterms" / "grading" / name).unlink(missing_ok=True)
    shutil.copy2(LEARNER / "Makefile", out / "Makefile")
    shutil.copy2(LEARNER / "README.md", out / "README.md")
    (out / ".gitignore").write_text(GITIGNORE)
    (out / ".aiterms-learner-release").write_text("made by `make learner-release` from the course repository\n")
    problems = check(out)
    if problems:
        shutil.rmtree(out)
        raise SystemExit("the learner release was not written:\n  " + "\n  ".join(problems))
    git = ["git", "-C", str(out), "-c", "user.name=AI Model Terms", "-c", "user.email=course@localhost"]
    subprocess.run(git[:3] + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "The course for learners (made by make learner-release)"], check=True)
    return out


if __name__ == "__main__":
    target = release(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build" / "learner-release"))
    print(f"learner release: {target} (a git repository; push it where learners clone from)")
