"""Proximal Policy Optimization (PPO) for gymnasium environments with Box observations and Discrete actions.

PPO (Schulman et al., 2017, "Proximal Policy Optimization Algorithms") is an actor-critic policy-gradient method.
One *update* of :func:`train` does, in the style of CleanRL's ``ppo.py``:

1. **rollout**: ``num_envs`` copies of the environment run ``num_steps`` steps each with the current policy
   (a batch of ``B = num_envs * num_steps`` transitions); we keep ``obs (T, N, obs_dim)``, ``actions (T, N)``,
   the old log-probabilities ``logp_old (T, N)``, the critic's values ``values (T, N)``, ``rewards (T, N)`` and
   ``dones (T, N)``;
2. **advantages** with generalized advantage estimation, :func:`gae` (Schulman et al., 2016, "High-Dimensional
   Continuous Control Using Generalized Advantage Estimation"), and the critic's targets ``returns = adv + values``;
3. **optimisation**: ``update_epochs`` passes over the batch, shuffled into ``num_minibatches`` minibatches; on each
   minibatch the loss

       L = L_clip(theta) + vf_coef * L_value(phi) - ent_coef * H[pi_theta]

   (:func:`clipped_surrogate_loss`, :func:`value_loss`, :func:`entropy_bonus`) is minimised with Adam, after
   per-minibatch advantage normalisation (:func:`normalize_advantages`) and with the global gradient norm clipped to
   ``max_grad_norm`` (``torch.nn.utils.clip_grad_norm_``).

Conventions (the ones that trip people up):

* ``dones[t] = 1`` means the episode ended *with* transition ``t`` (after action ``a_t``): ``s_{t+1}`` does not
  follow from ``s_t``, so neither its value nor any later advantage flows back into step ``t``.
* Time-limit truncation (CartPole-v1 stops at 500 steps) is not failure: the trainer adds ``gamma * V(s_final)`` to
  the reward of a truncated step and then treats it as done, so the critic is bootstrapped where the episode was cut.
* ``logp`` are natural-log probabilities of the taken actions; the probability ratio is ``exp(logp - logp_old)``.
* Losses are means over the minibatch and are *minimised* (the surrogate objective enters with a minus sign).

Everything runs on the CPU with one torch thread and is deterministic for a ``seed``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

__all__ = ["PPOConfig", "Agent", "gae", "normalize_advantages", "clipped_surrogate_loss", "value_loss",
           "entropy_bonus", "ppo_loss", "time_limit_rewards", "train", "evaluate", "run_episodes", "make_env_fn",
           "steps_to_solve"]


# ------------------------------------------------------------------------------------------------ hyperparameters
@dataclass
class PPOConfig:
    """PPO's hyperparameters. The defaults solve CartPole-v1 (greedy return 500) within 50,000 environment steps.

    They follow RL Baselines3 Zoo's tuned CartPole settings (8 envs x 32 steps, 20 epochs, ``gamma=0.98``,
    ``gae_lambda=0.8``, learning rate 1e-3 annealed to 0, no entropy bonus) rather than CleanRL's general defaults
    (4 x 128, 4 epochs, 2.5e-4), which need several hundred thousand steps on CartPole.
    """

    total_steps: int = 50_000        # environment steps over all envs (a partial last update is dropped)
    num_envs: int = 8                # N, parallel environments (gymnasium.vector.SyncVectorEnv)
    num_steps: int = 32              # T, steps per env per rollout; batch B = N * T
    learning_rate: float = 1e-3      # Adam step size
    anneal_lr: bool = True           # decay the learning rate linearly to 0 over the updates
    gamma: float = 0.98              # discount factor
    gae_lambda: float = 0.8          # GAE's lambda: 0 = one-step TD, 1 = Monte Carlo returns
    update_epochs: int = 20          # K, passes over each batch
    num_minibatches: int = 1         # minibatches per epoch (minibatch size B / num_minibatches)
    norm_adv: bool = True            # normalise advantages per minibatch (mean 0, std 1)
    clip_eps: float = 0.2            # epsilon of the clipped surrogate
    clip_vloss: bool = False         # clip the value loss around the old values too (CleanRL: on; SB3: off)
    ent_coef: float = 0.0            # weight of the entropy bonus
    vf_coef: float = 0.5             # weight of the value loss
    max_grad_norm: float = 0.5       # global gradient-norm clip
    hidden: int = 64                 # width of the two hidden layers (actor and critic each)
    eval_every: int = 0              # evaluate greedily every this many env steps (0: never)
    eval_episodes: int = 10          # episodes per evaluation
    target_return: float | None = None  # stop as soon as an evaluation's mean return reaches this

    def __post_init__(self) -> None:
        positive_ints = ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "hidden",
                         "eval_episodes")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every must be an int >= 0 (0 = never), got {self.eval_every!r}")
        if self.total_steps < self.num_envs * self.num_steps:
            raise ValueError(f"total_steps must be at least num_envs * num_steps = {self.num_envs * self.num_steps}"
                             f", got {self.total_steps}")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(f"num_minibatches must divide the batch size num_envs * num_steps = "
                             f"{self.num_envs * self.num_steps}, got {self.num_minibatches}")
        _check_gamma_lambda(self.gamma, self.gae_lambda, "gae_lambda")
        _check_clip_eps(self.clip_eps)
        for name in ("learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("ent_coef", "vf_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size


def _check_gamma_lambda(gamma: float, lam: float, lam_name: str = "lam") -> None:
    for name, value in (("gamma", gamma), (lam_name, lam)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_clip_eps(clip_eps: float) -> None:
    if not (isinstance(clip_eps, (int, float)) and not isinstance(clip_eps, bool) and 0 < clip_eps < 1):
        raise ValueError(f"clip_eps must be a number with 0 < clip_eps < 1, got {clip_eps!r}")


# ------------------------------------------------------------------------------------------------ actor-critic
def _layer(n_in: int, n_out: int, std: float = math.sqrt(2)) -> nn.Linear:
    """A linear layer with orthogonal weights (gain ``std``) and zero bias, as in CleanRL and the PPO paper's code."""
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


