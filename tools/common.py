"""Shared bits of the instructor tools: paths and the environment nbgrader needs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool_env(**extra: str) -> dict[str, str]:
    """os.environ with this venv's bin/ first on PATH (nbgrader runs `alembic` and `jupyter` from there)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def assignments() -> list[str]:
    """The assignments: one per folder of solutions/."""
    return sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
