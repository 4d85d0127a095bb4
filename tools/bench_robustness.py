"""Robustness of the training pipeline: the metrics the book relies on, over seeds and CPU kernels.

    .venv/bin/python tools/bench_robustness.py [--seeds 0 1 2] [--kernels unset avx2] [--reuse] [--out DIR]

Training is chaotic in the CPU's floating-point kernels, so one run proves little. This runs ``python -m
aiterms.pipeline --seed S`` for every seed and every value of ``ATEN_CPU_CAPABILITY`` ("unset" leaves PyTorch's
choice: AVX-512 where the CPU has it, else AVX2; "avx2" forces AVX2; "default" uses no vector kernels), one after
another (each run uses both cores), into ``DIR/<kernel>-seed<S>`` (default ``_build/robustness``), and prints one
row per metric of :data:`aiterms.pipeline.BANDS` with its value in every run, the min and max, the band the book
states, and whether all runs (and the released checkpoints) are inside it. ``--reuse`` keeps runs whose
``metrics.json`` already exists with the current configuration. ``rows()`` is the ``make bench`` entry: seeds 0-2
under two kernels that differ on this CPU (:func:`two_kernels`: "unset" and "avx2" on a CPU with AVX-512, where
PyTorch picks AVX-512 by itself; "unset" and "default" elsewhere, since there "unset" is AVX2): six pipeline runs,
about half an hour.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def run_pipeline(seed: int, kernel: str, out: Path, reuse: bool) -> tuple[dict, float]:
    """One pipeline run in a fresh process with ``ATEN_CPU_CAPABILITY=kernel`` (or unset); its metrics and seconds."""
    from aiterms.pipeline import PipelineConfig
    target = out / f"{kernel}-seed{seed}"
    canonical = PipelineConfig(seed=seed, out=str(target)).to_dict()
    metrics_file = target / "metrics.json"
    if reuse and metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        if metrics["config"] == canonical:
            return metrics, float("nan")
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if kernel != "unset":
        env["ATEN_CPU_CAPABILITY"] = kernel
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aiterms.pipeline", "--seed", str(seed), "--out", str(target)], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(metrics_file.read_text()), time.perf_counter() - start


def table(runs: dict[str, dict]) -> tuple[list[str], list[dict]]:
    """Text lines of the robustness table and one row per band: ``runs`` maps a run's name to its metrics."""
    from aiterms import checkpoints
    from aiterms.pipeline import BANDS, band_text
    try:
        released = checkpoints.metrics()
    except FileNotFoundError:      # while the release is being made
        released = None
    names = list(runs)
    lines = [f"{'metric':<44}" + "".join(f"{n:>12}" for n in names) + f"{'min':>8}{'max':>8}{'released':>10}"
             f"  {'band':<18} ok"]
    rows = []
    for band in BANDS:
        values = [band.value(runs[n]) for n in names]
        shipped = None if released is None else band.value(released)
        ok = all(band.holds(v) for v in values) and (shipped is None or band.holds(shipped))
        lines.append(f"{band.label:<44}" + "".join(f"{band.show(v):>12}" for v in values)
                     + f"{band.show(min(values)):>8}{band.show(max(values)):>8}"
                     f"{'-' if shipped is None else band.show(shipped):>10}  {band_text(band):<18} {'yes' if ok else 'NO'}")
        rows.append({"what": f"robustness: {band.label}", "seconds": 0.0, "band": band_text(band),
                     "min": band.show(min(values)), "max": band.show(max(values)),
                     "released": "-" if shipped is None else band.show(shipped), "all_inside": ok,
                     **{n: band.show(v) for n, v in zip(names, values)}})
    return lines, rows


def two_kernels() -> tuple[str, str]:
    """Two settings of ``ATEN_CPU_CAPABILITY`` that give different kernels on this CPU: PyTorch's choice and AVX2 where
    the CPU has AVX-512; PyTorch's choice (AVX2) and no vector kernels ("default") where it has not."""
    import torch
    return ("unset", "avx2") if torch.backends.cpu.get_cpu_capability() == "AVX512" else ("unset", "default")


def rows(seeds=(0, 1, 2), kernels: tuple[str, ...] | None = None, out: Path = ROOT / "_build" / "robustness",
         reuse: bool = True) -> list[dict]:
    kernels = two_kernels() if kernels is None else kernels
    runs, timing = {}, []
    for kernel in kernels:
        for seed in seeds:
            print(f"pipeline seed {seed}, ATEN_CPU_CAPABILITY={kernel} ...", flush=True)
            metrics, seconds = run_pipeline(seed, kernel, out, reuse)
            name = f"{kernel}/s{seed}"
            runs[name] = metrics
            timing.append({"what": f"robustness: pipeline {name} ({metrics['machine']['cpu_capability']})",
                           "seconds": seconds, "wall_seconds_recorded": metrics["wall_seconds"]})
    lines, band_rows = table(runs)
    print("\n".join(lines))
    return timing + band_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--kernels", nargs="+", default=None,
                        help="values of ATEN_CPU_CAPABILITY ('unset': PyTorch's choice; default: two that differ on "
                             "this CPU, unset and avx2 with AVX-512, else unset and default)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "robustness"))
    parser.add_argument("--reuse", action="store_true", help="keep runs already made with the current config")
    args = parser.parse_args()
    result = rows(args.seeds, tuple(args.kernels) if args.kernels else None, Path(args.out), args.reuse)
    (Path(args.out) / "robustness.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
