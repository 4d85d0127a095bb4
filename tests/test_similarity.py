"""The similarity report (aiterms.grading.similarity, copydetect): copying is flagged, independent work is not.

`pytest -s` prints every pair's score; the bounds asserted here are the ones the instructor guide states."""
from __future__ import annotations

import re

import pytest

from aiterms.grading import similarity
from nbtools import answer_cells, read
from test_grading_class import (GREEDY_NUMPY, SEARCH_HELPERS, SEARCH_USING_HELPERS, SOURCE, STEP_LOOPS, A)

pytestmark = [pytest.mark.slow]
REF = similarity.REFERENCE
WRITTEN_DIFFERENTLY = "\n".join([GREEDY_NUMPY, STEP_LOOPS, SEARCH_HELPERS, SEARCH_USING_HELPERS])


RENAMES = {"out": "generated", "scores": "logit_row", "rows": "candidates_list", "running": "alive",
           "finished": "completed", "cands": "options", "top": "best", "horizon": "limit_len", "step": "t",
           "beam": "which_beam", "token": "which_token", "done": "ended", "_length_normalised": "_norm",
           "_should_stop": "_stop_now"}


def disguised(part: str) -> str:
    """A learner's copy of ``part``: variables and helpers renamed, comments rewritten."""
    for old, new in RENAMES.items():
        part = re.sub(rf"\b{old}\b", new, part)
    return re.sub(r"#.*", "# my own note", part)


# the copy also moves the helpers after the function that uses them, and beam_step last
COPY = "\n".join(disguised(p) for p in (GREEDY_NUMPY, SEARCH_USING_HELPERS, SEARCH_HELPERS, STEP_LOOPS))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    code = {"pastes-reference": similarity.reference_code(A),
            "correct": "\n".join(answer_cells(read(SOURCE)).values()),
            "written-differently": WRITTEN_DIFFERENTLY,
            "copies-written-differently": COPY}
    out = tmp_path_factory.mktemp("similarity") / "report.html"
    found = {(a, b): s for a, b, s in similarity.compare(A, code, out)}
    for (a, b), s in sorted(found.items(), key=lambda p: -p[1]):
        print(f"{a:28s} {b:36s} {s:.2f}")
    return found, out


def score(found, a, b) -> float:
    return found.get((a, b), found.get((b, a)))


def test_the_pasted_reference_with_its_helpers_is_flagged(pairs):
    found, _ = pairs
    assert score(found, "pastes-reference", REF) >= 0.9 >= similarity.THRESHOLD


def test_shared_code_with_renamed_variables_new_comments_and_reordered_helpers_is_flagged(pairs):
    found, _ = pairs
    assert score(found, "copies-written-differently", "written-differently") >= 0.9


def test_independent_correct_code_is_not_flagged(pairs):
    found, _ = pairs
    for a in ("written-differently", "copies-written-differently"):
        assert score(found, a, REF) <= 0.1 < similarity.THRESHOLD
        assert score(found, a, "correct") <= 0.1
        assert score(found, a, "pastes-reference") <= 0.1


def test_the_report_is_self_contained_and_shows_the_flagged_pairs(pairs):
    _, out = pairs
    html = out.read_text()
    assert "cdn.jsdelivr" not in html and "<script" not in html
    assert "written-differently.py" in html and REF in html
    assert "aiterms-similarity-" not in html  # no temporary paths, only learners' names
