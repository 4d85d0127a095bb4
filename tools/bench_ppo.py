"""PPO on CartPole-v1: aiterms.ppo against Stable-Baselines3's PPO, same hyperparameters, same evaluation.

For each seed and each library: train with the same hyperparameters (aiterms.ppo.PPOConfig's defaults: 8 envs x 32
steps, 20 epochs of one 256-transition minibatch, gamma 0.98, GAE lambda 0.8, learning rate 1e-3 annealed linearly,
clip 0.2, no entropy bonus, no value clipping, gradient norm 0.5), for at most 50,000 environment steps.
After every 2,048 environment steps (8 updates) the agent plays 10 greedy evaluation episodes (the same episode
seeds, the same evaluation code: aiterms.ppo.run_episodes); steps-to-solve = the env steps at which that mean return
first reaches 475 (CartPole-v1's "solved"), and training stops there.

Columns: ``seconds`` is the training wall-clock up to the solve (or to 50k steps), evaluation time excluded
(``seconds_per_10k_steps``: the same per 10,000 env steps, to compare speed apart from sample efficiency);
``steps_to_solve`` ("-" if never); ``eval_returns`` the evaluation curve. One torch thread, CPU.

Run alone: ``.venv/bin/python tools/bench_ppo.py [--seeds 0 1 2]``; ``make bench`` includes its rows.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aiterms import ppo  # noqa: E402

ENV_ID = "CartPole-v1"
TOTAL_STEPS = 50_000
EVAL_EVERY = 2_048
TARGET = 475.0
SEEDS = (0, 1, 2)


def ours(seed: int) -> dict:
    config = ppo.PPOConfig(total_steps=TOTAL_STEPS, eval_every=EVAL_EVERY, eval_episodes=10, target_return=TARGET)
    _, history = ppo.train(ENV_ID, config, seed=seed)
    return {"solved_at": history["solved_at"], "seconds": history["seconds"] - history["eval_seconds"],
            "eval_returns": history["eval_returns"]}


def sb3(seed: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    c = ppo.PPOConfig()
    env = make_vec_env(ENV_ID, n_envs=c.num_envs, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=c.num_steps, batch_size=c.batch_size // c.num_minibatches,
                n_epochs=c.update_epochs, gamma=c.gamma, gae_lambda=c.gae_lambda, clip_range=c.clip_eps,
                ent_coef=c.ent_coef, vf_coef=c.vf_coef, max_grad_norm=c.max_grad_norm,
                learning_rate=lambda remaining: c.learning_rate * remaining, seed=seed, device="cpu", verbose=0)

    def greedy(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    class Evaluate(BaseCallback):
        """Evaluate after every EVAL_EVERY env steps of completed updates (at the start of the next rollout)."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval, self.eval_seconds, self.returns, self.solved_at = EVAL_EVERY, 0.0, [], None

        def check(self) -> None:
            if self.solved_at is None and self.num_timesteps >= self.next_eval:
                while self.next_eval <= self.num_timesteps:
                    self.next_eval += EVAL_EVERY
                start = time.perf_counter()
                score = float(np.mean(ppo.run_episodes(greedy, ENV_ID, 10, seed=ppo.EVAL_SEED + seed)))
                self.eval_seconds += time.perf_counter() - start
                self.returns.append(score)
                if score >= TARGET:
                    self.solved_at = self.num_timesteps

        def _on_rollout_start(self) -> None:
            self.check()

        def _on_step(self) -> bool:
            return self.solved_at is None

    callback = Evaluate()
    start = time.perf_counter()
    model.learn(total_timesteps=TOTAL_STEPS, callback=callback)
    callback.check()  # after the last update
    seconds = time.perf_counter() - start - callback.eval_seconds
    env.close()
    return {"solved_at": callback.solved_at, "seconds": seconds, "eval_returns": callback.returns}


def rows(seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch's one-time optimizer imports up front
    out = []
    for seed in seeds:
        for name, run in (("aiterms", ours), ("stable-baselines3", sb3)):
            r = run(seed)
            trained = r["solved_at"] or TOTAL_STEPS
            out.append({"what": f"PPO {ENV_ID} {name} seed {seed}", "seconds": r["seconds"],
                        "seconds_per_10k_steps": f"{r['seconds'] / trained * 10_000:.2f}",
                        "steps_to_solve": "-" if r["solved_at"] is None else str(r["solved_at"]),
                        "solved_within_50k": str(r["solved_at"] is not None),
                        "eval_returns": " ".join(f"{x:.0f}" for x in r["eval_returns"])})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    table = rows(tuple(args.seeds))
    print("| what | seconds | s per 10k steps | steps to solve | solved within 50k | greedy eval every 2048 steps |")
    print("|---|---:|---:|---:|---|---|")
    for r in table:
        print(f"| {r['what']} | {r['seconds']:.1f} | {r['seconds_per_10k_steps']} | {r['steps_to_solve']} | "
              f"{r['solved_within_50k']} | {r['eval_returns']} |")
    for name in ("aiterms", "stable-baselines3"):
        mine = [r for r in table if f" {name} " in r["what"]]
        solved = [int(r["steps_to_solve"]) for r in mine if r["steps_to_solve"] != "-"]
        mean_steps = np.mean(solved) if solved else float("nan")
        print(f"{name}: solved {len(solved)}/{len(mine)} seeds, mean steps to solve {mean_steps:.0f}, "
              f"mean seconds {np.mean([r['seconds'] for r in mine]):.1f}")


if __name__ == "__main__":
    main()
