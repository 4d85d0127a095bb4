"""Rejection sampling: classic accept/reject, best-of-N filtering, and rejection-sampling fine-tuning (RFT).

**Classic rejection sampling** (von Neumann, 1951, "Various techniques used in connection with random digits").
We want samples from a target density ``p`` (possibly unnormalised: ``p = Z * p_norm``) but can only sample a
proposal ``q``. If a constant ``M`` bounds the ratio, ``p(x) <= M q(x)`` for every ``x``, then::

    x ~ q,  u ~ Uniform[0, 1)            accept x  iff  u < p(x) / (M q(x))

gives accepted ``x`` distributed exactly as ``p_norm``: ``P(x proposed and accepted) = q(x) p(x) / (M q(x)) =
p(x) / M``. Each proposal is accepted with probability ``Z / M`` (``1 / M`` for a normalised ``p``), so a loose bound
wastes proposals, and a bound that is too small (``p(x) > M q(x)`` somewhere) silently gives the wrong distribution
(the peaks of ``p`` are cut off at ``M q``): :func:`accept_reject` raises when it sees such a proposal.

**Best-of-N** keeps, per prompt, the one of ``N`` sampled answers with the highest score (:func:`best_of_n`).

**Rejection-sampling fine-tuning** (RFT; Yuan et al., 2023, "Scaling relationship on learning mathematical reasoning
with large language models"; STaR, Zelikman et al., 2022; the SFT data of DeepSeek-R1, DeepSeek-AI, 2025): sample
``k`` answers per prompt from the model, keep the verified-correct, well-formed, distinct ones
(:func:`rft_dataset`), fine-tune on them with SFT, repeat (:func:`rft`). It is rejection sampling with the model
``pi`` as proposal and the target ``p(y | x) ∝ pi(y | x) * 1[y correct]``: ``p / q <= 1 / P(correct | x) = M``, so
the acceptance rate ``1 / M`` is the model's pass rate on that prompt. A soft verifier (a score ``r(y)`` in
``[0, 1]``) gives the target ``pi * r`` with ``M = 1``: accept with probability ``r`` (:func:`accept_by_score`).

Shapes: ``p_x, q_x, u: (N,)`` (one value per proposal); ``scores: (P, N)`` for best-of-N.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from aiterms import arithmetic
from aiterms.decoding import check_positive_int
from aiterms.sft import TrainConfig

#: relative rounding tolerance of the bound check: ``p(x) > (1 + RTOL) M q(x)`` is a violation
RTOL = 1e-9


# ------------------------------------------------------------------------------------------------ input checks
def _array(name: str, value, dim: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(value).__name__}") from None
    if arr.ndim != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _check_M(M: float) -> float:
    if isinstance(M, bool) or not isinstance(M, (int, float, np.floating, np.integer)) or not math.isfinite(M) \
            or M <= 0:
        raise ValueError(f"M must be a finite number > 0, got {M!r}")
    return float(M)


def _check_u(u: np.ndarray) -> None:
    if np.any((u < 0) | (u >= 1)):
        raise ValueError("u must hold uniform numbers in [0, 1)")


# ------------------------------------------------------------------------------------------------ classic
def acceptance_ratio(p_x, q_x, M: float) -> np.ndarray:
    """``p(x) / (M q(x))`` per proposal, the probability of accepting it (0 where ``p(x) = 0``).

    Args:
        p_x: ``(N,)`` target density (or mass) at the proposals, ``>= 0``, possibly unnormalised.
        q_x: ``(N,)`` proposal density at the proposals, ``>= 0``.
        M: the bound, ``> 0``.
    Raises:
        ValueError: mismatched shapes, negative or non-finite values, ``M <= 0``, or **M does not bound p/q**:
            ``p_x[i] > (1 + 1e-9) M q_x[i]`` for some ``i`` (the message gives the ratio and the proposal).
    """
    p_x, q_x, M = _array("p_x", p_x), _array("q_x", q_x), _check_M(M)
    if p_x.shape != q_x.shape:
        raise ValueError(f"p_x and q_x must have the same shape, got {p_x.shape} and {q_x.shape}")
    for name, arr in (("p_x", p_x), ("q_x", q_x)):
        if np.any(arr < 0):
            raise ValueError(f"{name} must be >= 0 (densities)")
    bad = p_x > (1 + RTOL) * M * q_x
    if np.any(bad):
        i = int(np.argmax(bad))
        ratio = p_x[i] / q_x[i] if q_x[i] > 0 else math.inf
        raise ValueError(f"M={M:g} does not bound p/q: at proposal {i}, p(x)/q(x) = {ratio:g} > M (need "
                         f"p(x) <= M q(x) everywhere; use a larger M)")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p_x > 0, np.minimum(p_x / (M * np.where(q_x > 0, q_x, 1.0)), 1.0), 0.0)


def accept_reject(p_x, q_x, u, M: float) -> np.ndarray:
    """The accept/reject decision of rejection sampling: proposal ``i`` is accepted iff ``u_i M q(x_i) < p(x_i)``.

    That is ``u_i < p(x_i) / (M q(x_i))``, written without a division (a proposal with ``p(x_i) = 0`` is never
    accepted, not even with ``u_i = 0``).

    Args:
        p_x: ``(N,)`` target density at the proposals (``>= 0``, may be unnormalised).
        q_x: ``(N,)`` proposal density at the proposals (``>= 0``).
        u: ``(N,)`` uniform numbers in ``[0, 1)``, one per proposal.
        M: the bound of ``p / q``.
    Returns:
        ``(N,)`` bool array: which proposals are accepted.
    Raises:
        ValueError: as :func:`acceptance_ratio` (including "M does not bound p/q"), or ``u`` of another shape or
            outside ``[0, 1)``.
    """
    acceptance_ratio(p_x, q_x, M)  # all the checks
    p_x, q_x, u = np.asarray(p_x, float), np.asarray(q_x, float), _array("u", u)
    if u.shape != p_x.shape:
        raise ValueError(f"u must have the shape of p_x {p_x.shape}, got {u.shape}")
    _check_u(u)
    return u * float(M) * q_x < p_x


@dataclass(frozen=True)
class RejectionStats:
    """What a rejection-sampling run cost: ``proposed`` draws for ``accepted`` samples.

    ``acceptance_rate = accepted / proposed`` estimates ``Z / M`` (``1 / M`` for a normalised target).
    ``max_ratio`` is the largest ``p(x) / (M q(x))`` seen (close to 1 for a tight bound); ``violations`` counts
    proposals with ``p(x) > M q(x)`` (only with ``strict=False``; with ``strict=True`` the first one raises).
    """

    proposed: int
    accepted: int
    max_ratio: float
    violations: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


def rejection_sample(target_density: Callable[[np.ndarray], np.ndarray],
                     propose: Callable[[np.random.Generator, int], np.ndarray],
                     proposal_density: Callable[[np.ndarray], np.ndarray], M: float, n: int,
                     rng: np.random.Generator, batch_size: int = 1024, max_proposals: int = 10_000_000,
                     strict: bool = True) -> tuple[np.ndarray, RejectionStats]:
    """Draw ``n`` samples of ``target_density`` by rejection from a proposal (continuous or discrete).

    In batches of ``batch_size``: ``x = propose(rng, batch_size)``, then ``u = rng.random(batch_size)``, then
    :func:`accept_reject`; the first ``n`` accepted ``x`` are returned, in order, and the stats count the proposals
    up to the ``n``-th acceptance. Deterministic for a seeded ``rng``.

    Args:
        target_density: ``p``, vectorised: ``(B,) -> (B,)`` (unnormalised is fine).
        propose: ``(rng, B) -> (B,)`` draws of ``q``. proposal_density: ``q``, ``(B,) -> (B,)``.
        M: a bound with ``p(x) <= M q(x)``. n: samples wanted.
        strict: ``True``: a proposal with ``p(x) > M q(x)`` raises ``ValueError`` ("M does not bound p/q").
            ``False``: accept it with probability 1 and count it in ``stats.violations`` (the samples then follow
            ``min(p, M q)``, not ``p``: the demonstration of what a wrong ``M`` does).
    Returns:
        ``(samples (n,), RejectionStats)``.
    Raises:
        ValueError: bad ``n``/``batch_size``/``M``, a violated bound (``strict``), or more than ``max_proposals``
            proposals needed (the acceptance rate is too low: ``M`` far too large, or ``p`` almost 0 where ``q``
            proposes).
    """
    check_positive_int("n", n)
    check_positive_int("batch_size", batch_size)
    M = _check_M(M)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    chunks, accepted, proposed, violations, max_ratio = [], 0, 0, 0, 0.0
    while accepted < n:
        if proposed >= max_proposals:
            raise ValueError(f"more than max_proposals={max_proposals} proposals for {n} samples "
                             f"(accepted {accepted}): the acceptance rate is too low, M may be far too large")
        x = np.asarray(propose(rng, batch_size))
        u = rng.random(batch_size)
        p_x, q_x = _array("target_density(x)", target_density(x)), _array("proposal_density(x)", proposal_density(x))
        if p_x.shape != (batch_size,) or q_x.shape != (batch_size,):
            raise ValueError(f"the densities must return one value per proposal ({batch_size},), got {p_x.shape} "
                             f"and {q_x.shape}")
        if strict:
            ok = accept_reject(p_x, q_x, u, M)
            ratio = acceptance_ratio(p_x, q_x, M)
        else:
            over = p_x > (1 + RTOL) * M * q_x
            ratio = acceptance_ratio(np.where(over, M * q_x, p_x), q_x, M)
            ok = u < ratio
            ok[over] = True
        take = np.flatnonzero(ok)[:n - accepted]
        used = batch_size if accepted + int(ok.sum()) < n else int(take[-1]) + 1  # up to the n-th acceptance
        if not strict:
            violations += int(over[:used].sum())
        max_ratio = max(max_ratio, float(ratio[:used].max()) if used else 0.0)
        chunks.append(x[take])
        accepted += len(take)
        proposed += used
    return np.concatenate(chunks)[:n], RejectionStats(proposed, accepted, max_ratio, violations)


def discrete_rejection_sample(p, q, M: float, n: int, rng: np.random.Generator, batch_size: int = 1024
                              ) -> tuple[np.ndarray, RejectionStats]:
    """:func:`rejection_sample` on ``{0, ..., K-1}`` with a target ``p: (K,)`` (any non-negative weights) and a
    proposal pmf ``q: (K,)`` (sums to 1); the bound is checked on the whole support first.

    Raises:
        ValueError: shapes, ``q`` not a pmf, or ``M < max_x p(x) / q(x)`` (the message gives the smallest valid
            ``M``; infinite when ``q`` is 0 where ``p`` is not).
    """
    p, q = _array("p", p), _array("q", q)
    if p.shape != q.shape or p.size == 0:
        raise ValueError(f"p and q must be non-empty and of the same shape, got {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0) or not math.isclose(q.sum(), 1.0, rel_tol=1e-6):
        raise ValueError("p must be >= 0 and q a probability vector (>= 0, summing to 1)")
    need = smallest_bound(p, q)
    if need > (1 + RTOL) * _check_M(M):
        raise ValueError(f"M={M:g} does not bound p/q: max p(x)/q(x) = {need:g}; use M >= {need:g}")
    K = len(p)
    return rejection_sample(lambda x: p[x], lambda g, b: g.choice(K, size=b, p=q), lambda x: q[x], M, n, rng,
                            batch_size=batch_size)


def smallest_bound(p_values, q_values) -> float:
    """``max p(x) / q(x)`` over the given points: the tightest ``M`` (``inf`` if ``q = 0 < p`` somewhere).

    For continuous densities evaluate both on a fine grid; the maximum on the grid can miss a sharp peak, so add a
    margin.
    """
    p, q = _array("p_values", p_values), _array("q_values", q_values)
    if p.shape != q.shape:
        raise ValueError(f"p_values and q_values must have the same shape, got {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("p_values and q_values must be >= 0")
    if np.any((q == 0) & (p > 0)):
        return math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.max(np.where(p > 0, p / np.where(q > 0, q, 1.0), 0.0), initial=0.0))


def empirical_pmf(samples, K: int) -> np.ndarray:
    """The histogram of integer ``samples`` in ``0..K-1``, normalised: ``(K,)``."""
    s = np.asarray(samples)
    check_positive_int("K", K)
    if s.size == 0 or np.any((s < 0) | (s >= K)) or not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"samples must be a non-empty array of integers in 0..{K - 1}")
    return np.bincount(s, minlength=K) / s.size


def total_variation(pmf_a, pmf_b) -> float:
    """``0.5 * sum |a - b|`` between two pmfs of the same shape (0: equal, 1: disjoint)."""
    a, b = _array("pmf_a", pmf_a), _array("pmf_b", pmf_b)
    if a.shape != b.shape:
        raise ValueError(f"pmf_a and pmf_b must have the same shape, got {a.shape} and {b.shape}")
    return 0.5 * float(np.abs(a - b).sum())


# ------------------------------------------------------------------------------------------------ filtering
def best_of_n(scores) -> np.ndarray:
    """Best-of-N: per prompt, the index of the highest-scoring of its ``N`` answers (ties: the first).

    Args:
        scores: ``(P, N)`` finite scores (reward model, verifier, log-probability...).
    Returns:
        ``(P,)`` int indices in ``0..N-1``.
    """
    s = _array("scores", scores, dim=2)
    if s.shape[1] == 0:
        raise ValueError("scores must hold at least one answer per prompt (N >= 1)")
    return np.argmax(s, axis=1)


def accept_by_score(scores, u) -> np.ndarray:
    """Soft rejection sampling with a verifier: accept answer ``i`` with probability ``scores[i]``: ``u_i < r_i``.

    The target is ``pi(y) r(y)`` with proposal ``pi`` and ``M = 1``, so ``p / (M q) = r``.

    Raises:
        ValueError: ``scores`` outside ``[0, 1]`` (they are acceptance probabilities), ``u`` outside ``[0, 1)``, or
            shapes that differ.
    """
    r, u = _array("scores", scores), _array("u", u)
    if r.shape != u.shape:
        raise ValueError(f"scores and u must have the same shape, got {r.shape} and {u.shape}")
    if np.any((r < 0) | (r > 1)):
        raise ValueError("scores must be probabilities in [0, 1] (acceptance probabilities)")
    _check_u(u)
    return u < r


RFT_COUNTS = ("responses", "wrong", "malformed", "duplicates", "over_cap", "kept", "prompts_with_data")


def rft_dataset(problems: Sequence[arithmetic.Problem], responses: Sequence[Sequence[str]], fmt: str = "cot",
                max_per_prompt: int = 4) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The SFT data of one RFT round: the model's own verified answers, at most ``max_per_prompt`` per prompt.

    Every response of problem ``i`` (``responses[i]``, any number) goes through these filters in order; the first
    that rejects it gets it counted:

    1. ``wrong``: its final answer (:func:`aiterms.arithmetic.extract_answer`) is not the problem's answer;
    2. ``malformed``: right answer, but not well formed (:func:`aiterms.arithmetic.is_well_formed` for ``fmt``);
    3. ``duplicates``: the same response text was already kept for the same prompt (prompts are compared as text,
       so a problem that appears twice in ``problems`` is one prompt);
    4. ``over_cap``: the prompt already has ``max_per_prompt`` kept responses;

    the rest are ``kept``, as ``(prompt, response)`` pairs in the order they come (problem by problem, response by
    response). ``counts`` also holds ``responses`` (all of them: ``wrong + malformed + duplicates + over_cap + kept``)
    and ``prompts_with_data`` (distinct prompts with at least one kept response).

    Raises:
        ValueError: ``len(problems) != len(responses)``, ``max_per_prompt < 1``, an unknown ``fmt``, a response that
            is not a ``str``.
    """
    check_positive_int("max_per_prompt", max_per_prompt)
    if fmt not in arithmetic.FORMATS:
        raise ValueError(f"fmt must be one of {arithmetic.FORMATS}, got {fmt!r}")
    if len(problems) != len(responses):
        raise ValueError(f"problems and responses must have the same length (one list of responses per problem), "
                         f"got {len(problems)} and {len(responses)}")
    counts = dict.fromkeys(RFT_COUNTS, 0)
    kept: dict[str, list[str]] = {}
    pairs = []
    for problem, answers in zip(problems, responses):
        if isinstance(answers, str):
            raise ValueError("responses[i] must be a list of responses (strings), got a single string")
        prompt = arithmetic.prompt(problem)
        seen = kept.setdefault(prompt, [])
        for text in answers:
            if not isinstance(text, str):
                raise ValueError(f"responses must be strings, got {type(text).__name__}")
            counts["responses"] += 1
            if arithmetic.extract_answer(text) != problem.answer:
                counts["wrong"] += 1
            elif not arithmetic.is_well_formed(text, fmt):
                counts["malformed"] += 1
            elif text in seen:
                counts["duplicates"] += 1
            elif len(seen) >= max_per_prompt:
                counts["over_cap"] += 1
            else:
                seen.append(text)
                pairs.append((prompt, text))
                counts["kept"] += 1
    counts["prompts_with_data"] = sum(1 for v in kept.values() if v)
    return pairs, counts


