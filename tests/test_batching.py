"""aiterms.batching: left padding by hand, padded batches against one-by-one decoding, the serving simulator."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aiterms import checkpoints
from aiterms.batching import (Request, ServingConfig, batched_greedy_decode, forward_padded, left_pad_batch,
                              request_stream, simulate_serving)
from aiterms.kv_cache import kv_cached_decode
from aiterms.transformer import GPT, GPTConfig

torch.set_num_threads(1)
V = 11


def peaked(seed: int = 0, **kwargs) -> GPT:
    config = dict(vocab_size=V, block_size=24, n_layer=2, n_head=2, n_embd=16)
    config.update(kwargs)
    model = GPT.from_seed(GPTConfig(**config), seed).eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(3)
        model.pos_emb.weight.mul_(20)
    return model


def prompts(seed: int, count: int, longest: int = 6) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, longest + 1, (count,), generator=g).tolist()
    return [torch.randint(0, V, (n,), generator=g).tolist() for n in lengths]


def test_left_pad_batch_by_hand():
    ids, mask, pos = left_pad_batch([[5, 6, 7], [8], [9, 4]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 9, 4]]
    assert mask.tolist() == [[True, True, True], [False, False, True], [False, True, True]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 1]]
    assert ids.dtype == pos.dtype == torch.long and mask.dtype == torch.bool
    ids, _, _ = left_pad_batch([[5], [6, 7]], pad_id=3)
    assert ids.tolist() == [[3, 5], [6, 7]]


def test_forward_padded_without_padding_is_the_models_forward():
    model = peaked(2)
    idx = torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(0))
    logits, cache = forward_padded(model, idx, torch.ones(3, 9, dtype=torch.bool), torch.arange(9).repeat(3, 1))
    ref, ref_cache = model.forward_cached(idx)
    torch.testing.assert_close(logits, ref)
    torch.testing.assert_close(cache[1][0], ref_cache[1][0])


def test_forward_padded_rows_equal_their_unpadded_forward():
    model = peaked(4)
    rows = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    ids, mask, pos = left_pad_batch(rows)
    logits, _ = forward_padded(model, ids, mask, pos)
    for b, r in enumerate(rows):
        alone, _ = model(torch.tensor([r]))
        torch.testing.assert_close(logits[b, -len(r):], alone[0], atol=1e-5, rtol=1e-5)
    # the mask matters: without it, the short rows read the pads and their last logits change
    wrong, _ = forward_padded(model, ids, torch.ones_like(mask), pos)
    assert not torch.allclose(wrong[1, -1], logits[1, -1], atol=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_batched_equals_one_by_one(seed):
    model = peaked(seed)
    ps = prompts(seed, 7)
    n = 24 - max(map(len, ps)) + 1
    alone = [kv_cached_decode(model, p, n) for p in ps]
    assert batched_greedy_decode(model, ps, n) == alone
    eos = alone[0][2]
    assert batched_greedy_decode(model, ps, n, eos_id=eos) == [kv_cached_decode(model, p, n, eos) for p in ps]
    assert batched_greedy_decode(model, ps, n, pad_id=7) == alone  # the pad id does not matter
    assert len({tuple(a) for a in alone}) > 1


def test_course_checkpoint_batched_equals_alone():
    from aiterms import arithmetic
    from pathlib import Path

    from aiterms.tokenizer import TOKENIZER
    path = checkpoints.RELEASED / "sft-cot.pt"
    model = GPT.load(path)
    problems = arithmetic.sample_problems(6, 4, seed=5, ops="+-") + arithmetic.sample_problems(6, 1, seed=5)
    ps = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in problems]
    out = batched_greedy_decode(model, ps, 60, eos_id=TOKENIZER.eos_id)
    assert out == [kv_cached_decode(model, p, 60, TOKENIZER.eos_id) for p in ps]


def stream(model: GPT, seed: int = 0) -> list[Request]:
    ps = prompts(seed, 12)
    budgets = [1 + (7 * i) % 12 for i in range(12)]
    return request_stream(ps, rate=3.0, max_new_tokens=budgets, seed=seed)


def test_serving_outputs_do_not_depend_on_policy():
    model = peaked(5)
    for policy in ("static", "continuous"):
        for bs in (1, 3, 12):
            reqs = stream(model)
            simulate_serving(model, reqs, ServingConfig(bs, policy, step_seconds=0.01))
            assert [r.output for r in reqs] == [kv_cached_decode(model, r.prompt, r.max_new_tokens) for r in reqs]
            assert all(r.arrival <= r.start <= r.first_token <= r.finish for r in reqs)


def test_serving_by_hand_with_a_fixed_step_cost():
    model = peaked(0)
    # three requests at t=0 wanting 1, 3, 2 tokens; batch 2; every forward pass costs 1 second
    def reqs():
        return [Request(0.0, [1, 2], 1), Request(0.0, [3], 3), Request(0.0, [4, 5], 2)]
    static = reqs()
    res = simulate_serving(model, static, ServingConfig(2, "static", step_seconds=1.0))
    # static: prefill A+B together (t=1: A done), steps t=2, 3 (B done); then C: prefill t=4, step t=5 (done)
    assert [r.finish for r in static] == [1.0, 3.0, 5.0]
    assert [r.start for r in static] == [0.0, 0.0, 3.0]
    cont = reqs()
    res2 = simulate_serving(model, cont, ServingConfig(2, "continuous", step_seconds=1.0))
    # continuous: prefill A+B (t=1: A done, leaves); C's prompt runs with B's next token (t=2); t=3: both done
    assert [r.finish for r in cont] == [1.0, 3.0, 3.0]
    assert [r.start for r in cont] == [0.0, 0.0, 1.0]
    assert res["tokens"] == res2["tokens"] == 6
    assert res["seconds"] == 5.0 and res2["seconds"] == 3.0
    assert res["passes"] == 5 and res2["passes"] == 3
    assert res2["latency_p50"] == 3.0 and res2["latency_p95"] == 3.0  # C arrived at 0 and waited
    assert res2["service_p50"] == 2.0
    assert res2["tokens_per_s"] == pytest.approx(6 / 3)
    # the pass clock: with a cost of 1 s per pass it reads as the seconds
    for reqs in (static, cont):
        assert [r.start_pass for r in reqs] == [r.start for r in reqs]
        assert [r.finish_pass for r in reqs] == [r.finish for r in reqs]
    assert res["service_passes_p50"] == res["service_p50"] and res2["service_passes_p95"] == res2["service_p95"]
    # work: static computes A's and B's rows for 3 passes (A idles 2), then C's alone for 2; prompts A, B: 2 wide
    assert res["row_steps"] == 2 + 2 + 2 + 1 + 1 and res["positions"] == 2 * 2 + 2 + 2 + 1 * 2 + 1
    # continuous: A+B (2 wide), then B's token with C's 2-token prompt (2 rows x 2 wide), then B and C
    assert res2["row_steps"] == 2 + 2 + 2 and res2["positions"] == 2 * 2 + 2 * 2 + 2
    assert res["prefill_passes"] == 2 and res2["prefill_passes"] == 2
    assert res["prefill_positions"] == 2 * 2 + 1 * 2 and res2["prefill_positions"] == 2 * 2 + 2 * 2
    for r in (res, res2):
        assert r["prefill_pass_s"] > 0 and r["decode_pass_s"] > 0


def test_continuous_beats_static_on_a_mixed_stream():
    model = peaked(1)
    ps = prompts(3, 24)
    budgets = [2 if i % 4 else 18 for i in range(24)]  # a few long requests hold static batches back
    results = {}
    for policy in ("static", "continuous"):
        reqs = request_stream(ps, rate=50.0, max_new_tokens=budgets, seed=1)
        results[policy] = simulate_serving(model, reqs, ServingConfig(4, policy, step_seconds=0.01))
    assert results["continuous"]["latency_p50"] < results["static"]["latency_p50"]
    assert results["continuous"]["tokens_per_s"] > results["static"]["tokens_per_s"]
    # static batching computes rows that are done (idle slots), continuous batching never does
    assert results["static"]["row_steps"] > results["static"]["tokens"]
    assert results["continuous"]["row_steps"] == results["continuous"]["tokens"]
    assert results["continuous"]["passes"] < results["static"]["passes"]


def test_request_stream():
    reqs = request_stream([[1], [2], [3], [4]], rate=2.0, max_new_tokens=5, seed=0)
    arrivals = [r.arrival for r in reqs]
    assert arrivals[0] == 0.0 and arrivals == sorted(arrivals)
    assert arrivals == [r.arrival for r in request_stream([[1], [2], [3], [4]], 2.0, 5, seed=0)]
    assert [r.max_new_tokens for r in reqs] == [5] * 4 and math.isnan(reqs[0].finish)


def test_bad_input():
    model = peaked(0)
    with pytest.raises(ValueError, match="block_size"):
        left_pad_batch([[1, 2], [1] * 25], block_size=24)
    with pytest.raises(ValueError, match="prompts\\[1\\].*block_size"):
        batched_greedy_decode(model, [[1], [2] * 30], 2)
    with pytest.raises(ValueError, match="block_size"):
        batched_greedy_decode(model, [[1], [2] * 20], 6)
    with pytest.raises(ValueError, match="batch size"):
        left_pad_batch([])
    with pytest.raises(ValueError, match="prompt"):
        left_pad_batch([[1], []])
    with pytest.raises(ValueError, match="pad_id"):
        left_pad_batch([[1]], pad_id=-1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        batched_greedy_decode(model, [[1]], 0)
    for bs in (0, -2, 1.5):
        with pytest.raises(ValueError, match="batch_size"):
            ServingConfig(batch_size=bs)
    with pytest.raises(ValueError, match="policy"):
        ServingConfig(policy="dynamic")
    with pytest.raises(ValueError, match="block_size"):
        simulate_serving(model, [Request(0.0, [1] * 20, 8)], ServingConfig())
    with pytest.raises(ValueError, match="rate"):
        request_stream([[1]], rate=0, max_new_tokens=3)
    with pytest.raises(ValueError, match="attention_mask"):
        forward_padded(model, torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool),
                       torch.zeros(2, 3, dtype=torch.long))


def test_greedy_accuracy_matches_the_pipelines_evaluation():
    from pathlib import Path

    from aiterms import arithmetic
    from aiterms.batching import greedy_accuracy
    from aiterms.evaluation import score, solve
    model = checkpoints.load("sft-cot")
    problems = arithmetic.sample_problems(12, 4, seed=9, ops="+-") + arithmetic.sample_problems(12, 2, seed=9)
    expected = score(problems, solve(model, problems, "cot"))["accuracy"]
    assert greedy_accuracy(model, problems, batch_size=5) == greedy_accuracy(model, problems, batch_size=24) == expected
    from aiterms.batching import greedy_right
    right = greedy_right(model, problems, batch_size=7)
    assert len(right) == len(problems) and sum(right) / len(right) == expected
    with pytest.raises(ValueError, match="batch_size"):
        greedy_accuracy(model, problems, batch_size=0)
