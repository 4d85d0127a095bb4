"""Rollouts for reinforcement learning on the tiny language model: sample responses, keep their tokens, masks and
log-probabilities. Shared by :mod:`aiterms.grpo` and :mod:`aiterms.ppo_lm`.

For P prompts and a group size G, :func:`sample_group` draws G responses per prompt, N = P * G rows, **prompt-major**
(rows ``i * G .. i * G + G - 1`` answer prompt ``i``; the same layout as ``torch.repeat_interleave`` and TRL's GRPO).
Each row is one sequence laid out as in supervised fine-tuning (:mod:`aiterms.tokenizer`)::

    s = <bos> prompt <sep> response <eos> <pad> ...         ids: (N, T)

and every per-token quantity lives on the T - 1 "next token" positions, like SFT's labels: position ``t`` holds
something about token ``s[t + 1]`` predicted from ``s[:t + 1]``::

    logp[b, t] = log pi(s[b, t + 1] | s[b, :t + 1])          (N, T - 1)
    mask[b, t] = 1 if s[b, t + 1] is a response token or its <eos>, else 0     (prompt and padding are 0)

So ``(logp * mask).sum(-1)`` is the log-probability of the whole response, and ``mask.sum(-1)`` its length in tokens
(``<eos>`` included; a response cut off at ``max_new_tokens`` has no ``<eos>``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from aiterms import arithmetic
from aiterms.decoding import check_positive_int
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, generate_batch


@dataclass
class Rollout:
    """G sampled responses per prompt (N = P * G rows, prompt-major), ready for a policy-gradient update.

    ``ids (N, T)`` long: ``<bos> prompt <sep> response [<eos>]`` right-padded with ``<pad>``; ``mask (N, T - 1)``
    float: 1 on the response tokens (see the module docstring); ``logp (N, T - 1)``: the sampling policy's
    log-probabilities of the tokens (0 where ``mask`` is 0), no gradient; ``responses``: the N decoded responses;
    ``prompt_index``: for each row, the index of its prompt; ``group_size``: G.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    logp: torch.Tensor
    responses: list[str]
    prompt_index: list[int]
    group_size: int

    @property
    def lengths(self) -> torch.Tensor:
        """``(N,)`` response lengths in tokens (``<eos>`` included when produced)."""
        return self.mask.sum(-1)


def token_logprobs(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """``logp[b, t] = log softmax(model(ids[:, :-1]))[b, t, ids[b, t + 1]]``, shape ``(N, T - 1)``.

    Differentiable (call it under ``torch.no_grad()`` for the old policy and the reference model).
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[1] < 2 or ids.dtype != torch.long:
        raise ValueError(f"ids must be an (N, T) LongTensor with T >= 2, got "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    logits, _ = model(ids[:, :-1])                                              # (N, T - 1, V)
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def pad_sequences(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Join prompt and response ids row by row and right-pad: ``ids (N, T)`` and the response ``mask (N, T - 1)``.

    ``mask[b, t] = 1`` iff ``len(prompts[b]) <= t + 1 < len(prompts[b]) + len(responses[b])``.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"prompts and responses must be non-empty and of the same length, got {len(prompts)} and "
                         f"{len(responses)}")
    rows = [list(p) + list(r) for p, r in zip(prompts, responses)]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), TOKENIZER.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), T - 1)
    for b, (p, row) in enumerate(zip(prompts, rows)):
        ids[b, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, len(p) - 1:len(row) - 1] = 1.0
    return ids, mask


@torch.no_grad()
def sample_group(policy: GPT, problems: Sequence[arithmetic.Problem], group_size: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None, max_new_tokens: int = 64, logprobs: bool = True
                 ) -> Rollout:
    """Sample ``group_size`` responses to each problem's prompt (:func:`aiterms.transformer.generate_batch`).

    Prompts of equal length are generated together; the rows come back prompt-major. Deterministic for a seeded
    ``generator``. With ``logprobs=False`` the extra forward pass for ``logp`` is skipped and ``logp`` is all zeros
    (for a caller that takes one gradient step per batch: its own first forward pass gives the same values). ``max_new_tokens`` is capped by the context (``prompt + response - 1 <= block_size``).

    Raises:
        ValueError: no problems, ``group_size < 1`` or ``temperature <= 0`` (a group of greedy answers is one answer
        repeated).
    """
    if not problems:
        raise ValueError("problems must not be empty")
    check_positive_int("group_size", group_size)
    check_positive_int("max_new_tokens", max_new_tokens)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 to sample a group, got {temperature!r}")
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in problems]
    generated: list[list[int]] = [[] for _ in range(len(problems) * group_size)]
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(prompts):
        by_length.setdefault(len(ids), []).append(i)
    for length, members in sorted(by_length.items()):
        budget = min(max_new_tokens, policy.config.block_size - length + 1)
        batch = [prompts[i] for i in members for _ in range(group_size)]
        out = generate_batch(policy, batch, budget, eos_id=TOKENIZER.eos_id, temperature=temperature,
                             generator=generator)
        for j, tokens in enumerate(out):
            generated[members[j // group_size] * group_size + j % group_size] = tokens
    row_prompts = [prompts[i] for i in range(len(problems)) for _ in range(group_size)]
    ids, mask = pad_sequences(row_prompts, generated)
    if logprobs:
        was_training = policy.training
        policy.eval()
        logp = token_logprobs(policy, ids) * mask
        policy.train(was_training)
    else:
        logp = torch.zeros_like(mask)
    return Rollout(ids=ids, mask=mask, logp=logp, responses=[TOKENIZER.decode(g) for g in generated],
                   prompt_index=[i for i in range(len(problems)) for _ in range(group_size)], group_size=group_size)


def score_rollout(problems: Sequence[arithmetic.Problem], rollout: Rollout, format_weight: float = 0.1
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards ``(N,)`` of the rollout's responses (:func:`aiterms.arithmetic.reward`, step-by-step format: correct
    answer plus ``format_weight`` for a well-formed response) and the correctness ``(N,)`` (1.0 or 0.0)."""
    rewards = [arithmetic.reward(problems[i], r, "cot", format_weight)
               for i, r in zip(rollout.prompt_index, rollout.responses)]
    correct = [arithmetic.correctness_reward(problems[i], r) for i, r in zip(rollout.prompt_index, rollout.responses)]
    return torch.tensor(rewards), torch.tensor(correct)
