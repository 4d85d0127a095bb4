"""aiterms.grading.assignments.ex09_post_training: the cases are plain data, the references pass their own checks, near-halves."""
from __future__ import annotations

import json

import pytest
import torch

from aiterms import grading
from aiterms.grading.assignments import ex09_post_training as ex06

A = "09-post-training"


@pytest.mark.parametrize("seed", [grading.PUBLIC_SEED, "salt-1", "salt-2"])
def test_references_pass_their_own_checks(seed):
    for t in grading.tasks(A):
        cases = grading.draw_cases(t, A, seed)
        assert len(cases) >= 20
        json.loads(json.dumps(cases, allow_nan=False))      # plain JSON data only
        outs = [grading.to_plain(t.call(grading.resolve(t.reference), case)) for case in cases]
        assert all(t.compare(out, out, case) is None for out, case in zip(outs, cases))
        assert any(out == ex06.RAISED for out in outs) and any(out != ex06.RAISED for out in outs)


def test_quantize_comparison_accepts_a_float_near_half_and_rejects_an_exact_half():
    case = {"w": [[127.0, 2.5]], "bits": 8}                   # scale 1: 2.5 is an exact half, to even = 2
    expected = grading.to_plain(ex06.call_quantize(grading.resolve("aiterms.quantization:quantize_per_channel"), case))
    assert expected[1] == [[127, 2]]
    assert ex06.compare_quantize(["returned", [[127, 3]], [1.0]], expected, case) == "q[0][1] is wrong"
    near = {"w": [[1.0, 0.562992125984252]], "bits": 8}        # w / s = 71.5000076 in float32: a near half
    exp = grading.to_plain(ex06.call_quantize(grading.resolve("aiterms.quantization:quantize_per_channel"), near))
    other = 71 if exp[1][0][1] == 72 else 72
    assert ex06.compare_quantize(["returned", [[127, other]], exp[2]], exp, near) is None
    assert ex06.compare_quantize(["returned", [[127, 70]], exp[2]], exp, near) is not None
    assert ex06.compare_quantize(["returned", [[127, exp[1][0][1]]], [float("nan")]], exp, near) is not None
