"""A reward model learned from pairwise preferences with the Bradley-Terry loss (Christiano et al., 2017;
Ouyang et al., 2022 "InstructGPT"; Bradley and Terry, 1952).

The model is the tiny transformer with a scalar head (:class:`aiterms.ppo_lm.Critic`, initialised from a checkpoint):
it reads ``<bos> prompt <sep> response <eos>`` and its output at the last token is the reward ``r(x, y)``. The
Bradley-Terry model says that a person prefers y_c over y_r with probability ``sigmoid(r(x, y_c) - r(x, y_r))``, so
the reward model is fitted by maximum likelihood on N labelled comparisons::

    loss = -1/N * sum_i log sigmoid(r_chosen_i - r_rejected_i - margin_i)        r_chosen, r_rejected: (N,)

(TRL's ``RewardTrainer`` computes the same, with an optional per-pair ``margin``.) Only differences of rewards are
learned: adding a constant to every reward changes nothing. Its quality is the **pairwise accuracy** on held-out
pairs: the fraction where the chosen answer gets the higher reward (a tie counts one half, as a coin flip would).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aiterms import arithmetic
from aiterms.ppo_lm import Critic
from aiterms.rollout import pad_sequences
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT


def _as_1d(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a 1-D tensor of numbers, got {type(value).__name__}") from None
    if value.dim() != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(value.shape)}")
    return value


def _check_pair(r_chosen, r_rejected) -> tuple[torch.Tensor, torch.Tensor]:
    r_chosen, r_rejected = _as_1d("r_chosen", r_chosen), _as_1d("r_rejected", r_rejected)
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen and r_rejected must have the same length (one reward each per pair), got "
                         f"{r_chosen.shape[0]} and {r_rejected.shape[0]}")
    if r_chosen.shape[0] == 0:
        raise ValueError("r_chosen and r_rejected must hold at least one pair")
    return r_chosen, r_rejected


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """``-mean(log sigmoid(r_chosen - r_rejected - margin))``: the negative log-likelihood of the labels.

    ``r_chosen, r_rejected, margin: (N,)`` -> a scalar tensor (differentiable). ``F.logsigmoid`` keeps it finite for
    large differences, where ``log(sigmoid(d))`` would give ``-inf``.

    Raises:
        ValueError: not 1-D, of different lengths, or empty.
    """
    r_chosen, r_rejected = _check_pair(r_chosen, r_rejected)
    diff = r_chosen - r_rejected
    if margin is not None:
        margin = _as_1d("margin", margin)
        if margin.shape != diff.shape:
            raise ValueError(f"margin must have one entry per pair ({diff.shape[0]}), got {margin.shape[0]}")
        diff = diff - margin
    return -F.logsigmoid(diff).mean()


def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Fraction of pairs where the chosen answer gets the higher reward; a tie counts 1/2.

    ``r_chosen, r_rejected: (N,)`` -> a float in [0, 1]. A model that gives every answer the same reward scores 0.5.

    Raises:
        ValueError: not 1-D, of different lengths, or empty.
    """
    r_chosen, r_rejected = _check_pair(r_chosen, r_rejected)
    wins = (r_chosen > r_rejected).double() + 0.5 * (r_chosen == r_rejected).double()
    return float(wins.mean())


# ------------------------------------------------------------------------------------------------ the model
def encode(problems: Sequence[arithmetic.Problem], responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids (N, T)``: ``<bos> prompt <sep> response <eos>`` right-padded, and ``last (N,)``: the index of each
    row's ``<eos>``, where the reward is read."""
    if len(problems) != len(responses):
        raise ValueError(f"problems and responses must have the same length, got {len(problems)} and "
                         f"{len(responses)}")
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in problems]
    answers = [TOKENIZER.encode(r) + [TOKENIZER.eos_id] for r in responses]
    ids, _ = pad_sequences(prompts, answers)
    last = torch.tensor([len(p) + len(a) - 1 for p, a in zip(prompts, answers)])
    return ids, last


def rewards(model: Critic, problems: Sequence[arithmetic.Problem], responses: Sequence[str],
            batch_size: int = 256) -> torch.Tensor:
    """``r(x, y)`` for each (problem, response): ``(N,)``, the head's output at the ``<eos>`` token.

    Differentiable when called with gradients on (training); use ``torch.no_grad()`` to score."""
    out = []
    for i in range(0, len(problems), batch_size):
        ids, last = encode(problems[i:i + batch_size], responses[i:i + batch_size])
        values = model(ids)                                                     # (n, T)
        out.append(values.gather(1, last[:, None]).squeeze(1))
    return torch.cat(out) if out else torch.zeros(0)


@dataclass(frozen=True)
class RewardModelConfig:
    """Hyperparameters of :func:`train`."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def train(base: GPT, problems: Sequence[arithmetic.Problem], chosen: Sequence[str], rejected: Sequence[str],
          config: RewardModelConfig = RewardModelConfig(), progress: bool = False) -> tuple[Critic, dict]:
    """Fit a reward model (a :class:`~aiterms.ppo_lm.Critic` built from ``base``) on N comparisons by AdamW on
    :func:`bradley_terry_loss`; ``config.epochs`` passes over the pairs in shuffled mini-batches.

    Returns the model (in eval mode) and a history: ``loss`` and ``accuracy`` (on the batch) per step, ``seconds``.
    Deterministic for ``config.seed``.
    """
    if not (len(problems) == len(chosen) == len(rejected)) or not problems:
        raise ValueError(f"problems, chosen and rejected must be non-empty and of the same length, got "
                         f"{len(problems)}, {len(chosen)} and {len(rejected)}")
    model = Critic(base, seed=config.seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = random.Random(config.seed)
    history: dict[str, list] = {"loss": [], "accuracy": []}
    start = time.perf_counter()
    order = list(range(len(problems)))
    steps = config.epochs * math.ceil(len(order) / config.batch_size)
    bar = tqdm(total=steps, desc="reward model", disable=None if progress else True, leave=False)
    for _ in range(config.epochs):
        rng.shuffle(order)
        for i in range(0, len(order), config.batch_size):
            idx = order[i:i + config.batch_size]
            ps = [problems[j] for j in idx]
            r = rewards(model, ps + ps, [chosen[j] for j in idx] + [rejected[j] for j in idx])
            rc, rr = r[:len(idx)], r[len(idx):]
            loss = bradley_terry_loss(rc, rr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            history["accuracy"].append(pairwise_accuracy(rc.detach(), rr.detach()))
            bar.update(1)
    bar.close()
    history["seconds"] = time.perf_counter() - start
    return model.eval(), history


@torch.no_grad()
def evaluate(model: Critic, pairs) -> dict[str, float]:
    """Pairwise accuracy of ``model`` on labelled :class:`aiterms.preferences.Pairs`: against the annotators' labels
    (``label_accuracy``) and against the true order (``true_accuracy``, pairs with equal utilities left out)."""
    ra = rewards(model, pairs.problems, pairs.a)
    rb = rewards(model, pairs.problems, pairs.b)
    label = torch.tensor(pairs.label, dtype=torch.bool)
    out = {"label_accuracy": pairwise_accuracy(torch.where(label, ra, rb), torch.where(label, rb, ra))}
    truth = torch.tensor(pairs.true_label())
    keep = truth >= 0
    if keep.any():
        t = truth[keep].bool()
        a, b = ra[keep], rb[keep]
        out["true_accuracy"] = pairwise_accuracy(torch.where(t, a, b), torch.where(t, b, a))
    else:
        out["true_accuracy"] = float("nan")
    return out
