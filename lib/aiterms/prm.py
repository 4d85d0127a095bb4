"""Process reward models (PRMs): a score for every reasoning step, learnt from Monte Carlo step labels.

An **outcome reward model** (ORM; Cobbe et al., 2021) reads a whole response and predicts whether its final answer is
right. A **process reward model** (Uesato et al., 2022; Lightman et al., 2023, "Let's Verify Step by Step") scores
every step: the probability that the solution is still on track after it. Human step labels are expensive
(PRM800K), so Math-Shepherd (Wang et al., 2024) labels steps automatically by **Monte Carlo estimation**: from the
prefix that ends with step ``k``, sample ``n`` completions with the policy and count how many reach the right answer::

    soft label   y_k = (1/n) sum_j [answer(prefix_k + completion_j) == right answer]       in [0, 1]
    hard label   y_k = [some completion reaches the right answer]                            in {0, 1}

**Segments.** A step-by-step response of :mod:`aiterms.arithmetic` (``7+5+0=12|4+8+1=13|=132``) is split at ``|``
into segments: the steps, then the answer segment ``=132``. The reward models give one score per segment, read at the
segment's last token: its ``|``, and the ``<eos>`` for the last segment. The last segment's label is the outcome
itself (is the answer right?), so the PRM's last score is an outcome prediction too. Positions, for a sequence laid
out as everywhere in the course (``s = <bos> prompt <sep> response <eos>``, ``P = len(prompt) + 2``)::

    position of segment k = P + (index of the k-th "|" in response)     for k < K - 1
    position of segment K-1 = P + len(response)                         (the <eos>)

**The network** is a :class:`StepVerifier`: a copy of the policy (a language model) that reads the response token by
token. Its probability of each written token, rescaled, is the chance ``q_t`` that token ``t`` is right when every
token before it is right, and a segment's score is the chance that the response is still right after it::

    z_t = alpha * log p_theta(x_t | x_<t) + beta,     q_t = sigmoid(z_t)          (theta, alpha, beta trained)
    score_k = prod_{t = P}^{pos_k} q_t              (from the first response token to segment k's last token)

So a verifier starts as the policy's own confidence in what was written (the generative verifiers of Zhang et al.,
2024) and is then trained to tell right from wrong. Scores can only fall along a response: a step is on track only if
every step before it is. Every model is trained with the binary cross-entropy of its segment scores against labels;
a PRM on every segment, an ORM on the last segment only (the outcome)::

    PRM:  L = mean_{b, k} BCE(score_bk, y_bk)          ORM:  L = mean_b BCE(score_b,K-1, o_b)

The labels ``y`` are either the exact ones (:func:`true_step_labels`, what human step labels give in PRM800K) or the
Monte Carlo estimates (Math-Shepherd).

Because our steps can be checked exactly (:func:`aiterms.arithmetic.verify_steps`), :func:`true_step_labels` gives
the truth the MC labels estimate, something no real-world dataset has.

**Using the scores.** A response's step scores are aggregated into one number (:func:`aggregate_step_scores`:
``min``, ``prod`` or ``last``; Wang et al., Lightman et al., Snell et al., 2024), then the responses to one
problem are ranked (:func:`best_of_n`) or vote with their scores as weights (:func:`weighted_majority_vote`; Uesato
et al., 2022; Li et al., 2023).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Hashable, Sequence

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from aiterms import arithmetic
from aiterms.decoding import check_positive_int
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, generate_batch

__all__ = ["AGGREGATIONS", "PRMConfig", "StepVerifier", "REWARD_MODELS", "segments", "segment_positions", "true_step_labels", "mc_labels",
           "mc_step_labels",
           "encode_scored", "step_scores", "outcome_scores", "aggregate_step_scores", "best_of_n",
           "weighted_majority_vote", "train_reward_model", "train_reward_models", "load_reward_model",
           "sample_responses"]

#: the ways to turn a response's step scores into one score
AGGREGATIONS: tuple[str, ...] = ("min", "prod", "last")


# ------------------------------------------------------------------------------------------------ segments and labels
def segments(response: str) -> list[str]:
    """The segments of a response, split at ``|``: the steps, then the answer segment (``"7+5+0=12|=12"`` ->
    ``["7+5+0=12", "=12"]``). Every response has at least one segment (``""`` -> ``[""]``)."""
    if not isinstance(response, str):
        raise ValueError(f"response must be a str, got {type(response).__name__}")
    return response.split("|")


def segment_positions(prompt_len: int, response: str) -> list[int]:
    """Where each segment's score is read, as indices into ``s = <bos> prompt <sep> response <eos>``.

    Segment ``k < K - 1`` is read at its ``|`` (index ``prompt_len + 2 + i`` where ``response[i]`` is that ``|``), the
    last segment at the ``<eos>`` (index ``prompt_len + 2 + len(response)``). ``prompt_len``: characters of the prompt.
    """
    check_positive_int("prompt_len", prompt_len)
    offset = prompt_len + 2
    bars = [offset + i for i, ch in enumerate(response) if ch == "|"]
    return bars + [offset + len(response)]


def true_step_labels(problem: arithmetic.Problem, response: str) -> list[bool]:
    """The exact label of every segment: is everything up to and including it right?

    Segment ``k`` (a step) is right iff steps ``0..k`` are all exactly right (:func:`aiterms.arithmetic.verify_steps`;
    a step beyond the last column is wrong). The last segment, if it is an answer segment, is right iff every column's
    step is there and right *and* the answer is right. These are what the MC labels estimate, except that a lucky
    completion can reach the right answer after a wrong step (see :func:`mc_step_labels`).
    """
    checks = arithmetic.verify_steps(problem, response)
    texts, answer = arithmetic.split_response(response)
    labels, ok = [], True
    for k in range(len(texts)):
        ok = ok and checks[k]
        labels.append(ok)
    if answer is not None:
        labels.append(all(checks) and arithmetic.extract_answer(response) == problem.answer)
    return labels


def _prompt_ids(problem: arithmetic.Problem) -> list[int]:
    return TOKENIZER.encode_prompt(arithmetic.prompt(problem))


def mc_labels(outcomes: Sequence[Sequence[bool]], final_correct: bool, hard: bool = False) -> list[float]:
    """The Monte Carlo labels of one response's segments from the outcomes of its rollouts (module docstring).

    Args:
        outcomes: one list per segment but the last (``K - 1`` lists for ``K`` segments): whether each completion
            sampled from the prefix that ends with that segment reached the right answer. An empty list (no completion
            could be sampled: the prefix fills the context) gives the label 0.
        final_correct: whether the response's own answer is right: the last segment's label (nothing is sampled).
        hard: Math-Shepherd's hard estimate, 1.0 if any completion is right, else 0.0; default the soft estimate, the
            fraction that are right.
    Returns:
        ``K`` labels in [0, 1]. Raises ValueError for an outcome that is not a bool (or 0 / 1).
    """
    def check(x) -> bool:
        if isinstance(x, bool) or (isinstance(x, int) and x in (0, 1)):
            return bool(x)
        raise ValueError(f"every outcome must be True or False (or 1 / 0), got {x!r}")

    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        if not right:
            labels.append(0.0)
        elif hard:
            labels.append(float(any(right)))
        else:
            labels.append(sum(right) / len(right))
    return labels + [float(check(final_correct))]


@torch.no_grad()
def mc_step_labels(policy: GPT, problems: Sequence[arithmetic.Problem], responses: Sequence[str], rollouts: int,
                   temperature: float = 1.0, generator: torch.Generator | None = None, hard: bool = False,
                   max_batch: int = 1024, progress: bool = False) -> list[list[float]]:
    """Monte Carlo step labels (Math-Shepherd; module docstring), one list per response, one label per segment.

    For every segment but the last, ``rollouts`` completions of the prefix ``segments[:k+1]`` joined with ``|`` (so
    ending with ``|``) are sampled from ``policy`` at ``temperature``; the label is the fraction that reach the right
    answer (``hard=True``: 1.0 if any does, else 0.0), by :func:`mc_labels`. The last segment's label is the
    response's own correctness (nothing left to sample). Prefixes of equal length are generated together, at most
    ``max_batch`` rows at a time; deterministic for a seeded ``generator``.

    Raises:
        ValueError: ``problems`` and ``responses`` of different lengths or empty, ``rollouts < 1``,
        ``temperature <= 0``.
    """
    if len(problems) != len(responses) or not problems:
        raise ValueError(f"problems and responses must be non-empty and of the same length, got {len(problems)} and "
                         f"{len(responses)}")
    check_positive_int("rollouts", rollouts)
    check_positive_int("max_batch", max_batch)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 to sample completions, got {temperature!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    outcomes: list[list[list[bool]]] = [[[] for _ in segments(r)[:-1]] for r in responses]
    jobs: dict[int, list[tuple[int, int, list[int]]]] = {}          # prefix length -> (response, segment, ids)
    for i, (p, r) in enumerate(zip(problems, responses)):
        segs = segments(r)
        prompt_ids = _prompt_ids(p)
        for k in range(len(segs) - 1):
            ids = prompt_ids + TOKENIZER.encode("|".join(segs[:k + 1]) + "|")
            if len(ids) <= policy.config.block_size:
                jobs.setdefault(len(ids), []).append((i, k, ids))
            # a prefix that fills the context cannot be continued: no outcomes, label 0 (it never answers)
    per_batch = max(1, max_batch // rollouts)
    chunks = [(length, items[s:s + per_batch]) for length, items in sorted(jobs.items())
              for s in range(0, len(items), per_batch)]
    for length, chunk in tqdm(chunks, desc="MC labels", disable=None if progress else True, leave=False):
        budget = policy.config.block_size - length + 1
        out = generate_batch(policy, [ids for _, _, ids in chunk for _ in range(rollouts)], budget,
                             eos_id=TOKENIZER.eos_id, temperature=temperature, generator=generator)
        for j, (i, k, ids) in enumerate(chunk):
            prefix = TOKENIZER.decode(ids[len(_prompt_ids(problems[i])):])
            outcomes[i][k] = [arithmetic.correctness_reward(problems[i], prefix + TOKENIZER.decode(row)) == 1.0
                              for row in out[j * rollouts:(j + 1) * rollouts]]
    return [mc_labels(o, arithmetic.correctness_reward(p, r) == 1.0, hard)
            for o, p, r in zip(outcomes, problems, responses)]


# ------------------------------------------------------------------------------------------------ scoring
#: the reward models :func:`train_reward_models` writes: the PRM on exact labels, the PRM on Monte Carlo labels, the ORM
REWARD_MODELS = ("prm", "prm-mc", "orm")
VERIFIER_FORMAT = "aiterms.prm.StepVerifier/1"


class StepVerifier(nn.Module):
    """A reward model that scores every token of a response (module docstring): ``verifier(ids (N, T)) -> z (N, T)``,
    the logit of ``q_t``, the chance that token ``t`` is right given that every earlier token is. ``z[:, 0]`` is 0
    (no token before the first). Built from a copy of ``policy`` with ``alpha = 1`` and ``beta`` (4: a token the
    policy is sure of gets ``q = 0.98``)."""

    def __init__(self, policy: GPT, beta: float = 4.0):
        super().__init__()
        if not isinstance(policy, GPT):
            raise ValueError(f"policy must be an aiterms.transformer.GPT, got {type(policy).__name__}")
        self.lm = copy.deepcopy(policy)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.beta = nn.Parameter(torch.tensor(float(beta)))

    @property
    def config(self):
        """The language model's :class:`~aiterms.transformer.GPTConfig`."""
        return self.lm.config

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.lm(ids)[0].float(), dim=-1)                      # (N, T, V)
        written = torch.gather(logp[:, :-1], 2, ids[:, 1:, None]).squeeze(-1)          # (N, T-1): log p(x_t | x_<t)
        return torch.cat([torch.zeros(len(ids), 1), self.alpha * written + self.beta], dim=1)   # (N, T)

    def log_scores(self, ids: torch.Tensor, starts: Sequence[int]) -> torch.Tensor:
        """``(N, T)``: ``sum_{t = starts[b]}^{u} log q_t`` at every position ``u`` (0 before ``starts[b]``): the log
        score of a segment that ends at ``u``."""
        logq = F.logsigmoid(self(ids))                                                  # (N, T)
        keep = torch.arange(ids.shape[1])[None, :] >= torch.tensor(list(starts))[:, None]
        return torch.cumsum(logq * keep, dim=1)

    def save(self, path: str | Path, **metadata) -> None:
        """Write ``{"format", "config" (the GPTConfig as a dict), "state_dict", "metadata"}`` with ``torch.save``."""
        torch.save({"format": VERIFIER_FORMAT, "config": asdict(self.lm.config), "state_dict": self.state_dict(),
                    "metadata": {**getattr(self, "metadata", {}), **metadata}}, path)

    @classmethod
    def load(cls, path: str | Path) -> "StepVerifier":
        """Rebuild a verifier written by :meth:`save` (CPU, eval mode, ``torch.load(weights_only=True)``)."""
        from aiterms.transformer import GPTConfig
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != VERIFIER_FORMAT:
            raise ValueError(f"path {str(path)!r} is not a checkpoint written by StepVerifier.save ({VERIFIER_FORMAT})")
        model = cls(GPT(GPTConfig(**ckpt["config"])))
        model.load_state_dict(ckpt["state_dict"])
        model.metadata = ckpt["metadata"]
        return model.eval()


