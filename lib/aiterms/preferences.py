"""Simulated human feedback: annotators with a known taste compare two answers to the same arithmetic problem.

Reinforcement learning from human feedback (RLHF; Christiano et al., 2017; Ouyang et al., 2022) starts from people
who look at two responses and say which one they prefer. People are slow and expensive, so the course simulates
them, with a **known** preference and a **known** amount of noise, so that every later step can be checked against
the truth.

The annotators' true utility of a response (the number they would like to maximise, but never write down)::

    u(x, y) = w_correct * [answer right] + w_format * [well formed] + w_steps * (fraction of true steps)
              - w_length * max(0, len(y) - len(gold response))

so a right answer beats any wrong one, then a well-formed answer beats garbage, then correct working beats wrong
working, then shorter beats longer. Asked about a pair (A, B) they choose A with the Bradley-Terry probability
(Bradley and Terry, 1952) at a temperature ``tau``, and then, with probability ``flip_prob``, a slip of the mouse
inverts the label::

    P(choose A) = (1 - f) * sigmoid((u_A - u_B) / tau) + f * (1 - sigmoid((u_A - u_B) / tau))

Pairs come from the model itself (:func:`sample_pairs`: two answers to one prompt at temperature 1, like the
comparisons of InstructGPT), with the label ``1`` when the annotator preferred A and ``0`` when B.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Sequence

import torch

from aiterms import arithmetic
from aiterms.decoding import check_positive_int


@dataclass(frozen=True)
class AnnotatorConfig:
    """The simulated annotators' taste (weights of the utility) and noise (temperature, flip probability)."""

    w_correct: float = 1.0
    w_format: float = 0.3
    w_steps: float = 0.3
    w_length: float = 0.02
    temperature: float = 0.1      # Bradley-Terry temperature tau: smaller = more decisive annotators
    flip_prob: float = 0.05       # probability that a label is inverted after the choice

    def __post_init__(self):
        for name in ("w_correct", "w_format", "w_steps", "w_length"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not (isinstance(self.flip_prob, (int, float)) and 0.0 <= self.flip_prob <= 0.5):
            raise ValueError(f"flip_prob must be in [0, 0.5], got {self.flip_prob!r}")


def utility(problem: arithmetic.Problem, response: str, config: AnnotatorConfig = AnnotatorConfig()) -> float:
    """The annotators' true utility ``u(x, y)`` of a step-by-step response (see the module docstring)."""
    correct = arithmetic.correctness_reward(problem, response)
    formed = arithmetic.format_reward(response, "cot")
    checks = arithmetic.verify_steps(problem, response)
    steps = sum(checks) / len(checks) if checks else 0.0
    excess = max(0, len(response) - len(arithmetic.cot_response(problem)))
    return (config.w_correct * correct + config.w_format * formed + config.w_steps * steps
            - config.w_length * excess)


def preference_probability(u_a: torch.Tensor, u_b: torch.Tensor, config: AnnotatorConfig = AnnotatorConfig()
                           ) -> torch.Tensor:
    """``P(label = A)``: Bradley-Terry at temperature tau, then inverted with probability ``flip_prob``.

    ``u_a, u_b: (N,)`` -> ``(N,)``.
    """
    u_a, u_b = torch.as_tensor(u_a, dtype=torch.float64), torch.as_tensor(u_b, dtype=torch.float64)
    if u_a.shape != u_b.shape:
        raise ValueError(f"u_a and u_b must have the same shape, got {tuple(u_a.shape)} and {tuple(u_b.shape)}")
    p = torch.sigmoid((u_a - u_b) / config.temperature)
    return (1 - config.flip_prob) * p + config.flip_prob * (1 - p)


def label_quality(u_a: torch.Tensor, u_b: torch.Tensor, config: AnnotatorConfig = AnnotatorConfig()) -> float:
    """Expected fraction of labels that agree with the true order, over the pairs whose utilities differ.

    ``u_a, u_b: (N,)``. Returns ``nan`` if every pair is a tie.
    """
    p = preference_probability(u_a, u_b, config)
    u_a, u_b = torch.as_tensor(u_a, dtype=torch.float64), torch.as_tensor(u_b, dtype=torch.float64)
    strict = u_a != u_b
    if not strict.any():
        return float("nan")
    right = torch.where(u_a > u_b, p, 1 - p)
    return float(right[strict].mean())


@dataclass
class Pairs:
    """N comparisons: ``problems[i]`` with answers ``a[i]``, ``b[i]``; ``label[i] = 1`` if the annotator preferred
    ``a[i]``, else 0; ``utility_a``, ``utility_b``: the true utilities (hidden from every learner of preferences)."""

    problems: list[arithmetic.Problem]
    a: list[str]
    b: list[str]
    label: list[int] = field(default_factory=list)
    utility_a: list[float] = field(default_factory=list)
    utility_b: list[float] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.problems)
        for name in ("a", "b", "label", "utility_a", "utility_b"):
            value = getattr(self, name)
            if name in ("a", "b") or value:
                if len(value) != n:
                    raise ValueError(f"{name} must have one entry per problem ({n}), got {len(value)}")

    def __len__(self) -> int:
        return len(self.problems)

    def subset(self, index: Sequence[int] | slice) -> Pairs:
        """The pairs at ``index`` (a slice or a list of positions)."""
        pick = (lambda xs: xs[index]) if isinstance(index, slice) else (lambda xs: [xs[i] for i in index])
        return Pairs(pick(self.problems), pick(self.a), pick(self.b), pick(self.label) if self.label else [],
                     pick(self.utility_a) if self.utility_a else [], pick(self.utility_b) if self.utility_b else [])

    def __add__(self, other: Pairs) -> Pairs:
        """The pairs of ``self`` followed by those of ``other`` (both labelled, or both not)."""
        if not isinstance(other, Pairs):
            return NotImplemented
        if bool(self.label) != bool(other.label) and len(self) and len(other):
            raise ValueError("cannot add labelled and unlabelled pairs: annotate both first")
        return Pairs(self.problems + other.problems, self.a + other.a, self.b + other.b, self.label + other.label,
                     self.utility_a + other.utility_a, self.utility_b + other.utility_b)

    def chosen_rejected(self) -> tuple[list[str], list[str]]:
        """The preferred and the other answer of each pair, by the annotators' label."""
        if not self.label:
            raise ValueError("these pairs have no labels yet: call annotate first")
        chosen = [a if y else b for a, b, y in zip(self.a, self.b, self.label)]
        rejected = [b if y else a for a, b, y in zip(self.a, self.b, self.label)]
        return chosen, rejected

    def true_label(self) -> list[int]:
        """1 where A's true utility is higher, 0 where B's is, -1 for a tie."""
        return [1 if ua > ub else 0 if ua < ub else -1 for ua, ub in zip(self.utility_a, self.utility_b)]


