"""aiterms.reward_model and aiterms.preferences: simulated annotators, the Bradley-Terry loss, pairwise accuracy and
the reward-model training loop (checked against TRL's RewardTrainer.compute_loss on the same tensors)."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from aiterms import arithmetic, preferences, reward_model
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

torch.set_num_threads(1)


def slow_loss(rc, rr, margin=None):
    """The textbook formula, one pair at a time in float64."""
    margin = [0.0] * len(rc) if margin is None else margin
    return sum(-math.log(1 / (1 + math.exp(-(c - r - m)))) for c, r, m in zip(rc, rr, margin)) / len(rc)


# ------------------------------------------------------------------------------------------------ the loss
def test_loss_by_hand():
    assert reward_model.bradley_terry_loss(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(math.log(2))
    # differences 1 and -1: (softplus(-1) + softplus(1)) / 2 = (0.3133 + 1.3133) / 2
    loss = reward_model.bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log1p(math.exp(1))) / 2, rel=1e-6)
    # margin 1 on a difference of 1: log 2
    assert reward_model.bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]),
                                           torch.tensor([1.0])).item() == pytest.approx(math.log(2))


def test_loss_matches_slow_formula_and_is_stable():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(1, 8)
        rc = [rng.gauss(0, 3) for _ in range(n)]
        rr = [rng.gauss(0, 3) for _ in range(n)]
        m = [rng.uniform(0, 1) for _ in range(n)] if rng.random() < 0.5 else None
        t = lambda xs: None if xs is None else torch.tensor(xs, dtype=torch.float64)
        got = reward_model.bradley_terry_loss(t(rc), t(rr), t(m))
        assert got.item() == pytest.approx(slow_loss(rc, rr, m), rel=1e-9)
    big = reward_model.bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0]))
    assert math.isfinite(big.item()) and big.item() == pytest.approx(200.0)
    assert reward_model.bradley_terry_loss(torch.tensor([200.0]), torch.tensor([0.0])).item() == pytest.approx(0.0)


def test_loss_gradient():
    rc = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    rr = torch.tensor([0.0, 0.0, 0.5], requires_grad=True)
    gc, gr = torch.autograd.grad(reward_model.bradley_terry_loss(rc, rr), (rc, rr))
    expected = -(1 - torch.sigmoid(torch.tensor([1.0, -2.0, 0.0]))) / 3
    assert torch.allclose(gc, expected) and torch.allclose(gr, -expected)


def test_loss_and_accuracy_match_trl():
    """TRL's RewardTrainer.compute_loss itself, called with a minimal stand-in trainer and model."""
    trl_reward = pytest.importorskip("trl.trainer.reward_trainer")
    rng = torch.Generator().manual_seed(0)
    for use_margin in (False, True):
        rc, rr = torch.randn(16, generator=rng) * 2, torch.randn(16, generator=rng) * 2
        margin = torch.rand(16, generator=rng)
        trainer = SimpleNamespace(
            model=SimpleNamespace(training=False), args=SimpleNamespace(center_rewards_coefficient=None),
            accelerator=SimpleNamespace(gather=lambda x: x, gather_for_metrics=lambda x: x),
            _metrics={"eval": defaultdict(list), "train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
        model = lambda **kw: SimpleNamespace(logits=torch.cat([rc, rr])[:, None])
        inputs = {"attention_mask": torch.ones(32, 4)} | ({"margin": margin} if use_margin else {})
        theirs = trl_reward.RewardTrainer.compute_loss(trainer, model, inputs)
        ours = reward_model.bradley_terry_loss(rc, rr, margin if use_margin else None)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
        # no ties among random floats: TRL's accuracy (ties count 0) is ours (ties count 1/2)
        assert reward_model.pairwise_accuracy(rc, rr) == pytest.approx(trainer._metrics["eval"]["accuracy"][-1])


def test_accuracy_by_hand():
    assert reward_model.pairwise_accuracy(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 0.5, 0.0])) == 0.5
    assert reward_model.pairwise_accuracy(torch.zeros(5), torch.zeros(5)) == 0.5
    assert reward_model.pairwise_accuracy(torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.zeros(4)) == 0.875
    assert isinstance(reward_model.pairwise_accuracy(torch.ones(1), torch.zeros(1)), float)