def _starts(problems: Sequence[arithmetic.Problem]) -> list[int]:
    return [len(arithmetic.prompt(p)) + 2 for p in problems]      # <bos> prompt <sep>: the first response token


def encode_scored(problems: Sequence[arithmetic.Problem], responses: Sequence[str], block_size: int
                  ) -> tuple[torch.Tensor, list[list[int]]]:
    """``ids (N, T)``: ``<bos> prompt <sep> response <eos>`` right-padded with ``<pad>``, and each row's segment
    positions (:func:`segment_positions`). A row longer than ``block_size`` is cut to it, and a segment read past the
    cut is read at the last position instead.

    Raises:
        ValueError: different lengths, no rows, a character the tokenizer does not know.
    """
    if len(problems) != len(responses) or not problems:
        raise ValueError(f"problems and responses must be non-empty and of the same length, got {len(problems)} and "
                         f"{len(responses)}")
    rows, positions = [], []
    for p, r in zip(problems, responses):
        text = arithmetic.prompt(p)
        row = (TOKENIZER.encode_prompt(text) + TOKENIZER.encode(r) + [TOKENIZER.eos_id])[:block_size]
        rows.append(row)
        positions.append([min(pos, len(row) - 1) for pos in segment_positions(len(text), r)])
    ids = torch.full((len(rows), max(map(len, rows))), TOKENIZER.pad_id, dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, positions


@torch.no_grad()
def step_scores(model: StepVerifier, problems: Sequence[arithmetic.Problem], responses: Sequence[str],
                batch_size: int = 256) -> list[list[float]]:
    """One score in ``(0, 1)`` per segment of every response: ``score_k = prod_{t = P}^{pos_k} q_t`` (module docstring).

    For a PRM, score ``k`` is the predicted chance that the response is still on track after segment ``k`` (the last
    one: that its answer is right). Rows are run ``batch_size`` at a time in eval mode.
    """
    if not isinstance(model, StepVerifier):
        raise ValueError(f"model must be an aiterms.prm.StepVerifier (load one with load_reward_model), got "
                         f"{type(model).__name__}")
    check_positive_int("batch_size", batch_size)
    ids, positions = encode_scored(problems, responses, model.config.block_size)
    starts = _starts(problems)
    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    for first in range(0, len(positions), batch_size):
        scores = model.log_scores(ids[first:first + batch_size], starts[first:first + batch_size]).exp()   # (n, T)
        for b, pos in enumerate(positions[first:first + batch_size]):
            out.append(scores[b, pos].tolist())
    model.train(was_training)
    return out


def outcome_scores(model: StepVerifier, problems: Sequence[arithmetic.Problem], responses: Sequence[str],
                   batch_size: int = 256) -> list[float]:
    """The score of the last segment of every response (read at ``<eos>``): the ORM's prediction that the answer is
    right (for a PRM: the same, its last step score)."""
    return [s[-1] for s in step_scores(model, problems, responses, batch_size)]


# ------------------------------------------------------------------------------------------------ using the scores
def _check_probabilities(name: str, values: Sequence[float]) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r:.80}") from None
    for i, v in enumerate(out):
        if not 0.0 <= v <= 1.0:       # also rejects NaN
            raise ValueError(f"{name} must be probabilities in [0, 1], got {name}[{i}] = {v!r}")
    return out


