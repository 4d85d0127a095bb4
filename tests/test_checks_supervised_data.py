"""aiterms.grading.assignments.ex03_supervised_data (exercise 3): the references pass their own checks, cases are plain data, and the
property-based comparison of `split` accepts any leakage-free split and rejects the wrong ones."""
from __future__ import annotations

import json
import random

import pytest

from aiterms import grading
from aiterms.grading.assignments import ex03_supervised_data as ex02

A = "03-supervised-data"


@pytest.mark.parametrize("seed", [grading.PUBLIC_SEED, "salt-1", "salt-2", "salt-3"])
def test_references_pass_their_own_checks(seed):
    for t in grading.tasks(A):
        cases = grading.draw_cases(t, A, seed)
        assert len(cases) >= 20
        json.dumps(cases)  # plain data only
        for case in cases:
            out = grading.to_plain(t.call(grading.resolve(t.reference), case))
            json.dumps(out)
            assert t.compare(out, out, case) is None, (t.function, case)


def _split(problems, fractions, seed, order=sorted):
    """Another right split: keys in first-appearance order (or any order), shuffled by a different generator."""
    groups = {}
    for p in problems:
        groups.setdefault(ex02._key([p.a, p.b, p.op]), []).append(p)
    keys = order(groups)
    random.Random(f"other-{seed}").shuffle(keys)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(keys) if j == len(fractions) - 1 else int(len(keys) * total)  # truncation: off by one at most
        parts.append([p for k in keys[start:end] for p in groups[k]])
        start = end
    return parts


def test_split_comparison_accepts_another_right_split_and_rejects_leaks():
    t = grading.task(A, "split")
    reference = grading.resolve(t.reference)
    for case in grading.draw_cases(t, A, "salt-x"):
        expected = grading.to_plain(ex02.call_split(reference, case))
        other = grading.to_plain(ex02.call_split(lambda ps, fs, s: _split(ps, fs, s, order=list), case))
        assert t.compare(other, expected, case) is None, case
    case = {"problems": [[47, 85, "+"], [85, 47, "+"], [1, 2, "+"], [3, 4, "+"]], "fractions": [0.5, 0.5], "seed": 0}
    leaky = [[[[47, 85, "+"], [1, 2, "+"]], [[85, 47, "+"], [3, 4, "+"]]]] * 3
    assert "leak" in t.compare(leaky, None, case)
    lost = [[[[47, 85, "+"], [85, 47, "+"]], [[1, 2, "+"]]]] * 3
    assert "exactly one part" in t.compare(lost, None, case)
    lopsided = [[[[47, 85, "+"], [85, 47, "+"], [1, 2, "+"], [3, 4, "+"]], []]] * 3
    assert "fraction" in t.compare(lopsided, None, case)


def test_key_and_pairs_comparisons():
    assert ex02.compare_key(["tuple", ["+", 47, 85]], ["tuple", ["+", 47, 85]], {}) is None
    assert "tuple" in ex02.compare_key(["list", ["+", 47, 85]], ["tuple", ["+", 47, 85]], {})
    assert ex02.compare_key(["tuple", ["+", 85, 47]], ["tuple", ["+", 47, 85]], {}) == "the key is wrong"
    case = {"problems": [[47, 85, "+"]], "fmt": "steps"}
    assert ex02.compare_pairs("ValueError", "ValueError", case) is None
    assert "ValueError" in ex02.compare_pairs([["47+85=", "132"]], "ValueError", case)
    case = {"problems": [[47, 85, "+"]], "fmt": "direct"}
    assert "prompt" in ex02.compare_pairs([["47+85", "132"]], [["47+85=", "132"]], case)
    assert "response" in ex02.compare_pairs([["47+85=", "=132"]], [["47+85=", "132"]], case)
