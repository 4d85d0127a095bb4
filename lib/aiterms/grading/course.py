"""Where the course is, and the one list of its assignments.

An assignment ``NN-topic`` is a folder ``solutions/NN-topic/`` (the nbgrader source, instructors only) and a module
``aiterms.grading.assignments.exNN_topic`` that declares its graded tasks; :data:`ASSIGNMENTS` is read from those
modules' names, and a test checks that the folders of ``solutions/`` are the same list.
"""
from __future__ import annotations

import os
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]     # the repository (lib/aiterms/grading/course.py)
BIN = Path(sys.executable).parent


def module_name(assignment: str) -> str:
    """``"16-beam-search"`` -> ``"ex16_beam_search"``."""
    return "ex" + assignment.replace("-", "_")


def _discover() -> list[str]:
    from aiterms.grading import assignments
    names = [info.name for info in pkgutil.iter_modules(assignments.__path__) if info.name.startswith("ex")]
    return sorted(name[2:].replace("_", "-") for name in names)


#: every assignment, in order: "01-reinforcement-learning", ..., "17-rejection-sampling"
ASSIGNMENTS: list[str] = _discover()


def tool_env(**extra: str) -> dict[str, str]:
    """os.environ with this venv's bin/ first on PATH (nbgrader runs `alembic` and `jupyter` from there)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env
