"""The API reference's pages (book/api/) and the chapters' "The library on this page" cells are what
tools/api_pages.py writes from the library and the chapters' code: never stale."""
from __future__ import annotations

import json
import subprocess
import sys

from tools_path import ROOT  # puts tools/ on sys.path

import api_pages  # noqa: E402  (tools/api_pages.py)


def test_pages_and_links_are_up_to_date():
    run = subprocess.run([sys.executable, str(ROOT / "tools/api_pages.py"), "--check"], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_uses_reads_imports_and_module_attributes():
    nb = {"cells": [{"cell_type": "code", "source": ["from aiterms.mcts import search, _best_child\n",
                                                     "from aiterms import grpo as g, prm\n", "%matplotlib inline\n",
                                                     "g.grpo_loss(1); prm.no_such_name; g.torch\n"]},
                    {"cell_type": "markdown", "source": ["`from aiterms.dpo import dpo_loss`"]}]}
    assert api_pages.uses(nb) == {"grpo": ["aiterms.grpo.grpo_loss"], "mcts": ["aiterms.mcts.search"], "prm": []}


def test_every_chapter_ends_with_its_links_and_every_module_has_a_page():
    for path in api_pages.chapters():
        last = json.loads(path.read_text())["cells"][-1]
        assert last.get("id") == api_pages.CELL_ID and last["cell_type"] == "markdown", path.name
    for module in api_pages.modules():
        assert (ROOT / f"book/api/aiterms.{module}.md").is_file(), module
