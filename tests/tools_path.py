"""Access to the instructor tools (tools/) from the tests."""
from __future__ import annotations

import json
import sys

from nbtools import ROOT

sys.path.insert(0, str(ROOT / "tools"))


def judge_setup_cells(assignment: str) -> list[str]:
    from aiterms.grading.judge import setup_cells
    return setup_cells(json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text()))
