"""aiterms.beam_search against two oracles (Hugging Face transformers, brute force) and on exact small cases."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from aiterms.beam_search import Hypothesis, beam_search, beam_step, beam_table
from aiterms.decoding import RandomBigramLM, greedy_decode, next_token_logprobs, sequence_logprob
from aiterms.ngram import NGramLM


# ---------------------------------------------------------------- oracle 1: transformers' generate(num_beams=k)
def tiny_gpt2(vocab_size: int, seed: int):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     initializer_range=0.5, bos_token_id=0, eos_token_id=1)
    return transformers.GPT2LMHeadModel(config).eval()  # random weights from a config: no download


def hf_beam_search(model, prompt, k, max_new_tokens, eos, length_penalty, early_stopping, use_cache):
    from transformers import GenerationConfig
    ids = torch.tensor([prompt])
    config = GenerationConfig(num_beams=k, num_return_sequences=k, max_new_tokens=max_new_tokens, do_sample=False,
                              length_penalty=length_penalty, early_stopping=early_stopping, eos_token_id=eos,
                              pad_token_id=eos, output_scores=True, return_dict_in_generate=True, use_cache=use_cache)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    return [(s[len(prompt):].tolist(), float(score)) for s, score in zip(out.sequences, out.sequences_scores)]


CASES = list(itertools.product([8, 24], [2, 3, 4], [1.0, 0.0, 2.0, -1.0], [False, True, "never"]))


@pytest.mark.parametrize("vocab_size,k,length_penalty,early_stopping", CASES)
def test_matches_transformers(vocab_size, k, length_penalty, early_stopping):
    """Token for token, and scores within 1e-5 relative, for every width, length penalty and early-stopping mode."""
    model = tiny_gpt2(vocab_size, seed=vocab_size + k)
    prompt, eos = [2, 3, 4], 1
    expected = hf_beam_search(model, prompt, k, 10, eos, length_penalty, early_stopping, use_cache=False)
    ours = beam_search(lambda ids: model(ids).logits[:, -1, :], prompt, k, 10, eos_token_id=eos,
                       length_penalty=length_penalty, early_stopping=early_stopping)
    assert len(ours) == len(expected) == k
    width = len(expected[0][0])  # transformers pads finished sequences with pad = eos
    for (tokens, score), (hf_tokens, hf_score) in zip(ours, expected):
        assert tokens + [eos] * (width - len(tokens)) == hf_tokens
        assert score == pytest.approx(hf_score, rel=1e-5)  # relative: float kernels differ across CPUs


def test_matches_transformers_with_kv_cache():
    """With transformers' KV cache its logits differ in the last bits; tokens still match, scores to 1e-5 relative."""
    model = tiny_gpt2(16, seed=5)
    for k, lp in [(2, 1.0), (4, 0.0), (3, 2.0)]:
        expected = hf_beam_search(model, [5, 6], k, 12, 1, lp, False, use_cache=True)
        ours = beam_search(lambda ids: model(ids).logits[:, -1, :], [5, 6], k, 12, eos_token_id=1, length_penalty=lp)
        for (tokens, score), (hf_tokens, hf_score) in zip(ours, expected):
            assert tokens == hf_tokens[:len(tokens)]
            assert score == pytest.approx(hf_score, rel=1e-5)


# ---------------------------------------------------------------- oracle 2: brute force over all sequences
def all_hypotheses(model, prompt, vocab_size, max_new_tokens, eos, length_penalty):
    """Every finished sequence (ends with EOS, or reaches the limit) with its score, by enumeration."""
    out = []
    for length in range(1, max_new_tokens + 1):
        for tokens in itertools.product(range(vocab_size), repeat=length):
            if eos in tokens[:-1] or (length < max_new_tokens and tokens[-1] != eos):
                continue
            out.append((list(tokens), sequence_logprob(model, prompt, tokens) / length ** length_penalty))
    return sorted(out, key=lambda h: h[1], reverse=True)


@pytest.mark.parametrize("seed,length_penalty", [(0, 0.0), (1, 1.0), (2, 2.0), (3, 0.5), (4, -1.0)])
def test_full_width_beam_equals_brute_force(seed, length_penalty):
    vocab_size, max_new_tokens, eos = 3, 4, 0
    model = RandomBigramLM(vocab_size, seed=seed, scale=2.0)
    truth = all_hypotheses(model, [1], vocab_size, max_new_tokens, eos, length_penalty)
    width = vocab_size ** max_new_tokens  # as wide as all sequences: nothing is ever pruned
    found = beam_search(model, [1], width, max_new_tokens, eos_token_id=eos, length_penalty=length_penalty,
                        early_stopping="never")
    assert found[0].tokens == truth[0][0]
    assert found[0].score == pytest.approx(truth[0][1], rel=1e-5)
    assert [h.score for h in found] == pytest.approx([s for _, s in truth][:len(found)], rel=1e-5)


