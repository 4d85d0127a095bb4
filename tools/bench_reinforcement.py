"""Chapter 1 at scale: rollout throughput, 1 vs 2 processes with torchrun, REINFORCE against Stable-Baselines3's A2C.

Rows:
* rollout throughput (policy forward + env step, CartPole-v1) for N vectorised envs in one process, in-process
  (``SyncVectorEnv``) and one subprocess per env (``AsyncVectorEnv``);
* data-parallel REINFORCE (``aiterms.distributed``) with 1 and 2 processes under ``torchrun``, 8 envs x 32 steps per
  process and update, 100 updates: env steps/s from the median update time and over the whole run, the wall time with
  process start-up, and the largest weight difference between ranks (must be 0);
* REINFORCE with a baseline (``aiterms.reinforce.train``, default config: 150 updates of 8 envs x 32 steps = 38,400
  env steps) against Stable-Baselines3's A2C (its defaults, with the same 8 envs x 32 steps per update and the same
  38,400 steps), 3 seeds each: training seconds and the mean greedy return over 10 episodes (max 500).

One torch thread per process, CPU. On a shared machine the throughput numbers vary from run to run.
Run alone: ``.venv/bin/python tools/bench_reinforcement.py``; ``make bench`` includes its rows.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aiterms.distributed import launch  # noqa: E402
from aiterms.reinforce import ReinforceConfig, evaluate, measure_throughput, train  # noqa: E402

SEEDS = (0, 1, 2)


def throughput_rows() -> list[dict]:
    rows = []
    for mode, sizes in (("sync", (1, 4, 16, 64, 256)), ("async", (2, 4))):
        for n in sizes:
            start = time.perf_counter()
            rate = measure_throughput(num_envs=n, steps=max(40, 4000 // n), vectorization=mode)
            rows.append({"what": f"rollouts, {n} envs ({mode})", "seconds": time.perf_counter() - start,
                         "env_steps_per_s": f"{rate:,.0f}"})
    return rows


def distributed_rows() -> list[dict]:
    rows = []
    for nproc in (1, 2):
        start = time.perf_counter()
        r = launch(nproc, updates=100)
        rows.append({"what": f"torchrun REINFORCE, {nproc} process(es)", "seconds": time.perf_counter() - start,
                     "env_steps_per_s": f"{r['median_env_steps_per_second']:,.0f} (median update), "
                                        f"{r['env_steps_per_second']:,.0f} (whole run)",
                     "result": f"{r['env_steps']} steps in {r['seconds']:.1f} s of training; max weight "
                               f"difference {r['max_parameter_difference']:g}"})
    return rows


def greedy_returns(act, episodes: int = 10, seed: int = 10_000) -> list[float]:
    import gymnasium as gym
    env = gym.make("CartPole-v1")
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, _ = env.step(act(obs))
            total, done = total + float(r), terminated or truncated
        out.append(total)
    return out


def training_rows() -> list[dict]:
    config = ReinforceConfig()
    steps = config.updates * config.num_envs * config.rollout_steps
    ours, theirs = [], []
    for seed in SEEDS:
        out = train(ReinforceConfig(seed=seed))
        ours.append((out["seconds"], float(np.mean(evaluate(out["policy"], episodes=10)))))
        from stable_baselines3 import A2C
        from stable_baselines3.common.env_util import make_vec_env
        env = make_vec_env("CartPole-v1", n_envs=config.num_envs, seed=seed)
        model = A2C("MlpPolicy", env, n_steps=config.rollout_steps, seed=seed, device="cpu", verbose=0)
        start = time.perf_counter()
        model.learn(total_timesteps=steps)
        seconds = time.perf_counter() - start
        theirs.append((seconds, float(np.mean(greedy_returns(lambda o: int(model.predict(o, deterministic=True)[0]))))))
    rows = []
    for name, results in (("aiterms REINFORCE + baseline", ours), ("Stable-Baselines3 A2C", theirs)):
        rows.append({"what": f"{name}, CartPole, {steps} steps, seeds {list(SEEDS)}",
                     "seconds": float(np.mean([s for s, _ in results])),
                     "result": "greedy return " + ", ".join(f"{r:.0f}" for _, r in results)})
    return rows


def rows() -> list[dict]:
    torch.set_num_threads(1)
    return throughput_rows() + distributed_rows() + training_rows()


if __name__ == "__main__":
    table = rows()
    keys = ["what", "seconds"] + sorted({k for r in table for k in r} - {"what", "seconds"})
    print(" | ".join(keys))
    for r in table:
        print(" | ".join(f"{r[k]:.1f}" if k == "seconds" else str(r.get(k, "")) for k in keys))
