"""REINFORCE with a baseline on many environments at once (Williams 1992; Sutton & Barto 2018, section 13.4).

The policy gradient theorem says that the gradient of the expected return is

    grad J = E[ sum_t (G_t - b(s_t)) * grad log pi(a_t | s_t) ]

where ``G_t = r_t + gamma * r_{t+1} + gamma^2 * r_{t+2} + ...`` is the discounted return from step t to the end of the
episode and ``b(s_t)`` any baseline that does not depend on the action (here a learned value function). Subtracting
the baseline leaves the gradient unbiased and makes it much less noisy.

Rollouts come from a ``gymnasium`` vector env of ``N`` copies stepped together (``gymnasium.make_vec``, autoreset in
the same step), so every tensor of a rollout has shape ``(T, N)``: T steps of N envs. A rollout cuts episodes off at
the end; the unfinished rest of each is estimated by the baseline (see :func:`rollout_returns`).

* :func:`discounted_returns`: ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``, shapes ``(T,)`` or ``(T, N)``;
* :func:`reinforce_loss`: ``-mean((G - b).detach() * logp)``, the surrogate whose gradient is the estimate above;
* :func:`train`: the whole loop (collect, returns, loss, Adam step), with a hook for averaging gradients across
  processes (``aiterms.distributed``);
* :func:`rollout_costs`: where a rollout's CPU time goes (policy, environments, the rest) for N envs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ReinforceConfig:
    """Hyperparameters of :func:`train` (the defaults learn CartPole-v1 in a few seconds on one core)."""

    env_id: str = "CartPole-v1"
    num_envs: int = 8            # N: environments stepped together in one process
    rollout_steps: int = 32      # T: steps per env per update
    updates: int = 150
    gamma: float = 0.99
    lr: float = 5e-3
    hidden: int = 32
    value_coef: float = 0.5      # weight of the baseline's squared error
    normalize: bool = True       # scale the advantages to mean 0, std 1 per batch (a common variance reduction)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_envs", "rollout_steps", "updates", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


# ------------------------------------------------------------------------------------------------ the math
def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted returns with episode ends: ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``, ``G_T = 0``.

    ``rewards, dones: (T,)`` for one env or ``(T, N)`` for N envs side by side (time first). ``done_t`` is 1 (or True)
    when the episode ended with step t, after reward ``r_t``: the return does not flow back across it. Returns a float
    tensor of the shape of ``rewards``. Sutton & Barto 2018, equation 3.9.
    """
    rewards = torch.as_tensor(rewards)
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    dones = torch.as_tensor(dones)
    if rewards.dim() not in (1, 2):
        raise ValueError(f"rewards must have shape (T,) or (T, N), got {tuple(rewards.shape)}")
    if dones.shape != rewards.shape:
        raise ValueError(f"dones must have the shape of rewards {tuple(rewards.shape)}, got {tuple(dones.shape)}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    keep = 1.0 - dones.to(rewards.dtype)
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0]) if len(rewards) else None
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * keep[t] * running
        returns[t] = running
    return returns


def rollout_returns(rewards: torch.Tensor, dones: torch.Tensor, last_values: torch.Tensor,
                    gamma: float) -> torch.Tensor:
    """Returns of a cut-off rollout: :func:`discounted_returns` with ``last_values: (N,)``, the baseline's estimate of
    the return after the last step, appended as one more reward that ends every episode. ``rewards, dones: (T, N)``.
    """
    if last_values.shape != rewards.shape[1:]:
        raise ValueError(f"last_values must have shape {tuple(rewards.shape[1:])}, got {tuple(last_values.shape)}")
    rewards = torch.cat([rewards, last_values[None].to(rewards.dtype)])
    dones = torch.cat([dones.to(rewards.dtype), torch.ones_like(last_values, dtype=rewards.dtype)[None]])
    return discounted_returns(rewards, dones, gamma)[:-1]


