"""Hidden checks of exercise 6 (PPO): gae and clipped_surrogate_loss.

Cases are plain data (nested lists of floats); ``call`` turns them into tensors.

* ``gae``: ``{"rewards": (T, N), "values": (T, N), "dones": (T, N) of 0.0/1.0, "next_value": (N,), "gamma", "lam"}``.
  Episodes end anywhere, also at the last step (so ``next_value`` must not count there) and at consecutive steps;
  gamma and lambda take their edge values too (0 and 1). The result is compared element for element.
* ``clipped_surrogate_loss``: ``{"logp": [...], "logp_old": [...], "advantages": [...], "clip_eps"}`` (1-D or 2-D).
  The call returns the loss *and* its gradient with respect to ``logp``, so a loss that is right in value but cut off
  from the graph (``.item()``, numpy) or that clips where it should not fails too.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import torch

from aiterms.grading.tasks import Task

ASSIGNMENT = "06-ppo"

FORBID = ("aiterms.ppo:gae", "aiterms.ppo:clipped_surrogate_loss", "aiterms.ppo:ppo_loss", "aiterms.ppo:train")


# ------------------------------------------------------------------------------------------------ gae
def _gae_case(rng: random.Random, T: int, N: int, p_done: float, gamma: float, lam: float,
              done_last: bool | None = None) -> dict:
    dones = [[float(rng.random() < p_done) for _ in range(N)] for _ in range(T)]
    if done_last is not None:
        dones[-1] = [float(done_last or rng.random() < 0.5) for _ in range(N)]
    return {"rewards": [[round(rng.choice([1.0, 1.0, rng.gauss(0, 1)]), 4) for _ in range(N)] for _ in range(T)],
            "values": [[round(rng.gauss(0.5, 2.0), 4) for _ in range(N)] for _ in range(T)],
            "dones": dones,
            "next_value": [round(rng.gauss(0.5, 2.0), 4) for _ in range(N)],
            "gamma": gamma, "lam": lam}


def gae_cases(rng: random.Random) -> list[dict]:
    cases = [
        # by hand (the notebook's worked example): one env, no episode end
        {"rewards": [[1.0], [1.0], [1.0]], "values": [[0.0], [0.0], [0.0]], "dones": [[0.0], [0.0], [0.0]],
         "next_value": [0.0], "gamma": 0.5, "lam": 0.5},
        # an episode ends at step 1, a new one starts at step 2
        {"rewards": [[1.0], [2.0], [3.0]], "values": [[0.5], [1.0], [2.0]], "dones": [[0.0], [1.0], [0.0]],
         "next_value": [4.0], "gamma": 0.9, "lam": 0.8},
        # the episode ends with the last step: next_value (a new episode's) must not count
        {"rewards": [[1.0, 1.0], [1.0, 1.0]], "values": [[2.0, 2.0], [1.0, 1.0]], "dones": [[0.0, 0.0], [1.0, 0.0]],
         "next_value": [5.0, 5.0], "gamma": 0.99, "lam": 0.95},
        # every step ends an episode (a bandit): A_t = r_t - V(s_t)
        {"rewards": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "values": [[0.3, 0.6], [0.1, 0.2], [0.9, 0.4]],
         "dones": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]], "next_value": [7.0, 7.0], "gamma": 0.9, "lam": 0.9},
        # one step
        {"rewards": [[2.0, -1.0, 0.5]], "values": [[1.0, 0.0, 0.5]], "dones": [[0.0, 1.0, 0.0]],
         "next_value": [3.0, 3.0, -2.0], "gamma": 0.9, "lam": 0.7},
    ]
    cases.append(_gae_case(rng, 6, 2, 0.3, 0.99, 0.0))   # lam = 0: one-step TD errors
    cases.append(_gae_case(rng, 6, 2, 0.3, 0.95, 1.0))   # lam = 1: discounted returns minus values
    cases.append(_gae_case(rng, 5, 3, 0.3, 0.0, 0.9))    # gamma = 0
    cases.append(_gae_case(rng, 8, 1, 0.0, 0.97, 0.9))   # no episode end at all
    for i in range(20):
        T, N = rng.randint(2, 12), rng.randint(1, 5)
        gamma = rng.choice([0.9, 0.95, 0.98, 0.99, round(rng.uniform(0.8, 1.0), 3)])
        lam = rng.choice([0.8, 0.9, 0.95, round(rng.uniform(0.3, 0.99), 3)])
        cases.append(_gae_case(rng, T, N, rng.choice([0.1, 0.25, 0.4]), gamma, lam,
                               done_last=[None, True, False][i % 3]))
    return cases


def call_gae(fn: Callable, case: dict) -> Any:
    out = fn(torch.tensor(case["rewards"]), torch.tensor(case["values"]), torch.tensor(case["dones"]),
             torch.tensor(case["next_value"]), case["gamma"], case["lam"])
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"gae should return a tensor, got {type(out).__name__}")
    shape = (len(case["rewards"]), len(case["rewards"][0]))
    if tuple(out.shape) != shape:
        raise TypeError(f"gae should return a tensor shaped like rewards {shape}, got {tuple(out.shape)}")
    return out.detach().double()


def describe_gae(case: dict) -> str:
    T, N = len(case["rewards"]), len(case["rewards"][0])
    ends = int(sum(map(sum, case["dones"])))
    return f"T={T}, N={N}, {ends} episode end(s), gamma={case['gamma']}, lam={case['lam']}"


# ------------------------------------------------------------------------------------------------ clipped loss
def _loss_case(rng: random.Random, shape: tuple[int, ...], spread: float, clip_eps: float) -> dict:
    def draw(f: Callable[[], float]) -> list:
        if len(shape) == 1:
            return [f() for _ in range(shape[0])]
        return [[f() for _ in range(shape[1])] for _ in range(shape[0])]

    logp_old = draw(lambda: round(math.log(rng.uniform(0.05, 0.95)), 4))
    noise = draw(lambda: round(rng.gauss(0.0, spread), 4))
    if len(shape) == 1:
        logp = [round(a + b, 4) for a, b in zip(logp_old, noise)]
    else:
        logp = [[round(a + b, 4) for a, b in zip(ra, rb)] for ra, rb in zip(logp_old, noise)]
    return {"logp": logp, "logp_old": logp_old, "advantages": draw(lambda: round(rng.gauss(0.0, 1.0), 4)),
            "clip_eps": clip_eps}


def clipped_surrogate_loss_cases(rng: random.Random) -> list[dict]:
    l15, l05 = round(math.log(1.5), 6), round(math.log(0.5), 6)
    cases = [
        # by hand: ratios 1.5, 1.5, 0.5, 0.5 with advantages +1, -1, +1, -1
        {"logp": [l15, l15, l05, l05], "logp_old": [0.0] * 4, "advantages": [1.0, -1.0, 1.0, -1.0], "clip_eps": 0.2},
        # the same ratios measured from real (negative) log-probabilities
        {"logp": [-0.5 + l15, -1.2 + l05], "logp_old": [-0.5, -1.2], "advantages": [2.0, 3.0], "clip_eps": 0.2},
        # nothing changed yet (first minibatch of an update): ratio 1 everywhere
        {"logp": [-0.7, -0.1, -2.3], "logp_old": [-0.7, -0.1, -2.3], "advantages": [0.5, -1.5, 2.0],
         "clip_eps": 0.2},
        # inside the clip range: the plain surrogate -mean(r A)
        {"logp": [-0.65, -0.15], "logp_old": [-0.7, -0.1], "advantages": [1.0, 1.0], "clip_eps": 0.2},
        # one element
        {"logp": [-0.2], "logp_old": [-0.9], "advantages": [-0.7], "clip_eps": 0.1},
        # a batch of sequences (B, T): the mean is over every element
        {"logp": [[-0.1, -0.3, -2.0], [-1.0, -0.2, -0.05]], "logp_old": [[-0.2, -0.3, -1.5], [-1.4, -0.2, -0.5]],
         "advantages": [[1.0, -2.0, 0.5], [-0.3, 0.0, 1.2]], "clip_eps": 0.2},
    ]
    for i in range(22):
        shape = (rng.randint(1, 16),) if i % 4 else (rng.randint(1, 4), rng.randint(1, 5))
        cases.append(_loss_case(rng, shape, rng.choice([0.05, 0.2, 0.5]), rng.choice([0.1, 0.2, 0.2, 0.3, 0.5])))
    return cases


def call_clipped_surrogate_loss(fn: Callable, case: dict) -> Any:
    logp = torch.tensor(case["logp"], dtype=torch.float32, requires_grad=True)
    out = fn(logp, torch.tensor(case["logp_old"]), torch.tensor(case["advantages"]), case["clip_eps"])
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise TypeError(f"clipped_surrogate_loss should return a scalar (0-dimensional) tensor, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through to logp (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    (grad,) = torch.autograd.grad(out, logp)
    return [out.detach().double(), grad.reshape(-1).double()]


def compare_loss_and_grad(got: Any, expected: Any, case: dict) -> str | None:
    from aiterms import grading
    try:
        got, expected = grading.to_plain(got), grading.to_plain(expected)
    except TypeError as e:
        return f"could not read the result: {e}"
    if grading.compare_values(got[0], expected[0]):
        return "the loss is wrong"
    if grading.compare_values(got[1], expected[1]):
        return "the loss has the right value but the wrong gradient with respect to logp"
    return None


def describe_loss(case: dict) -> str:
    shape = (len(case["logp"]),) if not isinstance(case["logp"][0], list) else (len(case["logp"]),
                                                                                len(case["logp"][0]))
    return f"logp of shape {shape}, clip_eps={case['clip_eps']}"


TASKS = [
    Task("gae", "test_gae", 4, gae_cases, call_gae, "aiterms.ppo:gae", describe=describe_gae, forbid=FORBID),
    Task("clipped_surrogate_loss", "test_clipped_surrogate_loss", 3, clipped_surrogate_loss_cases,
         call_clipped_surrogate_loss, "aiterms.ppo:clipped_surrogate_loss", compare=compare_loss_and_grad,
         describe=describe_loss, forbid=FORBID),
]
