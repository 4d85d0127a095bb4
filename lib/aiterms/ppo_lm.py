"""PPO for the language model, the classic RLHF recipe (Ouyang et al., 2022, "InstructGPT"; Schulman et al., 2017).

The policy is the tiny GPT; a **critic** (value model) of the same size, a copy of the policy's transformer with a
scalar head, predicts the return from every position of the response. The reward arrives at the end of the response
(the task's score, :func:`aiterms.arithmetic.reward`), and a KL penalty to the frozen reference model is paid on every
token, so each response token ``t`` gets (positions as in :mod:`aiterms.rollout`, ``(N, T)`` with ``mask``)::

    r_t = -kl_coef * (old_logp_t - ref_logp_t) + [t is the last response token] * score

Advantages per token come from generalised advantage estimation (GAE; Schulman et al., 2016) over the response::

    delta_t = r_t + gamma * V_{t+1} * m_{t+1} - V_t          (V after the last token = 0: the episode ends)
    A_t     = delta_t + gamma * lam * m_{t+1} * A_{t+1},      R_t = A_t + V_t  (the critic's target)

whitened over the response tokens of the batch; the policy minimises the clipped surrogate
(:func:`aiterms.grpo.grpo_loss` with per-token advantages, mean over tokens), the critic the clipped value loss
``0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)``. Compared with :mod:`aiterms.grpo`, PPO trains and
stores a second network (and its optimizer state) to get a per-token baseline instead of a group mean.
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from aiterms import arithmetic
from aiterms.decoding import check_positive_int
from aiterms.grpo import greedy_pass_at_1, grpo_loss
from aiterms.rollout import sample_group, score_rollout, token_logprobs
from aiterms.transformer import GPT, GPTConfig

CRITIC_FORMAT = "aiterms.ppo_lm.Critic/1"


class Critic(nn.Module):
    """A value model: the transformer of a :class:`GPT` (a copy, trained separately) and a linear head ``C -> 1``.

    ``critic(ids (N, T)) -> values (N, T)``: ``values[b, t]`` predicts the return after ``ids[b, :t + 1]``.
    """

    def __init__(self, policy: GPT, seed: int = 0):
        super().__init__()
        self.body = copy.deepcopy(policy)
        self.body.lm_head = nn.Identity()        # the body's output is the final hidden state (B, T, C)
        self.head = nn.Linear(policy.config.n_embd, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.02, generator=g)
            self.head.bias.zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.body(ids)                                            # (N, T, C)
        return self.head(hidden).squeeze(-1)                                  # (N, T)

    def save(self, path: str | Path, **metadata: Any) -> None:
        """Write ``{"format", "config" (the body's GPTConfig as a dict), "state_dict", "metadata"}`` with
        ``torch.save`` (plain values in ``metadata``; :meth:`load` puts them in ``critic.metadata``)."""
        torch.save({"format": CRITIC_FORMAT, "config": asdict(self.body.config), "state_dict": self.state_dict(),
                    "metadata": {**getattr(self, "metadata", {}), **metadata}}, path)

    @classmethod
    def load(cls, path: str | Path) -> "Critic":
        """Rebuild a critic written by :meth:`save` (CPU, eval mode, ``torch.load(weights_only=True)``)."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CRITIC_FORMAT:
            raise ValueError(f"path {str(path)!r} is not a checkpoint written by Critic.save ({CRITIC_FORMAT})")
        critic = cls(GPT(GPTConfig(**ckpt["config"])))
        critic.load_state_dict(ckpt["state_dict"])
        critic.metadata = dict(ckpt["metadata"])
        return critic.eval()


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the response tokens (module docstring): ``advantages (N, T)`` and ``returns (N, T)``, 0 off ``mask``.

    ``rewards``, ``values``, ``mask``: ``(N, T)``; the response tokens of a row must be contiguous (as
    :mod:`aiterms.rollout` lays them out); the step after the last one is terminal.
    """
    if not (rewards.dim() == 2 and rewards.shape == values.shape == mask.shape):
        raise ValueError(f"rewards, values and mask must all be (N, T), got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)} and {tuple(mask.shape)}")
    if not 0 <= gamma <= 1 or not 0 <= lam <= 1:
        raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma!r}, lam={lam!r}")
    N, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(N)
    next_adv = torch.zeros(N)
    next_mask = torch.zeros(N)
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value * next_mask - values[:, t]
        adv = (delta + gamma * lam * next_mask * next_adv) * mask[:, t]
        advantages[:, t] = adv
        next_value, next_adv, next_mask = values[:, t], adv, mask[:, t]
    return advantages, (advantages + values) * mask


def token_rewards(scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
                  kl_coef: float) -> torch.Tensor:
    """The KL-shaped reward of RLHF (InstructGPT's per-token form of ``r - kl_coef * KL(pi || pi_ref)``)::

        r[n, t] = -kl_coef * (logp[n, t] - ref_logp[n, t]) * mask[n, t]  +  scores[n] * [t is the last response token]

    Args:
        scores: ``(N,)`` the reward model's (or verifier's) score of each whole response.
        logp, ref_logp: ``(N, T)`` log-probabilities of the sampled tokens under the policy and the frozen reference.
        mask: ``(N, T)`` 1 on response tokens, 0 elsewhere; a row without response tokens gets no reward at all.
        kl_coef: ``>= 0``, the weight of the KL penalty.
    Returns:
        ``(N, T)`` per-token rewards. Raises ValueError for other shapes or a negative ``kl_coef``.
    """
    if (scores.dim() != 1 or logp.dim() != 2 or scores.shape != logp.shape[:1]
            or not logp.shape == ref_logp.shape == mask.shape):
        raise ValueError(f"expected scores (N,) and logp, ref_logp, mask (N, T), got {tuple(scores.shape)}, "
                         f"{tuple(logp.shape)}, {tuple(ref_logp.shape)}, {tuple(mask.shape)}")
    if isinstance(kl_coef, bool) or not isinstance(kl_coef, (int, float)) or not 0 <= kl_coef < math.inf:
        raise ValueError(f"kl_coef must be a finite number >= 0, got {kl_coef!r}")
    rewards = -kl_coef * (logp - ref_logp) * mask
    last = (mask * torch.arange(1, mask.shape[1] + 1)).argmax(dim=1)             # (N,) index of the last token
    has_tokens = mask.sum(-1) > 0
    rewards[has_tokens, last[has_tokens]] += scores[has_tokens].to(rewards.dtype)
    return rewards


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over the masked entries (0 elsewhere)."""
    n = mask.sum().clamp(min=1.0)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) / (var.sqrt() + eps) * mask


@dataclass
class PPOLMConfig:
    """Hyperparameters of PPO on the language model. One step = ``prompts_per_step`` prompts x
    ``samples_per_prompt`` responses, then ``epochs`` passes of ``minibatches`` gradient steps each."""

    steps: int = 100
    prompts_per_step: int = 128
    samples_per_prompt: int = 1
    lr: float = 2e-4
    critic_lr: float = 1e-3
    clip_eps: float = 0.2
    value_clip: float = 0.2
    kl_coef: float = 0.05
    gamma: float = 1.0
    lam: float = 0.95
    vf_coef: float = 0.5
    epochs: int = 1
    minibatches: int = 1
    temperature: float = 1.0
    format_weight: float = 0.1
    max_new_tokens: int = 64
    grad_clip: float = 1.0
    eval_every: int = 10
    time_limit: float | None = None
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "prompts_per_step", "samples_per_prompt", "epochs", "minibatches", "max_new_tokens",
                     "eval_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("lr", "critic_lr", "clip_eps", "value_clip", "temperature", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.kl_coef >= 0 or not self.vf_coef >= 0:
            raise ValueError(f"kl_coef and vf_coef must be >= 0, got {self.kl_coef!r} and {self.vf_coef!r}")
        if self.prompts_per_step * self.samples_per_prompt % self.minibatches:
            raise ValueError(f"the {self.prompts_per_step * self.samples_per_prompt} responses of a step must split "
                             f"into minibatches={self.minibatches} equal parts")


def train(policy: GPT, problems: Sequence[arithmetic.Problem], config: PPOLMConfig, progress: bool = False,
          reference: GPT | None = None, critic: Critic | None = None,
          eval_problems: Sequence[arithmetic.Problem] | None = None) -> tuple[GPT, dict[str, list]]:
    """Train ``policy`` in place with PPO and a critic (module docstring) on ``problems``; deterministic for a seed.

    ``reference`` defaults to a frozen copy of the policy at the start, ``critic`` to a fresh :class:`Critic` built
    from the policy. Returns the policy and a history of plain lists: per step ``step``, ``reward`` (mean score),
    ``correct``, ``length``, ``kl`` (mean ``logp - ref_logp`` over response tokens), ``policy_loss``,
    ``value_loss``, ``seconds``; with ``eval_problems``: ``eval_step``, ``eval_pass@1`` (greedy).
    """
    if not problems:
        raise ValueError("problems must not be empty")
    if not isinstance(config, PPOLMConfig):
        raise ValueError(f"config must be a PPOLMConfig, got {type(config).__name__}")
    if reference is None:
        reference = copy.deepcopy(policy)
    reference.eval().requires_grad_(False)
    if critic is None:
        critic = Critic(policy, config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    opt_policy = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0, betas=(0.9, 0.99))
    opt_critic = torch.optim.AdamW(critic.parameters(), lr=config.critic_lr, weight_decay=0.0, betas=(0.9, 0.99))
    history: dict[str, list] = {k: [] for k in ("step", "reward", "correct", "length", "kl", "policy_loss",
                                                "value_loss", "seconds", "eval_step", "eval_pass@1")}
    start = time.perf_counter()

    def evaluate(step: int) -> None:
        if eval_problems:
            history["eval_step"].append(step)
            history["eval_pass@1"].append(greedy_pass_at_1(policy, eval_problems))

    evaluate(0)
    bar = tqdm(range(1, config.steps + 1), desc="PPO", disable=None if progress else True, leave=False)
    for step in bar:
        batch = [problems[rng.randrange(len(problems))] for _ in range(config.prompts_per_step)]
        rollout = sample_group(policy, batch, config.samples_per_prompt, config.temperature, generator,
                               config.max_new_tokens)
        scores, correct = score_rollout(batch, rollout, config.format_weight)
        mask, old_logp = rollout.mask, rollout.logp
        with torch.no_grad():
            ref_logp = token_logprobs(reference, rollout.ids) * mask
            old_values = critic(rollout.ids[:, :-1]) * mask                          # (N, T - 1)
            rewards = token_rewards(scores, old_logp, ref_logp, mask, config.kl_coef)
            advantages, returns = gae(rewards, old_values, mask, config.gamma, config.lam)
            advantages = whiten(advantages, mask)
        policy.train()
        critic.train()
        n = len(rollout.responses)
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=generator)
            for part in order.chunk(config.minibatches):
                ids, m = rollout.ids[part], mask[part]
                logp = token_logprobs(policy, ids)
                policy_loss = grpo_loss(logp, old_logp[part], advantages[part], m, clip_eps=config.clip_eps,
                                        loss_type="bnpo")
                values = critic(ids[:, :-1])
                clipped = old_values[part] + (values - old_values[part]).clamp(-config.value_clip,
                                                                               config.value_clip)
                value_loss = 0.5 * (torch.max((values - returns[part]) ** 2, (clipped - returns[part]) ** 2)
                                    * m).sum() / m.sum().clamp(min=1.0)
                opt_policy.zero_grad(set_to_none=True)
                opt_critic.zero_grad(set_to_none=True)
                (policy_loss + config.vf_coef * value_loss).backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
                torch.nn.utils.clip_grad_norm_(critic.parameters(), config.grad_clip)
                opt_policy.step()
                opt_critic.step()
        policy.eval()
        critic.eval()
        tokens = mask.sum().clamp(min=1.0)
        history["step"].append(step)
        history["reward"].append(scores.mean().item())
        history["correct"].append(correct.mean().item())
        history["length"].append(rollout.lengths.mean().item())
        history["kl"].append((((old_logp - ref_logp) * mask).sum() / tokens).item())
        history["policy_loss"].append(policy_loss.item())
        history["value_loss"].append(value_loss.item())
        out_of_time = config.time_limit is not None and time.perf_counter() - start >= config.time_limit
        if step % config.eval_every == 0 or step == config.steps or out_of_time:
            evaluate(step)
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix(reward=f"{history['reward'][-1]:.2f}")
        if out_of_time:
            break
    policy.eval()
    return policy, history