class Agent(nn.Module):
    """Actor and critic: two separate tanh MLPs (obs_dim -> hidden -> hidden -> ...).

    * actor: ``obs (B, obs_dim) -> logits (B, n_actions)`` of a categorical policy ``pi(a | s)``;
    * critic: ``obs (B, obs_dim) -> value (B,)``, the estimate ``V(s)`` of the discounted return.

    The actor's last layer starts small (gain 0.01, so the first policy is nearly uniform) and the critic's with
    gain 1, as in CleanRL.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        for name, value in (("obs_dim", obs_dim), ("n_actions", n_actions), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.critic = nn.Sequential(_layer(obs_dim, hidden), nn.Tanh(), _layer(hidden, hidden), nn.Tanh(),
                                    _layer(hidden, 1, std=1.0))
        self.actor = nn.Sequential(_layer(obs_dim, hidden), nn.Tanh(), _layer(hidden, hidden), nn.Tanh(),
                                   _layer(hidden, n_actions, std=0.01))

    @classmethod
    def for_env(cls, env: gym.Env, hidden: int = 64) -> "Agent":
        """An agent sized for ``env`` (a flat Box observation space and a Discrete action space)."""
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"the environment's observation space must be a 1-D Box, got {obs_space}")
        if not isinstance(act_space, gym.spaces.Discrete):
            raise ValueError(f"the environment's action space must be Discrete, got {act_space}")
        return cls(int(obs_space.shape[0]), int(act_space.n), hidden)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``V(s)``: ``obs (B, obs_dim) -> (B,)``."""
        return self.critic(obs).squeeze(-1)

    def dist(self, obs: torch.Tensor) -> Categorical:
        """The policy ``pi(. | s)`` as a ``torch.distributions.Categorical`` over ``n_actions``."""
        return Categorical(logits=self.actor(obs), validate_args=False)

    def action_and_value(self, obs: torch.Tensor, action: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score the given) actions: ``(action (B,), logp (B,), entropy (B,), value (B,))``."""
        dist = self.dist(obs)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(obs)

    @torch.no_grad()
    def act(self, obs: Any, greedy: bool = True) -> Any:
        """The action for one observation ``(obs_dim,)`` (an int) or a batch ``(B, obs_dim)`` (an int array).

        Greedy (the most probable action) by default; ``greedy=False`` samples from the policy (torch's global RNG).
        """
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        if x.shape[-1:] != (self.obs_dim,) or x.dim() not in (1, 2):
            raise ValueError(f"obs must have shape ({self.obs_dim},) or (B, {self.obs_dim}), got {tuple(x.shape)}")
        logits = self.actor(x)
        a = logits.argmax(-1) if greedy else Categorical(logits=logits, validate_args=False).sample()
        return int(a) if x.dim() == 1 else a.numpy()


# ------------------------------------------------------------------------------------------------ the math
def _as_float_tensor(name: str, x: Any) -> torch.Tensor:
    try:
        t = torch.as_tensor(x, dtype=torch.float32) if not isinstance(x, torch.Tensor) else x
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} must be a tensor of numbers: {e}") from None
    return t


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, next_value: torch.Tensor,
        gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalized advantage estimates (Schulman et al., 2016, eq. 16), computed backwards in time.

    With ``V(s_T) = next_value`` (the critic's value of the observation after the last step) and ``m_t = 1 - dones[t]``:

        delta_t = rewards[t] + gamma * m_t * V(s_{t+1}) - values[t]
        A_t     = delta_t + gamma * lam * m_t * A_{t+1},          A_T = 0

    ``dones[t] = 1`` means the episode ended with transition ``t``: nothing after it flows back into ``A_t``.
    ``lam = 0`` gives the one-step TD error, ``lam = 1`` the discounted return minus the value.
    The critic's targets are ``returns = A + values``.

    Args:
        rewards: ``(T,)`` or ``(T, N)`` rewards ``r_t`` for ``T`` steps of ``N`` environments.
        values: same shape, ``V(s_t)``.
        dones: same shape, 1.0 (or True) where the episode ended at step ``t``, else 0.
        next_value: ``values.shape[1:]`` (a scalar for 1-D input, ``(N,)`` otherwise): ``V(s_T)``.
        gamma: discount in [0, 1]. lam: GAE's lambda in [0, 1].

    Returns:
        advantages, a float tensor shaped like ``rewards``.
    """
    rewards, values = _as_float_tensor("rewards", rewards), _as_float_tensor("values", values)
    dones, next_value = _as_float_tensor("dones", dones).float(), _as_float_tensor("next_value", next_value)
    if rewards.dim() not in (1, 2) or rewards.shape[0] < 1:
        raise ValueError(f"rewards must have shape (T,) or (T, N) with T >= 1, got {tuple(rewards.shape)}")
    for name, t in (("values", values), ("dones", dones)):
        if t.shape != rewards.shape:
            raise ValueError(f"{name} must have the shape of rewards {tuple(rewards.shape)}, got {tuple(t.shape)}")
    if next_value.shape != rewards.shape[1:]:
        raise ValueError(f"next_value must have shape {tuple(rewards.shape[1:])} (values.shape[1:]), "
                         f"got {tuple(next_value.shape)}")
    _check_gamma_lambda(gamma, lam)
    advantages = torch.zeros_like(rewards, dtype=torch.float32)
    last = torch.zeros_like(next_value, dtype=torch.float32)
    later_value = next_value.float()
    for t in reversed(range(rewards.shape[0])):
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * live * later_value - values[t]
        last = delta + gamma * lam * live * last
        advantages[t] = last
        later_value = values[t]
    return advantages


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(A - mean(A)) / (std(A) + eps)`` over all elements, with torch's default (unbiased, n - 1) std.

    A single element has no spread: it becomes 0 (PyTorch's std of one element is NaN; we return zeros instead).
    """
    advantages = _as_float_tensor("advantages", advantages)
    if advantages.numel() == 0:
        raise ValueError("advantages must not be empty")
    if advantages.numel() == 1:
        return torch.zeros_like(advantages)
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def clipped_surrogate_loss(logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                           clip_eps: float = 0.2) -> torch.Tensor:
    """PPO's clipped policy loss (Schulman et al., 2017, eq. 7), to be *minimised*.

    With the probability ratio ``r = exp(logp - logp_old) = pi_theta(a|s) / pi_theta_old(a|s)``:

        L_clip = -mean( min( r * A, clip(r, 1 - clip_eps, 1 + clip_eps) * A ) )

    The ``min`` makes it a pessimistic bound: moving ``r`` beyond ``1 +- clip_eps`` in the direction the advantage
    rewards gains nothing (zero gradient), while moves that make things worse are never clipped.

    Args:
        logp: ``(B,)`` (any shape) log-probabilities of the taken actions under the current policy (with gradient).
        logp_old: same shape, under the policy that collected the data (no gradient needed).
        advantages: same shape, ``A`` (usually normalised).
        clip_eps: epsilon, ``0 < clip_eps < 1``.

    Returns:
        a scalar tensor.
    """
    logp, logp_old = _as_float_tensor("logp", logp), _as_float_tensor("logp_old", logp_old)
    advantages = _as_float_tensor("advantages", advantages)
    for name, t in (("logp_old", logp_old), ("advantages", advantages)):
        if t.shape != logp.shape:
            raise ValueError(f"{name} must have the shape of logp {tuple(logp.shape)}, got {tuple(t.shape)}")
    if logp.numel() == 0:
        raise ValueError("logp must not be empty")
    _check_clip_eps(clip_eps)
    ratio = torch.exp(logp - logp_old)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -torch.min(unclipped, clipped).mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip_eps: float | None = None) -> torch.Tensor:
    """The critic's loss: ``0.5 * mean((V - R)^2)``; with ``old_values`` and ``clip_eps``, the clipped variant

        V_clip = old_values + clip(V - old_values, -clip_eps, clip_eps)
        L_V    = 0.5 * mean( max( (V - R)^2, (V_clip - R)^2 ) )

    (the PPO code's value clipping, as in OpenAI Baselines and CleanRL). ``values``, ``returns`` and ``old_values``
    share one shape, e.g. ``(B,)``.
    """
    values, returns = _as_float_tensor("values", values), _as_float_tensor("returns", returns)
    if returns.shape != values.shape:
        raise ValueError(f"returns must have the shape of values {tuple(values.shape)}, got {tuple(returns.shape)}")
    if values.numel() == 0:
        raise ValueError("values must not be empty")
    squared = (values - returns) ** 2
    if old_values is None and clip_eps is None:
        return 0.5 * squared.mean()
    if old_values is None or clip_eps is None:
        raise ValueError("value clipping needs both old_values and clip_eps (or neither)")
    old_values = _as_float_tensor("old_values", old_values)
    if old_values.shape != values.shape:
        raise ValueError(f"old_values must have the shape of values {tuple(values.shape)}, "
                         f"got {tuple(old_values.shape)}")
    if not clip_eps > 0:
        raise ValueError(f"clip_eps must be > 0, got {clip_eps!r}")
    clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    return 0.5 * torch.max(squared, (clipped - returns) ** 2).mean()


def entropy_bonus(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy ``H = -sum_a pi(a) log pi(a)`` of categorical policies, ``logits (B, n_actions) -> scalar``.

    It is *added* to the objective (subtracted from the loss) to keep the policy from collapsing too early.
    """
    logits = _as_float_tensor("logits", logits)
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., n_actions), got {tuple(logits.shape)}")
    return Categorical(logits=logits).entropy().mean()


def ppo_loss(agent: Agent, obs: torch.Tensor, actions: torch.Tensor, logp_old: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor, config: PPOConfig
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """The total loss on one minibatch and its parts: ``L_clip + vf_coef * L_V - ent_coef * H``.

    Shapes: ``obs (B, obs_dim)``, every other tensor ``(B,)``. Advantages are normalised here if ``config.norm_adv``.
    The stats are plain floats: policy_loss, value_loss, entropy, approx_kl (``mean((r - 1) - log r)``, Schulman's
    low-variance estimator of KL(old || new)) and clip_frac (the fraction of ratios outside ``1 +- clip_eps``).
    """
    log_probs = torch.log_softmax(agent.actor(obs), dim=-1)                 # (B, n_actions)
    logp = log_probs.gather(1, actions[:, None]).squeeze(1)                 # (B,)
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()                 # what entropy_bonus computes
    values = agent.value(obs)
    if config.norm_adv:
        advantages = normalize_advantages(advantages)
    pg = clipped_surrogate_loss(logp, logp_old, advantages, config.clip_eps)
    vl = value_loss(values, returns, old_values, config.clip_eps) if config.clip_vloss else value_loss(values,
                                                                                                      returns)
    loss = pg + config.vf_coef * vl - config.ent_coef * entropy
    with torch.no_grad():
        log_ratio = logp - logp_old
        ratio = log_ratio.exp()
        parts = torch.stack([pg, vl, entropy, ((ratio - 1) - log_ratio).mean(),
                             ((ratio - 1).abs() > config.clip_eps).float().mean()]).tolist()
    stats = dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac"), parts))
    return loss, stats


# ------------------------------------------------------------------------------------------------ training
#: evaluation episodes during training use seeds from here on (training envs use ``seed + i``)
EVAL_SEED = 10_000


def time_limit_rewards(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                       final_values: np.ndarray, gamma: float) -> np.ndarray:
    """Rewards of one vector step with time-limit cut-offs bootstrapped: ``(N,) -> (N,)``.

        r'_i = r_i + gamma * V(s_final_i)    if env i was truncated and not terminated, else r_i

    A truncated episode did not fail; it was stopped. Adding the discounted value of its final observation and then
    treating the step as ``done`` gives GAE the same target as if the episode had continued (Pardo et al., 2018,
    "Time Limits in Reinforcement Learning"; Stable-Baselines3 does the same). ``final_values`` is read only where
    truncated.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    shapes = {name: np.shape(x) for name, x in (("terminated", terminated), ("truncated", truncated),
                                                ("final_values", final_values))}
    for name, shape in shapes.items():
        if shape != rewards.shape:
            raise ValueError(f"{name} must have the shape of rewards {rewards.shape}, got {shape}")
    cut = np.logical_and(np.asarray(truncated, dtype=bool), np.logical_not(np.asarray(terminated, dtype=bool)))
    return np.where(cut, rewards + gamma * np.asarray(final_values, dtype=np.float64), rewards)


def make_env_fn(make_env: Callable[[], gym.Env] | str) -> Callable[[], gym.Env]:
    """An environment id (``"CartPole-v1"``) or a factory -> a factory."""
    if isinstance(make_env, str):
        env_id = make_env
        return lambda: gym.make(env_id)
    if not callable(make_env):
        raise ValueError(f"make_env must be a gymnasium id or a callable returning an env, got {make_env!r}")
    return make_env


def train(make_env: Callable[[], gym.Env] | str, config: PPOConfig | None = None, seed: int = 0,
          progress: bool = False) -> tuple[Agent, dict]:
    """Train an :class:`Agent` with PPO on ``config.num_envs`` copies of an environment (see the module docstring).

    Args:
        make_env: a gymnasium id such as ``"CartPole-v1"`` or a function returning a new environment (Box
            observations, Discrete actions).
        config: hyperparameters (``PPOConfig()`` if None).
        seed: seeds torch (the network's initialisation and the sampled actions) and the environments (env ``i``
            is reset with ``seed + i``); the same seed gives the same agent and history.
        progress: show a tqdm progress bar over the updates.

    Returns:
        ``(agent, history)``. ``history`` holds lists with one entry per update: ``"env_steps"`` (env steps so far),
        ``"mean_return"`` (mean return of the episodes that ended during the update, or of the last 10 episodes if
        none ended; NaN before the first episode ends), ``"policy_loss"``, ``"value_loss"``, ``"entropy"``,
        ``"approx_kl"``, ``"clip_frac"`` (averaged over the update's minibatches); ``"episode_returns"`` and
        ``"episode_end_steps"`` list every finished training episode; with ``config.eval_every``,
        ``"eval_steps"`` and ``"eval_returns"`` (mean greedy return over ``config.eval_episodes``); ``"solved_at"``
        is the env steps of the first evaluation reaching ``config.target_return`` (else None);
        ``"seconds"`` the wall-clock time (``"eval_seconds"`` of it spent evaluating) and ``"config"`` the config as a
        dict. Evaluation episodes are reset with seeds ``EVAL_SEED + seed + i``, apart from the training seeds.
    """
    config = PPOConfig() if config is None else config
    if not isinstance(config, PPOConfig):
        raise ValueError(f"config must be a PPOConfig, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    factory = make_env_fn(make_env)
    start = time.perf_counter()
    torch.manual_seed(seed)
    n, steps = config.num_envs, config.num_steps
    envs = gym.vector.SyncVectorEnv([factory for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        agent = Agent.for_env(envs.envs[0], config.hidden)
        optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5, fused=True)
        obs_dim = agent.obs_dim
        buf_obs = torch.zeros((steps, n, obs_dim))
        buf_actions = torch.zeros((steps, n), dtype=torch.long)
        buf_logp = torch.zeros((steps, n))
        buf_values = torch.zeros((steps, n))
        buf_rewards = torch.zeros((steps, n))
        buf_dones = torch.zeros((steps, n))
        history: dict[str, Any] = {k: [] for k in ("env_steps", "mean_return", "policy_loss", "value_loss",
                                                   "entropy", "approx_kl", "clip_frac", "episode_returns",
                                                   "episode_end_steps", "eval_steps", "eval_returns")}
        history["solved_at"] = None
        obs_np, _ = envs.reset(seed=seed)
        obs = torch.as_tensor(obs_np, dtype=torch.float32)
        running = np.zeros(n)
        env_steps, next_eval, eval_seconds = 0, config.eval_every, 0.0
        updates = range(config.num_updates)
        if progress:
            from tqdm.auto import tqdm
            updates = tqdm(updates, desc="PPO updates")
        for update in updates:
            if config.anneal_lr:
                optimizer.param_groups[0]["lr"] = config.learning_rate * (1.0 - update / config.num_updates)
            ended: list[float] = []
            # ---- rollout
            for t in range(steps):
                with torch.no_grad():
                    action, logp, _, value = agent.action_and_value(obs)
                buf_obs[t], buf_actions[t], buf_logp[t], buf_values[t] = obs, action, logp, value
                obs_np, reward, terminated, truncated, info = envs.step(action.numpy())
                env_steps += n
                reward = np.asarray(reward, dtype=np.float64)
                running += reward
                done = np.logical_or(terminated, truncated)
                if done.any():
                    cut = np.logical_and(truncated, np.logical_not(terminated))
                    if cut.any():  # bootstrap a time-limit cut with the value of the final observation
                        final_values = np.zeros(n)
                        final = np.stack([info["final_obs"][i] for i in np.flatnonzero(cut)])
                        with torch.no_grad():
                            final_values[cut] = agent.value(torch.as_tensor(final, dtype=torch.float32)).numpy()
                        reward = time_limit_rewards(reward, terminated, truncated, final_values, config.gamma)
                    for i in np.flatnonzero(done):
                        ended.append(float(running[i]))
                        history["episode_returns"].append(float(running[i]))
                        history["episode_end_steps"].append(env_steps)
                        running[i] = 0.0
                buf_rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
                buf_dones[t] = torch.as_tensor(done, dtype=torch.float32)
                obs = torch.as_tensor(obs_np, dtype=torch.float32)
            # ---- advantages
            with torch.no_grad():
                next_value = agent.value(obs)
            advantages = gae(buf_rewards, buf_values, buf_dones, next_value, config.gamma, config.gae_lambda)
            returns = advantages + buf_values
            # ---- optimisation
            b_obs, b_actions = buf_obs.reshape(-1, obs_dim), buf_actions.reshape(-1)
            b_logp, b_adv = buf_logp.reshape(-1), advantages.reshape(-1)
            b_returns, b_values = returns.reshape(-1), buf_values.reshape(-1)
            mb = config.batch_size // config.num_minibatches
            sums: dict[str, float] = {}
            count = 0
            for _ in range(config.update_epochs):
                order = torch.randperm(config.batch_size)
                for start_i in range(0, config.batch_size, mb):
                    idx = order[start_i:start_i + mb]
                    loss, stats = ppo_loss(agent, b_obs[idx], b_actions[idx], b_logp[idx], b_adv[idx],
                                           b_returns[idx], b_values[idx], config)
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
                    optimizer.step()
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0.0) + v
                    count += 1
            # ---- bookkeeping
            history["env_steps"].append(env_steps)
            recent = ended or history["episode_returns"][-10:]
            history["mean_return"].append(float(np.mean(recent)) if recent else float("nan"))
            for k, v in sums.items():
                history[k].append(v / count)
            if config.eval_every and env_steps >= next_eval:
                while next_eval <= env_steps:
                    next_eval += config.eval_every
                eval_start = time.perf_counter()
                score = float(np.mean(evaluate(agent, factory, config.eval_episodes, seed=EVAL_SEED + seed)))
                eval_seconds += time.perf_counter() - eval_start
                history["eval_steps"].append(env_steps)
                history["eval_returns"].append(score)
                if progress:
                    updates.set_postfix(eval_return=f"{score:.0f}")
                if config.target_return is not None and score >= config.target_return:
                    history["solved_at"] = env_steps
                    break
    finally:
        envs.close()
    history["seconds"] = time.perf_counter() - start
    history["eval_seconds"] = eval_seconds
    history["config"] = asdict(config)
    return agent, history


def evaluate(agent: Agent, make_env: Callable[[], gym.Env] | str, episodes: int = 10, seed: int = 0,
             greedy: bool = True) -> list[float]:
    """The undiscounted return of each of ``episodes`` episodes (env ``i`` reset with ``seed + i``), run side by side.

    Greedy (the most probable action) by default; ``greedy=False`` samples with a generator seeded by ``seed``.
    Episodes run until terminated or truncated (CartPole-v1: at most 500 steps).
    """
    if not isinstance(agent, Agent):
        raise ValueError(f"agent must be an aiterms.ppo.Agent, got {type(agent).__name__}")
    generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def policy(obs: np.ndarray) -> np.ndarray:
        logits = agent.actor(torch.as_tensor(obs, dtype=torch.float32))
        if greedy:
            return logits.argmax(-1).numpy()
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0].numpy()

    return run_episodes(policy, make_env, episodes, seed)


def run_episodes(policy: Callable[[np.ndarray], np.ndarray], make_env: Callable[[], gym.Env] | str,
                 episodes: int = 10, seed: int = 0) -> list[float]:
    """Returns of ``episodes`` episodes of any policy ``obs (B, obs_dim) -> actions (B,)``; env ``i`` reset with
    ``seed + i``. The episodes run side by side, so the policy sees one batch per time step (the benchmark uses this
    to evaluate Stable-Baselines3's agent exactly like ours)."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    factory = make_env_fn(make_env)
    envs = [factory() for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        returns = np.zeros(episodes)
        live = np.ones(episodes, dtype=bool)
        while live.any():
            idx = np.flatnonzero(live)
            actions = np.asarray(policy(obs[idx]))
            for j, i in enumerate(idx):
                o, r, term, trunc, _ = envs[i].step(int(actions[j]))
                returns[i] += float(r)
                obs[i] = o
                if term or trunc:
                    live[i] = False
    finally:
        for env in envs:
            env.close()
    return [float(r) for r in returns]


def steps_to_solve(history: dict) -> int | None:
    """The env steps at which the greedy evaluation first reached ``target_return`` (None if it never did)."""
    return history.get("solved_at")