def reinforce_loss(logp: torch.Tensor, returns: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
    """The REINFORCE surrogate loss ``-mean_{t,n}((G_{t,n} - b_{t,n}) * log pi(a_{t,n} | s_{t,n}))``.

    ``logp``: log-probabilities of the actions taken, any shape, e.g. ``(T, N)``; ``returns`` and ``baseline`` (optional)
    of the same shape. The advantage ``G - b`` is a constant weight (detached): no gradient reaches the returns or the
    baseline through this loss (the baseline learns from its own squared error). Minimising it ascends the policy
    gradient (Williams 1992; Sutton & Barto 2018, equation 13.11). Returns a scalar tensor.
    """
    if returns.shape != logp.shape:
        raise ValueError(f"returns must have the shape of logp {tuple(logp.shape)}, got {tuple(returns.shape)}")
    if baseline is not None and baseline.shape != logp.shape:
        raise ValueError(f"baseline must have the shape of logp {tuple(logp.shape)}, got {tuple(baseline.shape)}")
    advantages = returns if baseline is None else returns - baseline
    return -(advantages.detach() * logp).mean()


# ------------------------------------------------------------------------------------------------ the agent
class Policy(nn.Module):
    """A policy ``pi(a | s)`` (logits over discrete actions) and a baseline ``b(s)``, two small MLPs.
    ``obs: (..., obs_dim)`` -> ``logits: (..., n_actions)``, ``values: (...)``."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 32):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(obs), self.critic(obs).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, generator: torch.Generator | None = None, greedy: bool = False) -> torch.Tensor:
        """Sample an action per row of ``obs: (N, obs_dim)`` (or the most likely one): ``(N,)`` long."""
        logits = self.actor(obs)
        if greedy:
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)


def make_envs(env_id: str, num_envs: int, seed: int, vectorization: str = "sync") -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped together, in this process (``vectorization="sync"``,
    ``SyncVectorEnv``) or one subprocess each (``"async"``, ``AsyncVectorEnv``), autoreset in the same step (a ``done``
    step returns the first observation of the next episode), seeded ``seed, seed + 1, ...``."""
    if vectorization not in ("sync", "async"):
        raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization,
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def collect_rollout(envs: gym.vector.VectorEnv, policy: Policy, obs: np.ndarray, steps: int,
                    generator: torch.Generator, episode: dict) -> tuple[dict, np.ndarray]:
    """Run ``steps`` steps of every env with actions sampled from ``policy``.

    Returns ``batch`` with ``obs: (T, N, obs_dim)``, ``actions, rewards, dones: (T, N)``, ``last_obs: (N, obs_dim)``,
    and the observation to continue from. ``episode`` carries the running returns ``"running": (N,)`` across rollouts
    and collects the returns of finished episodes in ``"finished"``.
    """
    n = envs.num_envs
    obs_buf, act_buf, rew_buf, done_buf = [], [], [], []
    for _ in range(steps):
        o = torch.as_tensor(obs, dtype=torch.float32)
        actions = policy.act(o, generator)
        obs, rewards, terminated, truncated, _ = envs.step(actions.numpy())
        done = terminated | truncated
        obs_buf.append(o)
        act_buf.append(actions)
        rew_buf.append(torch.as_tensor(rewards, dtype=torch.float32))
        done_buf.append(torch.as_tensor(done, dtype=torch.float32))
        episode["running"] += rewards
        for i in np.flatnonzero(done):
            episode["finished"].append(float(episode["running"][i]))
            episode["running"][i] = 0.0
    batch = {"obs": torch.stack(obs_buf), "actions": torch.stack(act_buf), "rewards": torch.stack(rew_buf),
             "dones": torch.stack(done_buf), "last_obs": torch.as_tensor(obs, dtype=torch.float32)}
    assert batch["rewards"].shape == (steps, n)
    return batch, obs


def loss_of(policy: Policy, batch: dict, config: ReinforceConfig) -> tuple[torch.Tensor, dict]:
    """Policy loss + ``value_coef`` * baseline loss of one rollout; and some statistics."""
    logits, values = policy(batch["obs"])                                            # (T, N, A), (T, N)
    logp = torch.log_softmax(logits, -1).gather(-1, batch["actions"][..., None]).squeeze(-1)  # (T, N)
    with torch.no_grad():
        last_values = policy(batch["last_obs"])[1]                                   # (N,)
        returns = rollout_returns(batch["rewards"], batch["dones"], last_values, config.gamma)
        advantages = returns - values
        if config.normalize and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = reinforce_loss(logp, advantages)
    value_loss = 0.5 * ((values - returns) ** 2).mean()
    return policy_loss + config.value_coef * value_loss, {"policy_loss": policy_loss.item(),
                                                         "value_loss": value_loss.item()}


def train(config: ReinforceConfig = ReinforceConfig(), *, rank: int = 0, world_size: int = 1,
          average_gradients: Callable[[nn.Module], None] | None = None,
          setup: Callable[[nn.Module], None] | None = None, progress: bool = False) -> dict:
    """Train a :class:`Policy` with REINFORCE and a learned baseline.

    One process runs ``config.num_envs`` envs. With ``world_size`` processes (``aiterms.distributed``), each rank
    seeds its envs and its action sampling with its own seed (``seed + 1000 * rank``) while the network starts from the
    same weights everywhere (seeded by ``seed`` alone), and ``average_gradients(policy)`` makes the gradients equal on
    every rank before each optimizer step, so the ranks stay identical: data parallelism. ``setup(policy)`` runs once
    before training (``aiterms.distributed`` broadcasts rank 0's weights there).

    Returns ``policy``, ``history`` (one dict per update: env steps so far on all ranks, mean return of the episodes
    finished in that update on this rank, its duration ``seconds`` (wall clock) and ``cpu_seconds`` (CPU time of this
    process, which other programs on a busy machine inflate much less), ``collect_cpu_seconds`` (the part spent
    collecting the rollout), losses), ``episode_returns`` (this rank's
    finished episodes), ``seconds``, ``env_steps_per_second`` (all ranks together), ``median_update_seconds`` (robust
    to a busy machine's hiccups), ``median_update_cpu_seconds`` and ``steps_per_update`` (all ranks).
    """
    envs = make_envs(config.env_id, config.num_envs, config.seed + 1000 * rank)
    with torch.random.fork_rng():  # the same initial weights on every rank, without touching the global seed
        torch.manual_seed(config.seed)
        policy = Policy(int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n),
                        config.hidden)
    if setup is not None:
        setup(policy)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed + 1000 * rank)
    obs, _ = envs.reset(seed=config.seed + 1000 * rank)
    episode = {"running": np.zeros(config.num_envs), "finished": []}
    history = []
    steps_per_update = config.num_envs * config.rollout_steps * world_size
    updates = range(config.updates)
    if progress:
        from tqdm.auto import tqdm
        updates = tqdm(updates, desc="REINFORCE", leave=False)
    start = time.perf_counter()
    for update in updates:
        tick, cpu_tick = time.perf_counter(), time.process_time()
        seen = len(episode["finished"])
        batch, obs = collect_rollout(envs, policy, obs, config.rollout_steps, generator, episode)
        collect_cpu = time.process_time() - cpu_tick
        loss, stats = loss_of(policy, batch, config)
        optimizer.zero_grad()
        loss.backward()
        if average_gradients is not None:
            average_gradients(policy)
        optimizer.step()
        new = episode["finished"][seen:]
        history.append({"update": update + 1, "env_steps": (update + 1) * steps_per_update,
                        "mean_return": float(np.mean(new)) if new else float("nan"),
                        "seconds": time.perf_counter() - tick, "cpu_seconds": time.process_time() - cpu_tick,
                        "collect_cpu_seconds": collect_cpu, **stats})
    seconds = time.perf_counter() - start
    envs.close()
    median = float(np.median([h["seconds"] for h in history]))
    return {"policy": policy, "history": history, "episode_returns": episode["finished"], "seconds": seconds,
            "env_steps_per_second": config.updates * steps_per_update / seconds,
            "median_update_seconds": median,
            "median_update_cpu_seconds": float(np.median([h["cpu_seconds"] for h in history])),
            "steps_per_update": steps_per_update, "config": asdict(config)}