@pytest.mark.parametrize("fn", [reward_model.bradley_terry_loss, reward_model.pairwise_accuracy])
def test_bad_pairs(fn):
    with pytest.raises(ValueError, match="same length"):
        fn(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="same length"):
        fn(torch.ones(1), torch.ones(4))               # no broadcasting
    with pytest.raises(ValueError, match="at least one"):
        fn(torch.ones(0), torch.ones(0))
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.ones(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="margin"):
        reward_model.bradley_terry_loss(torch.ones(2), torch.ones(2), torch.ones(3))


# ------------------------------------------------------------------------------------------------ annotators
def test_utility_orders_correct_then_form_then_length():
    p = arithmetic.Problem(47, 85, "+")
    right = arithmetic.cot_response(p)                          # "7+5+0=12|4+8+1=13|=132"
    u = lambda r: preferences.utility(p, r)
    assert u(right) == pytest.approx(1.0 + 0.3 + 0.3)
    assert u("132") == pytest.approx(1.0)                      # right, not step by step
    assert u(right) > u("132") > u("7+5+0=12|4+8+1=13|=133") > u("7+5+0=12|4+8+0=12|=122") > u("")
    assert u(right + "0") < u(right)                           # longer, and wrong
    # "=0132" reads as the right answer 132 but is not canonical, so not well formed; one character too long
    assert u("7+5+0=12|4+8+1=13|=0132") == pytest.approx(1.0 + 0.3 * 1.0 - 0.02)


def test_preference_probability_and_label_quality():
    cfg = preferences.AnnotatorConfig(temperature=0.5, flip_prob=0.1)
    p = preferences.preference_probability(torch.tensor([1.0, 0.0, 0.3]), torch.tensor([0.0, 1.0, 0.3]), cfg)
    s = 1 / (1 + math.exp(-2.0))
    assert p.tolist() == pytest.approx([0.9 * s + 0.1 * (1 - s), 0.9 * (1 - s) + 0.1 * s, 0.5])
    # ties are left out of the quality: both strict pairs are right with probability 0.9 s + 0.1 (1 - s)
    q = preferences.label_quality(torch.tensor([1.0, 0.0, 0.3]), torch.tensor([0.0, 1.0, 0.3]), cfg)
    assert q == pytest.approx(0.9 * s + 0.1 * (1 - s))
    with pytest.raises(ValueError, match="same shape"):
        preferences.preference_probability(torch.ones(2), torch.ones(3))


def test_annotators_match_their_known_quality():
    p = arithmetic.Problem(47, 85, "+")
    right, wrong = arithmetic.cot_response(p), "7+5+0=12|4+8+1=13|=133"
    cfg = preferences.AnnotatorConfig(temperature=0.5, flip_prob=0.1)
    pairs = preferences.Pairs([p] * 4000, [right, wrong] * 2000, [wrong, right] * 2000)
    labelled = preferences.annotate(pairs, cfg, seed=3)
    agree = sum(y == t for y, t in zip(labelled.label, labelled.true_label())) / len(labelled)
    expected = preferences.label_quality(torch.tensor(labelled.utility_a), torch.tensor(labelled.utility_b), cfg)
    assert agree == pytest.approx(expected, abs=0.02)             # 4000 Bernoulli draws: sd 0.005
    assert labelled.label == preferences.annotate(pairs, cfg, seed=3).label
    chosen, rejected = labelled.chosen_rejected()
    assert all(c in (right, wrong) and r != c for c, r in zip(chosen, rejected))


