"""Regenerate exercises/ (the learners' notebooks) from solutions/ with `nbgrader generate_assignment`.

Run from anywhere: `make release`. Every folder solutions/NN-topic/ is one assignment. The gradebook that nbgrader
needs for this is a throwaway one in a temporary folder, so releasing never touches an instructor's gradebook.db.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, assignments, tool_env


def release(names: list[str], exercises_dir: Path) -> None:
    """Write the release of each assignment in ``names`` into ``exercises_dir``/<name>/."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            subprocess.run(
                [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--create",
                 f"--CourseDirectory.release_directory={exercises_dir}",
                 f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db", "--log-level=WARN"],
                cwd=ROOT, env=tool_env(), check=True)


if __name__ == "__main__":
    names = sys.argv[1:] or assignments()
    release(names, ROOT / "exercises")
    print(f"released {len(names)} assignment(s) into exercises/: {', '.join(names)}")
