"""Hidden checks of exercise 10 (RLHF): bradley_terry_loss, pairwise_accuracy and token_rewards (the KL-shaped reward).

Cases are plain data: lists of rewards of the chosen and the rejected answers (and an optional margin); the ``call``
functions build the tensors. For the loss, its value and its gradients with respect to both reward tensors are
compared, so a loss that is right in value but detached, or that overflows for large reward differences, fails. A
reference that raises ``ValueError`` (pairs of different lengths, no pairs) gives the plain value ``RAISED``, and so
must the learner's function.
"""
from __future__ import annotations

import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "10-rlhf"

FORBID = ("aiterms.reward_model:bradley_terry_loss", "aiterms.reward_model:pairwise_accuracy",
          "aiterms.ppo_lm:token_rewards", "aiterms.ppo_lm:train")

#: the plain value of "raised ValueError"
RAISED = grading.RAISED


def _rewards(rng: random.Random, n: int, scale: float) -> list[float]:
    return [round(rng.gauss(0.0, scale), 4) for _ in range(n)]


# ------------------------------------------------------------------------------------------------ bradley_terry_loss
def loss_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"r_chosen": [0.0], "r_rejected": [0.0], "margin": None},                       # log 2
        {"r_chosen": [1.0, 2.0], "r_rejected": [0.0, 3.0], "margin": None},
        {"r_chosen": [2.0, -1.0, 0.5], "r_rejected": [1.0, 1.0, 0.5], "margin": [0.5, 0.0, 1.0]},
        {"r_chosen": [60.0, -60.0], "r_rejected": [-60.0, 60.0], "margin": None},        # differences of +-120
        {"r_chosen": [-200.0], "r_rejected": [0.0], "margin": None},                     # log(sigmoid) underflows
        {"r_chosen": [1.0, 2.0, 3.0], "r_rejected": [1.0, 2.0], "margin": None},         # different lengths
        {"r_chosen": [1.0], "r_rejected": [0.0, 0.0, 0.0], "margin": None},              # would broadcast
        {"r_chosen": [], "r_rejected": [], "margin": None},                              # no pairs
        {"r_chosen": [0.3, 0.1], "r_rejected": [0.2, 0.9], "margin": [1.0]},             # a margin of the wrong length
    ]
    for i in range(18):
        n = rng.randint(1, 9)
        scale = rng.choice([0.5, 1.0, 3.0, 30.0])
        margin = [round(rng.uniform(0.0, 2.0), 3) for _ in range(n)] if i % 3 == 0 else None
        cases.append({"r_chosen": _rewards(rng, n, scale), "r_rejected": _rewards(rng, n, scale), "margin": margin})
    return cases


def call_loss(fn: Callable, case: dict) -> Any:
    rc = torch.tensor(case["r_chosen"], dtype=torch.float32, requires_grad=True)
    rr = torch.tensor(case["r_rejected"], dtype=torch.float32, requires_grad=True)
    margin = None if case["margin"] is None else torch.tensor(case["margin"], dtype=torch.float32)
    try:
        out = fn(rc, rr, margin) if margin is not None else fn(rc, rr)
    except ValueError:
        return list(RAISED)
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise TypeError(f"bradley_terry_loss should return a scalar (0-dimensional) tensor, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    gc, gr = torch.autograd.grad(out, (rc, rr), allow_unused=True)
    gc = torch.zeros_like(rc) if gc is None else gc
    gr = torch.zeros_like(rr) if gr is None else gr
    return ["returned", out.detach().float(), gc.float(), gr.float()]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_loss(got: Any, expected: Any, case: dict) -> str | None:
    if not isinstance(got, list) or len(got) != 4:
        return "could not read the result"
    if got[1] != got[1] or got[1] in (float("inf"), float("-inf")):
        return "the loss is not finite: use a numerically stable log-sigmoid for large reward differences"
    problem = grading.compare_values(got[1], expected[1])
    if problem:
        return problem.replace("the result", "the loss", 1)
    for k, name in ((2, "r_chosen"), (3, "r_rejected")):
        problem = grading.compare_gradient(got[k], expected[k], name)
        if problem:
            return problem
    return None


def describe_loss(case: dict) -> str:
    return (f"{len(case['r_chosen'])} chosen and {len(case['r_rejected'])} rejected rewards"
            + ("" if case["margin"] is None else f", a margin of {len(case['margin'])}"))


# ------------------------------------------------------------------------------------------------ pairwise_accuracy
def accuracy_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"r_chosen": [1.0, 2.0, 3.0], "r_rejected": [0.0, 1.0, 4.0]},     # 2 of 3
        {"r_chosen": [0.5, 0.5], "r_rejected": [0.5, 0.0]},               # a tie: half a point
        {"r_chosen": [0.0, 0.0, 0.0, 0.0], "r_rejected": [0.0, 0.0, 0.0, 0.0]},   # all ties: chance
        {"r_chosen": [-1.0], "r_rejected": [-2.0]},
        {"r_chosen": [-1.0], "r_rejected": [3.0]},
        {"r_chosen": [1.0, 2.0], "r_rejected": [0.0, 1.0, 5.0]},          # different lengths
        {"r_chosen": [1.0], "r_rejected": [0.0, 5.0, 5.0]},               # would broadcast
        {"r_chosen": [], "r_rejected": []},
    ]
    for i in range(18):
        n = rng.randint(1, 12)
        rc = [float(rng.randint(-3, 3)) if i % 2 else round(rng.gauss(0, 1), 3) for _ in range(n)]
        rr = [float(rng.randint(-3, 3)) if i % 2 else round(rng.gauss(0, 1), 3) for _ in range(n)]
        if i % 4 == 3:
            rr[rng.randrange(n)] = rc[0] if n == 1 else rr[0]
            rr[0] = rc[0]
        cases.append({"r_chosen": rc, "r_rejected": rr})
    return cases


