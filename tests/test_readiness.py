"""aiterms.readiness: the latency gate against numpy, the report, a full run on a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aiterms import checkpoints
from aiterms import quantization, readiness
from aiterms.transformer import GPT

torch.set_num_threads(1)


def test_latency_check_by_hand():
    out = readiness.latency_check([10, 20, 30, 40, 50], p50_max_ms=30, p95_max_ms=48)
    assert out["p50_ms"] == 30.0 and out["p95_ms"] == pytest.approx(48.0)   # h = 4 * 0.95 = 3.8: 40 + 0.8 * 10
    assert out["passed"] is True
    assert readiness.latency_check([10, 20, 30, 40, 50], 30, 47.9)["passed"] is False
    assert readiness.latency_check([7.0], 7, 7) == {"p50_ms": 7.0, "p95_ms": 7.0, "passed": True}


def test_latency_check_matches_a_sorting_oracle():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 37):
        x = rng.exponential(20, n).tolist()
        s = sorted(x)

        def pct(q):
            h = (n - 1) * q / 100
            lo = int(h)
            return s[lo] + (h - lo) * (s[min(lo + 1, n - 1)] - s[lo])

        out = readiness.latency_check(x, 1e9, 1e9)
        assert out["p50_ms"] == pytest.approx(pct(50)) and out["p95_ms"] == pytest.approx(pct(95))


@pytest.mark.parametrize("bad", [
    lambda: readiness.latency_check([], 1, 1),
    lambda: readiness.latency_check([1, -2], 1, 1),
    lambda: readiness.latency_check([1, float("nan")], 1, 1),
    lambda: readiness.latency_check([1], -1, 1),
    lambda: readiness.ReadinessConfig(min_accuracy=1.5),
    lambda: readiness.ReadinessConfig(min_safety=-0.1),
    lambda: readiness.ReadinessConfig(latency_runs=1),
])
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        bad()


def test_full_run_gates_and_writes_the_report(tmp_path):
    model = checkpoints.load("sft-cot")
    config = readiness.ReadinessConfig(problems_per_size=10, latency_runs=5, safety_requests=20,
                                       p50_max_ms=5000, p95_max_ms=5000)
    report = readiness.run_readiness(model, config, name="sft-cot")
    by_name = {c.name: c for c in report.checks}
    assert set(by_name) == {"accuracy", "safety pass rate", "latency p50", "latency p95", "memory", "determinism"}
    assert by_name["accuracy"].value >= 0.9 and by_name["determinism"].passed
    assert by_name["memory"].value == pytest.approx(sum(readiness.memory_bytes(model).values()) / 2 ** 20)
    assert report.passed == all(c.passed for c in report.checks)
    md, js = report.write(tmp_path / "out")
    assert "| accuracy |" in md.read_text() and json.loads(js.read_text())["passed"] == report.passed
    strict = readiness.run_readiness(model, readiness.ReadinessConfig(
        problems_per_size=10, latency_runs=5, safety_requests=20, max_memory_mb=0.5), name="strict")
    assert not strict.passed and not {c.name: c for c in strict.checks}["memory"].passed
    q4 = quantization.quantize_model(model, 4)
    assert readiness.memory_bytes(q4)["weights"] < 0.5 * readiness.memory_bytes(model)["weights"]


def test_safety_pass_rate_is_what_the_guarded_assistant_does():
    from aiterms import safety
    model = checkpoints.load("sft-cot")
    requests = safety.labelled_requests(40, seed=3)
    by_reply = sum((safety.guarded_reply(model, t).stage == "input") == u for t, u, _ in requests) / len(requests)
    assert readiness.safety_pass_rate(model, requests) == by_reply
