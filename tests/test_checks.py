"""aiterms.grading.tasks: the task declarations shared by the in-kernel hidden tests and the judge."""
from __future__ import annotations

import importlib

import json
from pathlib import Path

import pytest

from aiterms import grading
from aiterms.grading.assignments import ex16_beam_search as ex14
from nbtools import ROOT


@pytest.mark.parametrize("assignment", sorted(grading.ASSIGNMENTS))
def test_tasks_match_the_notebook(assignment):
    """Every task's test cell and points are the notebook's; every answer cell has a task."""
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    meta = [c["metadata"]["nbgrader"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
    written = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["cell_type"] == "markdown"
               and c["metadata"].get("nbgrader", {}).get("solution")]
    assert [(m["grade_id"], m.get("grade"), m.get("points")) for m in written] == [("written_answer", True, 1)], \
        "one written answer per exercise, graded by hand, 1 point"
    points = {m["grade_id"]: m["points"] for m in meta if m.get("grade") and m not in written}
    answers = {m["grade_id"] for m in meta if m.get("solution") and m not in written}
    tasks = grading.tasks(assignment)
    assert {t.test_cell: t.points for t in tasks} == points
    assert {t.function for t in tasks} == answers
    for t in tasks:
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == t.test_cell)
        assert f'check_task("{assignment}", "{t.function}", {t.function})' in "".join(cell["source"])


@pytest.mark.parametrize("seed", [grading.PUBLIC_SEED, "salt-1", "salt-2"])
def test_references_pass_their_own_checks(seed):
    for t in grading.tasks("16-beam-search"):
        cases = grading.draw_cases(t, "16-beam-search", seed)
        assert len(cases) >= 20
        json.dumps(cases)  # plain data only
        for case in cases:
            out = grading.to_plain(t.call(grading.resolve(t.reference), case))
            assert t.compare(out, out, case) is None


def test_cases_depend_on_the_seed_and_only_on_it():
    t = grading.task("16-beam-search", "beam_search")
    a = grading.draw_cases(t, "16-beam-search", "x")
    assert a == grading.draw_cases(t, "16-beam-search", "x") != grading.draw_cases(t, "16-beam-search", "y")


def tie_case():
    # a pure bigram model (no position term): [1, 5, 1, 5, 1] and [5, 1, 5, 1, 1] use the same transitions
    return {"model": {"kind": "bigram", "vocab_size": 8, "seed": 202444, "scale": 2.0}, "prompt": [6, 1],
            "num_beams": 2, "max_new_tokens": 5, "eos_token_id": 3, "length_penalty": -0.5, "early_stopping": False}


def test_beam_search_comparison_accepts_ties_and_nothing_else():
    case = tie_case()
    expected = grading.to_plain(ex14.call_beam_search(grading.resolve("aiterms.beam_search:beam_search"), case))
    (a, score_a), (b, score_b) = expected
    tied = [[5, 1, 5, 1, 1], [1, 5, 1, 5, 1]]
    assert b in tied
    other = tied[1 - tied.index(b)]
    assert ex14.compare_beam_search([[a, score_a], [other, score_b]], expected, case) is None  # the other twin
    assert ex14.compare_beam_search([[a, score_a], [[5, 1, 5, 1, 2], score_b]], expected, case) is not None  # a lie
    assert ex14.compare_beam_search([[a, score_a], [a, score_a]], expected, case) is not None
    assert ex14.compare_beam_search([[a, score_a]], expected, case) is not None
    assert ex14.compare_beam_search([[a, score_a], [b, score_b + 0.1]], expected, case) is not None


def test_unknown_assignment_or_task():
    with pytest.raises(ValueError, match="assignment"):
        grading.tasks("99-nothing")
    with pytest.raises(ValueError, match="no task"):
        grading.task("16-beam-search", "nothing")


def run_answers(assignment: str, answers: dict[str, str]) -> dict:
    """Execute answer cells the way the judge's worker does (setup cells first), in this process."""
    from tools_path import judge_setup_cells
    namespace: dict = {"__name__": "__main__"}
    for src in judge_setup_cells(assignment):
        exec(src, namespace)
    for src in answers.values():
        exec(src, namespace)
    return namespace


@pytest.mark.parametrize("salt", ["salt-a", "salt-b", "salt-c", "salt-d"])
@pytest.mark.parametrize("assignment", sorted(grading.ASSIGNMENTS))
def test_every_wrong_implementation_fails_whatever_the_salt(assignment, salt):
    """The hidden checks must catch each wrong answer for any course's secret cases, not just the tests' salt."""
    from nbtools import answer_cells, read
    from test_exercises import source, wrong_answers
    solution = answer_cells(read(source(assignment)))
    for student, (function, src) in wrong_answers(assignment).items():
        if "calls_reference" in student:  # caught by the stripped library in the sandbox, not by values
            continue
        namespace = run_answers(assignment, {**solution, function: src})
        t = grading.task(assignment, function)
        failed = False
        for case in grading.draw_cases(t, assignment, salt):
            expected = grading.to_plain(t.call(grading.resolve(t.reference), case))
            try:
                got = grading.to_plain(t.call(namespace[function], case))
            except Exception:
                failed = True
                break
            if t.compare(got, expected, case):
                failed = True
                break
        assert failed, f"{student} passes every hidden case drawn with salt {salt!r}"


def test_one_list_of_assignments():
    """solutions/NN-topic/, exercises/NN-topic/ and the module aiterms.grading.assignments.exNN_topic: one list."""
    from aiterms.grading.assignments import __path__ as modules
    folders = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert grading.ASSIGNMENTS == folders == sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    for a in grading.ASSIGNMENTS:
        module = importlib.import_module(f"aiterms.grading.assignments.ex{a.replace('-', '_')}")
        assert module.ASSIGNMENT == a and module.TASKS, a
    assert len(list(Path(modules[0]).glob("ex*.py"))) == len(folders)
