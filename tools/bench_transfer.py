"""Benchmark of chapter 2 (AGI and narrow AI): the transfer experiment of the demo, for several seeds.

For each seed: train one PPO policy per task (CartPole, Acrobot, the hole-free grid world, with the demo's budgets),
evaluate every policy in every task and a random policy, and report the time, each policy's own return against the
random one, the mean generalisation gap and the largest transfer off the diagonal. It shows how much the demo's
single-seed matrix depends on the seed. Run: `.venv/bin/python tools/bench_transfer.py [seeds...]` (default 0 1 2).
"""
from __future__ import annotations

import sys
import time

import gymnasium as gym
import numpy as np
import torch

from aiterms.gridworld import GridWorld
from aiterms.ppo import PPOConfig, train
from aiterms.transfer import RandomPolicy, cross_returns, generalisation_gap, make_shared, transfer_matrix

TASKS = {
    "CartPole": lambda: gym.make("CartPole-v1"),
    "Acrobot": lambda: gym.make("Acrobot-v1"),
    "GridWorld": lambda: GridWorld(holes=(), step_reward=-0.05),
}
STEPS = {"CartPole": 12_000, "Acrobot": 16_000, "GridWorld": 8_000}  # as in book/02-agi-narrow-ai.ipynb
EPISODES = 10


def experiment(seed: int) -> dict:
    names = list(TASKS)
    makers = make_shared(list(TASKS.values()))
    envs = [make() for make in makers]
    start = time.perf_counter()
    agents = [train(make, PPOConfig(total_steps=STEPS[name], num_envs=16, update_epochs=10), seed=seed)[0]
              for name, make in zip(names, makers)]
    trained = time.perf_counter() - start
    returns = cross_returns([a.act for a in agents], envs, episodes=EPISODES, seed=1000)
    rand = cross_returns([RandomPolicy(envs[0].action_space.n, seed=seed)], envs, episodes=20, seed=1000)[0]
    T = transfer_matrix(returns, rand)
    off = np.where(np.eye(len(names), dtype=bool) | np.isnan(T), -np.inf, T)
    i, j = np.unravel_index(np.argmax(off), off.shape)
    return {"what": f"ch02 transfer experiment, seed {seed}", "seconds": time.perf_counter() - start,
            "training s": f"{trained:.1f}",
            "own vs random": ", ".join(f"{n} {returns[i, i]:.1f}/{rand[i]:.1f}" for i, n in enumerate(names)),
            "mean gap": f"{np.nanmean(generalisation_gap(T)):.2f}",
            "max off-diagonal": f"{off[i, j]:.2f} ({names[i]} policy in {names[j]})",
            "nan columns": ", ".join(n for k, n in enumerate(names) if np.isnan(T[0, k])) or "none"}


def rows(seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict]:
    torch.set_num_threads(1)
    return [experiment(seed) for seed in seeds]


if __name__ == "__main__":
    seeds = tuple(int(s) for s in sys.argv[1:]) or (0, 1, 2)
    table = rows(seeds)
    keys = list(table[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in table:
        print("| " + " | ".join(f"{row[k]:.1f}" if k == "seconds" else str(row[k]) for k in keys) + " |")
