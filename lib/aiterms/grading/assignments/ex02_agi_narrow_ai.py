"""Hidden checks of exercise 2 (AGI and narrow AI): cross_returns, transfer_matrix, generalisation_gap.

Cases are plain data. For ``cross_returns``: tasks as gymnasium ids with a short time limit
(``{"id": "CartPole-v1", "max_steps": 30}``), put behind one :class:`~aiterms.transfer.SharedInterface`, and
deterministic policies (``{"kind": "linear", "seed": 3}``: ``argmax(W @ obs)`` with ``W`` drawn from the seed;
``{"kind": "constant", "action": 2}``), built inside :func:`call_cross_returns`. For the matrices: nested lists, with
``None`` standing for ``nan``. A reference that raises ``ValueError`` (bad shapes) gives the plain value
``"ValueError"``, and so must the learner's function.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import numpy as np

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "02-agi-narrow-ai"

ERROR = grading.RAISED

#: tasks of the cross_returns cases and their time limits (short: every case must run in milliseconds)
TASK_IDS = {"CartPole-v1": (10, 40), "Acrobot-v1": (5, 20), "MountainCar-v0": (5, 25), "FrozenLake-v1": (5, 25),
            "CliffWalking-v1": (5, 25)}


def _calling(fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError:
        return list(ERROR)


def _nan(x: Any) -> Any:
    """``None`` -> nan, recursively (JSON has no nan)."""
    if isinstance(x, list):
        return [_nan(v) for v in x]
    return math.nan if x is None else x


# ------------------------------------------------------------------------------------------------ cross_returns
def _make_envs(specs: list[dict]) -> list:
    import gymnasium as gym

    from aiterms.transfer import make_shared
    makers = [(lambda s=s: gym.make(s["id"], max_episode_steps=s["max_steps"], **s.get("kwargs", {})))
              for s in specs]
    return [make() for make in make_shared(makers)]


def _make_policy(spec: dict, obs_size: int, n_actions: int) -> Callable:
    if spec["kind"] == "constant":
        return lambda obs, a=spec["action"] % n_actions: a
    w = np.random.default_rng(spec["seed"]).normal(size=(n_actions, obs_size))
    return lambda obs: int(np.argmax(w @ obs))


def call_cross_returns(fn: Callable, case: dict) -> Any:
    envs = _make_envs(case["envs"])
    obs_size, n_actions = envs[0].obs_size, envs[0].n_actions
    policies = [_make_policy(p, obs_size, n_actions) for p in case["policies"]]
    return fn(policies, envs, case["episodes"], case["seed"])


def _env_spec(rng: random.Random) -> dict:
    name = rng.choice(sorted(TASK_IDS))
    spec = {"id": name, "max_steps": rng.randint(*TASK_IDS[name])}
    if name == "FrozenLake-v1" and rng.random() < 0.5:
        spec["kwargs"] = {"is_slippery": False}
    return spec


def _policy_spec(rng: random.Random) -> dict:
    if rng.random() < 0.25:
        return {"kind": "constant", "action": rng.randrange(4)}
    return {"kind": "linear", "seed": rng.randrange(10 ** 6)}


def cross_returns_cases(rng: random.Random) -> list[dict]:
    fixed = [
        {"policies": [{"kind": "linear", "seed": 1}, {"kind": "constant", "action": 0}],
         "envs": [{"id": "CartPole-v1", "max_steps": 40}, {"id": "Acrobot-v1", "max_steps": 10}],
         "episodes": 3, "seed": 0},
        {"policies": [{"kind": "constant", "action": 1}], "envs": [{"id": "CartPole-v1", "max_steps": 30}],
         "episodes": 1, "seed": 5},
        # more tasks than policies (and the other way round): rows are policies, columns tasks
        {"policies": [{"kind": "linear", "seed": 2}],
         "envs": [{"id": "CartPole-v1", "max_steps": 25}, {"id": "FrozenLake-v1", "max_steps": 12},
                  {"id": "CliffWalking-v1", "max_steps": 15}], "episodes": 2, "seed": 11},
        {"policies": [{"kind": "linear", "seed": 3}, {"kind": "linear", "seed": 4}, {"kind": "constant", "action": 3}],
         "envs": [{"id": "MountainCar-v0", "max_steps": 15}, {"id": "CartPole-v1", "max_steps": 40}],
         "episodes": 2, "seed": 100},
    ]
    random_cases = []
    for _ in range(10):
        random_cases.append({"policies": [_policy_spec(rng) for _ in range(rng.randint(1, 3))],
                             "envs": [_env_spec(rng) for _ in range(rng.randint(1, 3))],
                             "episodes": rng.randint(2, 3), "seed": rng.randrange(1000)})
    # always a few with CartPole, whose start states (and so returns) differ from seed to seed
    for _ in range(3):
        random_cases.append({"policies": [_policy_spec(rng) for _ in range(2)],
                             "envs": [{"id": "CartPole-v1", "max_steps": 40}, _env_spec(rng)],
                             "episodes": 3, "seed": rng.randrange(1000)})
    return fixed + random_cases


def describe_cross_returns(case: dict) -> str:
    return (f"{len(case['policies'])} policies x {len(case['envs'])} tasks "
            f"({', '.join(s['id'] for s in case['envs'])}), episodes={case['episodes']}, seed={case['seed']}")


# ------------------------------------------------------------------------------------------------ comparing arrays
def _shape(x: Any) -> tuple:
    if isinstance(x, list):
        inner = {_shape(v) for v in x}
        return (len(x),) + (inner.pop() if len(inner) == 1 else ("ragged",)) if x else (0,)
    return ()


@grading.plain_compare("should raise ValueError: the input's shapes are not valid",
                       "raised ValueError for a valid input")
def compare_array(got: Any, expected: Any, case: dict) -> str | None:
    """Same shape; numbers within grading.TOL; ``nan`` exactly where the reference has ``nan``; ValueError alike."""
    if _shape(got) != _shape(expected):
        return f"the result should have shape {_shape(expected)}, got {_shape(got)}"

    def walk(g: Any, e: Any, path: str) -> str | None:
        if isinstance(e, list):
            for i, (gi, ei) in enumerate(zip(g, e)):
                problem = walk(gi, ei, f"{path}[{i}]")
                if problem:
                    return problem
            return None
        if isinstance(g, bool) or not isinstance(g, (int, float)):
            return f"{path} should be a number, got {g!r}"
        if math.isnan(e):
            return None if math.isnan(g) else f"{path} should be nan"
        if math.isnan(g):
            return f"{path} is nan, but should be a number"
        return None if grading.close(float(g), e) else f"{path} is wrong"

    return walk(got, expected, "the result")


# ------------------------------------------------------------------------------------------------ transfer_matrix
def call_transfer_matrix(fn: Callable, case: dict) -> Any:
    return _calling(fn, np.array(case["returns"], dtype=float), np.array(case["random"], dtype=float))


def _task_scale(rng: random.Random) -> tuple[float, float, float]:
    """(random return, typical own return, spread) of a made-up task: CartPole-like, Acrobot-like or generic."""
    kind = rng.choice(["cartpole", "acrobot", "grid", "generic"])
    if kind == "cartpole":
        return rng.uniform(15, 25), rng.uniform(150, 500), 200.0
    if kind == "acrobot":
        return rng.uniform(-500, -450), rng.uniform(-150, -70), 200.0
    if kind == "grid":
        return rng.uniform(-2, 0.5), rng.uniform(0.6, 1.0), 1.0
    return rng.uniform(-5, 5), rng.uniform(-5, 15), 10.0


def _returns_case(rng: random.Random, k: int) -> dict:
    scales = [_task_scale(rng) for _ in range(k)]
    returns = [[0.0] * k for _ in range(k)]
    for j, (rnd, own, spread) in enumerate(scales):
        for i in range(k):
            if i == j:
                returns[i][j] = own
            else:  # usually near random, sometimes better than own, sometimes worse than random
                returns[i][j] = rng.choice([rnd + rng.uniform(-0.3, 0.3) * spread, rnd + rng.uniform(0, 1) * (own - rnd),
                                            own + rng.uniform(0, 0.2) * spread])
    randoms = [s[0] for s in scales]
    if rng.random() < 0.3:  # a task whose own policy is no better than random: equal, or worse
        j = rng.randrange(k)
        randoms[j] = returns[j][j] if rng.random() < 0.5 else returns[j][j] + rng.uniform(0.5, 5)
    return {"returns": [[round(x, 3) for x in row] for row in returns], "random": [round(x, 3) for x in randoms]}


def transfer_matrix_cases(rng: random.Random) -> list[dict]:
    fixed = [
        {"returns": [[10, 2], [4, 8]], "random": [0, 2]},
        {"returns": [[-100, -500], [-400, -80]], "random": [-500, -500]},              # negative returns
        {"returns": [[500, -480, 0.9], [22, -90, -1], [9, -500, 1]], "random": [20, -495, -1.5]},
        {"returns": [[3]], "random": [1]},                                              # one task
        {"returns": [[1, 5, 0], [2, 3, 9], [4, 6, 4]], "random": [0, 3, 5]},            # own = random, own < random
        {"returns": [[5, 7], [0, 2]], "random": [1, 3]},                               # own < random in column 1
        {"returns": [[10, 0], [0, 10]], "random": [10, 0]},                            # own = random in column 0
        {"returns": [[1, 2, 3], [4, 5, 6]], "random": [0, 0, 0]},                      # not square
        {"returns": [[1, 2], [3, 4]], "random": [0, 0, 0]},                            # random of the wrong length
        {"returns": [1, 2], "random": [0, 0]},                                          # not a matrix
    ]
    return fixed + [_returns_case(rng, rng.randint(2, 5)) for _ in range(18)]


def describe_matrix_case(case: dict) -> str:
    key = "returns" if "returns" in case else "matrix"
    return f"{key} of shape {_shape(case[key])}"


# ------------------------------------------------------------------------------------------------ generalisation_gap
def call_generalisation_gap(fn: Callable, case: dict) -> Any:
    return _calling(fn, np.array(_nan(case["matrix"]), dtype=float))


def _gap_case(rng: random.Random, k: int) -> dict:
    normalised = rng.random() < 0.6
    m: list[list[Any]] = []
    for i in range(k):
        row = []
        for j in range(k):
            if normalised and i == j:
                row.append(1.0)
            else:
                row.append(round(rng.choice([rng.uniform(-0.3, 0.3), rng.uniform(-1, 1.5), rng.gauss(0, 50)]), 3))
        m.append(row)
    if rng.random() < 0.5:  # nan columns (a task without scale), and sometimes single nan entries
        j = rng.randrange(k)
        for row in m:
            row[j] = None
    if rng.random() < 0.3:
        m[rng.randrange(k)][rng.randrange(k)] = None
    return {"matrix": m}


def generalisation_gap_cases(rng: random.Random) -> list[dict]:
    fixed = [
        {"matrix": [[1, 0, 0.2], [0.4, 1, -0.2], [1, 1, 1]]},
        {"matrix": [[3, 1], [0, 2]]},
        {"matrix": [[1, None, 0.5], [None, None, 0.1], [0, None, None]]},     # nan left out; none left: nan
        {"matrix": [[1, None], [0.2, 1]]},
        {"matrix": [[1, 0.1, None, 0.3], [0.2, 1, None, -0.1], [None, None, None, None], [0.5, 0.5, None, 1]]},
        {"matrix": [[1, -0.5, 2.0, 0.0, 0.25], [0, 1, 0, 0, 0], [0.9, 0.8, 1, 0.7, 0.6], [1, 1, 1, 1, 1],
                    [-1, -1, -1, -1, 1]]},
        {"matrix": [[1.0]]},                                                      # one task: no gap
        {"matrix": [[1, 2, 3], [4, 5, 6]]},                                       # not square
    ]
    return fixed + [_gap_case(rng, rng.randint(2, 5)) for _ in range(18)]


FORBID = ("aiterms.transfer:cross_returns", "aiterms.transfer:episode_return", "aiterms.transfer:transfer_matrix",
          "aiterms.transfer:generalisation_gap")

TASKS = [
    Task("cross_returns", "test_cross_returns", 3, cross_returns_cases, call_cross_returns,
         "aiterms.transfer:cross_returns", compare=compare_array, describe=describe_cross_returns, forbid=FORBID),
    Task("transfer_matrix", "test_transfer_matrix", 3, transfer_matrix_cases, call_transfer_matrix,
         "aiterms.transfer:transfer_matrix", compare=compare_array, describe=describe_matrix_case, forbid=FORBID),
    Task("generalisation_gap", "test_generalisation_gap", 2, generalisation_gap_cases, call_generalisation_gap,
         "aiterms.transfer:generalisation_gap", compare=compare_array, describe=describe_matrix_case, forbid=FORBID),
]
