"""Hidden checks of exercise 7 (GRPO): group_advantages and grpo_loss.

Cases are plain data: lists of rewards and a group size for ``group_advantages``; nested lists of log-probabilities,
advantages and masks plus the hyperparameters for ``grpo_loss`` (the ``call`` functions build the tensors). For the
loss, both its value and its gradient with respect to ``logp`` are compared, so a loss that is right in value but
blocks or bends the gradient (a detached ratio, a number instead of a tensor) fails too.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "07-grpo"

FORBID = ("aiterms.grpo:group_advantages", "aiterms.grpo:grpo_loss", "aiterms.grpo:kl_k3", "aiterms.grpo:aggregate")

#: the plain value of "raised ValueError"
RAISED = grading.RAISED

#: the reward values of the course's arithmetic task (right/wrong x well formed or not), and a few others
REWARDS = (0.0, 0.1, 0.9, 1.0)


# ------------------------------------------------------------------------------------------------ group_advantages
def group_advantages_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"rewards": [1.0, 0.0, 0.0, 0.0], "group_size": 4, "scale_std": True, "eps": 1e-4},
        {"rewards": [1.0, 0.0, 0.0, 0.5, 0.5, 0.5], "group_size": 3, "scale_std": True, "eps": 1e-4},  # equal group
        {"rewards": [1.0, 1.0, 1.0, 1.0], "group_size": 2, "scale_std": True, "eps": 1e-4},     # all equal: zeros
        {"rewards": [1.0, 0.0, 0.1, 0.9], "group_size": 2, "scale_std": False, "eps": 1e-4},
        {"rewards": [0.0, 1.0, 1.0, 0.0, 0.0, 0.0], "group_size": 2, "scale_std": True, "eps": 0.5},  # a big eps
        {"rewards": [0.2, 0.4, 0.9, 0.0, 0.0, 1.0], "group_size": 6, "scale_std": True, "eps": 1e-4},  # one group
        {"rewards": [3.0, -1.0, 2.0, 2.0, 0.0, 5.0], "group_size": 3, "scale_std": False, "eps": 1e-2},
        {"rewards": [1.0, 0.0, 1.0], "group_size": 2, "scale_std": True, "eps": 1e-4},          # 3 not divisible by 2
        {"rewards": [1.0, 0.0, 1.0, 0.0], "group_size": 3, "scale_std": False, "eps": 1e-4},
        {"rewards": [1.0, 0.0], "group_size": 1, "scale_std": True, "eps": 1e-4},               # no group of one
    ]
    for i in range(22):
        G, P = rng.randint(2, 8), rng.randint(1, 5)
        if i % 3 == 0:
            rewards = [round(rng.uniform(-2.0, 3.0), 3) for _ in range(G * P)]
        else:
            rewards = [rng.choice(REWARDS) for _ in range(G * P)]
        if i % 4 == 1:  # a group of equal rewards
            k = rng.randrange(P)
            rewards[k * G:(k + 1) * G] = [rng.choice(REWARDS)] * G
        cases.append({"rewards": rewards, "group_size": G, "scale_std": i % 5 != 2,
                      "eps": rng.choice([1e-4, 1e-4, 1e-3, 0.1, 0.5])})
    return cases


def call_group_advantages(fn: Callable, case: dict) -> Any:
    rewards = torch.tensor(case["rewards"], dtype=torch.float32)
    try:
        out = fn(rewards, case["group_size"], scale_std=case["scale_std"], eps=case["eps"])
    except ValueError:
        return list(RAISED)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"group_advantages should return a tensor, got {type(out).__name__}")
    return ["returned", out.detach().float()]


@grading.plain_compare("should raise ValueError for these rewards and group size",
                        "raised ValueError for rewards and a group size it should accept")
def compare_group_advantages(got: Any, expected: Any, case: dict) -> str | None:
    values = got[1]
    if not isinstance(values, list) or len(values) != len(expected[1]):
        return f"should return {len(expected[1])} advantages (one per reward), got {values!r:.60}"
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return "returned NaN: a group whose rewards are all equal must get advantage 0"
    return grading.compare_values(values, expected[1])


def describe_group_advantages(case: dict) -> str:
    return (f"rewards={case['rewards']}, group_size={case['group_size']}, scale_std={case['scale_std']}, "
            f"eps={case['eps']}")


# ------------------------------------------------------------------------------------------------ grpo_loss
def _mask(rng: random.Random, N: int, T: int) -> list[list[float]]:
    """Rows as a rollout makes them: prompt (0), response (1), padding (0); some rows long, some short."""
    rows = []
    for _ in range(N):
        start = rng.randint(0, min(2, T - 1))
        end = rng.randint(start + 1, T)
        rows.append([float(start <= t < end) for t in range(T)])
    return rows


def loss_case(rng: random.Random, loss_type: str, beta: float, max_len: int | None, spread: float) -> dict:
    N, T = rng.randint(2, 5), rng.randint(3, 8)
    logp = [[round(-rng.uniform(0.01, 3.0), 4) for _ in range(T)] for _ in range(N)]
    old = [[round(x + rng.gauss(0.0, spread), 4) for x in row] for row in logp]   # ratios in and out of the clip
    ref = [[round(x + rng.gauss(0.0, 0.5), 4) for x in row] for row in logp]
    adv = [round(rng.gauss(0.0, 1.0), 4) for _ in range(N)]
    return {"logp": logp, "old_logp": old, "ref_logp": ref if beta > 0 or rng.random() < 0.5 else None,
            "advantages": adv, "mask": _mask(rng, N, T), "clip_eps": rng.choice([0.1, 0.2, 0.3]), "beta": beta,
            "loss_type": loss_type, "max_len": max_len if max_len is None else max(max_len, T)}


def grpo_loss_cases(rng: random.Random) -> list[dict]:
    cases = [
        # by hand: one response of 2 tokens, ratio e^0.5 ~ 1.65 clipped to 1.2 for A = +1, not for A = -1
        {"logp": [[0.5, 0.0]], "old_logp": [[0.0, 0.0]], "ref_logp": None, "advantages": [1.0],
         "mask": [[1.0, 1.0]], "clip_eps": 0.2, "beta": 0.0, "loss_type": "grpo", "max_len": None},
        {"logp": [[0.5, 0.0]], "old_logp": [[0.0, 0.0]], "ref_logp": None, "advantages": [-1.0],
         "mask": [[1.0, 1.0]], "clip_eps": 0.2, "beta": 0.0, "loss_type": "grpo", "max_len": None},
        # ratio below 1 - eps: clipped for A = -1, not for A = +1
        {"logp": [[-1.0, -0.5]], "old_logp": [[-0.5, -0.5]], "ref_logp": None, "advantages": [-1.0],
         "mask": [[1.0, 1.0]], "clip_eps": 0.2, "beta": 0.0, "loss_type": "grpo", "max_len": None},
        # responses of 1 and 3 tokens: the three aggregations differ
        *[{"logp": [[-0.5, -1.0, -2.0, -0.1], [-1.5, -0.2, -0.7, -0.3]],
           "old_logp": [[-0.6, -1.0, -2.0, -0.4], [-1.2, -0.2, -0.9, -0.3]], "ref_logp": None,
           "advantages": [1.5, -0.5], "mask": [[0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]], "clip_eps": 0.2,
           "beta": 0.0, "loss_type": lt, "max_len": ml} for lt, ml in (("grpo", None), ("bnpo", None),
                                                                      ("dr_grpo", None), ("dr_grpo", 10))],
        # the KL term alone (advantages 0): k3 = exp(ref - logp) - (ref - logp) - 1
        {"logp": [[-1.0, -2.0, -0.5]], "old_logp": [[-1.0, -2.0, -0.5]], "ref_logp": [[-0.5, -2.5, -0.5]],
         "advantages": [0.0], "mask": [[1.0, 1.0, 1.0]], "clip_eps": 0.2, "beta": 0.1, "loss_type": "grpo",
         "max_len": None},
        # padding holds garbage that must not count
        {"logp": [[-0.3, -9.0], [-0.2, -0.4]], "old_logp": [[-0.3, 5.0], [-0.2, -0.4]],
         "ref_logp": [[-0.3, 7.0], [-0.1, -0.4]], "advantages": [1.0, -1.0], "mask": [[1.0, 0.0], [1.0, 1.0]],
         "clip_eps": 0.2, "beta": 0.04, "loss_type": "bnpo", "max_len": None},
    ]
    for i in range(24):
        loss_type = ("grpo", "bnpo", "dr_grpo")[i % 3]
        beta = (0.0, 0.04, 0.3)[(i // 3) % 3]
        max_len = rng.choice([None, 8, 12]) if loss_type == "dr_grpo" else None
        cases.append(loss_case(rng, loss_type, beta, max_len, rng.choice([0.05, 0.3, 0.6])))
    return cases


def call_grpo_loss(fn: Callable, case: dict) -> Any:
    logp = torch.tensor(case["logp"], dtype=torch.float32, requires_grad=True)
    tensor = lambda key: None if case[key] is None else torch.tensor(case[key], dtype=torch.float32)
    out = fn(logp, tensor("old_logp"), tensor("advantages"), tensor("mask"), ref_logp=tensor("ref_logp"),
             clip_eps=case["clip_eps"], beta=case["beta"], loss_type=case["loss_type"], max_len=case["max_len"])
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise TypeError(f"grpo_loss should return a scalar (0-dimensional) tensor, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through to logp (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    (grad,) = torch.autograd.grad(out, logp)
    return [out.detach().float(), grad.float()]   # [loss, d loss / d logp]


@grading.plain_compare()
def compare_grpo_loss(got: Any, expected: Any, case: dict) -> str | None:
    if not isinstance(got, list) or len(got) != 2:
        return "could not read the result"
    problem = grading.compare_values(got[0], expected[0])
    if problem:
        return problem.replace("the result", "the loss", 1)
    g, e = got[1], expected[1]
    if not isinstance(g, list) or len(g) != len(e) or any(not isinstance(r, list) or len(r) != len(s)
                                                          for r, s in zip(g, e)):
        return "could not read the gradient"
    for row_g, row_e in zip(g, e):
        for x, y in zip(row_g, row_e):
            if abs(x - y) > 1e-5 + 1e-4 * abs(y):
                return "the loss has the right value but the wrong gradient with respect to logp"
    return None


def describe_grpo_loss(case: dict) -> str:
    n, t = len(case["logp"]), len(case["logp"][0])
    return (f"logp of shape ({n}, {t}), clip_eps={case['clip_eps']}, beta={case['beta']}, "
            f"loss_type={case['loss_type']!r}, max_len={case['max_len']}")


TASKS = [
    Task("group_advantages", "test_group_advantages", 3, group_advantages_cases, call_group_advantages,
         "aiterms.grpo:group_advantages", compare=compare_group_advantages, describe=describe_group_advantages,
         forbid=FORBID),
    Task("grpo_loss", "test_grpo_loss", 4, grpo_loss_cases, call_grpo_loss, "aiterms.grpo:grpo_loss",
         compare=compare_grpo_loss, describe=describe_grpo_loss, forbid=FORBID),
]
