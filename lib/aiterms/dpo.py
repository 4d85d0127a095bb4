"""Direct preference optimization (DPO, Rafailov et al., 2023): alignment tuning from preference pairs, with no
reward model and no sampling during training.

RLHF (Ouyang et al., 2022) first fits a reward model to preferences, then runs RL (PPO) against it with a KL penalty
to a frozen **reference model**. DPO shows that the optimum of that KL-regularised objective can be written in closed
form, so the policy can be fitted to the preferences directly. For a prompt ``x``, a chosen response ``y_w`` and a
rejected one ``y_l``::

    r(x, y)  = beta * (log pi(y | x) - log pi_ref(y | x))               the implicit reward
    L_DPO    = -log sigmoid( r(x, y_w) - r(x, y_l) )                    averaged over pairs

where ``log pi(y | x) = sum_t log pi(y_t | x, y_<t)`` sums over the **response tokens only** (prompt and padding
masked out), and ``pi_ref`` is the frozen starting model. ``beta`` sets how far the policy may move from the
reference: a small ``beta`` needs large log-ratio changes for the same loss. This is TRL's ``loss_type="sigmoid"``.

Here the preferences come from the arithmetic verifier instead of people: for each problem, several answers are
sampled from the step-by-step SFT model; a correct one becomes ``chosen``, a wrong one ``rejected``
(:func:`preference_pairs`). :func:`train_dpo` then fine-tunes a copy of the model with the DPO loss.

Tensor layout as in :mod:`aiterms.rollout`: a pair is two rows ``<bos> prompt <sep> response <eos> <pad>...``,
per-token quantities live on the ``T - 1`` next-token positions, and ``mask`` marks the response tokens.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from aiterms import arithmetic
from aiterms.rollout import pad_sequences, token_logprobs
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, eval_mode


@dataclass
class DPOConfig:
    """Hyperparameters of :func:`train_dpo`."""

    beta: float = 0.5           # strength of the tie to the reference model
    lr: float = 2e-5            # AdamW learning rate
    steps: int = 40             # optimizer steps
    batch_size: int = 16        # pairs per step
    sft_weight: float = 1.0     # + sft_weight * NLL of the chosen tokens (TRL: loss_type=["sigmoid", "sft"])
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("beta", "lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name} must be a number > 0, got {v!r}")
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not self.grad_clip > 0 or not self.weight_decay >= 0 or not self.sft_weight >= 0:
            raise ValueError("grad_clip must be > 0, weight_decay and sft_weight >= 0")


def sequence_logprobs(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log pi(y | x) = sum_t mask[b, t] * logp[b, t]``: token log-probs ``(B, T)`` and a 0/1 response mask
    ``(B, T)`` -> ``(B,)``. Differentiable in ``logp``.

    Raises:
        ValueError: ``logp`` and ``mask`` not 2-D tensors of the same shape.
    """
    if not isinstance(logp, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise ValueError("logp and mask must be tensors")
    if logp.dim() != 2 or logp.shape != mask.shape:
        raise ValueError(f"logp and mask must both be (B, T), got {tuple(logp.shape)} and {tuple(mask.shape)}")
    return (logp * mask.to(logp.dtype)).sum(-1)


def _check_vector(name: str, x: torch.Tensor, n: int | None) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor (B,), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name} has {x.shape[0]} entries but policy_chosen_logps has {n}")


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float = 0.1
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO sigmoid loss (Rafailov et al., 2023, eq. 7) and the implicit rewards.

    ``r_w = beta (pc - rc)``, ``r_l = beta (pr - rr)``, ``loss = mean_b -log sigmoid(r_w - r_l)``.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probs of the policy (with gradients).
        ref_chosen_logps, ref_rejected_logps: ``(B,)`` the same under the frozen reference model.
        beta: > 0.
    Returns:
        ``loss`` (scalar), ``chosen_rewards (B,)`` and ``rejected_rewards (B,)`` (detached).
    Raises:
        ValueError: shapes that differ or are not ``(B,)`` with ``B >= 1``, ``beta <= 0``.
    """
    _check_vector("policy_chosen_logps", policy_chosen_logps, None)
    n = policy_chosen_logps.shape[0]
    if n == 0:
        raise ValueError("policy_chosen_logps must hold at least one pair")
    for name, x in (("policy_rejected_logps", policy_rejected_logps), ("ref_chosen_logps", ref_chosen_logps),
                    ("ref_rejected_logps", ref_rejected_logps)):
        _check_vector(name, x, n)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0 or math.isinf(beta):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)          # (B,)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)    # (B,)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


# ---------------------------------------------------------------- preference data from the verifier
@dataclass(frozen=True)
class PreferencePair:
    """One preference: for ``problem``, ``chosen`` (a correct response) is preferred to ``rejected`` (a wrong one)."""

    problem: arithmetic.Problem
    chosen: str
    rejected: str


def preference_pairs(model: GPT, problems: Sequence[arithmetic.Problem], samples: int = 8, temperature: float = 1.0,
                     seed: int = 0) -> list[PreferencePair]:
    """Sample ``samples`` step-by-step answers per problem; a problem with at least one right and one wrong answer
    gives one pair (its first right answer, its first wrong one). Problems the model always or never solves give none.
    Deterministic for ``seed``."""
    if samples < 2:
        raise ValueError(f"samples must be >= 2 to find a right and a wrong answer, got {samples}")
    from aiterms.evaluation import solve

    return pairs_from_samples(problems, solve(model, problems, "cot", samples=samples, temperature=temperature,
                                              seed=seed))


def pairs_from_samples(problems: Sequence[arithmetic.Problem], responses: Sequence[Sequence[str]]
                       ) -> list[PreferencePair]:
    """The verifier's preference pairs from answers already sampled (``responses[i]``: the answers to
    ``problems[i]``, e.g. from :func:`aiterms.evaluation.solve`): a problem with at least one right and one wrong
    answer gives one pair, its first right answer (chosen) and its first wrong one (rejected)."""
    if len(problems) != len(responses):
        raise ValueError(f"problems and responses must have the same length, got {len(problems)} and "
                         f"{len(responses)}")
    pairs = []
    for problem, group in zip(problems, responses):
        right = [r for r in group if arithmetic.extract_answer(r) == problem.answer]
        wrong = [r for r in group if arithmetic.extract_answer(r) != problem.answer]
        if right and wrong:
            pairs.append(PreferencePair(problem, right[0], wrong[0]))
    return pairs


def encode_pairs(pairs: Sequence[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids (2B, T)`` and response ``mask (2B, T - 1)``: the B chosen rows first, then the B rejected rows (TRL's
    layout). Each response ends with ``<eos>``."""
    if not pairs:
        raise ValueError("pairs must not be empty")
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p.problem)) for p in pairs]
    responses = [TOKENIZER.encode(p.chosen) + [TOKENIZER.eos_id] for p in pairs]
    responses += [TOKENIZER.encode(p.rejected) + [TOKENIZER.eos_id] for p in pairs]
    return pad_sequences(prompts + prompts, responses)


