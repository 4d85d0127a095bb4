"""AI feedback: a model labels the comparisons instead of people (RLAIF; Bai et al., 2022 "Constitutional AI";
Lee et al., 2023), and the two ways it goes wrong that are cheapest to measure: disagreement with people, and
**position bias** (preferring whichever answer is shown first; Zheng et al., 2023).

The judge reads both answers in one sequence and says how likely the first one is the better::

    <bos> prompt <sep> first <sep> second <eos>   ->   P(first better) = sigmoid(head(h_last))

It is the tiny transformer with a scalar head (:class:`aiterms.ppo_lm.Critic`), fitted with the binary cross-entropy
on a small set of human labels. Because it reads the answers in order, nothing forces
``P(A first better) = 1 - P(B first better)``; the gap is the position bias. Judging **both orders** and combining::

    p(A better) = ( P_judge(A, B) + 1 - P_judge(B, A) ) / 2

removes it by construction (the combined judge gives ``p(B better) = 1 - p(A better)`` exactly), at twice the cost.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aiterms import arithmetic
from aiterms.ppo_lm import Critic
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT


def _probabilities(name: str, value, n: int | None = None) -> torch.Tensor:
    try:
        p = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D sequence of probabilities, got {type(value).__name__}") from None
    if p.dim() != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(p.shape)}")
    if n is not None and p.shape[0] != n:
        raise ValueError(f"{name} must have one entry per pair ({n}), got {p.shape[0]}")
    if torch.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"{name} must be probabilities in [0, 1], got values outside")
    return p


def judge_both_orders(judge: Callable, prompts: Sequence, a: Sequence, b: Sequence) -> torch.Tensor:
    """Ask ``judge`` about each pair in both orders and combine: ``(N,)`` probabilities that ``a[i]`` is better.

    ``judge(prompts, first, second) -> (N,)`` gives P(first better) for each pair. The result is
    ``(judge(prompts, a, b) + 1 - judge(prompts, b, a)) / 2``, which satisfies ``p(a, b) = 1 - p(b, a)``: the order
    in which the answers are shown no longer matters.

    Raises:
        ValueError: ``prompts``, ``a``, ``b`` of different lengths, or a judge output that is not one probability in
        [0, 1] per pair.
    """
    n = len(prompts)
    if len(a) != n or len(b) != n:
        raise ValueError(f"prompts, a and b must have the same length, got {n}, {len(a)} and {len(b)}")
    p_ab = _probabilities("judge(prompts, a, b)", judge(prompts, a, b), n)
    p_ba = _probabilities("judge(prompts, b, a)", judge(prompts, b, a), n)
    return (p_ab + 1.0 - p_ba) / 2.0


def agreement_rate(p_a_better: Sequence[float] | torch.Tensor, labels: Sequence[int] | torch.Tensor) -> float:
    """Fraction of pairs where the judge's verdict matches the label (1: A preferred, 0: B preferred).

    The verdict is A when ``p_a_better > 0.5``, B when ``< 0.5``; a judge that says exactly 0.5 abstains and gets half
    a point (a coin flip would be right half the time). ``p_a_better, labels: (N,)`` -> a float in [0, 1].

    Raises:
        ValueError: different lengths, no pairs, probabilities outside [0, 1], or labels other than 0 and 1.
    """
    p = _probabilities("p_a_better", p_a_better)
    try:
        y = torch.as_tensor(labels, dtype=torch.float64)
    except (TypeError, ValueError):
        raise ValueError(f"labels must be a 1-D sequence of 0/1, got {type(labels).__name__}") from None
    if y.dim() != 1 or y.shape != p.shape:
        raise ValueError(f"p_a_better and labels must have the same length, got {tuple(p.shape)} and "
                         f"{tuple(y.shape)}")
    if p.shape[0] == 0:
        raise ValueError("p_a_better and labels must hold at least one pair")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("labels must be 0 (B preferred) or 1 (A preferred)")
    verdict = (p > 0.5).double() + 0.5 * (p == 0.5).double()
    return float((1.0 - (verdict - y).abs()).mean())


def position_bias(p_ab: torch.Tensor, p_ba: torch.Tensor) -> dict[str, float]:
    """How much the order of presentation matters, from the judge's ``P(first better)`` on each pair shown as (A, B)
    and as (B, A), ``(N,)`` each.

    Returns ``first_preferred``: the mean probability given to whichever answer came first (0.5 = no bias), and
    ``consistency``: the fraction of pairs whose verdict survives the swap (the same answer wins in both orders).
    """
    p_ab, p_ba = _probabilities("p_ab", p_ab), _probabilities("p_ba", p_ba, len(p_ab))
    first = float(torch.cat([p_ab, p_ba]).mean())
    consistent = ((p_ab > 0.5) & (p_ba < 0.5)) | ((p_ab < 0.5) & (p_ba > 0.5))
    return {"first_preferred": first, "consistency": float(consistent.double().mean())}


# ------------------------------------------------------------------------------------------------ the judge model
def encode_pairs(problems: Sequence[arithmetic.Problem], first: Sequence[str], second: Sequence[str],
                 block_size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids (N, T)`` of ``<bos> prompt <sep> first <sep> second <eos>`` (right-padded) and ``last (N,)``, the index
    of the ``<eos>``. Each answer is cut to ``(block_size - len(prompt) - 4) // 2`` characters so the pair fits."""
    if not (len(problems) == len(first) == len(second)):
        raise ValueError(f"problems, first and second must have the same length, got {len(problems)}, "
                         f"{len(first)} and {len(second)}")
    rows = []
    for p, x, y in zip(problems, first, second):
        prompt = TOKENIZER.encode_prompt(arithmetic.prompt(p))
        room = (block_size - len(prompt) - 2) // 2
        rows.append(prompt + TOKENIZER.encode(x)[:room] + [TOKENIZER.sep_id] + TOKENIZER.encode(y)[:room]
                    + [TOKENIZER.eos_id])
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), TOKENIZER.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, torch.tensor([len(r) - 1 for r in rows])