# ------------------------------------------------------------------------------------------------ RFT
def _default_sft() -> TrainConfig:
    return TrainConfig(steps=100, batch_size=64, lr=3e-4, warmup=10)


@dataclass
class RFTConfig:
    """Hyperparameters of rejection-sampling fine-tuning (all in one place, CleanRL style).

    ``k`` answers per prompt at ``temperature``; at most ``max_per_prompt`` kept per prompt; ``sft``: the fine-tuning
    run of each round (its ``seed`` is offset by the round); ``prompts_per_round``: a seeded sample of the problems
    each round (``None``: all of them); ``seed`` seeds the sampling.
    """

    rounds: int = 1
    k: int = 8
    temperature: float = 1.0
    max_per_prompt: int = 4
    prompts_per_round: int | None = None
    fmt: str = "cot"
    sft: TrainConfig = field(default_factory=_default_sft)
    seed: int = 0

    def __post_init__(self):
        for name in ("rounds", "k", "max_per_prompt"):
            check_positive_int(name, getattr(self, name))
        if self.prompts_per_round is not None:
            check_positive_int("prompts_per_round", self.prompts_per_round)
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0 (RFT samples; greedy gives k equal answers), got "
                             f"{self.temperature!r}")
        if self.fmt not in arithmetic.FORMATS:
            raise ValueError(f"fmt must be one of {arithmetic.FORMATS}, got {self.fmt!r}")
        if not isinstance(self.sft, TrainConfig):
            raise ValueError(f"sft must be an aiterms.sft.TrainConfig, got {type(self.sft).__name__}")


