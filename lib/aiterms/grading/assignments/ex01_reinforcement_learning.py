"""Hidden checks of exercise 1 (reinforcement learning): discounted_returns, epsilon_greedy, reinforce_loss.

Cases are plain data: nested lists of rewards and episode ends, Q-values with a seed, log-probabilities with returns
and an optional baseline. The ``call`` functions build the tensors / the numpy generator and turn the results back
into plain data (``reinforce_loss`` also reports the gradients that reach ``logp`` and the baseline).
"""
from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "01-reinforcement-learning"

FORBID = ("aiterms.reinforce:discounted_returns", "aiterms.reinforce:rollout_returns",
          "aiterms.reinforce:reinforce_loss", "aiterms.bandits:epsilon_greedy", "aiterms.bandits:run_bandit")


def _round(x: float) -> float:
    return round(x, 3)


# ------------------------------------------------------------------------------------------------ discounted_returns
def _returns_case(rng: random.Random, T: int, N: int | None, p_done: float, gamma: float) -> dict:
    def row() -> tuple[list, list]:
        cols = 1 if N is None else N
        r = [_round(rng.choice([rng.gauss(0, 2), 1.0, 0.0, rng.uniform(-1, 1)])) for _ in range(cols)]
        d = [int(rng.random() < p_done) for _ in range(cols)]
        return (r[0], d[0]) if N is None else (r, d)
    rows = [row() for _ in range(T)]
    return {"rewards": [r for r, _ in rows], "dones": [d for _, d in rows], "gamma": gamma,
            "bool_dones": rng.random() < 0.3}


def discounted_returns_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"rewards": [1.0, 2.0, 3.0, 4.0], "dones": [0, 1, 0, 0], "gamma": 0.5, "bool_dones": False},
        {"rewards": [1.0, 1.0, 1.0], "dones": [0, 0, 1], "gamma": 0.9, "bool_dones": True},   # ends at the last step
        {"rewards": [1.0, 1.0, 1.0], "dones": [1, 1, 1], "gamma": 0.9, "bool_dones": False},  # one-step episodes
        {"rewards": [0.0, 0.0, 5.0], "dones": [0, 0, 0], "gamma": 1.0, "bool_dones": False},  # no discount
        {"rewards": [3.0, -1.0], "dones": [0, 0], "gamma": 0.0, "bool_dones": False},         # only r_t counts
        {"rewards": [2.5], "dones": [0], "gamma": 0.9, "bool_dones": False},
        {"rewards": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "dones": [[1, 0], [0, 0], [0, 1]], "gamma": 0.5,
         "bool_dones": False},
        {"rewards": [[1.0], [2.0], [3.0]], "dones": [[0], [1], [0]], "gamma": 0.8, "bool_dones": True},  # (T, 1)
        # three envs, time first: a (N, T) reading would go wrong
        {"rewards": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [0.0, 1.0, 0.0]],
         "dones": [[0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]], "gamma": 0.9, "bool_dones": False},
    ]
    for i in range(17):
        T = rng.randint(1, 12)
        N = None if i % 2 == 0 else rng.randint(2, 5)
        cases.append(_returns_case(rng, T, N, rng.choice([0.0, 0.1, 0.3, 0.6]),
                                   rng.choice([0.0, 0.5, 0.9, 0.99, 1.0])))
    return cases


def call_discounted_returns(fn: Callable, case: dict) -> Any:
    rewards = torch.tensor(case["rewards"], dtype=torch.float32)
    dones = torch.tensor(case["dones"], dtype=torch.bool if case["bool_dones"] else torch.float32)
    out = fn(rewards, dones, case["gamma"])
    if isinstance(out, torch.Tensor) and tuple(out.shape) != tuple(rewards.shape):
        raise TypeError(f"the returns should have the shape of rewards {tuple(rewards.shape)}, "
                        f"got {tuple(out.shape)}")
    return out


def describe_returns(case: dict) -> str:
    shape = (len(case["rewards"]),) if not isinstance(case["rewards"][0], list) else \
        (len(case["rewards"]), len(case["rewards"][0]))
    kind = "bool" if case["bool_dones"] else "float"
    return f"rewards of shape {shape}, {kind} dones, gamma={case['gamma']}"


# ------------------------------------------------------------------------------------------------ epsilon_greedy
def epsilon_greedy_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"q_values": [0.0, 1.0, 0.5], "epsilon": 0.0, "seed": 1, "calls": 10},
        {"q_values": [0.0, 0.0, 0.0, 0.0], "epsilon": 0.0, "seed": 2, "calls": 10},          # all tied
        {"q_values": [0.2, 0.9, 0.1, 0.9], "epsilon": 0.3, "seed": 3, "calls": 40},          # tie for the best
        {"q_values": [-3.0, -1.0, -2.0], "epsilon": 0.5, "seed": 4, "calls": 40},           # negative values
        {"q_values": [1.0, 2.0, 3.0], "epsilon": 1.0, "seed": 5, "calls": 40},              # always explore
        {"q_values": [7.0], "epsilon": 0.5, "seed": 6, "calls": 10},                        # one arm
        {"q_values": [0.0, 5.0], "epsilon": 0.9, "seed": 7, "calls": 60},
    ]
    for _ in range(17):
        k = rng.randint(2, 10)
        q = [_round(rng.gauss(0, 1)) for _ in range(k)]
        if rng.random() < 0.4:  # a tie for the maximum
            i, j = rng.sample(range(k), 2)
            q[j] = q[i] = max(q)
        cases.append({"q_values": q, "epsilon": rng.choice([0.05, 0.1, 0.25, 0.5, 0.8]),
                      "seed": rng.randrange(10**6), "calls": 50})
    return cases


