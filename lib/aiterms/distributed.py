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
over the whole run, and from the median time of an update (steadier on a shared machine); the median CPU time of an
update (``median_update_cpu_seconds``, the largest over the ranks) is the work of one rank, which a busy machine does
not inflate the way it inflates wall-clock time.
"""
from __future__ import annotations

import argparse
import copy
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
    vector (few large messages are faster than many small ones). ``g <- (1 / W) * sum_r g_r``. In one process (no
    initialised group) it returns at once, so a training loop never branches on "parallel or not"."""
    if rank_and_world()[1] == 1:
        return
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
    if rank_and_world()[1] == 1:
        return
    for p in model.parameters():
        dist.broadcast(p.data, src=0)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _data_parallel_worker(rank: int, world: int, init: str, fn, model: nn.Module, args: tuple, kwargs: dict,
                          out: str) -> None:
    torch.set_num_threads(1)                      # one core per process: the processes are the parallelism
    # torch.multiprocessing hands the tensors over in shared memory: without a private copy every rank would
    # update the same weights (each optimizer step applied once per rank)
    model = copy.deepcopy(model)
    args = copy.deepcopy(args)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        broadcast_parameters(model)
        model, result = fn(model, *args, **kwargs)
        torch.save({"state_dict": model.state_dict(), "result": result}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def data_parallel(fn, model: nn.Module, processes: int, *args, **kwargs):
    """Run ``fn(model, *args, **kwargs) -> (model, result)`` in ``processes`` spawned processes on this machine that
    form one ``torch.distributed`` group (gloo, one torch thread each, e.g. one per CPU core), each on its own copy of
    ``model``. ``fn`` is a data-parallel training loop (:func:`aiterms.sft.train`, :func:`aiterms.grpo.train`): it
    splits each batch over the ranks and averages the gradients, so every rank ends with the same weights (checked).
    ``model`` is updated in place with them; returns ``(model, rank 0's result)``. ``fn`` and the arguments must be
    picklable (module-level functions and plain data)."""
    import socket
    import tempfile

    import torch.multiprocessing as mp
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be an integer >= 1, got {processes!r}")
    with socket.socket() as s:                    # a free local port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/result.pt"
        mp.start_processes(_data_parallel_worker, nprocs=processes, start_method="spawn",
                           args=(processes, f"tcp://127.0.0.1:{port}", fn, model, args, kwargs, out))
        results = [torch.load(f"{out}.{r}", weights_only=False) for r in range(processes)]
    first = results[0]["state_dict"]
    for r, other in enumerate(results[1:], start=1):     # data parallelism keeps the ranks' weights identical
        if any(not torch.equal(a, other["state_dict"][k]) for k, a in first.items()):
            raise RuntimeError(f"rank {r} ended with other weights than rank 0")
    model.load_state_dict(first)
    model.eval()
    return model, results[0]["result"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` in an initialised process group, ``(0, 1)`` otherwise (one process)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_sum(values: list[float]) -> list[float]:
    """The sums of ``values`` over all ranks (``values`` itself in one process)."""
    if rank_and_world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


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
        seconds = torch.tensor([out["seconds"], out["median_update_seconds"], out["median_update_cpu_seconds"]],
                               dtype=torch.float64)
        returns = out["episode_returns"][-20:]
        if distributed:
            everyone = [torch.zeros_like(params) for _ in range(world_size)]
            dist.all_gather(everyone, params)
            dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the slowest rank decides (total, median update, CPU)
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
                   "median_update_cpu_seconds": float(seconds[2]),
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