# ---------------------------------------------------------------- exact small cases
def test_seed_example_greedy_vs_beam():
    lm = NGramLM()
    prompt = lm.encode("i am going to the")
    assert [w for w, _ in lm.top_next_words("i am going to the", 3)] == ["store", "park", "beach"]
    greedy = greedy_decode(lm, prompt, 6, eos_token_id=lm.eos_id)
    best = beam_search(lm, prompt, 2, 6, eos_token_id=lm.eos_id)[0]
    assert lm.decode(greedy) == "store for milk <eos>"
    assert lm.decode(best.tokens) == "park at noon <eos>"
    assert sequence_logprob(lm, prompt, best.tokens) > sequence_logprob(lm, prompt, greedy)
    assert best.score == pytest.approx(sequence_logprob(lm, prompt, best.tokens) / 4, rel=1e-6)


def test_beam_step_hand_computed():
    scores = torch.tensor([-0.5, -1.0])
    logprobs = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05]]))
    s, b, t = beam_step(scores, logprobs, 3)
    assert b.tolist() == [0, 1, 0] and t.tolist() == [0, 0, 1]
    assert s.tolist() == pytest.approx([-0.5 + math.log(0.6), -1.0 + math.log(0.9), -0.5 + math.log(0.3)])
    assert len(beam_step(scores, logprobs, 100)[0]) == 6


def test_beam_step_matches_slow_enumeration():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        B, V = torch.randint(1, 5, (2,), generator=g).tolist()
        V += 1
        scores, logprobs = torch.randn(B, generator=g), torch.log_softmax(torch.randn(B, V, generator=g), -1)
        slow = sorted(((float(scores[b] + logprobs[b, v]), b, v) for b in range(B) for v in range(V)), reverse=True)
        s, bi, ti = beam_step(scores, logprobs, 3)
        assert list(zip(bi.tolist(), ti.tolist())) == [(b, v) for _, b, v in slow[:3]]


def test_beam_table_first_step_is_sorted_vocabulary():
    lm = NGramLM()
    table = beam_table(lm, lm.encode("i am going to the"), 3, 3)
    assert [lm.decode(t) for t, _ in table[0]] == ["store", "park", "beach"]
    assert [lm.decode(t) for t, _ in table[2]][0] == "park at noon"


def test_hypotheses_sorted_and_eos_terminated():
    model = RandomBigramLM(10, seed=3)
    hyps = beam_search(model, [2], 4, 8, eos_token_id=0)
    assert all(isinstance(h, Hypothesis) for h in hyps)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:
        assert 0 not in h.tokens[:-1] and (h.tokens[-1] == 0 or len(h.tokens) == 8)


def test_length_penalty_zero_is_summed_logprob():
    model = RandomBigramLM(10, seed=4)
    for h in beam_search(model, [2], 3, 6, eos_token_id=0, length_penalty=0.0):
        assert h.score == pytest.approx(sequence_logprob(model, [2], h.tokens), rel=1e-5)


def test_deterministic():
    model = RandomBigramLM(10, seed=4)
    assert beam_search(model, [1, 2], 3, 6, eos_token_id=0) == beam_search(model, [1, 2], 3, 6, eos_token_id=0)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    (dict(num_beams=0), "num_beams"),
    (dict(num_beams=2.5), "num_beams"),
    (dict(prompt=[]), "prompt"),
    (dict(prompt=[[1, 2]]), "prompt"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(eos_token_id=10), "eos_token_id"),
    (dict(eos_token_id=-1), "eos_token_id"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(model=lambda ids: torch.zeros(ids.shape[0], 1, 5)), "logits"),
    (dict(model=lambda ids: torch.zeros(ids.shape[0] + 1, 5)), "logits"),
])
def test_bad_input_raises_value_error_naming_the_argument(kwargs, match):
    args = dict(model=RandomBigramLM(5), prompt=[1], num_beams=2, max_new_tokens=3, eos_token_id=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        beam_search(**args)


def test_beam_step_bad_shapes():
    with pytest.raises(ValueError, match="logprobs"):
        beam_step(torch.zeros(2), torch.zeros(6), 2)
    with pytest.raises(ValueError, match="beam_scores"):
        beam_step(torch.zeros(3), torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="k must"):
        beam_step(torch.zeros(2), torch.zeros(2, 4), 0)