def call_accuracy(fn: Callable, case: dict) -> Any:
    try:
        out = fn(torch.tensor(case["r_chosen"]), torch.tensor(case["r_rejected"]))
    except ValueError:
        return list(RAISED)
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise TypeError(f"pairwise_accuracy should return one number, got a tensor of shape {tuple(out.shape)}")
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        raise TypeError(f"pairwise_accuracy should return a float, got {type(out).__name__}")
    return ["returned", float(out)]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_accuracy(got: Any, expected: Any, case: dict) -> str | None:
    return grading.compare_values(got[1], expected[1])


def describe_accuracy(case: dict) -> str:
    return f"{len(case['r_chosen'])} chosen and {len(case['r_rejected'])} rejected rewards"


# ------------------------------------------------------------------------------------------------ token_rewards
def _span_mask(rng: random.Random, t: int) -> list[float]:
    """A response span: prompt positions (0), response tokens (1), padding (0); sometimes empty."""
    start = rng.randint(0, t // 2)
    length = rng.choice([0, 1] + [rng.randint(2, t - start)] * 4)
    return [1.0 if start <= j < start + length else 0.0 for j in range(t)]


def reward_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"scores": [1.0, 0.1], "logp": [[0.0, -1.0, -2.0, 0.0], [-1.0, -1.0, -1.0, -1.0]],
         "ref_logp": [[-0.5, -1.5, -2.5, -0.5], [-1.5, -1.5, -1.5, -1.5]],
         "mask": [[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], "kl_coef": 0.1},        # the worked case
        {"scores": [2.0], "logp": [[-1.0, -2.0]], "ref_logp": [[-1.0, -1.0]], "mask": [[0.0, 0.0]],
         "kl_coef": 0.1},                                                                 # no response tokens
        {"scores": [0.5], "logp": [[-1.0, -3.0, -0.5]], "ref_logp": [[-2.0, -1.0, -0.5]], "mask": [[1.0, 1.0, 0.0]],
         "kl_coef": 0.0},                                                                 # no KL: the score alone
        {"scores": [1.0, 1.0], "logp": [[-1.0, -1.0]], "ref_logp": [[-1.0, -1.0]], "mask": [[1.0, 1.0]],
         "kl_coef": 0.1},                                                                 # scores (2,) for N = 1
        {"scores": [1.0], "logp": [[-1.0, -1.0]], "ref_logp": [[-1.0, -1.0, -1.0]], "mask": [[1.0, 1.0]],
         "kl_coef": 0.1},                                                                 # ref_logp of another shape
        {"scores": [1.0], "logp": [[-1.0, -1.0]], "ref_logp": [[-1.0, -1.0]], "mask": [[1.0, 1.0]],
         "kl_coef": -0.5},                                                                # a negative KL weight
    ]
    for i in range(16):
        n, t = rng.randint(1, 5), rng.randint(3, 9)
        logp = [[round(-abs(rng.gauss(0, 2)), 3) for _ in range(t)] for _ in range(n)]
        ref = [[round(x + rng.gauss(0, 0.7), 3) for x in row] for row in logp]
        cases.append({"scores": [round(rng.uniform(-1, 2), 3) for _ in range(n)], "logp": logp, "ref_logp": ref,
                      "mask": [_span_mask(rng, t) for _ in range(n)], "kl_coef": rng.choice([0.02, 0.1, 0.5, 1.0])})
    return cases


def call_rewards(fn: Callable, case: dict) -> Any:
    tensors = [torch.tensor(case[k], dtype=torch.float32) for k in ("scores", "logp", "ref_logp", "mask")]
    try:
        out = fn(*tensors, case["kl_coef"])
    except ValueError:
        return list(RAISED)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"token_rewards should return a tensor (N, T), got {type(out).__name__}")
    return ["returned", out.detach().float()]


@grading.plain_compare("should raise ValueError for these inputs",
                        "raised ValueError for inputs it should accept")
def compare_rewards(got: Any, expected: Any, case: dict) -> str | None:
    return grading.compare_values(got[1], expected[1])


def describe_rewards(case: dict) -> str:
    n, t = len(case["logp"]), len(case["logp"][0])
    return f"{n} response(s) of {t} positions, kl_coef = {case['kl_coef']}"


TASKS = [
    Task("bradley_terry_loss", "test_bradley_terry_loss", 4, loss_cases, call_loss,
         "aiterms.reward_model:bradley_terry_loss", compare=compare_loss, describe=describe_loss, forbid=FORBID),
    Task("pairwise_accuracy", "test_pairwise_accuracy", 3, accuracy_cases, call_accuracy,
         "aiterms.reward_model:pairwise_accuracy", compare=compare_accuracy, describe=describe_accuracy,
         forbid=FORBID),
    Task("token_rewards", "test_token_rewards", 3, reward_cases, call_rewards, "aiterms.ppo_lm:token_rewards",
         compare=compare_rewards, describe=describe_rewards, forbid=FORBID),
]
