"""Narrow and general: one learning algorithm, several tasks, and how badly each trained policy transfers.

Chapter 2 trains one policy per task with the same algorithm (PPO) and then lets *every* policy act in *every*
task. Two pieces make that possible and measurable.

**A shared interface.** Tasks differ in what the agent sees (CartPole: 4 numbers, Acrobot: 6, a grid world: a cell
index) and in how many actions it has (2, 3, 4). :class:`SharedInterface` wraps any task so that all of them look the
same to a policy: the observation is flattened with :func:`gymnasium.spaces.flatten` (a ``Box`` is flattened, a
``Discrete`` cell becomes a one-hot vector) and padded with zeros to a common length ``obs_size``; the action space is
``Discrete(n_actions)``, and action ``a`` is played as ``a mod n`` in a task with ``n`` actions. The wrapper does
*not* tell the policy which task it is in.

**The transfer matrix.** With ``K`` tasks and the policy trained on each, let ``R[i, j]`` be the mean return of the
policy trained on task ``i`` when it acts in task ``j`` (:func:`cross_returns`), and ``r[j]`` the mean return of a
uniformly random policy in task ``j``. The normalised transfer matrix (:func:`transfer_matrix`) is

    T[i, j] = (R[i, j] - r[j]) / (R[j, j] - r[j])

so that in every column 0 means "as good as acting at random" and 1 means "as good as the policy trained on this
task" (the same normalisation as the human-normalised Atari score of Mnih et al., 2015, "Human-level control through
deep reinforcement learning", with the task's own policy in the place of the human). A column whose own policy does
not beat random (``R[j, j] <= r[j]``) has no scale: it is ``nan``. The generalisation gap of policy ``i``
(:func:`generalisation_gap`) is its score on its own task minus its mean score on the other tasks,

    gap[i] = T[i, i] - mean_{j != i} T[i, j]      (nan entries left out of the mean),

about 1 for a narrow policy that is useless elsewhere, about 0 for one that does as well everywhere.

Shapes: ``returns: (K, K)`` (rows: trained on, columns: evaluated in), ``random_returns: (K,)``, the matrix
``(K, K)``, the gaps ``(K,)``. Every rollout is seeded: episode ``e`` of every evaluation resets its task with
``seed + e``, so all policies meet the same start states (a paired comparison).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

def _is_int(x: Any) -> bool:
    """A Python or numpy integer, but not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


#: a policy here is anything that maps an observation (obs_size,) to an action index
Policy = Callable[[np.ndarray], int]


@dataclass(frozen=True)
class TransferConfig:
    """How the transfer experiment evaluates: ``episodes`` per (policy, task) pair, reset seeds ``seed + e``."""

    episodes: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.episodes) or self.episodes < 1:
            raise ValueError(f"episodes must be an int >= 1, got {self.episodes!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


# ------------------------------------------------------------------------------------------------ the shared interface
def _check_space(space: spaces.Space, name: str) -> None:
    if not isinstance(space, (spaces.Box, spaces.Discrete)):
        raise ValueError(f"{name} must be a Box or Discrete observation space, got {space}")


def shared_sizes(envs: Sequence[gym.Env]) -> tuple[int, int]:
    """``(obs_size, n_actions)`` large enough for every task: the largest flattened observation and action count.

    Raises:
        ValueError: if ``envs`` is empty, or a task has no ``Discrete`` action space or an observation space other
            than ``Box``/``Discrete``.
    """
    if len(envs) == 0:
        raise ValueError("envs must hold at least one environment")
    obs_size = n_actions = 0
    for k, env in enumerate(envs):
        _check_space(env.observation_space, f"envs[{k}].observation_space")
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"envs[{k}].action_space must be Discrete, got {env.action_space}")
        obs_size = max(obs_size, spaces.flatdim(env.observation_space))
        n_actions = max(n_actions, int(env.action_space.n))
    return obs_size, n_actions


def pad_observation(obs: Any, space: spaces.Space, obs_size: int) -> np.ndarray:
    """``obs`` of ``space`` as a float32 vector ``(obs_size,)``: flattened (one-hot for ``Discrete``), zero-padded.

    Raises:
        ValueError: if the flattened observation is longer than ``obs_size``, or the space is not Box/Discrete.
    """
    _check_space(space, "space")
    flat = np.asarray(spaces.flatten(space, obs), dtype=np.float32).reshape(-1)
    if flat.size > obs_size:
        raise ValueError(f"obs_size must be >= {flat.size} (the flattened observation of {space}), got {obs_size}")
    return np.pad(flat, (0, obs_size - flat.size))


def map_action(action: Any, n: int) -> int:
    """The shared action ``action`` (an index, int-like) as an action of a task with ``n`` actions: ``action mod n``."""
    if n < 1:
        raise ValueError(f"n (the task's number of actions) must be >= 1, got {n}")
    return int(action) % n


class SharedInterface(gym.Wrapper):
    """A task seen through the interface common to all tasks: observations ``Box((obs_size,))``, ``Discrete(n_actions)``.

    The observation is :func:`pad_observation` of the task's one; action ``a`` is played as :func:`map_action`
    ``(a, n)``. Rewards, episode ends and ``info`` pass through unchanged.
    """

    def __init__(self, env: gym.Env, obs_size: int, n_actions: int):
        super().__init__(env)
        _check_space(env.observation_space, "env.observation_space")
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"env.action_space must be Discrete, got {env.action_space}")
        need = spaces.flatdim(env.observation_space)
        if not _is_int(obs_size) or obs_size < need:
            raise ValueError(f"obs_size must be an int >= {need} for {env.observation_space}, got {obs_size!r}")
        n = int(env.action_space.n)
        if not _is_int(n_actions) or n_actions < n:
            raise ValueError(f"n_actions must be an int >= {n} (the task's actions), got {n_actions!r}")
        self.obs_size, self.n_actions, self.task_actions = int(obs_size), int(n_actions), n
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.obs_size,), np.float32)
        self.action_space = spaces.Discrete(self.n_actions)

    def _obs(self, obs: Any) -> np.ndarray:
        return pad_observation(obs, self.env.observation_space, self.obs_size)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(map_action(action, self.task_actions))
        return self._obs(obs), reward, terminated, truncated, info