def call_epsilon_greedy(fn: Callable, case: dict) -> Any:
    rng = np.random.default_rng(case["seed"])
    out = []
    for _ in range(case["calls"]):
        a = fn(list(case["q_values"]), case["epsilon"], rng)
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"epsilon_greedy should return an int (the arm's index), got {type(a).__name__}")
        out.append(int(a))
    return out


@grading.plain_compare()
def compare_epsilon_greedy(got: Any, expected: Any, case: dict) -> str | None:
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"call {i + 1} of {len(expected)} (same generator throughout) chose a different arm"
    return None if len(got) == len(expected) else "a different number of choices"


def describe_epsilon_greedy(case: dict) -> str:
    return (f"q_values={case['q_values']}, epsilon={case['epsilon']}, {case['calls']} calls with "
            f"np.random.default_rng({case['seed']})")


# ------------------------------------------------------------------------------------------------ reinforce_loss
def reinforce_loss_cases(rng: random.Random) -> list[dict]:
    cases = [
        {"logp": [-0.693, -1.386], "returns": [2.0, -1.0], "baseline": None},
        {"logp": [-0.693, -1.386], "returns": [2.0, -1.0], "baseline": [1.0, 1.0]},
        {"logp": [[-0.1, -2.0, -0.5], [-1.0, -0.3, -0.7]], "returns": [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]],
         "baseline": [[1.0, 1.5, 2.0], [0.0, 0.0, 0.0]]},                        # (T, N) = (2, 3): mean over all
        {"logp": [[-0.2], [-0.4], [-0.9], [-1.6]], "returns": [[3.0], [2.0], [1.0], [0.0]],
         "baseline": [[2.0], [2.0], [2.0], [2.0]]},
        {"logp": [-0.5, -0.5], "returns": [1.0, 1.0], "baseline": [1.0, 1.0]},   # zero advantage: loss 0
    ]
    for i in range(20):
        shape = (rng.randint(1, 8),) if i % 2 == 0 else (rng.randint(1, 6), rng.randint(2, 4))

        def draw(f: Callable[[], float]) -> list:
            if len(shape) == 1:
                return [_round(f()) for _ in range(shape[0])]
            return [[_round(f()) for _ in range(shape[1])] for _ in range(shape[0])]
        case = {"logp": draw(lambda: -rng.expovariate(1.0) - 0.001), "returns": draw(lambda: rng.gauss(1, 3)),
                "baseline": None if i % 5 == 0 else draw(lambda: rng.gauss(1, 2))}
        cases.append(case)
    return cases


def call_reinforce_loss(fn: Callable, case: dict) -> Any:
    logp = torch.tensor(case["logp"], dtype=torch.float32, requires_grad=True)
    returns = torch.tensor(case["returns"], dtype=torch.float32)
    baseline = None if case["baseline"] is None else torch.tensor(case["baseline"], dtype=torch.float32,
                                                                   requires_grad=True)
    out = fn(logp, returns) if baseline is None else fn(logp, returns, baseline)
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise TypeError(f"reinforce_loss should return a scalar (0-dimensional) tensor, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    out.backward()
    grad_logp = torch.zeros_like(logp) if logp.grad is None else logp.grad
    grad_base = None if baseline is None else (torch.zeros_like(baseline) if baseline.grad is None else baseline.grad)
    return [out.detach(), grad_logp, torch.zeros(0) if grad_base is None else grad_base]


def compare_reinforce_loss(got: Any, expected: Any, case: dict) -> str | None:
    for name, g, e in zip(("the loss", "the gradient of the loss with respect to logp",
                           "the gradient that reaches the baseline"), got, expected):
        problem = grading.compare_values(g, e)
        if problem:
            return problem.replace("the result", name)
    return None


def describe_reinforce_loss(case: dict) -> str:
    shape = (len(case["logp"]),) if not isinstance(case["logp"][0], list) else \
        (len(case["logp"]), len(case["logp"][0]))
    return f"logp of shape {shape}, " + ("no baseline" if case["baseline"] is None else "with a baseline")


TASKS = [
    Task("discounted_returns", "test_discounted_returns", 3, discounted_returns_cases, call_discounted_returns,
         "aiterms.reinforce:discounted_returns", describe=describe_returns, forbid=FORBID),
    Task("epsilon_greedy", "test_epsilon_greedy", 2, epsilon_greedy_cases, call_epsilon_greedy,
         "aiterms.bandits:epsilon_greedy", compare=compare_epsilon_greedy, describe=describe_epsilon_greedy,
         forbid=FORBID),
    Task("reinforce_loss", "test_reinforce_loss", 3, reinforce_loss_cases, call_reinforce_loss,
         "aiterms.reinforce:reinforce_loss", compare=compare_reinforce_loss, describe=describe_reinforce_loss,
         forbid=FORBID),
]