def test_annotator_config_is_validated():
    for bad in ({"temperature": 0.0}, {"flip_prob": 0.7}, {"w_length": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            preferences.AnnotatorConfig(**bad)
    with pytest.raises(ValueError, match="one entry per problem"):
        preferences.Pairs([arithmetic.Problem(1, 2, "+")], ["3"], [])
    with pytest.raises(ValueError, match="no labels"):
        preferences.Pairs([arithmetic.Problem(1, 2, "+")], ["3"], ["4"]).chosen_rejected()


def test_pairs_add_and_subset():
    x = preferences.annotate(preferences.Pairs([arithmetic.Problem(1, 2, "+")], ["3"], ["4"]), seed=0)
    y = preferences.annotate(preferences.Pairs([arithmetic.Problem(5, 4, "-")] * 2, ["1", "2"], ["1", "0"]), seed=1)
    both = x + y
    assert len(both) == 3 and both.a == ["3", "1", "2"] and both.label == x.label + y.label
    assert both.utility_b == x.utility_b + y.utility_b and both.subset([1, 2]).a == y.a
    with pytest.raises(ValueError, match="labelled and unlabelled"):
        x + preferences.Pairs([arithmetic.Problem(1, 2, "+")], ["3"], ["4"])


def test_sample_pairs_is_deterministic():
    model = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=48, n_layer=1, n_head=2, n_embd=16))
    a = preferences.sample_pairs(model, 3, digits=2, seed=5, max_new_tokens=6)
    b = preferences.sample_pairs([model], 3, digits=2, seed=5, max_new_tokens=6)
    assert len(a) == 3 and a.a == b.a and a.b == b.b and a.problems == b.problems


# ------------------------------------------------------------------------------------------------ training
def test_encode_reads_the_eos():
    ids, last = reward_model.encode([arithmetic.Problem(4, 5, "+"), arithmetic.Problem(12, 3, "-")], ["9", "12-3-0=9"])
    assert ids[torch.arange(2), last].tolist() == [TOKENIZER.eos_id, TOKENIZER.eos_id]
    assert TOKENIZER.decode(ids[1]) == "12-3=" + "12-3-0=9"


def test_train_learns_an_easy_preference():
    """A tiny random transformer learns 'step by step beats a bare number' from 24 comparisons."""
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=48, n_layer=1, n_head=2, n_embd=32))
    problems = arithmetic.sample_problems(32, 2, seed=1, ops=("+",))
    chosen = [arithmetic.cot_response(p) for p in problems]
    rejected = [str(p.answer + 1) for p in problems]
    cfg = reward_model.RewardModelConfig(epochs=8, batch_size=8, lr=3e-3, seed=0)
    model, history = reward_model.train(base, problems[:24], chosen[:24], rejected[:24], cfg)
    assert history["loss"][-1] < history["loss"][0]
    with torch.no_grad():
        rc = reward_model.rewards(model, problems[24:], chosen[24:])
        rr = reward_model.rewards(model, problems[24:], rejected[24:])
    assert reward_model.pairwise_accuracy(rc, rr) == 1.0
    again, _ = reward_model.train(base, problems[:24], chosen[:24], rejected[:24], cfg)
    with torch.no_grad():
        assert torch.equal(reward_model.rewards(again, problems[24:], chosen[24:]), rc)   # deterministic
    pairs = preferences.annotate(preferences.Pairs(problems[24:], chosen[24:], rejected[24:]),
                                 preferences.AnnotatorConfig(flip_prob=0.0, temperature=0.01))
    assert reward_model.evaluate(model, pairs) == {"label_accuracy": 1.0, "true_accuracy": 1.0}


def test_train_rejects_bad_input():
    base = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=48, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="same length"):
        reward_model.train(base, [arithmetic.Problem(1, 2, "+")], ["3"], [])
    with pytest.raises(ValueError, match="epochs"):
        reward_model.RewardModelConfig(epochs=0)
