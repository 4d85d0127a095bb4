"""GRPO: Group Relative Policy Optimization (Shao et al., 2024, "DeepSeekMath"; used for DeepSeek-R1, 2025).

For each prompt q, sample a **group** of G responses o_1 .. o_G from the old policy, score each with a reward r_i
(here: is the final answer right, plus a little for the right format; :func:`aiterms.arithmetic.reward`), and give
every token of response i the same advantage, its reward relative to the group::

    A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)          std: unbiased (divides by G - 1)
    A_i =  r_i - mean(r_1..r_G)                                   with scale_std=False (Dr. GRPO, Liu et al. 2025)

No critic is learned: the group mean is the baseline. The loss is PPO's clipped surrogate (Schulman et al., 2017)
per token, plus a KL penalty to a frozen reference model with the "k3" estimator (Schulman, 2020), which is
non-negative and unbiased for KL(pi || pi_ref) when the tokens are sampled from pi::

    rho_{i,t} = exp(logp_{i,t} - old_logp_{i,t})
    l_{i,t}   = -min(rho_{i,t} A_i, clip(rho_{i,t}, 1 - eps_clip, 1 + eps_clip) A_i) + beta * k3_{i,t}
    k3_{i,t}  = exp(ref_logp_{i,t} - logp_{i,t}) - (ref_logp_{i,t} - logp_{i,t}) - 1

and the per-token losses are aggregated over the response tokens (``mask``) in one of three ways (``loss_type``):

* ``"grpo"``: mean over each response's tokens, then over the responses (the DeepSeekMath formula,
  ``1/G sum_i 1/|o_i| sum_t``; TRL ``loss_type="grpo"``). A long response's tokens weigh less each.
* ``"bnpo"``: one mean over all response tokens of the batch (DAPO's token-level loss, Yu et al. 2025; TRL
  ``"bnpo"``, and ``"dapo"`` within one batch).
* ``"dr_grpo"``: the sum over all response tokens divided by a constant, ``N * max_len`` (Dr. GRPO, Liu et al. 2025;
  TRL ``"dr_grpo"`` with ``max_completion_length = max_len``): no length bias at all.

Shapes: N = P * G rows, prompt-major (rows ``i*G .. i*G+G-1`` share a prompt; :mod:`aiterms.rollout`); ``rewards
(N,)``, ``advantages (N,)``; ``logp, old_logp, ref_logp, mask (N, T)`` on the response-token positions.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from aiterms import arithmetic
from aiterms.decoding import check_positive_int
from aiterms.rollout import sample_group, score_rollout, token_logprobs
from aiterms.transformer import GPT

LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo")


def _check_tensor(name: str, value, dim: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if dim is not None and value.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimension(s), got shape {tuple(value.shape)}")
    return value


def group_advantages(rewards: torch.Tensor, group_size: int, scale_std: bool = True, eps: float = 1e-4
                     ) -> torch.Tensor:
    """Group-relative advantages ``A_i = (r_i - mean_group) / (std_group + eps)`` (see the module docstring).

    Args:
        rewards: ``(N,)``, N = P * G, prompt-major (rows ``i*G .. i*G+G-1`` are the group of prompt ``i``).
        group_size: G >= 2 (the unbiased std of one sample is undefined).
        scale_std: divide by the group's unbiased standard deviation plus ``eps`` (GRPO); ``False`` only subtracts
            the group mean (Dr. GRPO).
        eps: > 0; keeps a group whose rewards are all equal at advantage 0 (TRL uses 1e-4 too).
    Returns:
        ``(N,)`` float advantages; a group with equal rewards gets zeros (nothing to learn from it).
    Raises:
        ValueError: ``rewards`` not 1-D, ``group_size < 2``, N not divisible by G, ``eps <= 0``.
    """
    _check_tensor("rewards", rewards, 1)
    check_positive_int("group_size", group_size)
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group needs at least two responses), got {group_size}")
    if rewards.numel() == 0 or rewards.numel() % group_size:
        raise ValueError(f"rewards must hold a whole number of groups: {rewards.numel()} rewards is not divisible "
                         f"by group_size={group_size}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    groups = rewards.float().view(-1, group_size)                         # (P, G)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale_std:
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)      # torch.std: unbiased (G - 1)
    return centred.reshape(-1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate ``k3 = exp(ref_logp - logp) - (ref_logp - logp) - 1 >= 0`` (same shape as ``logp``)."""
    if _check_tensor("logp", logp).shape != _check_tensor("ref_logp", ref_logp).shape:
        raise ValueError(f"ref_logp must have the shape of logp {tuple(logp.shape)}, got {tuple(ref_logp.shape)}")
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str = "grpo", max_len: int | None = None
              ) -> torch.Tensor:
    """Reduce ``per_token (N, T)`` losses over the response tokens (``mask (N, T)``) as ``loss_type`` says.

    ``"grpo"``: ``mean_i [sum_t m l / max(1, sum_t m)]``; ``"bnpo"``: ``sum m l / max(1, sum m)``; ``"dr_grpo"``:
    ``sum m l / (N * max_len)`` (``max_len`` defaults to T).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    masked = per_token * mask
    if loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if max_len is None:
        max_len = per_token.shape[1]
    check_positive_int("max_len", max_len)
    return masked.sum() / (per_token.shape[0] * max_len)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              ref_logp: torch.Tensor | None = None, clip_eps: float = 0.2, beta: float = 0.0,
              loss_type: str = "grpo", max_len: int | None = None) -> torch.Tensor:
    """The GRPO loss (module docstring): clipped ratio term plus ``beta`` times the k3 KL, aggregated over ``mask``.

    Args:
        logp: ``(N, T)`` log-probabilities of the sampled tokens under the policy being trained (with gradient).
        old_logp: ``(N, T)`` the same under the policy that sampled them (no gradient).
        advantages: ``(N,)`` one per response (GRPO), or ``(N, T)`` one per token.
        mask: ``(N, T)`` 1 on response tokens, 0 on prompt and padding.
        ref_logp: ``(N, T)`` under the frozen reference model; needed when ``beta > 0``.
        clip_eps: > 0, the ratio is clipped to ``[1 - clip_eps, 1 + clip_eps]``.
        beta: >= 0, the KL coefficient (DeepSeekMath used 0.04; many later recipes use 0).
        loss_type: ``"grpo"``, ``"bnpo"`` or ``"dr_grpo"`` (:func:`aggregate`); ``max_len`` for ``"dr_grpo"``.
    Returns:
        the scalar loss to minimise.
    Raises:
        ValueError: mismatched shapes, ``clip_eps <= 0``, ``beta < 0``, ``beta > 0`` without ``ref_logp``, an
        unknown ``loss_type``.
    """
    _check_tensor("logp", logp, 2)
    for name, value in (("old_logp", old_logp), ("mask", mask)):
        if _check_tensor(name, value).shape != logp.shape:
            raise ValueError(f"{name} must have the shape of logp {tuple(logp.shape)}, got {tuple(value.shape)}")
    _check_tensor("advantages", advantages)
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(f"advantages must be (N,) = {tuple(logp.shape[:1])} or (N, T) = {tuple(logp.shape)}, got "
                         f"{tuple(advantages.shape)}")
    if not clip_eps > 0:
        raise ValueError(f"clip_eps must be > 0, got {clip_eps!r}")
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    adv = advantages[:, None] if advantages.dim() == 1 else advantages                  # (N, 1) or (N, T)
    ratio = torch.exp(logp - old_logp)                                                  # (N, T)
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    if beta > 0:
        if ref_logp is None:
            raise ValueError("ref_logp is needed when beta > 0 (the KL penalty to the reference model)")
        per_token = per_token + beta * kl_k3(logp, ref_logp)
    return aggregate(per_token, mask, loss_type, max_len)


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class GRPOConfig:
    """Hyperparameters of a GRPO run (CleanRL style). One step = ``prompts_per_step`` prompts x ``group_size``
    sampled responses, then ``iterations`` gradient steps on them (mu in DeepSeekMath; 1 = on-policy).

    The defaults are DeepSeekMath's form of the loss with a KL penalty; the pipeline's RL stage uses Dr. GRPO's
    settings (``loss_type="dr_grpo"``, ``scale_std=False``, ``beta=0``, ``lr=2e-4``; see
    :class:`aiterms.pipeline.PipelineConfig` and tools/bench_grpo.py). On the arithmetic model, learning rates of
    3e-4 and more made the held-out accuracy fall within a few dozen steps."""

    steps: int = 80
    prompts_per_step: int = 16
    group_size: int = 8
    lr: float = 1e-4
    warmup: int = 10                     # steps of linear learning-rate warm-up (Adam's first steps are large)
    decay: bool = False                  # then decay linearly to 0 over ``steps`` (or over ``time_limit``)
    clip_eps: float = 0.2
    beta: float = 0.04
    scale_std: bool = True
    loss_type: str = "grpo"
    iterations: int = 1
    temperature: float = 1.0
    format_weight: float = 0.1
    max_new_tokens: int = 64
    grad_clip: float = 1.0
    eval_every: int = 10
    time_limit: float | None = None      # seconds; stop early when reached (the step in progress finishes)
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        for name in ("steps", "prompts_per_step", "group_size", "iterations", "max_new_tokens", "eval_every"):
            check_positive_int(name, getattr(self, name))
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2, got {self.group_size}")
        for name in ("lr", "clip_eps", "temperature", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")


def greedy_pass_at_1(model: GPT, problems: Sequence[arithmetic.Problem]) -> float:
    """Fraction of ``problems`` answered right by greedy decoding in the step-by-step format."""
    from aiterms.evaluation import score, solve
    return score(problems, solve(model, problems, "cot"))["accuracy"]


ResponseScorer = Callable[[list, list], Sequence[float]]   # (problem of each response, responses) -> one number each


def train(policy: GPT, problems: Sequence[arithmetic.Problem], config: GRPOConfig, reference: GPT | None = None,
          eval_problems: Sequence[arithmetic.Problem] | None = None, progress: bool = False,
          reward_fn: ResponseScorer | None = None, track: dict[str, ResponseScorer] | None = None
          ) -> tuple[GPT, dict[str, list]]:
    """Train ``policy`` in place with GRPO on ``problems`` (drawn uniformly with a seeded rng at every step).

    Each step: sample a group per prompt (:func:`aiterms.rollout.sample_group`), reward it
    (:func:`aiterms.arithmetic.reward`, step-by-step format), :func:`group_advantages`, then ``config.iterations``
    AdamW steps on :func:`grpo_loss` with a KL penalty to ``reference`` (default: a frozen copy of the policy as it
    was at the start). Deterministic for ``config.seed``.

    Data parallel: called in every process of an initialised ``torch.distributed`` group (:func:`train_parallel`
    does that), each of the W ranks samples the groups of its share of the step's prompts (``prompts_per_step / W``;
    every rank draws the same prompts, rank r takes the r-th slice, with its own sampling generator), the gradients
    are averaged over the ranks before each AdamW step (:func:`aiterms.distributed.average_gradients`), and the
    statistics and evaluations are combined over the ranks, so the weights stay identical on every rank. For
    ``loss_type`` "grpo" and "dr_grpo" the averaged gradient is exactly the gradient of the whole batch.

    ``reward_fn(problems, responses)`` replaces the verifiable reward with any other, e.g. a learned reward model
    (RLHF, chapter 10): it gets the problem of each sampled response and the responses, and returns one reward each.
    ``track``: more per-step means for the history, ``{name: scorer}`` with scorers of the same form (e.g. the true
    utility a learned reward stands for), computed on the sampled responses and never used for training.

    Returns:
        the policy and a history of plain lists: per step ``step``, ``reward`` (mean), ``correct`` (fraction of
        sampled responses that are right), ``length`` (mean response tokens), ``kl`` (mean k3 over response
        tokens), ``clip_fraction``, ``loss``, ``lr`` (the learning rate used), ``seconds`` (since the start); every ``eval_every`` steps (and at
        step 0 and the end) with ``eval_problems``: ``eval_step``, ``eval_pass@1`` (greedy).
    """
    if not problems:
        raise ValueError("problems must not be empty")
    if not isinstance(config, GRPOConfig):
        raise ValueError(f"config must be a GRPOConfig, got {type(config).__name__}")
    import torch.distributed as dist
    parallel = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if parallel else (0, 1)
    if config.prompts_per_step % world:
        raise ValueError(f"prompts_per_step={config.prompts_per_step} must be divisible by the number of processes "
                         f"({world})")
    if parallel:
        from aiterms.distributed import average_gradients, broadcast_parameters
        broadcast_parameters(policy)
    if reference is None:
        reference = copy.deepcopy(policy)
    reference.eval().requires_grad_(False)
    rng = random.Random(config.seed)                                   # the same prompts on every rank
    generator = torch.Generator().manual_seed(config.seed + 1_000_003 * rank)   # each rank its own samples
    share = config.prompts_per_step // world
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0, betas=(0.9, 0.99))

    def learning_rate(step: int) -> float:
        """Warm-up, then constant or (``decay``) linear to 0 over the steps or the time limit (rank 0's clock)."""
        rate = config.lr * min(1.0, step / (config.warmup + 1))
        if config.decay:
            done = (step - 1) / config.steps
            if config.time_limit is not None:
                elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
                if parallel:
                    dist.broadcast(elapsed, src=0)
                done = max(done, elapsed.item() / config.time_limit)
            rate *= max(0.0, 1.0 - done)
        return rate

    track = dict(track or {})
    history: dict[str, list] = {k: [] for k in ("step", "reward", "correct", "length", "kl", "clip_fraction",
                                                "loss", "lr", "seconds", "eval_step", "eval_pass@1", *track)}
    start = time.perf_counter()

    def mean_over_ranks(values: list[float]) -> list[float]:
        if not parallel:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / world).tolist()

    def evaluate(step: int) -> None:
        if eval_problems:
            mine = list(eval_problems)[rank::world]
            right = greedy_pass_at_1(policy, mine) * len(mine) if mine else 0.0
            history["eval_step"].append(step)
            history["eval_pass@1"].append(round(mean_over_ranks([right])[0] * world) / len(eval_problems))

    evaluate(0)
    bar = tqdm(range(1, config.steps + 1), desc="GRPO", disable=None if progress else True, leave=False)
    for step in bar:
        batch = [problems[rng.randrange(len(problems))] for _ in range(config.prompts_per_step)]
        batch = batch[rank * share:(rank + 1) * share]
        # one gradient step per batch without dropout: the old log-probs are the first forward pass's own values,
        # so the sampler's extra pass is skipped (as TRL does); the ratio is exactly 1 then
        same = config.iterations == 1 and policy.config.dropout == 0
        rollout = sample_group(policy, batch, config.group_size, config.temperature, generator,
                               config.max_new_tokens, logprobs=not same)
        rewards, correct = score_rollout(batch, rollout, config.format_weight)
        of_response = [batch[i] for i in rollout.prompt_index]
        with torch.no_grad():                             # rewards and tracked values carry no gradient
            if reward_fn is not None:
                rewards = torch.as_tensor([float(r) for r in reward_fn(of_response, rollout.responses)],
                                          dtype=rewards.dtype)
                if rewards.shape != correct.shape:
                    raise ValueError(f"reward_fn must return one reward per response ({correct.numel()}), got "
                                     f"{rewards.numel()}")
            tracked = [sum(float(v) for v in fn(of_response, rollout.responses)) / len(of_response)
                       for fn in track.values()]
        advantages = group_advantages(rewards, config.group_size, config.scale_std)
        mask = rollout.mask
        with torch.no_grad():
            ref_logp = token_logprobs(reference, rollout.ids) if config.beta > 0 else None
        policy.train()
        rate = learning_rate(step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        for _ in range(config.iterations):
            logp = token_logprobs(policy, rollout.ids)
            if same:
                rollout.logp = logp.detach() * mask
            loss = grpo_loss(logp, rollout.logp, advantages, mask, ref_logp, config.clip_eps, config.beta,
                             config.loss_type, config.max_new_tokens)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if parallel:
                average_gradients(policy)
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
        policy.eval()
        with torch.no_grad():
            ratio = torch.exp(logp - rollout.logp)
            clipped = ((ratio - 1).abs() > config.clip_eps).float()
            kl = kl_k3(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
            tokens = mask.sum().clamp(min=1.0)
        stats = mean_over_ranks([rewards.mean().item(), correct.mean().item(), rollout.lengths.float().mean().item(),
                                 ((kl * mask).sum() / tokens).item(), ((clipped * mask).sum() / tokens).item(),
                                 loss.item(), *tracked])
        history["step"].append(step)
        history["lr"].append(rate)
        for key, value in zip(("reward", "correct", "length", "kl", "clip_fraction", "loss", *track), stats):
            history[key].append(value)
        out_of_time = config.time_limit is not None and time.perf_counter() - start >= config.time_limit
        if parallel:                                      # rank 0's clock decides, so every rank stops together
            flag = torch.tensor([float(out_of_time)])
            dist.broadcast(flag, src=0)
            out_of_time = bool(flag.item())
        if step % config.eval_every == 0 or step == config.steps or out_of_time:
            evaluate(step)
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix(reward=f"{history['reward'][-1]:.2f}")
        if out_of_time:
            break
    policy.eval()
    return policy, history


def _train_in_group(policy: GPT, problems: list, config: GRPOConfig, reference: GPT | None,
                    eval_problems: list | None) -> tuple[GPT, dict[str, list]]:
    return train(policy, problems, config, reference, eval_problems, progress=False)


def train_parallel(policy: GPT, problems: Sequence[arithmetic.Problem], config: GRPOConfig, processes: int = 2,
                   reference: GPT | None = None, eval_problems: Sequence[arithmetic.Problem] | None = None
                   ) -> tuple[GPT, dict[str, list]]:
    """:func:`train` in ``processes`` data-parallel processes on this machine
    (:func:`aiterms.distributed.data_parallel`: gloo, one torch thread each), e.g. one per CPU core: each samples
    ``prompts_per_step / processes`` prompts' groups, the gradients are averaged. ``policy`` is updated in place with
    the result and returned with the history. Deterministic for ``config.seed`` and ``processes`` (not across
    different ``processes``: the ranks sample with their own generators). ``processes=1`` is :func:`train` in a
    child process."""
    from aiterms.distributed import data_parallel
    check_positive_int("processes", processes)
    if config.prompts_per_step % processes:
        raise ValueError(f"config.prompts_per_step={config.prompts_per_step} must be divisible by "
                         f"processes={processes}")
    return data_parallel(_train_in_group, policy, processes, list(problems), config, reference,
                         list(eval_problems) if eval_problems else None)