def pair_logprobs(model: GPT, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs of the chosen ``(B,)`` and rejected ``(B,)`` halves of :func:`encode_pairs`' rows."""
    seq = sequence_logprobs(token_logprobs(model, ids), mask)          # (2B,)
    return seq.chunk(2)


def chosen_nll(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The SFT term some DPO recipes add (RPO, Pang et al., 2024; TRL's ``loss_type="sft"``): the mean negative
    log-likelihood over all response tokens of the chosen rows, ``-sum(logp * mask) / sum(mask)``.

    ``logp``, ``mask``: ``(B, T)`` of the chosen rows only. A scalar."""
    sequence_logprobs(logp, mask)   # shape checks
    return -(logp * mask).sum() / mask.sum().clamp(min=1.0)


def train_dpo(model: GPT, pairs: Sequence[PreferencePair], config: DPOConfig | None = None, progress: bool = False
              ) -> tuple[GPT, dict[str, list[float]]]:
    """DPO fine-tuning of a copy of ``model``; ``model`` itself is the frozen reference (left unchanged).

    The reference's log-probs are computed once (they never change). Each step draws ``batch_size`` pairs (seeded),
    takes one AdamW step on :func:`dpo_loss` (plus ``sft_weight`` times :func:`chosen_nll`). Returns the tuned policy
    (eval mode) and the history per step: ``loss`` (the total), ``dpo_loss`` (the DPO term alone), ``accuracy`` (share of pairs with ``r_w > r_l``), ``margin`` (mean ``r_w - r_l``), ``chosen`` and ``rejected``
    (mean implicit rewards).
    """
    config = config or DPOConfig()
    if not isinstance(model, GPT):
        raise ValueError(f"model must be a GPT, got {type(model).__name__}")
    if not pairs:
        raise ValueError("pairs must not be empty")
    ids, mask = encode_pairs(pairs)
    n = len(pairs)
    with torch.no_grad(), eval_mode(model):
        ref_chosen, ref_rejected = pair_logprobs(model, ids, mask)
    policy = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {k: [] for k in ("loss", "dpo_loss", "accuracy", "margin", "chosen",
                                                        "rejected")}
    steps = range(config.steps)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="DPO")
    for _ in steps:
        idx = torch.randperm(n, generator=generator)[:config.batch_size]            # (b,)
        rows = torch.cat([idx, idx + n])                                           # chosen rows, then rejected
        batch_ids, batch_mask = ids[rows], mask[rows]
        keep = int(batch_mask.sum(0).nonzero().max()) + 2                          # trim shared padding
        logp = token_logprobs(policy, batch_ids[:, :keep])                        # (2b, T - 1)
        m = batch_mask[:, :keep - 1]
        pc, pr = sequence_logprobs(logp, m).chunk(2)
        loss, r_w, r_l = dpo_loss(pc, pr, ref_chosen[idx], ref_rejected[idx], config.beta)
        history["dpo_loss"].append(float(loss.detach()))
        if config.sft_weight > 0:
            loss = loss + config.sft_weight * chosen_nll(logp[:len(idx)], m[:len(idx)])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
        optimizer.step()
        history["loss"].append(float(loss.detach()))
        history["accuracy"].append(float((r_w > r_l).float().mean()))
        history["margin"].append(float((r_w - r_l).mean()))
        history["chosen"].append(float(r_w.mean()))
        history["rejected"].append(float(r_l.mean()))
    return policy.eval(), history
