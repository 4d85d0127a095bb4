"""Parallel speed-ups at equal work per process, on this machine's cores: what chapters 1 and 15 measure live.

Rows:
* root-parallel MCTS (chapter 15): one search of 3,000 simulations on a connect-four position in one process,
  against two such searches (different seeds) in two processes of a pool started beforehand; simulations per second
  of wall time, best of 3 runs each (the least disturbed), and the CPU cores the two searches used on average;
* data-parallel REINFORCE (chapter 1, ``aiterms.distributed`` under ``torchrun``): 1 and 2 processes with the same
  work per process, at the chapter's size (8 envs x 32 steps per update) and at 4x that work (32 envs): env steps per
  second from the median update (process start-up excluded).

A speed-up near 2x needs two idle cores: run it alone (``.venv/bin/python tools/bench_parallel.py``); ``make bench``
includes its rows. The target is >= 1.6x for both on an idle 2-core machine.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from aiterms.distributed import launch  # noqa: E402
from aiterms.games import ConnectFour  # noqa: E402
from aiterms.mcts import MCTSConfig, root_stats  # noqa: E402

WORKERS = 2


def timed_search(state, config: MCTSConfig, seed: int) -> float:
    start = time.process_time()
    root_stats(state, config, seed)
    return time.process_time() - start


def mcts_row() -> dict:
    position, config = ConnectFour.from_moves([3, 3, 2]), MCTSConfig(simulations=3000)
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=get_context("fork")) as pool:
        list(pool.map(time.sleep, [0.1] * WORKERS))  # start the processes before the clock

        def measure(parallel: bool) -> tuple[float, float, float]:
            start = time.perf_counter()
            if parallel:
                cpu = sum(pool.map(timed_search, [position] * WORKERS, [config] * WORKERS, range(WORKERS)))
                n = WORKERS
            else:
                cpu, n = timed_search(position, config, 1), 1
            wall = time.perf_counter() - start
            return n * config.simulations / wall, cpu, wall

        start = time.perf_counter()
        one = max((measure(False) for _ in range(3)), key=lambda r: r[0])
        two = max((measure(True) for _ in range(3)), key=lambda r: r[0])
    return {"what": f"root-parallel MCTS, connect-four, {config.simulations} simulations per process, 1 vs "
                    f"{WORKERS} processes", "seconds": time.perf_counter() - start,
            "speedup": two[0] / one[0], "sims_per_s": f"{one[0]:,.0f} vs {two[0]:,.0f}",
            "cores_used": two[1] / two[2]}


def reinforce_rows() -> list[dict]:
    rows = []
    for num_envs in (8, 32):
        start = time.perf_counter()
        rate = {n: launch(n, updates=60, num_envs=num_envs)["median_env_steps_per_second"] for n in (1, WORKERS)}
        rows.append({"what": f"data-parallel REINFORCE (torchrun), {num_envs} envs x 32 steps per process, 1 vs "
                             f"{WORKERS} processes", "seconds": time.perf_counter() - start,
                     "speedup": rate[WORKERS] / rate[1],
                     "env_steps_per_s": f"{rate[1]:,.0f} vs {rate[WORKERS]:,.0f} (median update)"})
    return rows


def rows() -> list[dict]:
    return [mcts_row(), *reinforce_rows()]


if __name__ == "__main__":
    print(f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.2f}")
    for r in rows():
        print(r)
