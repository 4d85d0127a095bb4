"""Chapter 9's measurements: int8/int4 quantization next to torch's dynamic quantization, and DPO before/after.

    .venv/bin/python tools/bench_post_training.py [--checkpoint checkpoints/sft-cot.pt] [--only quant|dpo]

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.

1. **Quantization**: the float32 step-by-step model, ours at int8 and int4 (per-channel symmetric,
   :func:`aiterms.quantization.quantize_model`) and ``torch.ao.quantization.quantize_dynamic`` (qint8, per tensor and
   per channel) on the same layers. Size = bytes of ``torch.save(state_dict)``; speed = milliseconds per single
   request (greedy, one 4-digit problem) and seconds for the whole batch; greedy pass@1 on the pipeline's held-out
   sets (200 four-digit problems, seed + 2000, and 200 three-digit problems). One thread.
2. **DPO**: preference pairs from the verifier (500 four-digit problems x 6 samples; chosen right, rejected wrong),
   then :func:`aiterms.dpo.train_dpo` with several settings; greedy pass@1 on 600 held-out four-digit problems
   before and after (the standard error of one such accuracy is about 1.9 points).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def quant_rows(checkpoint: str) -> list[dict]:
    import torch

    from aiterms import arithmetic, quantization
    from aiterms.evaluation import score, solve
    from aiterms.transformer import GPT
    torch.set_num_threads(1)
    model = GPT.load(checkpoint)
    hard = arithmetic.sample_problems(200, 4, seed=2000, ops=("+", "-"))
    three = arithmetic.sample_problems(200, 3, seed=1003, ops=("+", "-"))
    variants = {"float32": lambda: model, "int8 per-channel (aiterms)": lambda: quantization.quantize_model(model, 8),
                "int4 per-channel (aiterms)": lambda: quantization.quantize_model(model, 4),
                "int8 dynamic per-tensor (torch)": lambda: quantization.dynamic_quantize(model),
                "int8 dynamic per-channel (torch)": lambda: quantization.dynamic_quantize(model, per_channel=True)}
    rows = []
    for name, build in variants.items():
        start = time.perf_counter()
        m = build()
        built = time.perf_counter() - start
        solve(m, hard[:2], "cot")
        start = time.perf_counter()
        for p in hard[:50]:
            solve(m, [p], "cot")
        per_request = 1000 * (time.perf_counter() - start) / 50
        start = time.perf_counter()
        acc4 = score(hard, solve(m, hard, "cot"))["accuracy"]
        batch = time.perf_counter() - start
        acc3 = score(three, solve(m, three, "cot"))["accuracy"]
        rows.append({"what": f"quantization: {name}", "seconds": batch,
                     "size (MB)": f"{quantization.model_size_bytes(m) / 1e6:.3f}",
                     "ms/request": f"{per_request:.1f}", "pass@1 4-digit": f"{acc4:.1%}",
                     "pass@1 3-digit": f"{acc3:.1%}", "build (s)": f"{built:.2f}"})
    return rows


DPO_SETTINGS = [dict(beta=0.5, lr=5e-5, steps=40, sft_weight=1.0), dict(beta=0.1, lr=2e-5, steps=40, sft_weight=0.0),
                dict(beta=0.1, lr=1e-5, steps=40, sft_weight=1.0), dict(beta=0.5, lr=2e-5, steps=40, sft_weight=1.0)]


def dpo_rows(checkpoint: str) -> list[dict]:
    import torch

    from aiterms import arithmetic, dpo, supervised_data
    from aiterms.evaluation import score, solve
    from aiterms.transformer import GPT
    torch.set_num_threads(1)
    model = GPT.load(checkpoint)
    held_out = arithmetic.sample_problems(600, 4, seed=2000, ops=("+", "-"))
    keys = {supervised_data.normalise_key(p) for p in held_out}
    pool = [p for p in arithmetic.sample_problems(500, 4, seed=6000, ops=("+", "-"))
            if supervised_data.normalise_key(p) not in keys]
    start = time.perf_counter()
    pairs = dpo.preference_pairs(model, pool, samples=6, seed=0)
    pair_seconds = time.perf_counter() - start
    before = score(held_out, solve(model, held_out, "cot"))["accuracy"]
    rows = [{"what": f"DPO: {len(pairs)} verifier pairs from {len(pool)} problems x 6 samples", "seconds": pair_seconds,
             "pass@1 before": f"{before:.1%}"}]
    for settings in DPO_SETTINGS:
        start = time.perf_counter()
        tuned, history = dpo.train_dpo(model, pairs, dpo.DPOConfig(**settings))
        seconds = time.perf_counter() - start
        after = score(held_out, solve(tuned, held_out, "cot"))["accuracy"]
        what = ", ".join(f"{k} {v:g}" for k, v in settings.items())
        rows.append({"what": f"DPO ({what}); greedy pass@1, 600 held-out 4-digit", "seconds": seconds,
                     "pass@1 before": f"{before:.1%}", "pass@1 after": f"{after:.1%}",
                     "gain (points)": f"{100 * (after - before):+.1f}", "final loss": f"{history['loss'][-1]:.3f}"})
    return rows


def rows(checkpoint: str = str(ROOT / "checkpoints" / "sft-cot.pt"), only: str | None = None) -> list[dict]:
    out = []
    if only in (None, "quant"):
        out += quant_rows(checkpoint)
    if only in (None, "dpo"):
        out += dpo_rows(checkpoint)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "sft-cot.pt"))
    parser.add_argument("--only", choices=["quant", "dpo"])
    args = parser.parse_args(argv)
    from aiterms.display import markdown_table
    table = rows(args.checkpoint, args.only)
    columns = ["what", "seconds"] + sorted({k for r in table for k in r} - {"what", "seconds"})
    print(markdown_table(columns, [[r.get("what", ""), f"{r['seconds']:.2f}"] + [r.get(c, "") for c in columns[2:]]
                                   for r in table]))


if __name__ == "__main__":
    main()