def evaluate(policy: Policy, env_id: str = "CartPole-v1", episodes: int = 10, seed: int = 10_000,
             greedy: bool = True) -> list[float]:
    """Returns of ``episodes`` full episodes (one env each, seeds ``seed, seed + 1, ...``), acting greedily or by
    sampling."""
    env = gym.make(env_id)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            a = policy.act(torch.as_tensor(obs, dtype=torch.float32)[None], generator, greedy=greedy)
            obs, r, terminated, truncated, _ = env.step(int(a))
            total += float(r)
            done = terminated or truncated
        out.append(total)
    env.close()
    return out


class _Timed:
    """A stand-in for a policy or a vector env that adds the CPU time spent in one of its methods to ``seconds``."""

    def __init__(self, inner, method: str):
        self.inner, self.method, self.seconds, self.calls = inner, method, 0.0, 0

    def __getattr__(self, name):
        inner = getattr(self.inner, name)
        if name != self.method:
            return inner

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start
                self.calls += 1
        return timed


def rollout_costs(env_id: str = "CartPole-v1", num_envs: int = 8, steps: int = 200, seed: int = 0, hidden: int = 32,
                  vectorization: str = "sync") -> dict:
    """Where the time of a rollout goes: :func:`collect_rollout` of ``steps`` steps of ``num_envs`` envs, timed in CPU
    time of this process (``time.process_time``: time other programs take on a busy machine does not count).

    Returns ``env_steps`` (``num_envs * steps``), ``policy_calls`` (``steps``: one forward pass per step, shared by the
    ``num_envs`` envs), ``seconds`` (CPU seconds in all), ``env_steps_per_second`` (per CPU second), and the CPU
    microseconds per env step spent in ``policy_us`` (the policy's forward pass and sampling), ``env_us``
    (``envs.step``: the environments' own work and the vector env's) and ``other_us`` (the rest: tensors and
    bookkeeping). With ``vectorization="async"`` the subprocesses' own work is not in this process's CPU time.
    """
    envs = make_envs(env_id, num_envs, seed, vectorization)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        policy = Policy(int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n), hidden)
    obs, _ = envs.reset(seed=seed)
    episode = {"running": np.zeros(num_envs), "finished": []}
    generator = torch.Generator().manual_seed(seed)
    timed_policy, timed_envs = _Timed(policy, "act"), _Timed(envs, "step")
    start = time.process_time()
    collect_rollout(timed_envs, timed_policy, obs, steps, generator, episode)
    seconds = time.process_time() - start
    envs.close()
    n = num_envs * steps
    return {"env_steps": n, "policy_calls": timed_policy.calls, "seconds": seconds, "env_steps_per_second": n / seconds,
            "policy_us": 1e6 * timed_policy.seconds / n, "env_us": 1e6 * timed_envs.seconds / n,
            "other_us": 1e6 * (seconds - timed_policy.seconds - timed_envs.seconds) / n}


def measure_throughput(env_id: str = "CartPole-v1", num_envs: int = 8, steps: int = 200, seed: int = 0,
                       hidden: int = 32, vectorization: str = "sync") -> float:
    """Env steps per second of rollouts alone (policy forward pass + vector env step), ``num_envs`` envs, ``steps``
    steps each."""
    envs = make_envs(env_id, num_envs, seed, vectorization)
    policy = Policy(int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n), hidden)
    obs, _ = envs.reset(seed=seed)
    episode = {"running": np.zeros(num_envs), "finished": []}
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    collect_rollout(envs, policy, obs, steps, generator, episode)
    seconds = time.perf_counter() - start
    envs.close()
    return num_envs * steps / seconds
