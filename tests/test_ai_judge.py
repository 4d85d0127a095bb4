"""aiterms.ai_judge: combining both orders, agreement, position bias, and the trained pair judge."""
from __future__ import annotations

import math

import pytest
import torch

from aiterms import ai_judge, arithmetic
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

torch.set_num_threads(1)


def biased(bias):
    """P(first better) = sigmoid(len(first) - len(second) + bias)."""
    return lambda prompts, first, second: torch.sigmoid(
        torch.tensor([len(x) - len(y) + bias for x, y in zip(first, second)], dtype=torch.float64))


def test_both_orders_by_hand_and_symmetric():
    sig = lambda x: 1 / (1 + math.exp(-x))
    p = ai_judge.judge_both_orders(biased(1.0), ["q", "r"], ["aaa", "b"], ["a", "b"])
    assert p.tolist() == pytest.approx([(sig(3) + 1 - sig(-1)) / 2, 0.5])
    q = ai_judge.judge_both_orders(biased(1.0), ["q", "r"], ["a", "b"], ["aaa", "b"])
    assert (p + q).tolist() == pytest.approx([1.0, 1.0])
    # without bias nothing changes
    assert ai_judge.judge_both_orders(biased(0.0), ["q"], ["aaa"], ["a"]).item() == pytest.approx(sig(2))


def test_both_orders_bad_input():
    with pytest.raises(ValueError, match="same length"):
        ai_judge.judge_both_orders(biased(0.0), ["q"], ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ai_judge.judge_both_orders(lambda p, x, y: torch.tensor([2.0] * len(x)), ["q"], ["a"], ["b"])
    with pytest.raises(ValueError, match="one entry per pair"):
        ai_judge.judge_both_orders(lambda p, x, y: torch.tensor([0.5, 0.5]), ["q"], ["a"], ["b"])


def test_agreement_rate():
    assert ai_judge.agreement_rate(torch.tensor([0.9, 0.2, 0.6]), torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    assert ai_judge.agreement_rate([0.5, 0.5], [1, 0]) == 0.5
    assert ai_judge.agreement_rate([1.0, 0.0, 0.5, 0.7], [1, 1, 0, 1]) == pytest.approx(2.5 / 4)
    for bad, match in [(([0.9], [1, 0]), "same length"), (([], []), "at least one"), (([1.5], [1]), r"\[0, 1\]"),
                       (([0.3], [2]), "labels must be 0"), (([-0.1], [0]), r"\[0, 1\]")]:
        with pytest.raises(ValueError, match=match):
            ai_judge.agreement_rate(*bad)


def test_position_bias():
    # a judge that always says 0.8 for the first answer: fully biased, never consistent
    out = ai_judge.position_bias(torch.full((4,), 0.8), torch.full((4,), 0.8))
    assert out == pytest.approx({"first_preferred": 0.8, "consistency": 0.0})
    out = ai_judge.position_bias(torch.tensor([0.9, 0.3]), torch.tensor([0.2, 0.4]))
    assert out == pytest.approx({"first_preferred": 0.45, "consistency": 0.5})
    with pytest.raises(ValueError):
        ai_judge.position_bias(torch.tensor([0.9]), torch.tensor([0.2, 0.4]))


def test_encode_pairs_fits_the_context():
    p = arithmetic.Problem(4321, 8765, "+")
    long = "1+2+0=3|" * 10 + "=3"
    ids, last = ai_judge.encode_pairs([p, p], [long, "1"], [long, "2"], block_size=96)
    assert ids.shape[1] <= 96 and ids[torch.arange(2), last].tolist() == [TOKENIZER.eos_id] * 2
    assert TOKENIZER.decode(ids[1]) == "4321+8765=12"
    assert (ids[1] == TOKENIZER.sep_id).sum() == 2


def test_trained_judge_learns_and_counts_calls():
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32))
    problems = arithmetic.sample_problems(40, 2, seed=2, ops=("+",))
    good = [arithmetic.cot_response(p) for p in problems]
    bad = [str(p.answer + 1) for p in problems]
    a = [g if i % 2 else b for i, (g, b) in enumerate(zip(good, bad))]
    b = [b if i % 2 else g for i, (g, b) in enumerate(zip(good, bad))]
    labels = [i % 2 for i in range(40)]
    judge, history = ai_judge.train_judge(base, problems[:32], a[:32], b[:32], labels[:32],
                                          ai_judge.JudgeConfig(epochs=15, batch_size=8, lr=3e-3))
    assert sum(history["loss"][-4:]) < sum(history["loss"][:4])
    p = ai_judge.judge_both_orders(judge, problems[32:], a[32:], b[32:])
    assert judge.calls == 16
    assert ai_judge.agreement_rate(p, labels[32:]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        ai_judge.train_judge(base, problems[:2], a[:2], b[:2], labels[:1])
