"""Data-parallel REINFORCE across processes with ``torch.distributed``: the same script on a laptop or a cluster.

Launch it with ``torchrun``::

    torchrun --standalone --nproc_per_node 2 -m aiterms.distributed --updates 50 --out runs/dp2

``torchrun`` starts ``nproc_per_node`` copies of this script and gives each its ``RANK``, ``WORLD_SIZE`` and the
address of a rendezvous (``MASTER_ADDR``/``MASTER_PORT``, or ``--rdzv-endpoint``). Every rank:

1. joins the process group (``gloo`` on CPUs; ``nccl`` between GPUs);
2. starts from the same weights (seeded identically, and broadcast from rank 0 to be sure);
3. collects its own rollouts, from envs seeded by its rank, so the ranks see different experience;
4. after ``backward()``, all-reduces the gradients: each rank ends up with the *mean* gradient of all ranks, which is
   the gradient of the whole global batch (``world_size * num_envs * rollout_steps`` env steps);
5. takes the same Adam step from the same state with the same gradient, so the weights stay identical everywhere.

This is data parallelism, what ``torch.nn.parallel.DistributedDataParallel`` does (DDP also splits the gradients into
buckets and overlaps their all-reduce with the backward pass). What travels between the processes per update is one
vector of gradients (a few hundred floats here, billions for a large model), not the experience itself.

On many machines the command is the same, per machine: ``torchrun --nnodes 4 --nproc_per_node 8 --node_rank i
--rdzv-backend c10d --rdzv-endpoint host0:29500 -m aiterms.distributed ...``. Without ``torchrun`` (no ``RANK`` in the
environment) the script runs as a single process. Rank 0 writes ``results.json`` into ``--out``; with
``--save-params`` every rank also writes its final weights (``params-rank<r>.pt``). Throughput is reported twice:
over the whole run, and from the median time of an update (steadier on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aiterms.reinforce import ReinforceConfig, train


def average_gradients(model: nn.Module) -> None:
    """Replace every gradient by its mean over all ranks: one ``all_reduce`` of all gradients flattened into one
    vector (few large messages are faster than many small ones). ``g <- (1 / W) * sum_r g_r``."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(model: nn.Module) -> None:
    """Copy rank 0's weights to every rank (they are equal already when every rank seeds alike; this makes sure)."""
    for p in model.parameters():
        dist.broadcast(p.data, src=0)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def parse_args(argv: list[str] | None = None) -> tuple[ReinforceConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in fields(ReinforceConfig):
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if f.type in (bool, "bool") else type(f.default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    parser.add_argument("--out", type=Path, default=Path("runs/distributed"), help="folder for results.json")
    parser.add_argument("--save-params", action="store_true", help="every rank saves its final weights")
    args = parser.parse_args(argv)
    config = ReinforceConfig(**{f.name: getattr(args, f.name) for f in fields(ReinforceConfig)})
    return config, args


def main(argv: list[str] | None = None) -> dict | None:
    config, args = parse_args(argv)
    torch.set_num_threads(1)  # one core per process: the processes are the parallelism
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group(backend="gloo")  # "nccl" for GPUs; reads RANK, WORLD_SIZE, MASTER_ADDR/PORT
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        rank, world_size = 0, 1
    try:
        out = train(config, rank=rank, world_size=world_size,
                    average_gradients=average_gradients if distributed else None,
                    setup=broadcast_parameters if distributed else None)
        params = flat_parameters(out["policy"])
        seconds = torch.tensor([out["seconds"], out["median_update_seconds"]], dtype=torch.float64)
        returns = out["episode_returns"][-20:]
        if distributed:
            everyone = [torch.zeros_like(params) for _ in range(world_size)]
            dist.all_gather(everyone, params)
            dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the slowest rank decides (total and median update)
            gathered: list = [None] * world_size
            dist.all_gather_object(gathered, returns)
            returns = [r for rank_returns in gathered for r in rank_returns]
        else:
            everyone = [params]
        if args.save_params:
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(out["policy"].state_dict(), args.out / f"params-rank{rank}.pt")
        if rank != 0:
            return None
        total_steps = config.updates * config.num_envs * config.rollout_steps * world_size
        results = {"world_size": world_size, "config": out["config"], "seconds": float(seconds[0]),
                   "env_steps": total_steps, "env_steps_per_second": total_steps / float(seconds[0]),
                   "steps_per_update": out["steps_per_update"], "median_update_seconds": float(seconds[1]),
                   "median_env_steps_per_second": out["steps_per_update"] / float(seconds[1]),
                   "max_parameter_difference": float(max((p - everyone[0]).abs().max() for p in everyone)),
                   "final_mean_return": float(np.mean(returns)) if returns else float("nan"),
                   "history": out["history"]}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
        return results
    finally:
        if distributed:
            dist.destroy_process_group()


def launch(nproc: int, out: Path | str | None = None, timeout: float = 300, **overrides) -> dict:
    """Run this script with ``torchrun --standalone --nproc_per_node nproc`` in a subprocess (a free local port for the
    rendezvous) and return rank 0's results. ``overrides``: :class:`ReinforceConfig` fields, and
    ``save_params=True``."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    names = {f.name for f in fields(ReinforceConfig)} | {"save_params"}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; expected ReinforceConfig fields or save_params")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "aiterms.distributed", "--out", str(folder)]
        for key, value in overrides.items():
            if key == "save_params":
                cmd += ["--save-params"] if value else []
            else:
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"torchrun failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads((folder / "results.json").read_text())


if __name__ == "__main__":
    results = main()
    if results is not None:
        print(f"world size {results['world_size']}: {results['env_steps']} env steps in {results['seconds']:.1f} s "
              f"= {results['env_steps_per_second']:.0f} steps/s; mean return of the last episodes "
              f"{results['final_mean_return']:.1f}; max parameter difference across ranks "
              f"{results['max_parameter_difference']:.3g}")
