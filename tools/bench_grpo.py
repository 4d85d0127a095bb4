"""Chapter 7's measurements: GRPO on the arithmetic model for 3 minutes, and PPO vs GRPO storage and speed.

    .venv/bin/python tools/bench_grpo.py [--checkpoint checkpoints/sft-cot.pt] [--minutes 3] [--only memory|train|lr|defaults]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.

1. **Training**: GRPO from the step-by-step SFT model on problems with ``hard_digits`` (4) digits, stopped after
   ``minutes`` of wall-clock time (evaluation included), in two data-parallel processes of one thread each (one per
   core of a 2-core machine), with Dr. GRPO's settings (``RUN``); greedy pass@1 on the first 200 of the pipeline's
   1000 held-out hard problems (seed + 2000: ``aiterms.checkpoints.held_out``) before and after.
2. **PPO vs GRPO**: each algorithm runs a few steps on the same model and the same number of responses per step
   (128: GRPO 16 prompts x 8, PPO 128 prompts x 1) in a fresh process. Reported: parameters held (trained and
   frozen), optimizer state (AdamW's two moments, counted exactly), peak memory (the process's peak resident memory
   above what it used with only the policy loaded: reference, critic, optimizer state, activations) and seconds per
   step.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def _problems(digits: int, seed: int = 0):
    from aiterms import arithmetic, supervised_data
    held_out = arithmetic.sample_problems(200, digits, seed=seed + 2000, ops=("+", "-"))
    keys = {supervised_data.normalise_key(p) for p in held_out}
    pool = [p for p in arithmetic.sample_problems(4000, digits, seed=seed + 4000, ops=("+", "-"))
            if supervised_data.normalise_key(p) not in keys]
    return pool, held_out


#: the 3-minute run's settings (Dr. GRPO: no std scaling, a constant normaliser, no KL; a larger learning rate than
#: GRPOConfig's default), the same as the pipeline's RL stage (aiterms.pipeline.PipelineConfig.rl)
RUN = dict(loss_type="dr_grpo", scale_std=False, beta=0.0, lr=2e-4, decay=True)
EVAL_EVERY = 50   # steps between evaluations on the held-out set (they count against the time too)


def train_row(checkpoint: str, minutes: float = 3.0, processes: int = 2, **settings) -> dict:
    """GRPO for ``minutes`` of wall-clock time (evaluations included) in ``processes`` data-parallel processes of
    one thread each (:func:`aiterms.grpo.train_parallel`): one per core of a 2-core machine."""
    from aiterms import grpo
    from aiterms.transformer import GPT
    policy = GPT.load(checkpoint)
    pool, held_out = _problems(4)
    settings = {**RUN, **settings}
    config = grpo.GRPOConfig(steps=100_000, time_limit=60 * minutes, eval_every=EVAL_EVERY, **settings)
    start = time.perf_counter()
    _, history = grpo.train_parallel(policy, pool, config, processes, eval_problems=held_out)
    seconds = time.perf_counter() - start
    before, after = history["eval_pass@1"][0], history["eval_pass@1"][-1]
    what = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items())
    return {"what": f"GRPO {minutes:g} min, {processes} processes ({what}); greedy pass@1, 200 held-out 4-digit",
            "seconds": seconds, "steps": str(len(history["step"])), "pass@1 before": f"{before:.1%}",
            "pass@1 after": f"{after:.1%}", "gain (points)": f"{100 * (after - before):+.1f}",
            "best": f"{max(history['eval_pass@1']):.1%}"}


def _one(algorithm: str, checkpoint: str, steps: int) -> dict:
    """Runs in a fresh process: a few steps of one algorithm, with its storage counted."""
    import torch

    from aiterms import grpo, ppo_lm
    from aiterms.transformer import GPT
    torch.set_num_threads(1)
    policy = GPT.load(checkpoint)
    pool, _ = _problems(4)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    captured = {}
    real_adamw = torch.optim.AdamW

    class CountingAdamW(real_adamw):  # remembers the optimizers the training loop builds
        def __init__(self, params, **kw):
            super().__init__(params, **kw)
            captured.setdefault("optimizers", []).append(self)

    torch.optim.AdamW = CountingAdamW
    reference = GPT.load(checkpoint)
    critic = None
    try:
        start = time.perf_counter()
        if algorithm == "grpo":
            config = grpo.GRPOConfig(steps=steps, prompts_per_step=16, group_size=8, eval_every=10_000)
            grpo.train(policy, pool, config, reference=reference)
        else:
            critic = ppo_lm.Critic(policy)
            config = ppo_lm.PPOLMConfig(steps=steps, prompts_per_step=128, samples_per_prompt=1, eval_every=10_000)
            ppo_lm.train(policy, pool, config, reference=reference, critic=critic)
        seconds = time.perf_counter() - start
    finally:
        torch.optim.AdamW = real_adamw
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trained = policy.num_parameters() + (sum(p.numel() for p in critic.parameters()) if critic else 0)
    state = sum(t.numel() * t.element_size() for opt in captured["optimizers"] for s in opt.state.values()
                for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    return {"algorithm": algorithm, "trained_parameters": trained, "frozen_parameters": reference.num_parameters(),
            "optimizer_state_bytes": state, "peak_extra_kib": peak - base, "seconds_per_step": seconds / steps}


def memory_rows(checkpoint: str, steps: int = 4) -> list[dict]:
    rows = []
    for algorithm in ("grpo", "ppo"):
        out = subprocess.run([sys.executable, __file__, "--one", algorithm, "--checkpoint", checkpoint,
                              "--steps", str(steps)], capture_output=True, text=True, check=True,
                             env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
        m = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({"what": f"{'GRPO (group of 8, no critic)' if algorithm == 'grpo' else 'PPO (critic)'}: "
                             f"one step, 128 responses", "seconds": m["seconds_per_step"],
                     "trained parameters": f"{m['trained_parameters']:,}",
                     "frozen parameters": f"{m['frozen_parameters']:,}",
                     "optimizer state": f"{m['optimizer_state_bytes'] / 2**20:.2f} MiB",
                     "peak memory above the policy": f"{m['peak_extra_kib'] / 1024:.0f} MiB"})
    return rows


def rows(checkpoint: str | None = None, minutes: float = 3.0, only: str | None = None) -> list[dict]:
    checkpoint = checkpoint or str(ROOT / "checkpoints" / "sft-cot.pt")
    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"{checkpoint} is missing: run `make models` first")
    out = []
    if only in (None, "memory"):
        out += memory_rows(checkpoint)
    if only in (None, "train"):
        out.append(train_row(checkpoint, minutes))
    if only == "lr":  # learning rates around the run's
        out += [train_row(checkpoint, minutes, lr=lr) for lr in (1e-4, 2e-4, 4e-4)]
    if only == "defaults":  # the pipeline's settings (GRPOConfig defaults: DeepSeekMath's loss, beta 0.04) instead
        from aiterms.grpo import GRPOConfig
        out.append(train_row(checkpoint, minutes, **{k: getattr(GRPOConfig(), k) for k in RUN}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--only", choices=["memory", "train", "lr", "defaults"], default=None)
    parser.add_argument("--one", choices=["grpo", "ppo"], help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.checkpoint, args.steps)))
        return
    table = rows(args.checkpoint, args.minutes, args.only)
    keys = list(dict.fromkeys(k for r in table for k in r))
    print(" | ".join(keys))
    for r in table:
        print(" | ".join(f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
