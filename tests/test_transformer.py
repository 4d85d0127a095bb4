"""aiterms.transformer: shapes, causality, the KV cache against full recomputation, the loss, checkpoints, decoders."""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from aiterms.arithmetic import cot_response, prompt, sample_problems
from aiterms.beam_search import beam_search
from aiterms.decoding import greedy_decode, sample
from aiterms.tokenizer import TOKENIZER, collate
from aiterms.transformer import GPT, GPTConfig, as_lm, generate, generate_batch

V = TOKENIZER.vocab_size


def tiny(seed: int = 0, **kwargs) -> GPT:
    config = dict(vocab_size=V, block_size=32, n_layer=2, n_head=2, n_embd=32)
    config.update(kwargs)
    return GPT.from_seed(GPTConfig(**config), seed).eval()


def random_ids(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_parameter_count():
    model = tiny()
    logits, loss = model(random_ids(3, 10))
    assert logits.shape == (3, 10, V) and loss is None
    C, L = 32, 2
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    assert model.num_parameters() == V * C + 32 * C + L * per_block + 2 * C  # tied output layer counted once
    assert model.lm_head.weight is model.tok_emb.weight


def test_deterministic_init_without_touching_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = tiny(seed=1), tiny(seed=1), tiny(seed=2)
    assert torch.rand(1) == before  # building models did not consume the global generator
    ids = random_ids(2, 8)
    assert torch.equal(a(ids)[0], b(ids)[0]) and not torch.allclose(a(ids)[0], c(ids)[0])


def test_causality():
    """Changing token t changes no logits before t, and does change the logits at t."""
    model = tiny(seed=3)
    ids = random_ids(1, 16, seed=1)
    logits, _ = model(ids)
    for t in (0, 5, 15):
        changed = ids.clone()
        changed[0, t] = (changed[0, t] + 1) % V
        new_logits, _ = model(changed)
        assert torch.equal(new_logits[:, :t], logits[:, :t])
        assert not torch.allclose(new_logits[:, t], logits[:, t])


@pytest.mark.parametrize("chunks", [[1] * 20, [7] + [1] * 13, [5, 3, 1, 8, 3]])
def test_kv_cache_matches_full_recomputation(chunks):
    """Feeding the sequence in chunks through the cache gives the full forward pass's logits, position by position."""
    model = tiny(seed=4, block_size=20)
    ids = random_ids(2, 20, seed=2)
    full, _ = model(ids)
    cache, start = None, 0
    for size in chunks:
        logits, cache = model.forward_cached(ids[:, start:start + size], cache)
        assert logits.shape == (2, size, V)
        assert torch.allclose(logits, full[:, start:start + size], atol=1e-5)
        start += size
        assert len(cache) == 2 and all(k.shape == v.shape == (2, 2, start, 16) for k, v in cache)
    assert start == 20


def test_cached_and_uncached_generation_agree():
    for seed in range(4):
        model = tiny(seed=seed, block_size=40)
        for p in ([1, 5, 14, 6, 16, 3], [1], random_ids(1, 12, seed)[0].tolist()):
            with_cache = generate(model, p, 25, eos_id=TOKENIZER.eos_id)
            assert with_cache == generate(model, p, 25, eos_id=TOKENIZER.eos_id, use_cache=False)
            assert with_cache == greedy_decode(as_lm(model), p, 25, eos_token_id=TOKENIZER.eos_id)
    model = tiny(seed=5, block_size=40)
    prompts = random_ids(4, 6, seed=9)
    batch = generate_batch(model, prompts, 20)
    assert batch == generate_batch(model, prompts, 20, use_cache=False)
    assert batch == [generate(model, p, 20) for p in prompts]


def test_generation_stops_after_eos():
    model = tiny(seed=1)
    first = generate(model, [1, 2, 3], 1)[0]
    assert generate(model, [1, 2, 3], 10, eos_id=first) == [first]
    rows = generate_batch(model, torch.tensor([[1, 2, 3], [4, 5, 6]]), 10, eos_id=first)
    assert rows[0] == [first] and all(first not in r[:-1] for r in rows)


def test_sampling_is_seeded():
    model = tiny(seed=2)
    prompts = [[1, 4, 5]] * 3
    a = generate_batch(model, prompts, 10, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = generate_batch(model, prompts, 10, temperature=1.0, generator=torch.Generator().manual_seed(1), use_cache=False)
    assert a == b and len({tuple(r) for r in a}) > 1


def test_loss_ignores_masked_positions():
    model = tiny(seed=6)
    ids = random_ids(2, 9, seed=3)
    targets = random_ids(2, 9, seed=4)
    targets[0, :4] = -100
    targets[1, 7:] = -100
    with torch.no_grad():
        logits, loss = model(ids, targets)
    logp = torch.log_softmax(logits, -1)
    terms = [-logp[b, t, targets[b, t]] for b in range(2) for t in range(9) if targets[b, t] != -100]
    assert loss.item() == pytest.approx(float(sum(terms) / len(terms)), rel=1e-5, abs=1e-6)
    assert model(ids, torch.full_like(targets, -100))[1].isnan()  # nothing counted: NaN, as documented


def test_sft_on_eight_examples_learns_and_masks_the_prompt():
    """A few seconds of training: the masked loss falls, and the prompt tokens get no gradient signal."""
    problems = sample_problems(8, 2, seed=0)
    batch = collate([TOKENIZER.encode_pair(prompt(p), cot_response(p), 32) for p in problems])
    ids, labels, mask = batch
    model = GPT.from_seed(GPTConfig(V, 32, n_layer=2, n_head=2, n_embd=48), seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start, first = time.perf_counter(), None
    for step in range(60):
        _, loss = model(ids, labels)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert time.perf_counter() - start < 20
    assert loss.item() < 0.3 * first, (first, loss.item())
    # masked loss = the mean of per-token losses over the response mask
    logits, masked = model(ids, labels)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")  # (B, T)
    assert masked.detach().item() == pytest.approx(float((per_token * mask).sum().detach() / mask.sum()), rel=1e-5)
    # ... and no gradient reaches the logits of prompt (and padding) positions
    logits.retain_grad()
    masked.backward()
    assert torch.all(logits.grad[mask == 0] == 0) and torch.all(logits.grad[mask == 1].abs().sum(-1) > 0)


def test_save_load_round_trip(tmp_path):
    model = tiny(seed=7)
    path = tmp_path / "model.pt"
    model.save(path, fmt="cot", accuracy=0.5)
    start = time.perf_counter()
    loaded = GPT.load(path)
    assert time.perf_counter() - start < 1.0
    assert loaded.config == model.config and not loaded.training
    assert loaded.metadata == {"fmt": "cot", "accuracy": 0.5}
    ids = random_ids(3, 11)
    assert torch.equal(loaded(ids)[0], model(ids)[0])
    assert loaded.lm_head.weight is loaded.tok_emb.weight
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="path"):
        GPT.load(tmp_path / "other.pt")


def test_decoders_of_the_course_run_on_the_model():
    model = tiny(seed=8).train()
    lm = as_lm(model)
    ids = random_ids(3, 5)
    assert lm(ids).shape == (3, V) and lm(ids).dtype == torch.float32
    assert model.training  # as_lm restores the mode it found
    p = TOKENIZER.encode_prompt("12+34=")
    hyps = beam_search(lm, p, num_beams=3, max_new_tokens=8, eos_token_id=TOKENIZER.eos_id)
    assert len(hyps) == 3
    assert len(greedy_decode(lm, p, 8)) == 8 and len(sample(lm, p, 8, seed=0)) == 8


@pytest.mark.parametrize("call,match", [
    (lambda m: m(random_ids(1, 33)), "block_size"),
    (lambda m: m(torch.zeros(5, dtype=torch.long)), "idx"),
    (lambda m: m(torch.zeros(1, 3)), "idx"),
    (lambda m: m(torch.zeros(1, 0, dtype=torch.long)), "idx"),
    (lambda m: m(torch.full((1, 3), V)), "idx"),
    (lambda m: m(random_ids(1, 3), torch.zeros(1, 4, dtype=torch.long)), "targets"),
    (lambda m: m.forward_cached(random_ids(1, 3), m.forward_cached(random_ids(1, 30))[1]), "block_size"),
    (lambda m: m.forward_cached(random_ids(2, 3), m.forward_cached(random_ids(1, 3))[1]), "past_kv"),
    (lambda m: m.forward_cached(random_ids(1, 3), []), "past_kv"),
    (lambda m: generate(m, [1] * 30, 4), "block_size"),
    (lambda m: generate(m, [], 4), "prompt"),
    (lambda m: generate(m, [1], 0), "max_new_tokens"),
    (lambda m: generate(m, [1], 3, eos_id=V), "eos_id"),
    (lambda m: generate_batch(m, [[1, 2], [1]], 3), "prompts"),
    (lambda m: generate_batch(m, [[1, 2]], 3, temperature=-1.0), "temperature"),
    (lambda m: as_lm(lambda ids: ids), "model"),
    (lambda m: GPTConfig(V, 16, n_head=3, n_embd=32), "n_embd"),
    (lambda m: GPTConfig(V, 0), "block_size"),
    (lambda m: GPTConfig(0, 16), "vocab_size"),
    (lambda m: GPTConfig(V, 16, dropout=1.0), "dropout"),
    (lambda m: GPT({"vocab_size": V}), "config"),
    (lambda m: GPT.from_seed(GPTConfig(V, 16), seed="0"), "seed"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny())
