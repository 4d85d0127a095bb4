"""Multi-armed bandits: reinforcement learning with one state, trial and error in its purest form.

A k-armed bandit has k actions ("arms"). Pulling arm ``a`` gives a random reward with an unknown mean ``mu_a``.
The agent keeps an estimate ``Q(a)`` of each mean (the sample average of the rewards it got from that arm) and must
balance *exploiting* the arm that looks best with *exploring* the others (Sutton & Barto 2018, chapter 2).

* :func:`epsilon_greedy`: with probability epsilon a uniformly random arm, else the greedy one, ``argmax_a Q(a)``;
* :func:`ucb1`: the arm with the largest upper confidence bound ``Q(a) + c * sqrt(ln t / N(a))``
  (Auer, Cesa-Bianchi & Fischer 2002), every untried arm first;
* :func:`run_bandit`: a whole run, with its regret ``sum_t (mu* - mu_{a_t})``: what the agent lost, in expectation,
  against always pulling the best arm.

The random-number protocol of :func:`epsilon_greedy` is exact (graded in exercise 1): one ``rng.random()`` per call;
if it is below epsilon, one ``rng.integers(k)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

KINDS = ("bernoulli", "gaussian")


@dataclass(frozen=True)
class BanditConfig:
    """Hyperparameters of one bandit run."""

    steps: int = 1000          # pulls per run
    epsilon: float = 0.1       # exploration rate of epsilon-greedy
    c: float = math.sqrt(2.0)  # exploration weight of UCB1 (sqrt(2) in Auer et al. for rewards in [0, 1])
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.c < 0:
            raise ValueError(f"c must be >= 0, got {self.c}")


class Bandit:
    """A k-armed bandit: ``pull(a)`` draws a reward of arm ``a``.

    ``kind="bernoulli"``: reward 1 with probability ``means[a]``, else 0 (means in [0, 1]).
    ``kind="gaussian"``: reward ~ Normal(``means[a]``, 1), the 10-armed testbed of Sutton & Barto (section 2.3).
    """

    def __init__(self, means: Sequence[float], kind: str = "bernoulli", seed: int | None = 0):
        self.means = np.asarray(means, dtype=float)
        if self.means.ndim != 1 or len(self.means) < 1:
            raise ValueError(f"means must be a non-empty 1-D sequence, got shape {self.means.shape}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if kind == "bernoulli" and not ((self.means >= 0) & (self.means <= 1)).all():
            raise ValueError(f"means of a bernoulli bandit must be probabilities in [0, 1], got {self.means}")
        self.kind = kind
        self.rng = np.random.default_rng(seed)

    @property
    def k(self) -> int:
        return len(self.means)

    @property
    def best_mean(self) -> float:
        return float(self.means.max())

    def pull(self, action: int) -> float:
        if not 0 <= action < self.k:
            raise ValueError(f"action must be in [0, {self.k}), got {action}")
        if self.kind == "bernoulli":
            return float(self.rng.random() < self.means[action])
        return float(self.rng.normal(self.means[action], 1.0))

    @classmethod
    def random(cls, k: int = 10, kind: str = "gaussian", seed: int = 0) -> "Bandit":
        """A random instance: gaussian means ~ Normal(0, 1) (the 10-armed testbed), bernoulli means ~ Uniform(0, 1)."""
        rng = np.random.default_rng(seed)
        means = rng.normal(0.0, 1.0, k) if kind == "gaussian" else rng.uniform(0.0, 1.0, k)
        return cls(means, kind, seed=seed + 1)


def epsilon_greedy(q_values: Sequence[float], epsilon: float, rng: np.random.Generator) -> int:
    """Choose an arm epsilon-greedily. ``q_values: (k,)``.

    Protocol (exact, so that a run is reproducible from the seed): draw ``u = rng.random()``; if ``u < epsilon``,
    return ``int(rng.integers(k))``, a uniformly random arm (the greedy arm included); otherwise return the greedy
    arm ``argmax_a Q(a)``, the *lowest* index among equal maxima (``np.argmax``). Sutton & Barto 2018, section 2.2.
    """
    q = np.asarray(q_values, dtype=float)
    if q.ndim != 1 or len(q) == 0:
        raise ValueError(f"q_values must be a non-empty 1-D sequence, got shape {q.shape}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if rng.random() < epsilon:
        return int(rng.integers(len(q)))
    return int(np.argmax(q))


def ucb1(q_values: Sequence[float], counts: Sequence[int], t: int, c: float = math.sqrt(2.0)) -> int:
    """UCB1: the first untried arm if any, else ``argmax_a Q(a) + c * sqrt(ln t / N(a))``.

    ``q_values, counts: (k,)``; ``t``: the number of pulls so far (>= 1 once every arm was tried).
    Auer, Cesa-Bianchi & Fischer 2002; Sutton & Barto 2018, section 2.7. Ties: the lowest index.
    """
    q, n = np.asarray(q_values, dtype=float), np.asarray(counts, dtype=float)
    if q.ndim != 1 or q.shape != n.shape or len(q) == 0:
        raise ValueError(f"q_values and counts must be 1-D of the same length, got {q.shape} and {n.shape}")
    untried = np.flatnonzero(n == 0)
    if len(untried):
        return int(untried[0])
    if t < 1:
        raise ValueError(f"t must be >= 1 once every arm was tried, got {t}")
    return int(np.argmax(q + c * np.sqrt(math.log(t) / n)))


def run_bandit(bandit: Bandit, agent: str = "epsilon_greedy", config: BanditConfig = BanditConfig()) -> dict:
    """Play ``config.steps`` pulls with ``agent`` in {"epsilon_greedy", "ucb1", "random"}; sample-average estimates
    ``Q(a) <- Q(a) + (r - Q(a)) / N(a)``.

    Returns ``rewards, actions, regret: (steps,)`` (regret cumulative: ``sum_{s<=t} mu* - mu_{a_s}``), the final
    ``q`` and ``counts: (k,)``, and ``optimal: (steps,)``, 1 where the best arm was pulled.
    """
    if agent not in ("epsilon_greedy", "ucb1", "random"):
        raise ValueError(f"agent must be 'epsilon_greedy', 'ucb1' or 'random', got {agent!r}")
    rng = np.random.default_rng(config.seed)
    q, counts = np.zeros(bandit.k), np.zeros(bandit.k, dtype=int)
    actions = np.zeros(config.steps, dtype=int)
    rewards = np.zeros(config.steps)
    for t in range(config.steps):
        if agent == "epsilon_greedy":
            a = epsilon_greedy(q, config.epsilon, rng)
        elif agent == "ucb1":
            a = ucb1(q, counts, t, config.c)
        else:
            a = int(rng.integers(bandit.k))
        r = bandit.pull(a)
        counts[a] += 1
        q[a] += (r - q[a]) / counts[a]
        actions[t], rewards[t] = a, r
    lost = bandit.best_mean - bandit.means[actions]
    return {"rewards": rewards, "actions": actions, "regret": np.cumsum(lost), "q": q, "counts": counts,
            "optimal": (bandit.means[actions] == bandit.best_mean).astype(float)}