def judge_logits(model: Critic, problems, first, second) -> torch.Tensor:
    """``(N,)`` logits of P(first better) (differentiable)."""
    ids, last = encode_pairs(problems, first, second, model.body.config.block_size)
    return model(ids).gather(1, last[:, None]).squeeze(1)


class PairJudge:
    """A trained judge as a plain function ``judge(problems, first, second) -> (N,) P(first better)``; counts its
    forward passes (one per pair and order) in ``calls``."""

    def __init__(self, model: Critic):
        self.model = model.eval()
        self.calls = 0

    @torch.no_grad()
    def __call__(self, problems, first, second) -> torch.Tensor:
        self.calls += len(problems)
        return torch.sigmoid(judge_logits(self.model, problems, first, second)).double()


@dataclass(frozen=True)
class JudgeConfig:
    """Hyperparameters of :func:`train_judge`."""

    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def train_judge(base: GPT, problems, a, b, labels, config: JudgeConfig = JudgeConfig(), progress: bool = False
                ) -> tuple[PairJudge, dict]:
    """Fit a pair judge (a Critic built from ``base``) on labelled pairs shown in the order given (A first), by AdamW
    on ``BCE(logit(A, B), label)``. Returns the judge and a history (``loss`` per step, ``seconds``)."""
    n = len(problems)
    if not n or not (len(a) == len(b) == len(labels) == n):
        raise ValueError(f"problems, a, b and labels must be non-empty and of the same length, got {n}, {len(a)}, "
                         f"{len(b)} and {len(labels)}")
    model = Critic(base, seed=config.seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    order, history = list(range(n)), {"loss": []}
    start = time.perf_counter()
    bar = tqdm(total=config.epochs * math.ceil(n / config.batch_size), desc="judge", disable=None if progress else True,
               leave=False)
    for _ in range(config.epochs):
        rng.shuffle(order)
        for i in range(0, n, config.batch_size):
            idx = order[i:i + config.batch_size]
            logits = judge_logits(model, [problems[j] for j in idx], [a[j] for j in idx], [b[j] for j in idx])
            loss = F.binary_cross_entropy_with_logits(logits, torch.tensor([float(labels[j]) for j in idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            bar.update(1)
    bar.close()
    history["seconds"] = time.perf_counter() - start
    return PairJudge(model), history
