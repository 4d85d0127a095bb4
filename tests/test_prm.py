"""aiterms.prm (and StepVerifier.save/load): segments and labels by hand, MC labels against a greedy
oracle, batched scores against one-row-at-a-time scores, aggregation and votes by hand and against majority vote,
training, checkpoints, bad input."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from aiterms import checkpoints
from aiterms import arithmetic, prm
from aiterms.arithmetic import Problem
from aiterms.evaluation import majority_vote
from aiterms.prm import StepVerifier
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig, generate

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
SFT = checkpoints.RELEASED / "sft-cot.pt"   # the released model: the same on every machine
RIGHT = "7+5+0=12|4+8+1=13|=132"          # 47+85


def tiny_policy(seed: int = 0) -> GPT:
    return GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32), seed)


# ------------------------------------------------------------------------------------------- segments and labels
def test_segments_and_positions_by_hand():
    assert prm.segments(RIGHT) == ["7+5+0=12", "4+8+1=13", "=132"]
    assert prm.segments("") == [""]
    # s = <bos> 4 7 + 8 5 = <sep> 7 + 5 + 0 = 1 2 | ...: the response starts at index len("47+85=") + 2 = 8
    positions = prm.segment_positions(6, RIGHT)
    assert positions == [8 + 8, 8 + 17, 8 + len(RIGHT)]
    ids, pos = prm.encode_scored([Problem(47, 85)], [RIGHT], block_size=96)
    row = ids[0].tolist()
    assert pos == [positions]
    assert [TOKENIZER.tokens[row[p]] for p in positions] == ["|", "|", "<eos>"]


@pytest.mark.parametrize("problem, response, expected", [
    (Problem(47, 85), RIGHT, [True, True, True]),
    (Problem(47, 85), "7+5+0=12|4+8+1=13|=133", [True, True, False]),     # right steps, wrong answer
    (Problem(47, 85), "7+5+0=13|4+8+1=13|=132", [False, False, False]),   # a wrong step, then a lucky answer
    (Problem(47, 85), "7+5+0=12|4+8+0=12|=122", [True, False, False]),    # the carry forgotten
    (Problem(47, 85), "7+5+0=12|=12", [True, False]),                     # a step missing
    (Problem(47, 85), "7+5+0=12|4+8", [True, False]),                     # cut off: no answer segment
    (Problem(47, 85), "132", [False]),                                    # direct format: one wrong "step"
    (Problem(85, 47, "-"), "15-7-0=8|8-4-1=3|=38", [True, True, True]),
])
def test_true_step_labels_by_hand(problem, response, expected):
    labels = prm.true_step_labels(problem, response)
    assert labels == expected and len(labels) == len(prm.segments(response))


def test_mc_labels_at_near_zero_temperature_match_a_greedy_oracle():
    """With temperature -> 0 every completion is the greedy one, so each label is 0 or 1: does greedy decoding from
    the prefix reach the right answer?"""
    policy = GPT.load(SFT)
    problems = arithmetic.sample_problems(3, 3, seed=5, ops=("+", "-"))
    responses = []
    for p in problems:
        gold = arithmetic.cot_response(p)
        responses += [gold, gold.replace("=", "=9", 1)]                 # the gold one, and a broken first step
    rows = [p for p in problems for _ in range(2)]
    labels = prm.mc_step_labels(policy, rows, responses, rollouts=3, temperature=1e-4,
                                generator=torch.Generator().manual_seed(0))
    for p, r, lab in zip(rows, responses, labels):
        segs = prm.segments(r)
        assert len(lab) == len(segs)
        assert lab[-1] == arithmetic.correctness_reward(p, r)
        for k in range(len(segs) - 1):
            prefix = "|".join(segs[:k + 1]) + "|"
            ids = TOKENIZER.encode_prompt(arithmetic.prompt(p)) + TOKENIZER.encode(prefix)
            out = generate(policy, ids, policy.config.block_size - len(ids) + 1, eos_id=TOKENIZER.eos_id)
            assert lab[k] == arithmetic.correctness_reward(p, prefix + TOKENIZER.decode(out)), (r, k)
    assert labels[0] == [1.0] * len(labels[0])                          # the gold answer of a 3-digit problem


def test_mc_labels_soft_hard_and_determinism():
    policy = GPT.load(SFT)
    problems = arithmetic.sample_problems(3, 4, seed=11, ops=("+", "-"))
    rows, responses = prm.sample_responses(policy, problems, 2, 1.0, torch.Generator().manual_seed(1))
    soft = prm.mc_step_labels(policy, rows, responses, 4, generator=torch.Generator().manual_seed(2))
    hard = prm.mc_step_labels(policy, rows, responses, 4, generator=torch.Generator().manual_seed(2), hard=True)
    assert soft == prm.mc_step_labels(policy, rows, responses, 4, generator=torch.Generator().manual_seed(2))
    for s, h in zip(soft, hard):
        assert all(x in (0.0, 0.25, 0.5, 0.75, 1.0) for x in s)
        assert h == [float(x > 0) for x in s]


@pytest.mark.parametrize("kwargs, match", [
    (dict(problems=[Problem(1, 2)], responses=["3", "4"], rollouts=2), "same length"),
    (dict(problems=[], responses=[], rollouts=2), "non-empty"),
    (dict(problems=[Problem(1, 2)], responses=["3"], rollouts=0), "rollouts"),
    (dict(problems=[Problem(1, 2)], responses=["3"], rollouts=2, temperature=0.0), "temperature"),
])
def test_mc_labels_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prm.mc_step_labels(tiny_policy(), **kwargs)


# ------------------------------------------------------------------------------------------- scoring
def slow_scores(verifier: StepVerifier, problem: Problem, response: str) -> list[float]:
    """The module docstring's formula, one token at a time: q_t = sigmoid(alpha log p(x_t | x_<t) + beta) from the
    verifier's language model, and score_k = the product of q_t from the first response token to segment k's end."""
    prompt = TOKENIZER.encode_prompt(arithmetic.prompt(problem))
    tokens = TOKENIZER.encode(response) + [TOKENIZER.eos_id]
    log_score, out, ends = 0.0, [], set(prm.segment_positions(len(arithmetic.prompt(problem)), response))
    for i, token in enumerate(tokens):
        with torch.no_grad():
            logits = verifier.lm(torch.tensor([prompt + tokens[:i]]))[0][0, -1]
        logp = torch.log_softmax(logits.double(), -1)[token].item()
        z = verifier.alpha.item() * logp + verifier.beta.item()
        log_score += -math.log1p(math.exp(-z))
        if len(prompt) + i in ends:
            out.append(math.exp(log_score))
    return out


def test_batched_scores_equal_the_formula_token_by_token():
    verifier = StepVerifier(tiny_policy(3))
    with torch.no_grad():
        verifier.alpha.fill_(0.7)
        verifier.beta.fill_(2.5)
    problems = [Problem(47, 85), Problem(5, 3, "-"), Problem(1234, 999), Problem(47, 85)]
    responses = [RIGHT, "5-3-0=2|=2", "4+9+0=13|3+9+1=13|2+9+1=12|1+0+1=2|=2233", "7+5+0=12|4+8+1=13|=999"]
    batched = prm.step_scores(verifier, problems, responses, batch_size=3)
    for p, r, scores in zip(problems, responses, batched):
        assert scores == pytest.approx(slow_scores(verifier, p, r), rel=1e-4)
        assert all(0 < s < 1 for s in scores)
        assert all(a >= b for a, b in zip(scores, scores[1:]))       # a step is on track only if the ones before are
    # causal: two responses that share their first two steps share their first two scores
    assert batched[0][:2] == pytest.approx(batched[3][:2], abs=1e-6) and batched[0][2] != batched[3][2]
    assert prm.outcome_scores(verifier, problems, responses) == pytest.approx([s[-1] for s in batched])


def test_an_untrained_verifier_is_the_policys_confidence():
    """Built from the released step-by-step model, before any training, a wrong step already scores lower: the
    policy rarely writes a wrong sum, so its probability of one is small."""
    verifier = StepVerifier(GPT.load(SFT))
    right, wrong = prm.step_scores(verifier, [Problem(47, 85)] * 2, [RIGHT, "7+5+0=13|4+8+1=13|=133"])
    assert wrong[0] < 0.5 * right[0]


def test_scoring_bad_input():
    critic = StepVerifier(tiny_policy())
    with pytest.raises(ValueError, match="StepVerifier"):
        prm.step_scores(tiny_policy(), [Problem(1, 2)], ["3"])
    with pytest.raises(ValueError, match="same length"):
        prm.step_scores(critic, [Problem(1, 2)], ["3", "4"])
    with pytest.raises(ValueError, match="batch_size"):
        prm.step_scores(critic, [Problem(1, 2)], ["3"], batch_size=0)


# ------------------------------------------------------------------------------------------- aggregation and votes
def test_aggregate_by_hand():
    s = [0.9, 0.5, 0.8]
    assert prm.aggregate_step_scores(s, "min") == 0.5
    assert prm.aggregate_step_scores(s, "prod") == pytest.approx(0.36)
    assert prm.aggregate_step_scores(s, "last") == 0.8
    assert prm.aggregate_step_scores(torch.tensor([0.25, 1.0]), "prod") == 0.25
    assert prm.aggregate_step_scores([0.0, 1.0], "min") == 0.0


@pytest.mark.parametrize("scores, method, match", [
    ([], "min", "at least one"), ([0.5, 1.01], "min", r"\[0, 1\]"), ([-0.1], "last", r"\[0, 1\]"),
    ([math.nan], "prod", r"\[0, 1\]"), ([0.5], "mean", "method"), (["a"], "min", "numbers"),
])
def test_aggregate_bad_input(scores, method, match):
    with pytest.raises(ValueError, match=match):
        prm.aggregate_step_scores(scores, method)


def test_best_of_n_by_hand():
    assert prm.best_of_n([132, 122, 142], [0.25, 0.875, 0.5]) == 122
    assert prm.best_of_n([132, 122, 122], [0.5, 0.75, 0.75]) == 122
    assert prm.best_of_n([122, 132], [0.5, 0.5]) == 122                   # ties: the first response
    assert prm.best_of_n([None, 132, 122], [0.9, 0.5, 0.25]) == 132       # no answer: skipped
    assert prm.best_of_n([None], [0.9]) is None and prm.best_of_n([], []) is None
    assert prm.best_of_n([0, 5], [0.0, 0.0]) == 0


def test_weighted_vote_by_hand_and_against_majority_vote():
    assert prm.weighted_majority_vote([132, 122, 122], [0.875, 0.375, 0.375]) == 132   # weights beat counts
    assert prm.weighted_majority_vote([132, 122, 122], [0.625, 0.375, 0.375]) == 122
    assert prm.weighted_majority_vote([122, 132, 132, 122], [0.25, 0.5, 0.25, 0.5]) == 122   # a tie: first answer
    assert prm.weighted_majority_vote([None, None, 5], [1.0, 1.0, 0.1]) == 5
    assert prm.weighted_majority_vote([None], [1.0]) is None
    rng = random.Random(0)
    for _ in range(200):   # with every score 1, the weighted vote is the plain majority vote (same tie rule)
        answers = [rng.choice([None, 1, 2, 3, 4]) for _ in range(rng.randint(0, 9))]
        assert prm.weighted_majority_vote(answers, [1.0] * len(answers)) == majority_vote(answers)


@pytest.mark.parametrize("fn", [prm.best_of_n, prm.weighted_majority_vote])
@pytest.mark.parametrize("answers, scores, match", [
    ([1, 2], [0.5], "same length"), ([1], [1.5], r"\[0, 1\]"), ([None, 1], [-0.5, 0.5], r"\[0, 1\]"),
])
def test_votes_bad_input(fn, answers, scores, match):
    with pytest.raises(ValueError, match=match):
        fn(answers, scores)


# ------------------------------------------------------------------------------------------- training and checkpoints
def test_train_reward_model_fits_its_labels_and_checks_them():
    policy = tiny_policy()
    problems = [Problem(a, b) for a, b in [(12, 34), (56, 7), (8, 90), (21, 43)]]
    responses = [arithmetic.cot_response(p) for p in problems]
    responses[1] = responses[1].replace("=", "=1", 1)                   # a wrong first step
    labels = [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.5, 0.0]]
    config = prm.PRMConfig(steps=100, batch_size=4, lr=1e-2)
    model, losses = prm.train_reward_model(policy, problems, responses, labels, config)
    assert len(losses) == 100 and sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    scores = prm.step_scores(model, problems, responses)
    assert min(scores[0]) > 0.7 and max(scores[1]) < 0.3
    again, losses2 = prm.train_reward_model(policy, problems, responses, labels, config)
    assert losses2 == losses                                            # deterministic for a seed
    with pytest.raises(ValueError, match="one label per segment"):
        prm.train_reward_model(policy, problems, responses, [[1.0]] * 4, config)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prm.train_reward_model(policy, problems, responses, [[1.0, 1.0, 2.0]] + labels[1:], config)


def test_verifier_save_and_load(tmp_path):
    verifier = StepVerifier(tiny_policy(1))
    with torch.no_grad():
        verifier.beta.fill_(0.5)
    verifier.save(tmp_path / "v.pt", kind="prm", metrics={"auc": 0.9})
    loaded = StepVerifier.load(tmp_path / "v.pt")
    ids = torch.tensor([[1, 4, 5, 14, 6, 16, 3, 7]])
    assert torch.equal(loaded(ids), verifier(ids)) and not loaded.training
    assert loaded.metadata == {"kind": "prm", "metrics": {"auc": 0.9}}
    tiny_policy().save(tmp_path / "gpt.pt")
    with pytest.raises(ValueError, match="StepVerifier.save"):
        StepVerifier.load(tmp_path / "gpt.pt")
    with pytest.raises(FileNotFoundError, match="make models"):
        prm.load_reward_model(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="GPT"):
        StepVerifier("not a model")


def test_train_reward_models_end_to_end(tmp_path):
    config = prm.PRMConfig(problems=3, samples_per_problem=2, val_problems=2, rollouts=2, steps=2, batch_size=4)
    metrics = prm.train_reward_models(SFT, tmp_path, config)
    for name in prm.REWARD_MODELS:
        model = prm.load_reward_model(tmp_path / f"{name}.pt")
        assert model.metadata["kind"] == name and model.metadata["metrics"]["train_responses"] == 6
    for name in ("prm", "prm_mc", "orm"):
        assert metrics[f"{name}_step_auc"] is None or 0 <= metrics[f"{name}_step_auc"] <= 1
    assert 0 <= metrics["mc_agreement"] <= 1 and metrics["val_responses"] == 4
    assert metrics["config"]["rollouts"] == 2


@pytest.mark.parametrize("kwargs", [dict(problems=0), dict(rollouts=-1), dict(lr=0.0), dict(ops=("*",)),
                                    dict(temperature=-1.0)])
def test_config_bad_values(kwargs):
    with pytest.raises(ValueError):
        prm.PRMConfig(**kwargs)


def test_mc_labels_by_hand():
    outcomes = [[True, True, False, True], [False, False, True, False], [False] * 4, []]
    assert prm.mc_labels(outcomes, False) == [0.75, 0.25, 0.0, 0.0, 0.0]
    assert prm.mc_labels(outcomes, True, hard=True) == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert prm.mc_labels([], True) == [1.0], "a response of one segment: its own outcome"
    assert prm.mc_labels([[1, 0]], 0) == [0.5, 0.0], "0 / 1 count as outcomes"
    for bad in ([[0.5]], [[2]], [["yes"]]):
        with pytest.raises(ValueError, match="outcome"):
            prm.mc_labels(bad, True)