def aggregate_step_scores(step_scores: Sequence[float], method: str = "min") -> float:
    """One score for a response from its step scores ``p_1 .. p_K`` (probabilities in ``[0, 1]``)::

        min:  min_k p_k       (a chain is as strong as its weakest step; Math-Shepherd, Wang et al., 2024)
        prod: prod_k p_k      (the chance that every step is right, if independent; Lightman et al., 2023)
        last: p_K             (the last step's score alone, close to an outcome score; Snell et al., 2024)

    Raises:
        ValueError: no scores, a score outside ``[0, 1]`` (or NaN), or an unknown ``method``.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"method must be one of {AGGREGATIONS}, got {method!r}")
    scores = _check_probabilities("step_scores", step_scores)
    if not scores:
        raise ValueError("step_scores must hold at least one score")
    if method == "min":
        return min(scores)
    if method == "prod":
        return math.prod(scores)
    return scores[-1]


def _check_votes(answers: Sequence[Hashable | None], scores: Sequence[float]) -> list[float]:
    scores = _check_probabilities("scores", scores)
    if len(answers) != len(scores):
        raise ValueError(f"answers and scores must have the same length, got {len(answers)} and {len(scores)}")
    return scores


def best_of_n(answers: Sequence[Hashable | None], scores: Sequence[float]) -> Hashable | None:
    """Best-of-N by a reward model: the answer of the highest-scoring response.

    ``answers[i]`` is response ``i``'s final answer (``None``: it has none, and it is skipped), ``scores[i]`` its
    score in ``[0, 1]``. Ties go to the response that comes first. ``None`` if no response has an answer.

    Raises:
        ValueError: different lengths, or a score outside ``[0, 1]``.
    """
    scores = _check_votes(answers, scores)
    best, best_score = None, -1.0
    for a, s in zip(answers, scores):
        if a is not None and s > best_score:
            best, best_score = a, s
    return best


def weighted_majority_vote(answers: Sequence[Hashable | None], scores: Sequence[float]) -> Hashable | None:
    """Majority vote where each response votes with its score: ``argmax_a sum_{i: answers[i] = a} scores[i]``.

    With every score 1 it is plain majority vote (self-consistency, Wang et al., 2023). ``None`` answers do not vote;
    ties go to the tied answer that appears first in ``answers``; ``None`` if no response has an answer.

    Raises:
        ValueError: different lengths, or a score outside ``[0, 1]``.
    """
    scores = _check_votes(answers, scores)
    totals: dict[Hashable, float] = {}
    for a, s in zip(answers, scores):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + s
    if not totals:
        return None
    top = max(totals.values())
    return next(a for a in totals if totals[a] == top)        # dicts keep the order of first appearance


# ------------------------------------------------------------------------------------------------ training
@dataclass
class PRMConfig:
    """Hyperparameters of :func:`train_reward_models`: data (problems, sampled responses, MC rollouts per prefix) and
    training (``steps`` of AdamW on ``batch_size`` responses). The PRM and the ORM see the same responses."""

    digits: int = 4
    ops: tuple[str, ...] = ("+", "-")
    problems: int = 768              # training problems
    samples_per_problem: int = 4     # responses sampled per problem
    val_problems: int = 32           # held-out problems for the metrics
    rollouts: int = 4                # MC completions per step prefix
    temperature: float = 1.0         # of the sampled responses and the completions
    hard_labels: bool = False        # train on hard (any completion right) instead of soft MC labels
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-4
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        self.ops = tuple(self.ops)
        for name in ("digits", "problems", "samples_per_problem", "val_problems", "rollouts", "steps",
                     "batch_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("temperature", "lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.ops or any(op not in arithmetic.OPS for op in self.ops):
            raise ValueError(f"ops must be a non-empty tuple of operations from {arithmetic.OPS}, got {self.ops!r}")


def sample_responses(policy: GPT, problems: Sequence[arithmetic.Problem], samples: int, temperature: float,
                     generator: torch.Generator) -> tuple[list[arithmetic.Problem], list[str]]:
    """``samples`` sampled responses per problem, flattened: ``(problem of each row, response of each row)``."""
    from aiterms.rollout import sample_group
    rollout = sample_group(policy, list(problems), samples, temperature, generator,
                           max_new_tokens=policy.config.block_size)
    return [problems[i] for i in rollout.prompt_index], rollout.responses


def _bce_batch(model: StepVerifier, ids: torch.Tensor, starts: list[int], positions: list[list[int]],
               labels: list[list[float]], outcome_only: bool) -> torch.Tensor:
    log_scores = model.log_scores(ids, starts)                                    # (n, T)
    rows, cols, targets = [], [], []
    for b, (pos, lab) in enumerate(zip(positions, labels)):
        pairs = [(pos[-1], lab[-1])] if outcome_only else list(zip(pos, lab))
        for p, y in pairs:
            rows.append(b)
            cols.append(p)
            targets.append(y)
    log_p = log_scores[rows, cols].clamp(max=-1e-6)                                # log score, < 0
    y = torch.tensor(targets)
    return -(y * log_p + (1 - y) * torch.log(-torch.expm1(log_p))).mean()        # BCE(exp(log_p), y)


def train_reward_model(policy: GPT, problems: Sequence[arithmetic.Problem], responses: Sequence[str],
                       labels: Sequence[Sequence[float]], config: PRMConfig, outcome_only: bool = False,
                       progress: bool = False) -> tuple[StepVerifier, list[float]]:
    """Train a :class:`StepVerifier`, built from ``policy``, with the BCE of the module docstring.

    ``labels[i]``: one target in ``[0, 1]`` per segment of ``responses[i]``; ``outcome_only=True`` trains on the
    last segment only (an ORM). Each step draws ``batch_size`` responses (seeded); the learning rate falls linearly
    to 0. Returns the model (eval mode) and the loss of every step.
    """
    if not (len(problems) == len(responses) == len(labels)) or not problems:
        raise ValueError(f"problems, responses and labels must be non-empty and of the same length, got "
                         f"{len(problems)}, {len(responses)} and {len(labels)}")
    for i, (r, lab) in enumerate(zip(responses, labels)):
        if len(lab) != len(segments(r)):
            raise ValueError(f"labels[{i}] must hold one label per segment of responses[{i}] ({len(segments(r))}), "
                             f"got {len(lab)}")
        _check_probabilities(f"labels[{i}]", lab)
    torch.manual_seed(config.seed)
    model = StepVerifier(policy)
    ids, positions = encode_scored(problems, responses, policy.config.block_size)
    starts = _starts(problems)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    model.train()
    for _ in tqdm(range(config.steps), desc="ORM" if outcome_only else "PRM", disable=None if progress else True,
                  leave=False):
        batch = torch.randint(len(positions), (min(config.batch_size, len(positions)),), generator=generator).tolist()
        width = max(max(positions[b]) for b in batch) + 1
        loss = _bce_batch(model, ids[batch, :width], [starts[b] for b in batch], [positions[b] for b in batch],
                          [labels[b] for b in batch], outcome_only)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


def _auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive outranks a random negative (ties count 1/2)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def _first_error_pairs(scores: Sequence[Sequence[float]], truth: Sequence[Sequence[bool]]
                       ) -> tuple[list[float], list[bool]]:
    """The segments up to and including each response's first wrong one: where a verifier must *find* the error."""
    s_, t_ = [], []
    for ss, tt in zip(scores, truth):
        for s, t in zip(ss, tt):
            s_.append(s)
            t_.append(t)
            if not t:
                break
    return s_, t_


