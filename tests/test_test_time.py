"""aiterms.test_time: best-of-N, adaptive majority vote, curves from a pool of samples, step-level beam search."""
from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import torch

from aiterms import checkpoints
from aiterms import test_time as tt
from aiterms.arithmetic import Problem, extract_answer
from aiterms.evaluation import majority_vote
from aiterms.step_search import verifier
from aiterms.tokenizer import TOKENIZER

torch.set_num_threads(1)
CHECKPOINT = checkpoints.RELEASED / "sft-cot.pt"


class Stream:
    """A sampler that hands out a fixed list of answers in order and records what it was asked for."""

    def __init__(self, answers):
        self.answers, self.pos, self.requests = list(answers), 0, []

    def __call__(self, b):
        self.requests.append(b)
        self.pos += b
        return self.answers[self.pos - b:self.pos]


def slow_adaptive_vote(answers, max_samples, batch_size, min_votes, agreement):
    """An obvious oracle: try every stopping point n = b, 2b, ..., max_samples in order."""
    stops = list(range(batch_size, max_samples, batch_size)) + [max_samples]
    for n in stops:
        seen = answers[:n]
        counts = {a: seen.count(a) for a in seen if a is not None}
        if counts:
            best = max(counts.values())
            leader = [a for a in seen if counts.get(a) == best][0]
            if best >= min_votes and best / n >= agreement:
                return leader, n
    seen = answers[:max_samples]
    return majority_vote(seen), max_samples


# ------------------------------------------------------------------------------------------------ best_of_n
def test_best_of_n_picks_the_highest_score_and_the_first_on_ties():
    assert tt.best_of_n([0.1, 0.9, 0.3]) == 1
    assert tt.best_of_n([0.5, 0.9, 0.9]) == 1
    assert tt.best_of_n([-3.0]) == 0
    assert tt.best_of_n(torch.tensor([0.0, -1.0, 2.0])) == 2
    with pytest.raises(ValueError, match="scores"):
        tt.best_of_n([])
    with pytest.raises(ValueError, match="NaN"):
        tt.best_of_n([0.1, float("nan")])


# ------------------------------------------------------------------------------------------------ adaptive_vote
def test_adaptive_vote_stops_once_the_answers_agree():
    s = Stream([7, 7, 3, 3, 3, 3])
    assert tt.adaptive_vote(s, 6, batch_size=2, min_votes=2, agreement=0.6) == (7, 2)
    assert s.requests == [2]
    s = Stream([1, 2, 1, 1, 5, 5])
    assert tt.adaptive_vote(s, 6, batch_size=2, min_votes=2, agreement=0.6) == (1, 4)  # 3 of 4 agree
    assert s.requests == [2, 2]
    s = Stream([1, 2, 1, 2, 1, 2, 2])
    assert tt.adaptive_vote(s, 7, batch_size=2, min_votes=2, agreement=0.6) == (2, 7)  # never 60%: all 7
    assert s.requests == [2, 2, 2, 1]  # the last round is cut to the budget


def test_adaptive_vote_counts_unparseable_answers_in_the_share():
    # 2 votes for 4 out of 3 drawn is 67% >= 60%; with the Nones, 2 of 4 is only 50%
    s = Stream([4, None, None, 4, 4, 4])
    assert tt.adaptive_vote(s, 6, batch_size=2, min_votes=2, agreement=0.6) == (4, 6)
    assert tt.adaptive_vote(Stream([None] * 5), 5, batch_size=3) == (None, 5)


def test_adaptive_vote_ties_and_plain_majority():
    # min_votes above the budget: never stops early, same as majority vote of everything (ties: first seen)
    answers = [3, 5, 5, 3, None]
    assert tt.adaptive_vote(Stream(answers), 5, batch_size=1, min_votes=6) == (majority_vote(answers), 5) == (3, 5)
    assert tt.adaptive_vote(Stream([9]), 1, batch_size=4, min_votes=1, agreement=1.0) == (9, 1)