def make_shared(makers: Sequence[Callable[[], gym.Env]]) -> list[Callable[[], SharedInterface]]:
    """Factories of the tasks behind one common interface (sizes from :func:`shared_sizes`), in the given order."""
    probes = [make() for make in makers]
    obs_size, n_actions = shared_sizes(probes)
    for env in probes:
        env.close()
    return [(lambda make=make: SharedInterface(make(), obs_size, n_actions)) for make in makers]


# ------------------------------------------------------------------------------------------------ evaluation
class RandomPolicy:
    """The baseline: a uniformly random action out of ``n_actions``, from its own seeded generator."""

    def __init__(self, n_actions: int, seed: int = 0):
        if not _is_int(n_actions) or n_actions < 1:
            raise ValueError(f"n_actions must be an int >= 1, got {n_actions!r}")
        self.n_actions, self.rng = int(n_actions), np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> int:
        return int(self.rng.integers(self.n_actions))


def episode_return(policy: Policy, env: gym.Env, seed: int) -> float:
    """The undiscounted return ``sum_t r_t`` of one episode of ``policy`` in ``env``, reset with ``seed``.

    The episode ends when the task terminates or is truncated (its time limit); the last reward counts.
    """
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += float(reward)
        done = terminated or truncated
    return total


def cross_returns(policies: Sequence[Policy], envs: Sequence[gym.Env], episodes: int = 10,
                  seed: int = 0) -> np.ndarray:
    """Mean return of every policy in every task: ``R[i, j] = 1/E sum_e return(policies[i], envs[j], seed + e)``.

    Args:
        policies: ``P`` callables, observation -> action (all tasks share one interface, see :class:`SharedInterface`).
        envs: ``T`` environments; episode ``e`` resets each with ``seed + e`` (the same start states for every policy).
        episodes: ``E >= 1`` episodes per pair.
        seed: the seed of episode 0.

    Returns:
        ``R: (P, T)`` float64, rows = policies, columns = tasks.
    """
    if not _is_int(episodes) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if len(policies) == 0 or len(envs) == 0:
        raise ValueError(f"policies and envs must not be empty, got {len(policies)} and {len(envs)}")
    out = np.zeros((len(policies), len(envs)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            out[i, j] = np.mean([episode_return(policy, env, seed + e) for e in range(episodes)])
    return out


# ------------------------------------------------------------------------------------------------ the matrix and the gap
def transfer_matrix(returns: Any, random_returns: Any) -> np.ndarray:
    """The normalised transfer matrix ``T[i, j] = (R[i, j] - r[j]) / (R[j, j] - r[j])``.

    Args:
        returns: ``R: (K, K)``, mean return of the policy trained on task ``i`` (row) in task ``j`` (column).
        random_returns: ``r: (K,)``, mean return of a random policy in each task.

    Returns:
        ``T: (K, K)`` float64: 0 = random, 1 = the task's own policy (so the diagonal is 1); negative = worse than
        random. Column ``j`` is ``nan`` where ``R[j, j] <= r[j]`` (the own policy does not beat random: no scale).

    Raises:
        ValueError: if ``returns`` is not a square matrix, ``random_returns`` not of length ``K``, or a value is not
            finite.
    """
    R = np.asarray(returns, dtype=np.float64)
    r = np.asarray(random_returns, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"returns must be a non-empty square matrix (K, K), got shape {R.shape}")
    if r.shape != (R.shape[0],):
        raise ValueError(f"random_returns must have shape ({R.shape[0]},), got {r.shape}")
    if not (np.isfinite(R).all() and np.isfinite(r).all()):
        raise ValueError("returns and random_returns must be finite")
    scale = np.diag(R) - r  # (K,): how much the own policy beats random, per task
    with np.errstate(divide="ignore", invalid="ignore"):
        T = (R - r[None, :]) / scale[None, :]
    T[:, scale <= 0] = np.nan
    return T


def generalisation_gap(matrix: Any) -> np.ndarray:
    """Per policy, own-task score minus mean score elsewhere: ``gap[i] = T[i, i] - mean_{j != i} T[i, j]``.

    ``nan`` entries off the diagonal are left out of the mean (``numpy.nanmean``); ``gap[i]`` is ``nan`` if
    ``T[i, i]`` is ``nan`` or no other entry of row ``i`` is a number.

    Args:
        matrix: ``T: (K, K)`` with ``K >= 2``, rows = trained on, columns = evaluated in (normalised or raw scores).

    Returns:
        ``gap: (K,)`` float64.

    Raises:
        ValueError: if ``matrix`` is not square with ``K >= 2``.
    """
    T = np.asarray(matrix, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError(f"matrix must be a square matrix (K, K) with K >= 2, got shape {T.shape}")
    K = T.shape[0]
    off = T[~np.eye(K, dtype=bool)].reshape(K, K - 1)  # row i without its diagonal entry
    gap = np.full(K, np.nan)
    for i in range(K):
        finite = off[i][~np.isnan(off[i])]
        if finite.size:
            gap[i] = T[i, i] - finite.mean()
    return gap
