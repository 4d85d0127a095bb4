"""Chapter 13's measurements: KV cache speed-up, batching throughput and latency, static vs continuous batching,
quantized weights; every configuration at measured equal accuracy.

    .venv/bin/python tools/bench_effective_scaling.py

``rows()`` returns one dict per measurement ("what", "seconds", and result columns as strings), for ``make bench``.
One thread (``torch.set_num_threads(1)``), the course's step-by-step model ``checkpoints/sft-cot.pt`` (2 layers,
128 wide, context 96), greedy decoding:

1. **KV cache** at 64 generated tokens after a 12-token prompt (``<bos>1234+5678=<sep>``, no EOS): recomputation
   (a full forward pass over the whole sequence per token) against the cache, medians of 3 runs; for one sequence
   and a batch of 8 (``generate_batch``, ``use_cache`` on and off), and for a larger random model (4 layers, 256
   wide, context 256; a 30-token prompt) where the matrix products, not Python, dominate.
2. **Batching**: 64 mixed requests (1-4 digits, + and -) all waiting at t=0, served in static batches of 1, 8, 32
   (:func:`aiterms.batching.simulate_serving`, the real model on a clock that advances by each pass's measured
   time): generated tokens per second, and the time a request spends in its batch (p50/p95).
3. **Static vs continuous**: 96 mixed requests arriving as a Poisson stream (400 per second), batch size 8; the
   number of forward passes is also reported.
4. **Quantized weights**: greedy pass@1 on the pipeline's 200 held-out 4-digit problems and the time to decode
   them (batches of 32): float32, our int8 and int4 (:mod:`aiterms.quantization`), PyTorch's dynamic int8.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))
CHECKPOINT = ROOT / "checkpoints" / "sft-cot.pt"


def _setup():
    import torch
    torch.set_num_threads(1)
    from aiterms.transformer import GPT
    return GPT.load(CHECKPOINT)


def _prompts(count: int, seed: int) -> list:
    """``count`` problems, a quarter each with 1, 2, 3, 4 digits (+ and -), shuffled."""
    import random

    from aiterms import arithmetic
    problems = [p for d in (1, 2, 3, 4) for p in arithmetic.sample_problems(count // 4, d, seed=seed + d, ops="+-")]
    random.Random(seed).shuffle(problems)  # sizes mixed: short and long answers share the batches
    return problems


def kv_rows() -> list[dict]:
    from aiterms import arithmetic
    from aiterms.kv_cache import TimingConfig, cache_speedup, time_call
    from aiterms.tokenizer import TOKENIZER
    from aiterms.transformer import GPT, GPTConfig, generate_batch
    model = _setup()
    prompt = TOKENIZER.encode_prompt(arithmetic.prompt(arithmetic.Problem(1234, 5678, "+")))
    rows = []
    start = time.perf_counter()
    r = cache_speedup(model, prompt, 64)
    rows.append({"what": f"KV cache, course model, 1 sequence, {len(prompt)}-token prompt + 64 tokens",
                 "seconds": time.perf_counter() - start, "recompute": f"{r['recompute_s'] * 1000:.0f} ms",
                 "cached": f"{r['cached_s'] * 1000:.0f} ms", "speedup": f"{r['speedup']:.1f}x"})
    start = time.perf_counter()
    batch = [prompt] * 8
    assert generate_batch(model, batch, 64, use_cache=False) == generate_batch(model, batch, 64)
    rec = time_call(lambda: generate_batch(model, batch, 64, use_cache=False), TimingConfig())
    cac = time_call(lambda: generate_batch(model, batch, 64), TimingConfig())
    rows.append({"what": "KV cache, course model, batch of 8, 12-token prompts + 64 tokens",
                 "seconds": time.perf_counter() - start, "recompute": f"{rec * 1000:.0f} ms",
                 "cached": f"{cac * 1000:.0f} ms", "speedup": f"{rec / cac:.1f}x"})
    start = time.perf_counter()
    big = GPT.from_seed(GPTConfig(TOKENIZER.vocab_size, 256, n_layer=4, n_head=4, n_embd=256), 0).eval()
    r = cache_speedup(big, list(range(4, 14)) * 3, 64)
    rows.append({"what": f"KV cache, random 4x256 model ({big.num_parameters() / 1e6:.1f}M), 30-token prompt + 64",
                 "seconds": time.perf_counter() - start, "recompute": f"{r['recompute_s'] * 1000:.0f} ms",
                 "cached": f"{r['cached_s'] * 1000:.0f} ms", "speedup": f"{r['speedup']:.1f}x"})
    return rows


def batching_rows() -> list[dict]:
    from aiterms import arithmetic
    from aiterms.batching import Request, ServingConfig, request_stream, simulate_serving
    from aiterms.tokenizer import TOKENIZER
    model = _setup()
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in _prompts(64, 300)]
    rows = []
    for bs in (1, 8, 32):
        requests = [Request(0.0, p, 96 - len(p) + 1) for p in prompts]
        start = time.perf_counter()
        r = simulate_serving(model, requests, ServingConfig(bs, "static"), eos_id=TOKENIZER.eos_id)
        rows.append({"what": f"batching: 64 requests at t=0, static batches of {bs}", "passes": str(r["passes"]),
                     "seconds": time.perf_counter() - start, "tokens/s": f"{r['tokens_per_s']:.0f}",
                     "in-batch p50": f"{r['service_p50'] * 1000:.0f} ms",
                     "in-batch p95": f"{r['service_p95'] * 1000:.0f} ms",
                     "latency p95": f"{r['latency_p95'] * 1000:.0f} ms"})
    stream_prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in _prompts(96, 500)]
    for policy in ("static", "continuous"):
        requests = request_stream(stream_prompts, rate=400.0, max_new_tokens=[96 - len(p) + 1 for p in stream_prompts],
                                  seed=1)
        start = time.perf_counter()
        r = simulate_serving(model, requests, ServingConfig(8, policy), eos_id=TOKENIZER.eos_id)
        rows.append({"what": f"{policy} batching, 96 requests, Poisson 400/s, batch 8",
                     "seconds": time.perf_counter() - start, "tokens/s": f"{r['tokens_per_s']:.0f}",
                     "latency p50": f"{r['latency_p50'] * 1000:.0f} ms",
                     "latency p95": f"{r['latency_p95'] * 1000:.0f} ms",
                     "first token p50": f"{r['first_token_p50'] * 1000:.1f} ms", "passes": str(r["passes"])})
    return rows


def quantization_rows() -> list[dict]:
    from aiterms import arithmetic
    from aiterms.batching import greedy_accuracy
    from aiterms.quantization import dynamic_quantize, model_size_bytes, quantize_model
    model = _setup()
    held_out = arithmetic.sample_problems(200, 4, seed=2000, ops=("+", "-"))
    rows = []
    for name, m in (("float32", model), ("int8 per-channel (aiterms)", quantize_model(model, 8)),
                    ("int4 per-channel (aiterms)", quantize_model(model, 4)),
                    ("int8 dynamic (torch.ao)", dynamic_quantize(model))):
        start = time.perf_counter()
        acc = greedy_accuracy(m, held_out, batch_size=32)
        rows.append({"what": f"weights {name}: pass@1 on 200 held-out 4-digit problems",
                     "seconds": time.perf_counter() - start, "weights": f"{model_size_bytes(m) / 1e6:.2f} MB",
                     "pass@1": f"{acc:.1%}"})
    return rows


def rows() -> list[dict]:
    return kv_rows() + batching_rows() + quantization_rows()


if __name__ == "__main__":
    from aiterms.display import markdown_table
    result = rows()
    columns = ["what", "seconds"] + sorted({k for r in result for k in r} - {"what", "seconds"})
    print(markdown_table(columns, [[r.get(c, "") if c != "seconds" else f"{r[c]:.2f}" for c in columns]
                                   for r in result]))