def test_adaptive_vote_matches_an_obvious_oracle():
    rng = random.Random(0)
    for _ in range(300):
        m = rng.randint(1, 12)
        answers = [rng.choice([1, 2, 3, None]) for _ in range(m)]
        b, k, agr = rng.randint(1, 5), rng.randint(1, 5), rng.choice([0.3, 0.5, 0.6, 2 / 3, 0.75, 1.0])
        assert tt.adaptive_vote(Stream(answers), m, b, k, agr) == slow_adaptive_vote(answers, m, b, k, agr)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_samples": 0}, "max_samples"), ({"max_samples": 2.0}, "max_samples"), ({"batch_size": 0}, "batch_size"),
    ({"min_votes": -1}, "min_votes"), ({"agreement": 0}, "agreement"), ({"agreement": 1.5}, "agreement")])
def test_adaptive_vote_rejects_bad_settings(kwargs, match):
    args = {"max_samples": 4, "batch_size": 2, "min_votes": 2, "agreement": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        tt.adaptive_vote(Stream([1] * 4), **args)


def test_adaptive_vote_rejects_a_sampler_that_returns_the_wrong_number():
    with pytest.raises(ValueError, match="sample"):
        tt.adaptive_vote(lambda b: [1], 4, batch_size=2)


def test_config_validates():
    assert tt.ScalingConfig().max_samples == 16
    for bad in [{"temperature": 0}, {"max_samples": 0}, {"batch_size": -2}, {"agreement": 0.0}, {"expand": 1.5}]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            tt.ScalingConfig(**bad)


# ------------------------------------------------------------------------------------------------ curves
def test_vote_and_best_of_n_curves_by_hand():
    answers = [[1, 2, 2], [5, 5, 6]]
    tokens = [[10, 20, 30], [1, 1, 1]]
    targets = [2, 6]
    assert tt.vote_curve(answers, tokens, targets, [1, 3]) == [
        {"n": 1, "accuracy": 0.0, "tokens": 5.5}, {"n": 3, "accuracy": 0.5, "tokens": 31.5}]
    scores = [[0.1, 0.9, 0.2], [0.3, 0.3, 0.8]]
    assert tt.best_of_n_curve(answers, scores, tokens, targets, [2, 3]) == [
        {"n": 2, "accuracy": 0.5, "tokens": 16.0}, {"n": 3, "accuracy": 1.0, "tokens": 31.5}]
    with pytest.raises(ValueError, match="pool"):
        tt.vote_curve(answers, tokens, targets, [4])
    with pytest.raises(ValueError, match="one entry per problem"):
        tt.vote_curve(answers, tokens, [2], [1])
    with pytest.raises(ValueError, match="n must be a positive int"):
        tt.vote_curve(answers, tokens, targets, [0])


def test_adaptive_curve_agrees_with_adaptive_vote_and_saves_compute_on_easy_problems():
    answers = [[4, 4, 4, 4, 4, 4], [1, 2, 3, 1, 1, 2]]
    tokens = [[10] * 6, [10] * 6]
    (row,) = tt.adaptive_curve(answers, tokens, [4, 1], max_samples=6, batch_size=2, min_votes=[2], agreement=0.6)
    assert row == {"min_votes": 2, "accuracy": 1.0, "tokens": (20 + 60) / 2, "samples": 4.0, "drawn": [2, 6]}
    fixed = tt.vote_curve(answers, tokens, [4, 1], [6])[0]
    assert fixed["accuracy"] == row["accuracy"] and fixed["tokens"] > row["tokens"]


# ------------------------------------------------------------------------------------------------ with the model
@pytest.fixture(scope="module")
def model():
    from aiterms.transformer import GPT
    if not CHECKPOINT.exists():
        pytest.fail(f"{CHECKPOINT} is missing: run `make models` first")
    return GPT.load(CHECKPOINT)


def test_sample_responses_counts_generated_tokens_and_is_seeded(model):
    p = Problem(4718, 2395, "+")
    texts, tokens = tt.sample_responses(model, p, 6, 1.0, torch.Generator().manual_seed(3))
    assert len(texts) == len(tokens) == 6
    for text, n in zip(texts, tokens):
        assert n == len(TOKENIZER.encode(text)) + 1  # the response and its <eos>
    again = tt.sample_responses(model, p, 6, 1.0, torch.Generator().manual_seed(3))
    assert again == (texts, tokens)
    with pytest.raises(ValueError, match="n must"):
        tt.sample_responses(model, p, 0)
    with pytest.raises(ValueError, match="temperature"):
        tt.sample_responses(model, p, 2, 0.0)


def test_sample_pool_counts_tokens_like_sample_responses_and_is_seeded(model):
    problems = [Problem(4718, 2395, "+"), Problem(58, 67, "+"), Problem(8052, 4567, "-"), Problem(9, 3, "-")]
    texts, tokens = tt.sample_pool(model, problems, 5, 1.0, seed=3)
    assert [len(t) for t in texts] == [len(t) for t in tokens] == [5] * len(problems)
    for rs, ns in zip(texts, tokens):
        for text, n in zip(rs, ns):
            assert n == len(TOKENIZER.encode(text)) + 1  # the response and its <eos>
    assert tt.sample_pool(model, problems, 5, 1.0, seed=3) == (texts, tokens)
    assert tt.sample_pool(model, problems, 5, 1.0, seed=4) != (texts, tokens)
    # smaller batches: a pool of the same shape (other samples: the generator is drawn in another order)
    small = tt.sample_pool(model, problems, 5, 1.0, seed=3, max_batch=3)
    assert [len(t) for t in small[0]] == [5] * len(problems) and small == tt.sample_pool(model, problems, 5, 1.0, 3, 3)
    # a right answer of a small problem shows up among samples of a trained model
    assert any(extract_answer(t) == 125 for t in texts[1])
    with pytest.raises(ValueError, match="n must"):
        tt.sample_pool(model, problems, 0)
    with pytest.raises(ValueError, match="temperature"):
        tt.sample_pool(model, problems, 2, 0.0)
    with pytest.raises(ValueError, match="at least one problem"):
        tt.sample_pool(model, [], 2)


def oracle_step_score(problem, text):
    ok, right = verifier(problem, text)
    return (text.count("|") + right) / (problem.num_steps + 1) if ok else 0.0


def test_step_beam_search_with_an_exact_verifier_finds_right_answers(model):
    problems = [Problem(4718, 2395, "+"), Problem(8052, 4567, "-"), Problem(58, 67, "+")]
    for i, p in enumerate(problems):
        out = tt.step_beam_search(model, p, oracle_step_score, beam_width=2, expand=16, seed=i)
        assert out["answer"] == p.answer == extract_answer(out["response"])
        assert verifier(p, out["response"])[1]
        assert out["tokens"] >= len(out["response"]) + 1 and out["finished"] >= 1
        assert tt.step_beam_search(model, p, oracle_step_score, 2, 16, seed=i) == out  # deterministic


def test_step_beam_search_counts_every_sampled_token(model):
    p = Problem(123, 456, "+")
    out = tt.step_beam_search(model, p, lambda prob, text: 0.0, beam_width=1, expand=1, seed=0, max_rounds=1)
    # one round, one prefix, one sample: the tokens are those of the single sampled step (at most 12)
    assert 1 <= out["tokens"] <= 12
    with pytest.raises(ValueError, match="beam_width"):
        tt.step_beam_search(model, p, oracle_step_score, beam_width=0)
    with pytest.raises(ValueError, match="expand"):
        tt.step_beam_search(model, p, oracle_step_score, expand=-1)
    with pytest.raises(ValueError, match="max_rounds"):
        tt.step_beam_search(model, p, oracle_step_score, max_rounds=0)


def test_step_beam_search_many_is_the_single_search_batched(model):
    problems = [Problem(4718, 2395, "+"), Problem(8052, 4567, "-"), Problem(58, 67, "+")]
    many = tt.step_beam_search_many(model, problems, oracle_step_score, beam_width=2, expand=8, seed=1)
    assert len(many) == len(problems)
    for p, out in zip(problems, many):
        assert out["answer"] == p.answer == extract_answer(out["response"]) and verifier(p, out["response"])[1]
        assert out["tokens"] >= len(out["response"]) + 1 and out["finished"] >= 1
    assert tt.step_beam_search_many(model, problems, oracle_step_score, 2, 8, seed=1) == many  # deterministic
    # one problem: the same search as step_beam_search
    assert tt.step_beam_search_many(model, problems[:1], oracle_step_score, 2, 8, seed=7) == \
        [tt.step_beam_search(model, problems[0], oracle_step_score, 2, 8, seed=7)]
    # a batched scorer (scorer.many) is used when there is one, and gives the same search as the plain one
    calls = []

    def scorer(problem, text):
        return oracle_step_score(problem, text)

    def batched(ps, texts):
        calls.append(len(texts))
        return [oracle_step_score(p, t) for p, t in zip(ps, texts)]

    scorer.many = batched
    assert tt.step_beam_search_many(model, problems, scorer, 2, 8, seed=1) == many
    assert calls and max(calls) > 1
    with pytest.raises(ValueError, match="at least one problem"):
        tt.step_beam_search_many(model, [], oracle_step_score)


def test_step_beam_search_counts_a_token_budget_of_each_sampled_step(model):
    # every sampled step costs at most STEP_TOKENS tokens; one round with one prefix and `expand` samples
    p = Problem(4718, 2395, "+")
    out = tt.step_beam_search(model, p, lambda prob, text: 0.0, beam_width=1, expand=3, seed=0, max_rounds=1)
    assert 3 <= out["tokens"] <= 3 * tt.STEP_TOKENS


# ------------------------------------------------------------------------------------------------ pairwise_accuracy
def test_pairwise_accuracy_by_hand_and_against_a_slow_oracle():
    # problem 0: right 0.9, 0.2; wrong 0.5 -> pairs (0.9 > 0.5) yes, (0.2 > 0.5) no; problem 1: one tie
    assert tt.pairwise_accuracy([[0.9, 0.5, 0.2], [0.3, 0.3]], [[True, False, True], [False, True]]) == 1.5 / 3
    assert tt.pairwise_accuracy([[0.1, 0.2]], [[True, True]]) is None  # no wrong response: no pair
    # a scorer that only knows which problem is hard: perfect across problems, chance within them
    assert tt.pairwise_accuracy([[0.9, 0.9], [0.1, 0.1]], [[True, False], [True, False]]) == 0.5
    rng = random.Random(1)
    scores = [[rng.choice([0.1, 0.5, 0.7]) for _ in range(5)] for _ in range(6)]
    correct = [[rng.random() < 0.5 for _ in range(5)] for _ in range(6)]
    pairs = [(s[i], s[j]) for s, c in zip(scores, correct) for i, j in itertools.product(range(5), range(5))
             if c[i] and not c[j]]
    assert tt.pairwise_accuracy(scores, correct) == pytest.approx(
        sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs))
    with pytest.raises(ValueError, match="one entry per problem"):
        tt.pairwise_accuracy([[0.1]], [])
    with pytest.raises(ValueError, match="same length"):
        tt.pairwise_accuracy([[0.1, 0.2]], [[True]])


def test_prm_scorer_drops_the_empty_segment_of_a_prefix(model):
    from aiterms import prm
    critic = prm.StepVerifier(model).eval()
    p = Problem(58, 67, "+")
    score = tt.prm_scorer(critic)
    full = prm.step_scores(critic, [p], ["8+7+0=15|5+6+1=12|=125"])[0]
    prefix = prm.step_scores(critic, [p], ["8+7+0=15|"])[0]
    assert score(p, "8+7+0=15|") == pytest.approx(prefix[0])  # one step, not the bogus read after the "|"
    assert score(p, "8+7+0=15|5+6+1=12|=125") == pytest.approx(min(full))
    assert tt.prm_scorer(critic, "last")(p, "8+7+0=15|5+6+1=12|=125") == pytest.approx(full[-1])
    texts = ["8+7+0=15|", "8+7+0=15|5+6+1=12|=125", "8+7+0=15|5+6+1=12|"]
    assert score.many([p] * 3, texts) == pytest.approx([score(p, t) for t in texts], rel=1e-5)
    with pytest.raises(ValueError, match="aggregate"):
        tt.prm_scorer(critic, "mean")
