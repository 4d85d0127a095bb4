"""KV cache: decode token by token without recomputing the prefix, and what the cache costs in memory.

A decoder-only transformer generates one token at a time. Token ``t + 1`` needs the attention of position ``t`` over
the keys and values of positions ``0 .. t``. **Recomputation** runs the whole sequence through the model again at
every step: step ``t`` costs a forward pass over ``t`` tokens, so ``n`` new tokens after a prompt of ``T0`` cost
``sum_{t=T0}^{T0+n-1} t`` token-passes (quadratic in ``n``). The keys and values of the old positions never change
(causal attention: position ``i`` only sees ``0 .. i``), so the **KV cache** keeps them: per layer a pair ``(k, v)``
of ``(B, H, T_past, D)`` tensors. One step then runs only the newest token: ``T0 + n - 1`` token-passes in all
(linear in ``n``), and the same logits up to float rounding (Pope et al., 2023, "Efficiently Scaling Transformer
Inference"; the cache itself goes back to the first Transformer decoders, Vaswani et al., 2017).

The cache is not free: per token it holds ``2 * n_layer * n_embd`` numbers (a key and a value of width
``n_embd = H * D`` per layer), so a batch of ``B`` sequences of ``T`` tokens needs

    kv_bytes = 2 * n_layer * n_embd * B * T * bytes_per_value                                (1)

next to the weights. On a small device, (1) decides how many users and how long a context fit (Kwon et al., 2023,
"Efficient Memory Management for Large Language Model Serving with PagedAttention").

The model is :class:`aiterms.transformer.GPT` (its :meth:`~aiterms.transformer.GPT.forward_cached` is the cached
forward pass); everything here is greedy, CPU, ``torch.no_grad``.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn as nn

from aiterms.decoding import as_prompt, check_positive_int
from aiterms.transformer import GPT, GPTConfig, eval_mode


@dataclass
class TimingConfig:
    """How :func:`time_call` measures: ``repeats`` timed runs after ``warmup`` untimed ones; the median is kept."""

    repeats: int = 3
    warmup: int = 1

    def __post_init__(self):
        check_positive_int("repeats", self.repeats)
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")


def _check_decode_args(model: nn.Module, prompt_ids: Sequence[int], max_new_tokens: int,
                       eos_id: int | None) -> list[int]:
    if not isinstance(model, GPT):
        raise ValueError(f"model must be a GPT, got {type(model).__name__}")
    prompt = as_prompt(prompt_ids)
    check_positive_int("max_new_tokens", max_new_tokens)
    if len(prompt) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"prompt length {len(prompt)} + max_new_tokens {max_new_tokens} - 1 exceeds the context "
                         f"block_size={model.config.block_size}")
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int)
                               or not 0 <= eos_id < model.config.vocab_size):
        raise ValueError(f"eos_id={eos_id!r} is not a token id of the vocabulary (0..{model.config.vocab_size - 1})")
    return prompt


def kv_cached_decode(model: GPT, prompt_ids: Sequence[int], max_new_tokens: int,
                     eos_id: int | None = None) -> list[int]:
    """Greedy decoding with a KV cache: the prompt once, then one new token per forward pass.

    ``logits, cache = model.forward_cached(prompt (1, T0))``; then repeat ``y = argmax logits[0, -1]`` (ties to the
    lowest id), ``logits, cache = model.forward_cached([[y]], cache)`` until ``eos_id`` was produced or
    ``max_new_tokens`` tokens were generated. The model sees ``T0, 1, 1, ..., 1`` new tokens per call (``n`` calls
    for ``n`` generated tokens: no call after the last one).

    Args:
        model: a :class:`~aiterms.transformer.GPT` (run in eval mode, its mode restored).
        prompt_ids: ``T0 >= 1`` token ids.
        max_new_tokens: at most this many tokens; ``T0 + max_new_tokens - 1 <= block_size``.
        eos_id: stop right after producing it (it is included).
    Returns:
        the generated ids (prompt excluded), the same as :func:`recompute_decode`.
    """
    prompt = _check_decode_args(model, prompt_ids, max_new_tokens, eos_id)
    out: list[int] = []
    with torch.no_grad(), eval_mode(model):
        logits, cache = model.forward_cached(torch.tensor([prompt], dtype=torch.long))   # (1, T0, V)
        while True:
            token = int(torch.argmax(logits[0, -1]))
            out.append(token)
            if token == eos_id or len(out) == max_new_tokens:
                return out
            logits, cache = model.forward_cached(torch.tensor([[token]], dtype=torch.long), cache)  # (1, 1, V)


def recompute_decode(model: GPT, prompt_ids: Sequence[int], max_new_tokens: int,
                     eos_id: int | None = None) -> list[int]:
    """Greedy decoding without a cache: every step runs ``model(seq)`` over the whole sequence so far.

    Step ``i`` feeds ``T0 + i`` tokens; the tokens are those of :func:`kv_cached_decode`. Same arguments.
    """
    prompt = _check_decode_args(model, prompt_ids, max_new_tokens, eos_id)
    seq = list(prompt)
    with torch.no_grad(), eval_mode(model):
        while True:
            logits, _ = model(torch.tensor([seq], dtype=torch.long))                        # (1, T, V)
            token = int(torch.argmax(logits[0, -1]))
            seq.append(token)
            if token == eos_id or len(seq) - len(prompt) == max_new_tokens:
                return seq[len(prompt):]


def token_passes(prompt_len: int, new_tokens: int, cached: bool) -> int:
    """Token positions pushed through the model to generate ``new_tokens`` after ``prompt_len`` tokens.

    Cached: ``T0 + (n - 1)``; recomputed: ``sum_{i=0}^{n-1} (T0 + i) = n T0 + n (n - 1) / 2``.
    """
    check_positive_int("prompt_len", prompt_len)
    check_positive_int("new_tokens", new_tokens)
    if cached:
        return prompt_len + new_tokens - 1
    return new_tokens * prompt_len + new_tokens * (new_tokens - 1) // 2


def kv_cache_bytes(config: GPTConfig, tokens: int, batch_size: int = 1, bytes_per_value: int = 4) -> int:
    """Equation (1): ``2 * n_layer * n_embd * batch_size * tokens * bytes_per_value`` bytes of keys and values."""
    if not isinstance(config, GPTConfig):
        raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
    check_positive_int("tokens", tokens)
    check_positive_int("batch_size", batch_size)
    check_positive_int("bytes_per_value", bytes_per_value)
    return 2 * config.n_layer * config.n_embd * batch_size * tokens * bytes_per_value


def cache_nbytes(cache: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Bytes held by a cache returned by :meth:`~aiterms.transformer.GPT.forward_cached` (to check (1))."""
    return sum(t.numel() * t.element_size() for kv in cache for t in kv)


