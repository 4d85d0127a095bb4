"""aiterms.sft: the masked SFT loss against a manual computation, and a tiny training run."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from aiterms import arithmetic as ar
from aiterms.evaluation import score, solve
from aiterms.sft import TrainConfig, encode_text, lm_loss, pretrain_examples, sft_examples, sft_loss, train
from aiterms.tokenizer import TOKENIZER, collate
from aiterms.transformer import GPT, GPTConfig


def test_sft_loss_is_the_mean_over_response_tokens():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, generator=g)
    labels = torch.tensor([[1, 2, 3], [4, 0, -100]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    logp = torch.log_softmax(logits, -1)
    manual = -(logp[0, 1, 2] + logp[0, 2, 3] + logp[1, 0, 4]) / 3
    assert float(sft_loss(logits, labels, mask)) == pytest.approx(float(manual), rel=1e-5, abs=1e-6)
    # unmasked: every position whose label is not -100
    every = -(logp[0, 0, 1] + logp[0, 1, 2] + logp[0, 2, 3] + logp[1, 0, 4] + logp[1, 1, 0]) / 5
    assert float(lm_loss(logits, labels)) == pytest.approx(float(every), rel=1e-5, abs=1e-6)


def test_sft_loss_bad_input():
    with pytest.raises(ValueError, match="mask selects no position"):
        sft_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="expected logits"):
        sft_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(2))


def test_unmasked_examples_learn_every_next_token():
    (ids, labels, mask), = sft_examples([("1+2=", "3")], 16, masked=False)
    assert labels[:-1] == ids[1:] and labels[-1] == TOKENIZER.eos_id and mask == [1] * len(ids)
    (_, masked_labels, masked_mask), = sft_examples([("1+2=", "3")], 16)
    assert sum(masked_mask) == 2 and masked_labels[-2:] == labels[-2:]


def test_encode_text_and_examples():
    ids, labels, mask = encode_text("1+2=3", max_len=16)
    assert ids[0] == TOKENIZER.bos_id and labels[-1] == TOKENIZER.eos_id and sum(mask) == len(ids) == 6
    with pytest.raises(ValueError, match="longer than the context"):
        encode_text("1+2=3", max_len=3)
    assert len(pretrain_examples(["1+2=3", "4-1=3"], 16)) == 2


def prompt_loss(model, pairs) -> float:
    """Mean next-token loss on the prompt characters (after <bos>, before <sep>)."""
    texts = pretrain_examples([p for p, _ in pairs], 32)
    ids, labels, _ = collate(texts)
    labels[:, -1] = -100  # the <eos> after the prompt text is not part of the prompt
    with torch.no_grad():
        logits, _ = model(ids)
    return float(lm_loss(logits, labels))


def test_training_learns_and_masking_leaves_prompts_unlearned():
    """Overfit a few pairs. With the mask the model learns the answers but not to predict the prompts;
    without it, it learns both."""
    problems = ar.sample_problems(16, 1, seed=0, ops=("+",))
    pairs = [(ar.prompt(p), ar.direct_response(p)) for p in problems]
    config = GPTConfig(TOKENIZER.vocab_size, 32, n_layer=1, n_head=2, n_embd=32)
    models = {}
    for masked in (True, False):
        models[masked] = GPT.from_seed(config, 0)
        losses = train(models[masked], sft_examples(pairs, 32, masked=masked),
                       TrainConfig(steps=150, batch_size=16, lr=1e-2, warmup=10), progress=False)
        assert losses[-1] < 0.25 * losses[0]
        assert score(problems, solve(models[masked], problems, "direct"))["accuracy"] >= 0.75
    assert prompt_loss(models[True], pairs) > 2 * prompt_loss(models[False], pairs)


def test_solve_and_score_shapes_and_determinism():
    config = GPTConfig(TOKENIZER.vocab_size, 32, n_layer=1, n_head=2, n_embd=32)
    model = GPT.from_seed(config, 1)
    problems = ar.sample_problems(5, 1, seed=3) + ar.sample_problems(3, 2, seed=3)
    a = solve(model, problems, "direct", samples=3, temperature=1.0, seed=7, max_new_tokens=4)
    assert [len(x) for x in a] == [3] * 8
    assert a == solve(model, problems, "direct", samples=3, temperature=1.0, seed=7, max_new_tokens=4)
    result = score(problems, a, k=2)
    assert set(result) == {"accuracy", "majority", "pass@1", "pass@2"} and 0 <= result["pass@2"] <= 1
    with pytest.raises(ValueError, match="temperature"):
        solve(model, problems, "direct", samples=2)


def _sft_in_group(model, examples, config):
    return model, train(model, examples, config, progress=False)


def test_data_parallel_sft_step_is_the_whole_batch_token_mean():
    """One step on 2 processes == one step on the whole batch here. The batch mixes one-digit and four-digit answers,
    so its ranks hold different numbers of response tokens: averaging the two ranks' own means (the micro-batch
    trap) would give another gradient, and the weights would differ by far more than the rounding checked here."""
    from aiterms.distributed import data_parallel
    problems = ar.sample_problems(4, 1, seed=0, ops=("+",)) + ar.sample_problems(4, 4, seed=0, ops=("+",))
    examples = sft_examples([(ar.prompt(p), ar.cot_response(p)) for p in problems], 64)
    config = TrainConfig(steps=1, batch_size=8, lr=1e-2, warmup=1, seed=1)
    start = GPT.from_seed(GPTConfig(TOKENIZER.vocab_size, 64, n_layer=1, n_head=2, n_embd=16), 0)
    parallel, losses = data_parallel(_sft_in_group, copy.deepcopy(start), 2, examples, config)
    alone = copy.deepcopy(start)
    assert losses == pytest.approx(train(alone, examples, config, progress=False), rel=1e-5)
    idx = torch.randint(len(examples), (8,), generator=torch.Generator().manual_seed(1)).tolist()
    tokens = [sum(examples[i][2]) for i in idx]
    assert sum(tokens[0::2]) != sum(tokens[1::2])         # the ranks' token counts differ: the trap is live
    moved = max((a - b).abs().max().item() for a, b in zip(start.parameters(), alone.parameters()))
    error = max((a - b).abs().max().item() for a, b in zip(parallel.parameters(), alone.parameters()))
    assert moved > 1e-3 and error < 1e-6, (moved, error)
    with pytest.raises(Exception, match="batch_size=7 must be divisible by the number of processes"):
        data_parallel(_sft_in_group, copy.deepcopy(start), 2, examples, TrainConfig(steps=1, batch_size=7))


def test_training_stops_once_until_says_so_and_at_stop():
    problems = ar.sample_problems(8, 1, seed=0, ops=("+",))
    examples = sft_examples([(ar.prompt(p), ar.direct_response(p)) for p in problems], 32)
    model = GPT.from_seed(GPTConfig(TOKENIZER.vocab_size, 32, n_layer=1, n_head=2, n_embd=16), 0)
    asked = []

    def until(m):
        asked.append(m.training)
        return len(asked) == 3

    losses = train(model, examples, TrainConfig(steps=50, batch_size=4), progress=False, until=until, check_every=5)
    assert len(losses) == 15 and asked == [False, False, False] and not model.training
    assert len(train(model, examples, TrainConfig(steps=50, batch_size=4, stop=7), progress=False)) == 7
    with pytest.raises(ValueError, match="check_every"):
        train(model, examples, TrainConfig(steps=5), progress=False, until=until, check_every=0)
