"""aiterms.kv_cache: cached decoding against recomputation, token-pass counts, memory formula, bad input."""
from __future__ import annotations

import pytest
import torch

from aiterms.kv_cache import (TimingConfig, cache_nbytes, cache_speedup, kv_cache_bytes, kv_cached_decode,
                              max_batch, positions_per_step, recompute_decode, time_call, time_steps, token_passes)
from aiterms.transformer import GPT, GPTConfig, generate

torch.set_num_threads(1)
V = 11


def peaked(seed: int = 0, **kwargs) -> GPT:
    """A random tiny GPT whose next-token distributions are peaked (embeddings scaled up), so greedy varies."""
    config = dict(vocab_size=V, block_size=24, n_layer=2, n_head=2, n_embd=16)
    config.update(kwargs)
    model = GPT.from_seed(GPTConfig(**config), seed).eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(3)
        model.pos_emb.weight.mul_(20)
    return model


def fed_lengths(model: GPT, fn) -> list[int]:
    """How many new tokens each forward pass of ``fn()`` fed (a hook on the token embedding)."""
    seen: list[int] = []
    handle = model.tok_emb.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[1]))
    try:
        fn()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_cached_equals_recomputed_and_generate(seed):
    model = peaked(seed)
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, V, (1 + seed % 4,), generator=g).tolist()
    n = 24 - len(prompt) + 1  # fills the context exactly
    cached = kv_cached_decode(model, prompt, n)
    assert len(cached) == n
    assert cached == recompute_decode(model, prompt, n) == generate(model, prompt, n, use_cache=False)
    assert len(set(cached)) > 1  # the model is not degenerate: the check means something


def test_eos_stops_and_is_included():
    model = peaked(3)
    full = kv_cached_decode(model, [1, 2], 15)
    eos = full[4]
    first = full.index(eos)
    assert kv_cached_decode(model, [1, 2], 15, eos_id=eos) == full[:first + 1]
    assert recompute_decode(model, [1, 2], 15, eos_id=eos) == full[:first + 1]


def test_cache_feeds_one_token_per_step_recompute_feeds_all():
    model = peaked(1)
    assert fed_lengths(model, lambda: kv_cached_decode(model, [1, 2, 3], 5)) == [3, 1, 1, 1, 1]
    assert fed_lengths(model, lambda: recompute_decode(model, [1, 2, 3], 5)) == [3, 4, 5, 6, 7]
    assert sum([3, 1, 1, 1, 1]) == token_passes(3, 5, cached=True)
    assert sum([3, 4, 5, 6, 7]) == token_passes(3, 5, cached=False)
    assert token_passes(10, 64, cached=False) == sum(range(10, 74))


def test_positions_per_step_and_time_steps():
    assert positions_per_step(3, 5, cached=True) == [3, 1, 1, 1, 1]
    assert positions_per_step(3, 5, cached=False) == [3, 4, 5, 6, 7]
    for cached in (True, False):
        assert sum(positions_per_step(12, 64, cached)) == token_passes(12, 64, cached)
    model = peaked(1)
    for cached in (True, False):
        # time_steps runs the passes that positions_per_step counts, for every row of the batch
        shapes: list[tuple[int, int]] = []
        handle = model.tok_emb.register_forward_hook(lambda mod, args, out: shapes.append(tuple(args[0].shape)))
        try:
            times = time_steps(model, [1, 2, 3], 5, batch_size=4, cached=cached, config=TimingConfig(1, 0))
        finally:
            handle.remove()
        assert shapes == [(4, n) for n in positions_per_step(3, 5, cached)]
        assert len(times) == 5 and all(t > 0 for t in times)
    assert len(time_steps(model, [1, 2], 3, config=TimingConfig(repeats=3, warmup=1))) == 3
    with pytest.raises(ValueError, match="batch_size"):
        time_steps(model, [1], 3, batch_size=0)
    with pytest.raises(ValueError, match="block_size"):
        time_steps(model, [1] * 20, 6)
    with pytest.raises(ValueError, match="new_tokens"):
        positions_per_step(3, 0, cached=True)


def test_kv_cache_bytes_matches_a_real_cache():
    model = peaked(0, n_layer=3, n_embd=24, n_head=3)
    _, cache = model.forward_cached(torch.zeros(2, 7, dtype=torch.long))
    assert cache_nbytes(cache) == kv_cache_bytes(model.config, 7, batch_size=2) == 2 * 3 * 24 * 2 * 7 * 4
    assert kv_cache_bytes(model.config, 7, bytes_per_value=1) == 2 * 3 * 24 * 7


def test_max_batch():
    assert max_batch(1000, 200, 4, 10) == 20
    assert max_batch(1000, 999, 4, 10) == 0
    assert max_batch(1000, 2000, 4, 10) == 0


def test_time_call_and_speedup():
    calls = []
    assert time_call(lambda: calls.append(1), TimingConfig(repeats=3, warmup=2)) >= 0
    assert len(calls) == 5
    result = cache_speedup(peaked(0), [1, 2], 20, TimingConfig(repeats=1, warmup=0))
    assert set(result) == {"recompute_s", "cached_s", "speedup"}
    assert result["speedup"] == pytest.approx(result["recompute_s"] / result["cached_s"])


def test_bad_input():
    model = peaked(0)
    with pytest.raises(ValueError, match="block_size"):
        kv_cached_decode(model, [1] * 20, 6)
    with pytest.raises(ValueError, match="block_size"):
        recompute_decode(model, [1] * 25, 1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        kv_cached_decode(model, [1], 0)
    with pytest.raises(ValueError, match="prompt"):
        kv_cached_decode(model, [], 3)
    with pytest.raises(ValueError, match="eos_id"):
        kv_cached_decode(model, [1], 3, eos_id=V)
    with pytest.raises(ValueError, match="model"):
        kv_cached_decode(torch.nn.Linear(2, 2), [1], 3)
    with pytest.raises(ValueError, match="batch_size"):
        kv_cache_bytes(model.config, 4, batch_size=0)
    with pytest.raises(ValueError, match="tokens"):
        kv_cache_bytes(model.config, -1)
    with pytest.raises(ValueError, match="context"):
        max_batch(100, 10, 4, 0)
    with pytest.raises(ValueError, match="repeats"):
        TimingConfig(repeats=0)
