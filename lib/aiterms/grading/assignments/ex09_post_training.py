"""Hidden checks of exercise 9 (post-training): quantize_per_channel, dequantize_per_channel, latency_check, dpo_loss.

Cases are plain data: weight matrices as nested lists (built into float32 tensors by ``call``), integer levels and
scales, lists of latencies with two thresholds. A reference that raises ``ValueError`` (invalid input) gives the plain
value ``["raised", "ValueError"]``, and so must the learner's function.

Rounding: the levels must be ``torch.round`` of ``w / s`` (half to even). Where ``w / s`` lands within 1e-4 of a
half without being exactly one (float rounding can put it on either side, depending on how it is computed), either
neighbour is accepted; exact halves (the cases with scale 1) must round to even.

DPO: cases are four lists of sequence log-probabilities and ``beta``; the loss's value, the two implicit rewards and
the loss's gradients with respect to the policy's log-probabilities are compared, so a loss that is right in value but
detached, or that overflows for large margins, fails.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "09-post-training"

FORBID = ("aiterms.quantization:quantize_per_channel", "aiterms.quantization:dequantize_per_channel",
          "aiterms.readiness:latency_check", "aiterms.quantization:qmax", "aiterms.quantization:error_bound",
          "aiterms.quantization:dynamic_quantize", "aiterms.quantization:quantize_model", "aiterms.dpo:dpo_loss",
          "aiterms.dpo:train_dpo")

#: the plain value of "raised ValueError"
RAISED = grading.RAISED


def _calling(fn: Callable, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except ValueError:
        return False, None




# ------------------------------------------------------------------------------------------------ quantize
def _matrix(rng: random.Random, rows: int, cols: int) -> list[list[float]]:
    out = []
    for _ in range(rows):
        spread = rng.choice([0.02, 0.1, 1.0, 3.0])
        row = [rng.gauss(0.0, spread) for _ in range(cols)]
        if rng.random() < 0.25:   # the largest magnitude is negative
            k = rng.randrange(cols)
            row[k] = -abs(row[k]) - 4 * spread
        out.append(row)
    return out


def quantize_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"w": [[0.5, -1.27, 0.0], [2.54, 1.0, -0.01]], "bits": 8},
        {"w": [[127.0, 2.5, -3.5, 0.5, -0.5, 1.5]], "bits": 8},          # scale 1: exact halves round to even
        {"w": [[7.0, 2.5, -3.5, 0.5, 1.5, -6.5]], "bits": 4},            # scale 1 for int4
        {"w": [[-5.0, 1.0, 2.0], [0.3, -0.2, 0.1]], "bits": 8},          # the largest magnitude is negative
        {"w": [[0.0, 0.0], [1.0, -2.0]], "bits": 8},                     # a row of zeros
        {"w": [[0.0, 0.0, 0.0]], "bits": 4},
        {"w": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "bits": 8},          # rows of very different scales
        {"w": [[0.001, -0.002, 0.0005]], "bits": 8},                     # tiny weights
        {"w": [[1.0, 2.0]], "bits": 3},                                  # invalid bits
        {"w": [[1.0, 2.0]], "bits": 16},
        {"w": [1.0, 2.0, 3.0], "bits": 8},                               # not a matrix
    ]
    for i in range(22):
        rows, cols = rng.randint(1, 7), rng.randint(1, 9)
        w = _matrix(rng, rows, cols)
        if i % 5 == 0:
            w[rng.randrange(rows)] = [0.0] * cols
        cases.append({"w": w, "bits": 4 if i % 3 == 0 else 8})
    return cases


def call_quantize(fn: Callable, case: dict) -> Any:
    ok, out = _calling(fn, torch.tensor(case["w"], dtype=torch.float32), bits=case["bits"])
    if not ok:
        return list(RAISED)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("quantize_per_channel should return a pair (q, scale)")
    q, scale = out
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q should be a torch.int8 tensor, got "
                        f"{q.dtype if isinstance(q, torch.Tensor) else type(q).__name__}")
    if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
        raise TypeError("scale should be a float tensor")
    return ["returned", q.tolist(), scale.float().tolist()]


@grading.plain_compare("should raise ValueError: bits must be 4 or 8 and w a 2-D matrix",
                       "raised ValueError for an input it should accept")
def compare_quantize(got: Any, expected: Any, case: dict) -> str | None:
    _, q, s = got
    _, eq, es = expected
    if not isinstance(s, list) or len(s) != len(es):
        return f"scale should have one entry per row ({len(es)}), got {len(s) if isinstance(s, list) else s!r}"
    if any(isinstance(x, float) and math.isnan(x) for x in s):
        return "scale contains NaN (a row of zeros?)"
    problem = grading.compare_values(s, es)
    if problem:
        return problem.replace("the result", "scale", 1)
    if not isinstance(q, list) or len(q) != len(eq) or any(not isinstance(r, list) or len(r) != len(e)
                                                           for r, e in zip(q, eq)):
        return "q should have the shape of w"
    for i, (row, erow, wrow) in enumerate(zip(q, eq, case["w"])):
        for j, (a, b, w) in enumerate(zip(row, erow, wrow)):
            if a == b:
                continue
            x = torch.tensor(w, dtype=torch.float32) / torch.tensor(es[i], dtype=torch.float32)
            frac = abs(float(x) - math.floor(float(x)) - 0.5)
            if 0 < frac < 1e-4 and abs(a - b) == 1:
                continue
            return f"q[{i}][{j}] is wrong"
    return None


def describe_quantize(case: dict) -> str:
    w = case["w"]
    shape = (len(w), len(w[0])) if w and isinstance(w[0], list) else (len(w),)
    return f"w of shape {shape}, bits={case['bits']}"


# ------------------------------------------------------------------------------------------------ dequantize
def dequantize_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"q": [[50, -127, 0], [127, 50, 0]], "scale": [0.01, 0.02]},
        {"q": [[1, 2], [3, 4]], "scale": [0.5, 2.0]},                 # square: scales must follow the rows
        {"q": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "scale": [1.0, 10.0, 100.0]},
        {"q": [[0, 0, 0, 0]], "scale": [1.0]},
        {"q": [[7, -8, 3]], "scale": [0.25]},
        {"q": [[1, 2], [3, 4]], "scale": [1.0, 2.0, 3.0]},            # one scale per row is required
        {"q": [[1, 2, 3], [4, 5, 6]], "scale": [1.0, 2.0, 3.0]},
    ]
    for i in range(20):
        rows = rng.randint(1, 6)
        cols = rows if i % 4 == 0 else rng.randint(1, 8)
        levels = 7 if i % 3 == 0 else 127
        cases.append({"q": [[rng.randint(-levels, levels) for _ in range(cols)] for _ in range(rows)],
                      "scale": [rng.choice([0.5, 1.0, 1e-3]) * rng.random() + 1e-4 for _ in range(rows)]})
    return cases


def call_dequantize(fn: Callable, case: dict) -> Any:
    q = torch.tensor(case["q"], dtype=torch.int8)
    ok, out = _calling(fn, q, torch.tensor(case["scale"], dtype=torch.float32))
    if not ok:
        return list(RAISED)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise TypeError(f"dequantize_per_channel should return a float tensor, got "
                        f"{out.dtype if isinstance(out, torch.Tensor) else type(out).__name__}")
    return ["returned", out.float().tolist()]


@grading.plain_compare("should raise ValueError: scale must have one entry per row of q",
                       "raised ValueError for an input it should accept")
def compare_dequantize(got: Any, expected: Any, case: dict) -> str | None:
    return grading.compare_values(got[1], expected[1])


def describe_dequantize(case: dict) -> str:
    return f"q of shape ({len(case['q'])}, {len(case['q'][0])}), {len(case['scale'])} scales"


# ------------------------------------------------------------------------------------------------ latency_check
def latency_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"latencies": [10.0, 20.0, 30.0, 40.0, 50.0], "p50_max_ms": 30.0, "p95_max_ms": 60.0},   # p50 == max
        {"latencies": [50.0, 10.0, 40.0, 20.0, 30.0], "p50_max_ms": 35.0, "p95_max_ms": 45.0},   # unsorted
        {"latencies": [7.0], "p50_max_ms": 7.0, "p95_max_ms": 7.0},
        {"latencies": [10.0, 30.0], "p50_max_ms": 20.0, "p95_max_ms": 30.0},                     # p50 interpolated
        {"latencies": [float(x) for x in range(1, 22)], "p50_max_ms": 11.0, "p95_max_ms": 20.0},  # exact ranks
        {"latencies": [float(x) for x in range(1, 22)], "p50_max_ms": 11.0, "p95_max_ms": 19.99},
        {"latencies": [1.0, 1.0, 1.0, 1.0, 100.0], "p50_max_ms": 5.0, "p95_max_ms": 90.0},       # one slow outlier
        {"latencies": [12.0, 11.0, 13.0, 250.0, 12.5, 11.5, 12.2, 14.0, 13.3, 12.9], "p50_max_ms": 50.0,
         "p95_max_ms": 200.0},
        {"latencies": [0.0, 0.0, 0.0], "p50_max_ms": 0.0, "p95_max_ms": 0.0},
        {"latencies": [], "p50_max_ms": 10.0, "p95_max_ms": 10.0},
        {"latencies": [5.0, -1.0], "p50_max_ms": 10.0, "p95_max_ms": 10.0},
        {"latencies": [5.0, 1.0, -0.5], "p50_max_ms": 10.0, "p95_max_ms": 10.0},
    ]
    for i in range(20):
        n = rng.choice([2, 3, 4, 5, 8, 10, 19, 20, 30, 47])
        base = rng.choice([5.0, 20.0, 80.0])
        lat = [base * rng.lognormvariate(0.0, 0.4) for _ in range(n)]
        if i % 4 == 0:
            lat[rng.randrange(n)] *= 10
        cases.append({"latencies": lat, "p50_max_ms": base * rng.choice([0.8, 1.0, 1.3, 2.0]),
                      "p95_max_ms": base * rng.choice([1.5, 2.0, 3.0, 12.0])})
    return cases


def call_latency(fn: Callable, case: dict) -> Any:
    ok, out = _calling(fn, list(case["latencies"]), case["p50_max_ms"], case["p95_max_ms"])
    if not ok:
        return list(RAISED)
    if not isinstance(out, dict) or not {"p50_ms", "p95_ms", "passed"} <= set(out):
        raise TypeError("latency_check should return a dict with keys 'p50_ms', 'p95_ms' and 'passed'")
    passed = out["passed"]
    if not isinstance(grading.to_plain(passed), bool):
        raise TypeError(f"'passed' should be a bool, got {type(passed).__name__}")
    return ["returned", float(out["p50_ms"]), float(out["p95_ms"]), grading.to_plain(passed)]


@grading.plain_compare("should raise ValueError: the latencies must be a non-empty list of finite numbers >= 0",
                       "raised ValueError for an input it should accept")
def compare_latency(got: Any, expected: Any, case: dict) -> str | None:
    for k, name in ((1, "p50_ms"), (2, "p95_ms")):
        if not grading.close(got[k], expected[k]):
            return f"{name} is wrong"
    return None if got[3] == expected[3] else "'passed' is wrong"


def describe_latency(case: dict) -> str:
    return (f"{len(case['latencies'])} latencies, p50_max_ms={case['p50_max_ms']:.4g}, "
            f"p95_max_ms={case['p95_max_ms']:.4g}")


# ------------------------------------------------------------------------------------------------ dpo_loss
_DPO_KEYS = ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected")


def _logps(rng: random.Random, n: int, scale: float) -> list[float]:
    return [round(-abs(rng.gauss(0.0, scale)) - 0.01, 4) for _ in range(n)]


def dpo_cases(rng: random.Random) -> list[dict]:
    same = [-3.0, -1.5]
    cases = [
        dict(zip(_DPO_KEYS, ([-1.0], [-3.0], [-2.0], [-2.0])), beta=0.5),           # margin 1: -log sigmoid(1)
        dict(zip(_DPO_KEYS, (same, same, same, same)), beta=0.1),                    # log 2, rewards 0
        dict(zip(_DPO_KEYS, ([-5.0, -2.0], [-1.0, -4.0], [-4.0, -3.0], [-2.0, -2.0])), beta=1.0),
        dict(zip(_DPO_KEYS, ([-1.0], [-400.0], [-300.0], [-2.0])), beta=1.0),        # margin +697
        dict(zip(_DPO_KEYS, ([-400.0], [-1.0], [-2.0], [-300.0])), beta=1.0),        # margin -697: must not overflow
        dict(zip(_DPO_KEYS, ([-1.0, -2.0], [-1.0], [-1.0, -2.0], [-1.0, -2.0])), beta=0.1),   # lengths differ
        dict(zip(_DPO_KEYS, ([-1.0], [-1.0, -2.0, -3.0], [-1.0], [-1.0])), beta=0.1),  # would broadcast
        dict(zip(_DPO_KEYS, ([], [], [], [])), beta=0.1),                            # no pairs
        dict(zip(_DPO_KEYS, ([-1.0], [-2.0], [-1.0], [-2.0])), beta=0.0),            # beta must be > 0
        dict(zip(_DPO_KEYS, ([-1.0], [-2.0], [-1.0], [-2.0])), beta=-0.5),
    ]
    for i in range(16):
        n = rng.randint(1, 9)
        scale = rng.choice([0.5, 2.0, 10.0, 60.0])
        case = {k: _logps(rng, n, scale) for k in _DPO_KEYS}
        case["beta"] = rng.choice([0.05, 0.1, 0.5, 1.0, 2.0])
        cases.append(case)
    return cases


def call_dpo(fn: Callable, case: dict) -> Any:
    pc, pr = (torch.tensor(case[k], dtype=torch.float32, requires_grad=True) for k in _DPO_KEYS[:2])
    rc, rr = (torch.tensor(case[k], dtype=torch.float32) for k in _DPO_KEYS[2:])
    try:
        out = fn(pc, pr, rc, rr, case["beta"])
    except ValueError:
        return list(RAISED)
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError(f"dpo_loss should return a tuple (loss, chosen_rewards, rejected_rewards), got "
                        f"{type(out).__name__}")
    loss, chosen, rejected = out
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise TypeError("the loss should be a scalar (0-dimensional) tensor")
    if not loss.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    g_pc, g_pr = torch.autograd.grad(loss, (pc, pr), allow_unused=True)
    g_pc = torch.zeros_like(pc) if g_pc is None else g_pc
    g_pr = torch.zeros_like(pr) if g_pr is None else g_pr
    return ["returned", loss.detach().float(), torch.as_tensor(chosen).detach().float(),
            torch.as_tensor(rejected).detach().float(), g_pc.float(), g_pr.float()]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_dpo(got: Any, expected: Any, case: dict) -> str | None:
    if not isinstance(got, list) or len(got) != 6:
        return "could not read the result"
    if got[1] != got[1] or got[1] in (float("inf"), float("-inf")):
        return "the loss is not finite: use a numerically stable log-sigmoid for large margins"
    for k, name in ((1, "the loss"), (2, "chosen_rewards"), (3, "rejected_rewards")):
        problem = grading.compare_values(got[k], expected[k])
        if problem:
            return problem.replace("the result", name, 1)
    for k, name in ((4, "policy_chosen_logps"), (5, "policy_rejected_logps")):
        problem = grading.compare_gradient(got[k], expected[k], name)
        if problem:
            return problem
    return None


def describe_dpo(case: dict) -> str:
    return (f"{', '.join(f'{len(case[k])} {k}' for k in _DPO_KEYS)} log-probabilities, beta = {case['beta']}")


TASKS = [
    Task("quantize_per_channel", "test_quantize_per_channel", 3, quantize_cases, call_quantize,
         "aiterms.quantization:quantize_per_channel", compare=compare_quantize, describe=describe_quantize,
         forbid=FORBID),
    Task("dequantize_per_channel", "test_dequantize_per_channel", 1, dequantize_cases, call_dequantize,
         "aiterms.quantization:dequantize_per_channel", compare=compare_dequantize, describe=describe_dequantize,
         forbid=FORBID),
    Task("latency_check", "test_latency_check", 2, latency_cases, call_latency, "aiterms.readiness:latency_check",
         compare=compare_latency, describe=describe_latency, forbid=FORBID),
    Task("dpo_loss", "test_dpo_loss", 3, dpo_cases, call_dpo, "aiterms.dpo:dpo_loss", compare=compare_dpo,
         describe=describe_dpo, forbid=FORBID),
]
