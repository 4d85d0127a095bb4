"""aiterms.decoding and aiterms.ngram: exact small cases, slow reference implementations, bad input."""
from __future__ import annotations

import math

import pytest
import torch

from aiterms.decoding import (CountingModel, RandomBigramLM, as_prompt, filter_logits, greedy_decode,
                              next_token_logprobs, sample, sequence_logprob)
from aiterms.ngram import TOY_CORPUS, NGramLM


def test_next_token_logprobs_normalised_and_checked():
    model = RandomBigramLM(7, seed=1)
    logp = next_token_logprobs(model, [[1, 2], [3, 4]])
    assert logp.shape == (2, 7) and logp.dtype == torch.float32
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="same length"):
        next_token_logprobs(model, [[1], [1, 2]])


def test_greedy_matches_slow_argmax_loop():
    model = RandomBigramLM(6, seed=2)
    seq, out = [3], []
    for _ in range(5):  # slow obvious version: argmax of the bigram row
        token = max(range(6), key=lambda v: float(model.table[seq[-1], v]))
        out.append(token)
        seq.append(token)
    assert greedy_decode(model, [3], 5) == out


def test_greedy_stops_after_eos():
    model = RandomBigramLM(6, seed=2)
    first = greedy_decode(model, [3], 1)[0]
    assert greedy_decode(model, [3], 9, eos_token_id=first) == [first]


def test_sample_is_seeded_and_respects_top_k():
    model = RandomBigramLM(20, seed=3, scale=1.0)
    a = sample(model, [1], 10, seed=5)
    assert a == sample(model, [1], 10, seed=5)
    assert any(sample(model, [1], 10, seed=s) != a for s in range(6, 10))
    # top_k=1 is greedy
    assert sample(model, [1], 10, top_k=1, seed=0) == greedy_decode(model, [1], 10)


def test_sample_frequencies_follow_the_distribution():
    model = RandomBigramLM(4, seed=0, scale=1.0)
    probs = torch.softmax(model.table[2], -1)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(4000):
        counts[sample(model, [2], 1, generator=g)[0]] += 1
    assert torch.allclose(counts / 4000, probs, atol=0.03)


def test_filter_logits_top_p_keeps_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))
    assert kept.tolist() == [True, True, False, False]  # 0.5 < 0.75, 0.5 + 0.3 >= 0.75
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [True, True, False, False]


def test_sequence_logprob_and_counting():
    model = CountingModel(RandomBigramLM(5, seed=1))
    lp = sequence_logprob(model, [1], [2, 3])
    table = torch.log_softmax(model.model.table, -1)
    assert lp == pytest.approx(float(table[1, 2] + table[2, 3]), rel=1e-5, abs=1e-6)
    assert model.calls == 2 and model.rows == 2


@pytest.mark.parametrize("call,match", [
    (lambda m: greedy_decode(m, [], 3), "prompt"),
    (lambda m: greedy_decode(m, [1], 0), "max_new_tokens"),
    (lambda m: greedy_decode(m, [1], 2, eos_token_id=9), "eos_token_id"),
    (lambda m: greedy_decode(m, torch.zeros(2, 2, dtype=torch.long), 2), "prompt"),
    (lambda m: greedy_decode(m, [1.5], 2), "prompt"),
    (lambda m: greedy_decode(m, [-1], 2), "prompt"),
    (lambda m: sample(m, [1], 2, temperature=0), "temperature"),
    (lambda m: sample(m, [1], 2, top_p=1.5), "top_p"),
    (lambda m: sample(m, [1], 2, top_k=0), "top_k"),
    (lambda m: greedy_decode(lambda ids: torch.zeros(3), [1], 2), "logits"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(RandomBigramLM(5))


def test_as_prompt_accepts_tensors():
    assert as_prompt(torch.tensor([1, 2])) == [1, 2]


def test_ngram_counts_by_hand():
    lm = NGramLM(TOY_CORPUS, n=3, alpha=0.01)
    probs = lm.next_word_probs(lm.encode("i am going to the"))
    V = lm.vocab_size - 1  # <bos> gets no smoothing mass
    assert float(probs[lm.index["store"]]) == pytest.approx((5 + 0.01) / (10 + 0.01 * V))
    assert float(probs[lm.index["park"]]) == pytest.approx((3 + 0.01) / (10 + 0.01 * V))
    assert float(probs[lm.bos_id]) == 0.0
    assert math.isclose(float(probs.sum()), 1.0)
    logits = lm(torch.tensor([lm.encode("i am going to the")]))
    assert logits.shape == (1, lm.vocab_size)


def test_ngram_unigram_and_errors():
    lm = NGramLM(["a b", "a c"], n=1)
    probs = lm.next_word_probs([])
    assert float(probs[lm.index["a"]]) > float(probs[lm.index["b"]])
    with pytest.raises(ValueError, match="vocabulary"):
        lm.encode("a zebra")
    with pytest.raises(ValueError, match="n must"):
        NGramLM(["a"], n=0)
    with pytest.raises(ValueError, match="alpha"):
        NGramLM(["a"], alpha=0)
    with pytest.raises(ValueError, match="corpus"):
        NGramLM([""])