def max_batch(memory_bytes: int, weight_bytes: int, kv_bytes_per_token: int, context: int) -> int:
    """How many sequences of ``context`` tokens fit next to the weights: ``floor((M - W) / (kv_per_token * T))``.

    0 when not even the weights fit. Activations, the runtime and the OS are not counted: a lower bound of the
    real need (state so when you use it). ``weight_bytes``: e.g. :func:`aiterms.quantization.model_size_bytes`.
    """
    for name, value in (("memory_bytes", memory_bytes), ("weight_bytes", weight_bytes),
                        ("kv_bytes_per_token", kv_bytes_per_token), ("context", context)):
        check_positive_int(name, value)
    return max(0, (memory_bytes - weight_bytes) // (kv_bytes_per_token * context))


def time_call(fn: Callable[[], object], config: TimingConfig | None = None) -> float:
    """Median wall-clock seconds of ``fn()`` over ``config.repeats`` runs (after ``config.warmup`` untimed runs)."""
    config = config or TimingConfig()
    for _ in range(config.warmup):
        fn()
    times = []
    for _ in range(config.repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def positions_per_step(prompt_len: int, new_tokens: int, cached: bool) -> list[int]:
    """Token positions each forward pass pushes through the model (per sequence), pass by pass.

    Cached: ``[T0, 1, 1, ..., 1]`` (the prompt, then one new token per pass); recomputed: ``[T0, T0 + 1, ...,
    T0 + n - 1]``. The sum is :func:`token_passes`.
    """
    check_positive_int("prompt_len", prompt_len)
    check_positive_int("new_tokens", new_tokens)
    if cached:
        return [prompt_len] + [1] * (new_tokens - 1)
    return [prompt_len + i for i in range(new_tokens)]


def time_steps(model: GPT, prompt_ids: Sequence[int], max_new_tokens: int, batch_size: int = 1,
               cached: bool = True, config: TimingConfig | None = None) -> list[float]:
    """Wall-clock seconds of each forward pass of greedy decoding, with the cache or by recomputation.

    ``batch_size`` copies of the prompt generate exactly ``max_new_tokens`` tokens (no EOS) in ``max_new_tokens``
    passes; pass ``i`` feeds :func:`positions_per_step` ``[i]`` positions per sequence (``model.forward_cached`` with
    the cache, ``model(seq)`` over the whole sequence without). The whole decoding runs ``config.repeats`` times
    (after ``config.warmup`` untimed runs) and each pass keeps its median, so a burst of load on a busy machine
    spoils one run, not the curve. ``sum(time_steps(...))`` is the time of the whole decoding.
    """
    prompt = _check_decode_args(model, prompt_ids, max_new_tokens, None)
    check_positive_int("batch_size", batch_size)
    config = config or TimingConfig()

    def run() -> list[float]:
        times = []
        seq = torch.tensor([prompt] * batch_size, dtype=torch.long)                            # (B, T0)
        new, cache = seq, None
        with torch.no_grad(), eval_mode(model):
            for _ in range(max_new_tokens):
                start = time.perf_counter()
                if cached:
                    logits, cache = model.forward_cached(new, cache)                            # (B, T_new, V)
                else:
                    logits, _ = model(seq)                                                      # (B, T, V)
                new = torch.argmax(logits[:, -1], dim=-1, keepdim=True)                         # (B, 1)
                times.append(time.perf_counter() - start)
                seq = torch.cat([seq, new], dim=1)
        return times

    for _ in range(config.warmup):
        run()
    runs = [run() for _ in range(config.repeats)]
    return [statistics.median(r[i] for r in runs) for i in range(max_new_tokens)]


def cache_speedup(model: GPT, prompt_ids: Sequence[int], max_new_tokens: int,
                  config: TimingConfig | None = None) -> dict[str, float]:
    """Time :func:`recompute_decode` and :func:`kv_cached_decode` on the same prompt (no EOS: exactly
    ``max_new_tokens`` tokens), check they agree, and return ``{"recompute_s", "cached_s", "speedup"}``."""
    cached = kv_cached_decode(model, prompt_ids, max_new_tokens)
    if recompute_decode(model, prompt_ids, max_new_tokens) != cached:
        raise RuntimeError("the cached and the recomputed decoding disagree")
    recompute_s = time_call(lambda: recompute_decode(model, prompt_ids, max_new_tokens), config)
    cached_s = time_call(lambda: kv_cached_decode(model, prompt_ids, max_new_tokens), config)
    return {"recompute_s": recompute_s, "cached_s": cached_s, "speedup": recompute_s / cached_s}
