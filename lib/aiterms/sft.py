"""Supervised fine-tuning (SFT) and pretraining of the tiny GPT: next-token cross-entropy, masked or not.

A training example is the sequence ``s = <bos> prompt <sep> response <eos>`` (:meth:`CharTokenizer.encode_pair`):
the model reads ``s[:-1]`` and is scored on predicting ``s[1:]``. **SFT** learns only the response: with the
response mask ``m_t`` (1 on the response tokens and ``<eos>``, 0 on the prompt and padding),

    L_SFT = - ( sum_{b,t} m_{b,t} log p(s_{b,t+1} | s_{b,<=t}) ) / ( sum_{b,t} m_{b,t} )

i.e. the **mean over all response tokens in the batch** (a long response weighs more than a short one; this is the
usual token-level reduction, e.g. Hugging Face's). The unmasked loss, used for **pretraining**, averages over every
position instead, so the model also learns to predict the prompts. Padding never counts.

Shapes: ``logits (B, T, V)``, ``labels (B, T)`` long with -100 where nothing is learned, ``mask (B, T)`` float.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aiterms.decoding import check_positive_int
from aiterms.tokenizer import IGNORE_INDEX, TOKENIZER, collate
from aiterms.transformer import GPT


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked next-token loss: mean negative log-likelihood over the positions where ``mask`` is 1 (see module doc).

    Args:
        logits: ``(B, T, V)``; labels: ``(B, T)`` next tokens (any value where ``mask`` is 0); mask: ``(B, T)``.
    Returns:
        a scalar tensor.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2] or mask.shape != labels.shape:
        raise ValueError(f"expected logits (B, T, V), labels (B, T) and mask (B, T), got {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)} and {tuple(mask.shape)}")
    if float(mask.sum()) <= 0:
        raise ValueError("mask selects no position: nothing to learn")
    safe = labels.clamp(min=0)  # positions with label -100 are masked out anyway
    nll = -torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (nll * mask).sum() / mask.sum()


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unmasked next-token loss: mean over every position whose label is not -100 (pretraining)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def encode_text(text: str, max_len: int) -> tuple[list[int], list[int], list[int]]:
    """A pretraining example: ``<bos> text <eos>``, every next token learned (mask of ones)."""
    seq = [TOKENIZER.bos_id] + TOKENIZER.encode(text) + [TOKENIZER.eos_id]
    if len(seq) - 1 > max_len:
        raise ValueError(f"text {text!r} is longer than the context ({len(seq) - 1} > max_len={max_len})")
    return seq[:-1], seq[1:], [1] * (len(seq) - 1)


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (CleanRL style: everything in one place)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    stop: int | None = None      # stop after this many steps (the learning-rate schedule still spans ``steps``)


def train(model: GPT, examples: Sequence[tuple[list[int], list[int], list[int]]], config: TrainConfig,
          desc: str = "training", progress: bool = True, until: Callable[[GPT], bool] | None = None,
          check_every: int = 100) -> list[float]:
    """Train ``model`` in place on encoded ``(ids, labels, mask)`` examples with AdamW, minimising :func:`sft_loss`.

    The examples decide what is learned: :func:`sft_examples` (masked: responses only, or unmasked: every
    token) or :func:`pretrain_examples` (every token of raw text).
    Batches are drawn uniformly with replacement from a seeded generator; the learning rate warms up linearly for
    ``warmup`` steps, then decays linearly to 0 at ``config.steps``. With ``until``, training stops early once
    ``until(model)`` is true, asked every ``check_every`` steps with the model in eval mode (e.g. "the validation
    accuracy has reached a target", :mod:`aiterms.pipeline`). Returns the loss of every step run.

    **Data parallel**: called in every process of an initialised ``torch.distributed`` group (as
    :func:`aiterms.distributed.data_parallel` does), every rank draws the same batch and computes the loss of its
    share ``idx[rank::W]``. The loss of the whole batch is the mean over *all* its response tokens,
    ``sum_r n_r L_r / N`` (``n_r`` tokens on rank ``r``, ``N`` in all), not the mean of the ranks' means: so each rank
    scales its loss by ``W n_r / N`` before the gradients are averaged (the micro-batch trap of chapter 4). ``until``
    must give the same answer on every rank (evaluate a share on each and sum, as the pipeline does).
    """
    from aiterms.distributed import all_sum, average_gradients, rank_and_world
    if not examples:
        raise ValueError("examples must not be empty")
    check_positive_int("check_every", check_every)
    rank, world = rank_and_world()
    if config.batch_size % world:
        raise ValueError(f"config.batch_size={config.batch_size} must be divisible by the number of processes "
                         f"({world})")
    g = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup))
                                                 * max(0.0, 1 - s / config.steps))
    model.train()
    losses = []
    # a bar on a terminal; none in logs and notebooks (disable=None: only when writing to a TTY)
    steps = config.steps if config.stop is None else min(config.steps, config.stop)
    bar = tqdm(range(steps), desc=desc, disable=None if progress else True, leave=False)
    for _ in bar:
        idx = torch.randint(len(examples), (config.batch_size,), generator=g).tolist()  # the same on every rank
        ids, labels, mask = collate([examples[i] for i in idx[rank::world]])            # this rank's share
        logits, _ = model(ids)
        loss = sft_loss(logits, labels, mask)  # what is learned is decided by the examples' masks
        n = float(mask.sum())
        total = all_sum([n])[0]                # N: the batch's response tokens on all ranks (n in one process)
        optimizer.zero_grad(set_to_none=True)
        (loss * (world * n / total)).backward()   # a factor of exactly 1 in one process
        average_gradients(model)                  # (returns at once in one process)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        losses.append(all_sum([loss.item() * n])[0] / total if world > 1 else loss.item())
        if len(losses) % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.4f}")
        if until is not None and len(losses) % check_every == 0:
            model.eval()
            if until(model):
                break
            model.train()
    bar.close()
    model.eval()
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError("training diverged (non-finite loss); lower the learning rate")
    return losses


def sft_examples(pairs: Sequence[tuple[str, str]], max_len: int, masked: bool = True
                 ) -> list[tuple[list[int], list[int], list[int]]]:
    """Encode ``(prompt, response)`` pairs (:meth:`CharTokenizer.encode_pair`).

    ``masked=True`` (SFT): labels and mask cover the response and ``<eos>`` only. ``masked=False``: every next
    token of ``<bos> prompt <sep> response <eos>`` is learned, the prompt included (to show what the mask is for).
    """
    out = []
    for p, r in pairs:
        ids, labels, mask = TOKENIZER.encode_pair(p, r, max_len)
        if not masked:
            labels = ids[1:] + [labels[-1]]  # the true next token everywhere
            mask = [1] * len(ids)
        out.append((ids, labels, mask))
    return out


def pretrain_examples(texts: Sequence[str], max_len: int) -> list[tuple[list[int], list[int], list[int]]]:
    """Encode raw texts for pretraining (:func:`encode_text`)."""
    return [encode_text(t, max_len) for t in texts]