def train_reward_models(policy_path: str | Path, out_dir: str | Path, config: PRMConfig | None = None,
                        progress: bool = False) -> dict:
    """Sample responses, label their steps exactly and by Monte Carlo, and train three reward models on the same
    responses: ``out_dir/prm.pt`` (PRM, exact step labels), ``out_dir/prm-mc.pt`` (PRM, Monte Carlo labels) and
    ``out_dir/orm.pt`` (ORM, outcomes), written by :meth:`StepVerifier.save`. Returns the metrics (also saved in each
    file).

    Data: ``config.problems`` training and ``config.val_problems`` held-out problems of ``config.digits`` digits
    (seeds ``seed + 1200`` and ``seed + 1201``: neither the pipeline's training nor its test problems' draws),
    ``samples_per_problem`` responses each from the policy at ``temperature``. Metrics: how often the MC labels
    (thresholded at 1/2, and hard) agree with :func:`true_step_labels`; on the held-out responses, for each model, the
    AUC of its segment scores against the true labels (every segment, ``*_step_auc``; the segments up to the first
    wrong one, ``*_first_error_auc``) and of its last score against the outcome (``*_outcome_auc``); seconds.
    """
    config = PRMConfig() if config is None else config
    if not isinstance(config, PRMConfig):
        raise ValueError(f"config must be a PRMConfig, got {type(config).__name__}")
    start = time.perf_counter()
    policy = GPT.load(policy_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(config.seed)
    train_p = arithmetic.sample_problems(config.problems, config.digits, config.seed + 1200, config.ops)
    val_p = arithmetic.sample_problems(config.val_problems, config.digits, config.seed + 1201, config.ops)
    probs, responses = sample_responses(policy, train_p, config.samples_per_problem, config.temperature, generator)
    mc = mc_step_labels(policy, probs, responses, config.rollouts, config.temperature, generator,
                        hard=config.hard_labels, progress=progress)
    t_label = time.perf_counter() - start
    truth = [true_step_labels(p, r) for p, r in zip(probs, responses)]
    flat_mc = [y for lab in mc for y in lab[:-1]]
    flat_true = [t for tr, lab in zip(truth, mc) for t in tr[:len(lab) - 1]]
    outcomes = [[float(arithmetic.correctness_reward(p, r))] * len(segments(r)) for p, r in zip(probs, responses)]
    models, losses = {}, {}
    for name, labels, outcome_only in (("prm", [[float(t) for t in tr] for tr in truth], False),
                                       ("prm-mc", mc, False), ("orm", outcomes, True)):
        models[name], losses[name] = train_reward_model(policy, probs, responses, labels, config, outcome_only,
                                                        progress=progress)
    vp, vr = sample_responses(policy, val_p, config.samples_per_problem, config.temperature, generator)
    vtruth = [true_step_labels(p, r) for p, r in zip(vp, vr)]
    vright = [bool(arithmetic.correctness_reward(p, r)) for p, r in zip(vp, vr)]
    metrics = {
        "config": asdict(config), "policy": str(policy_path),
        "train_responses": len(responses), "train_accuracy": sum(o[0] for o in outcomes) / len(outcomes),
        "mc_labels": len(flat_mc),
        "mc_agreement": sum((y > 0.5) == t for y, t in zip(flat_mc, flat_true)) / max(len(flat_mc), 1),
        "mc_hard_agreement": sum((y > 0) == t for y, t in zip(flat_mc, flat_true)) / max(len(flat_mc), 1),
        "val_responses": len(vr), "val_accuracy": sum(vright) / len(vright),
        "val_steps": sum(map(len, vtruth)), "val_right_steps": sum(map(sum, vtruth)),
    }
    for name, model in models.items():
        key = name.replace("-", "_")
        scores = step_scores(model, vp, vr)
        metrics[f"{key}_loss"] = sum(losses[name][-20:]) / len(losses[name][-20:])
        metrics[f"{key}_step_auc"] = _auc([s for ss in scores for s in ss], [t for tt in vtruth for t in tt])
        metrics[f"{key}_first_error_auc"] = _auc(*_first_error_pairs(scores, vtruth))
        metrics[f"{key}_outcome_auc"] = _auc([ss[-1] for ss in scores], vright)
    metrics.update(label_seconds=t_label, seconds=time.perf_counter() - start)
    for name, model in models.items():
        model.save(out / f"{name}.pt", kind=name, metrics=metrics)
    return metrics


def load_reward_model(path: str | Path) -> StepVerifier:
    """A reward model written by :func:`train_reward_models` (:meth:`StepVerifier.load`), in eval mode; a clear
    ``FileNotFoundError`` if it is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train the reward models first (aiterms.prm.train_reward_models, "
                                "run by `make models`)")
    return StepVerifier.load(path)