def annotate(pairs: Pairs, config: AnnotatorConfig = AnnotatorConfig(), seed: int = 0) -> Pairs:
    """The simulated annotators label every pair (a new :class:`Pairs`; the input is not changed).

    Each label is a Bernoulli draw with :func:`preference_probability`; deterministic for ``seed``.
    """
    ua = [utility(p, r, config) for p, r in zip(pairs.problems, pairs.a)]
    ub = [utility(p, r, config) for p, r in zip(pairs.problems, pairs.b)]
    prob = preference_probability(torch.tensor(ua), torch.tensor(ub), config)
    rng = random.Random(seed)
    labels = [int(rng.random() < float(q)) for q in prob]
    return Pairs(list(pairs.problems), list(pairs.a), list(pairs.b), labels, ua, ub)


@torch.no_grad()
def sample_pairs(policies, n: int, digits: int = 4, seed: int = 0, temperature: float = 1.0,
                 ops: Sequence[str] = ("+", "-"), max_new_tokens: int = 48) -> Pairs:
    """``n`` unlabelled pairs: two sampled answers to each of ``n`` fresh problems with ``digits`` digits.

    ``policies`` is one model or a sequence of models (e.g. the step-by-step and the direct-answer models, like the
    several models whose samples InstructGPT's labellers compared); each answer of a pair comes from a policy drawn
    uniformly, sampled at ``temperature``. Deterministic for ``seed``.
    """
    from aiterms.rollout import sample_group
    check_positive_int("n", n)
    if not isinstance(policies, (list, tuple)):
        policies = [policies]
    if not policies:
        raise ValueError("policies must hold at least one model")
    generator = torch.Generator().manual_seed(seed)
    problems = arithmetic.sample_problems(n, digits, seed=seed, ops=tuple(ops))
    samples = [sample_group(m, problems, 2, temperature, generator, max_new_tokens).responses for m in policies]
    rng = random.Random(seed)
    a, b = [], []
    for i in range(n):
        a.append(samples[rng.randrange(len(policies))][2 * i])
        b.append(samples[rng.randrange(len(policies))][2 * i + 1])
    return Pairs(list(problems), a, b)