def rft(policy, problems: Sequence[arithmetic.Problem], config: RFTConfig,
        eval_problems: Sequence[arithmetic.Problem] | None = None, progress: bool = False):
    """Rejection-sampling fine-tuning, ``config.rounds`` times: sample ``k`` -> :func:`rft_dataset` -> SFT.

    Each round: ``k`` answers per prompt from the current ``policy`` (:func:`aiterms.evaluation.solve`, seed
    ``config.seed + round``), the verified ones kept (at most ``max_per_prompt`` per prompt), then SFT on them
    (:func:`aiterms.sft.train` on :func:`aiterms.sft.sft_examples`, response-only loss) starting from the current
    weights. ``policy`` is trained in place and returned.

    Returns:
        ``(policy, history)``; ``history`` has one entry per round in lists: ``round``, ``sampled``, ``kept``,
        ``acceptance`` (fraction of samples right: the rejection-sampling acceptance rate, an estimate of sampled
        pass@1), ``prompts_with_data``, ``loss`` (last SFT loss), ``seconds`` (cumulative); and, with
        ``eval_problems``, ``eval_round`` and ``eval_pass@1`` (greedy, step by step), round 0 being before training.
    """
    import random

    from aiterms.evaluation import score, solve
    from aiterms.sft import sft_examples, train

    if not isinstance(config, RFTConfig):
        raise ValueError(f"config must be an RFTConfig, got {type(config).__name__}")
    problems = list(problems)
    if not problems:
        raise ValueError("problems must not be empty")
    history: dict[str, list] = {key: [] for key in ("round", "sampled", "kept", "acceptance", "prompts_with_data",
                                                    "loss", "seconds")}

    def evaluate(r: int) -> None:
        if eval_problems:
            history.setdefault("eval_round", []).append(r)
            history.setdefault("eval_pass@1", []).append(
                score(eval_problems, solve(policy, eval_problems, config.fmt))["accuracy"])

    start = time.perf_counter()
    evaluate(0)
    rng = random.Random(config.seed)
    for r in range(1, config.rounds + 1):
        chosen = problems if config.prompts_per_round is None else \
            [problems[i] for i in rng.sample(range(len(problems)), min(config.prompts_per_round, len(problems)))]
        samples = solve(policy, chosen, config.fmt, samples=config.k, temperature=config.temperature,
                        seed=config.seed + r)
        pairs, counts = rft_dataset(chosen, samples, config.fmt, config.max_per_prompt)
        loss = float("nan")
        if pairs:
            losses = train(policy, sft_examples(pairs, policy.config.block_size),
                           replace(config.sft, seed=config.sft.seed + r), desc=f"RFT round {r}", progress=progress)
            loss = losses[-1]
        history["round"].append(r)
        history["sampled"].append(counts["responses"])
        history["kept"].append(counts["kept"])
        history["acceptance"].append((counts["responses"] - counts["wrong"]) / counts["responses"])
        history["prompts_with_data"].append(counts["prompts_with_data"])
        history["loss"].append(loss)
        evaluate(r)
        history["seconds"].append(time.perf_counter() - start)
    return policy, history
