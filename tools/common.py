"""Shared bits of the release and bench scripts: the course's paths and assignments (from aiterms.grading.course)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from aiterms.grading.course import ASSIGNMENTS, BIN, ROOT, tool_env  # noqa: E402,F401


def assignments() -> list[str]:
    """The assignments, in order."""
    return list(ASSIGNMENTS)
