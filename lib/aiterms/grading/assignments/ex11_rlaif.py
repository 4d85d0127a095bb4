"""Hidden checks of exercise 11 (RLAIF): judge_both_orders and agreement_rate.

Cases are plain data. For ``judge_both_orders`` a case holds the prompts, the two answer lists and a toy judge: a
score per answer text and a position bias, ``P(first better) = sigmoid(score(first) - score(second) + bias)`` (or the
raw logit, to check that out-of-range judge outputs are refused); ``call`` builds the judge as a function. A
reference that raises ``ValueError`` gives the plain value ``RAISED``, and so must the learner's function.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "11-rlaif"

FORBID = ("aiterms.ai_judge:judge_both_orders", "aiterms.ai_judge:agreement_rate", "aiterms.ai_judge:position_bias")

#: the plain value of "raised ValueError"
RAISED = grading.RAISED

ANSWERS = ("132", "7+5+0=12|4+8+1=13|=132", "7+5+0=12|4+8+0=12|=122", "122", "", "=132", "13", "4+8+1=13|=13")


# ------------------------------------------------------------------------------------------------ judge_both_orders
def make_judge(case: dict) -> Callable:
    """The toy judge of a case: ``judge(prompts, first, second) -> (N,)`` float64 tensor."""
    scores, bias, raw = case["scores"], case["bias"], case.get("raw", False)

    def judge(prompts, first, second):
        logits = torch.tensor([scores[x] - scores[y] + bias for x, y in zip(first, second)], dtype=torch.float64)
        return logits if raw else torch.sigmoid(logits)
    return judge


def _judge_case(rng: random.Random, n: int, bias: float, raw: bool = False) -> dict:
    answers = rng.sample(ANSWERS, rng.randint(2, len(ANSWERS)))
    scores = {x: round(rng.gauss(0.0, 1.5), 3) for x in answers}
    a = [rng.choice(answers) for _ in range(n)]
    b = [rng.choice(answers) for _ in range(n)]
    return {"prompts": [f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=" for _ in range(n)], "a": a, "b": b,
            "scores": scores, "bias": bias, "raw": raw}


def judge_cases(rng: random.Random) -> list[dict]:
    s = {"x": 1.0, "y": 0.0, "z": -0.5}
    cases = [
        {"prompts": ["p"], "a": ["x"], "b": ["y"], "scores": s, "bias": 0.0},            # no bias: unchanged
        {"prompts": ["p"], "a": ["x"], "b": ["y"], "scores": s, "bias": 1.0},            # bias cancels
        {"prompts": ["p", "q"], "a": ["x", "y"], "b": ["y", "y"], "scores": s, "bias": 2.0},   # equal answers: 0.5
        {"prompts": ["p", "q", "r"], "a": ["z", "x", "y"], "b": ["x", "z", "z"], "scores": s, "bias": -0.7},
        {"prompts": ["p", "q"], "a": ["x", "y"], "b": ["y"], "scores": s, "bias": 0.0},        # b is shorter
        {"prompts": ["p"], "a": ["x", "y"], "b": ["y", "x"], "scores": s, "bias": 0.0},        # prompts shorter
        {"prompts": ["p", "q"], "a": ["x", "y"], "b": ["y", "z"], "scores": s, "bias": 0.5, "raw": True},
        {"prompts": [], "a": [], "b": [], "scores": s, "bias": 0.0},                            # no pairs: empty
    ]
    for i in range(16):
        cases.append(_judge_case(rng, rng.randint(1, 8), round(rng.uniform(-2.5, 2.5), 3), raw=(i == 7)))
    return cases


def call_judge(fn: Callable, case: dict) -> Any:
    try:
        out = fn(make_judge(case), list(case["prompts"]), list(case["a"]), list(case["b"]))
    except ValueError:
        return list(RAISED)
    if isinstance(out, torch.Tensor):
        out = out.detach().double().reshape(-1).tolist() if out.dim() == 1 else out
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"judge_both_orders should return a 1-D tensor of probabilities, got {type(out).__name__}")
    return ["returned", [float(x) for x in out]]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_judge(got: Any, expected: Any, case: dict) -> str | None:
    values = got[1]
    if len(values) != len(expected[1]):
        return f"should return {len(expected[1])} probabilities (one per pair), got {len(values)}"
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return "returned NaN"
    return grading.compare_values(values, expected[1])


def describe_judge(case: dict) -> str:
    return (f"{len(case['a'])} pairs, a judge with position bias {case['bias']}"
            + (" that returns logits, not probabilities" if case.get("raw") else ""))


# ------------------------------------------------------------------------------------------------ agreement_rate
def agreement_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"p": [0.9, 0.2, 0.6], "labels": [1, 0, 0], "tensor": True},      # 2 of 3
        {"p": [0.5, 0.5], "labels": [1, 0], "tensor": True},              # abstentions: half a point each
        {"p": [0.5, 0.7, 0.1, 0.5], "labels": [1, 1, 0, 1], "tensor": False},
        {"p": [1.0, 0.0], "labels": [1, 1], "tensor": False},
        {"p": [0.51, 0.49], "labels": [0, 1], "tensor": True},
        {"p": [0.9, 0.2], "labels": [1, 0, 1], "tensor": True},            # different lengths
        {"p": [0.9], "labels": [1, 0, 1], "tensor": True},                 # would broadcast
        {"p": [], "labels": [], "tensor": False},                          # no pairs
        {"p": [1.2, 0.3], "labels": [1, 0], "tensor": True},               # not a probability
        {"p": [0.3, -0.1], "labels": [0, 0], "tensor": False},
        {"p": [0.8, 0.3], "labels": [1, 2], "tensor": True},               # a label that is not 0/1
        {"p": [2.0, -1.5, 0.3], "labels": [1, 0, 0], "tensor": False},     # logits instead of probabilities
    ]
    for i in range(16):
        n = rng.randint(1, 12)
        p = [rng.choice([0.5, round(rng.random(), 3), round(rng.random(), 3), 0.0, 1.0]) for _ in range(n)]
        labels = [rng.randint(0, 1) for _ in range(n)]
        cases.append({"p": p, "labels": labels, "tensor": i % 2 == 0})
    return cases


def call_agreement(fn: Callable, case: dict) -> Any:
    p, labels = case["p"], case["labels"]
    if case["tensor"]:
        p, labels = torch.tensor(p, dtype=torch.float64), torch.tensor(labels)
    try:
        out = fn(p, labels)
    except ValueError:
        return list(RAISED)
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise TypeError(f"agreement_rate should return one number, got a tensor of shape {tuple(out.shape)}")
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        raise TypeError(f"agreement_rate should return a float, got {type(out).__name__}")
    return ["returned", float(out)]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_agreement(got: Any, expected: Any, case: dict) -> str | None:
    return grading.compare_values(got[1], expected[1])


def describe_agreement(case: dict) -> str:
    return f"{len(case['p'])} probabilities and {len(case['labels'])} labels"


TASKS = [
    Task("judge_both_orders", "test_judge_both_orders", 4, judge_cases, call_judge,
         "aiterms.ai_judge:judge_both_orders", compare=compare_judge, describe=describe_judge, forbid=FORBID),
    Task("agreement_rate", "test_agreement_rate", 3, agreement_cases, call_agreement,
         "aiterms.ai_judge:agreement_rate", compare=compare_agreement, describe=describe_agreement, forbid=FORBID),
]
