"""aiterms.rejection_sampling: accept/reject by hand and against a loop, acceptance rate vs 1/M, the sampled
distribution vs the target, the bound check, best-of-N, the RFT data filter and one RFT round on the course model."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aiterms import checkpoints
from aiterms import rejection_sampling as rs
from aiterms.arithmetic import Problem, cot_response
from aiterms.evaluation import solve
from aiterms.sft import TrainConfig
from aiterms.transformer import GPT

CHECKPOINT = checkpoints.RELEASED / "sft-cot.pt"


# ------------------------------------------------------------------------------------------------ accept/reject
def test_accept_reject_by_hand():
    # ratios p/(Mq): 0.5, 0.5, 0, 1, 0.25
    p = [0.5, 0.5, 0.0, 0.4, 0.1]
    q = [0.5, 0.5, 0.3, 0.2, 0.2]
    M = 2.0
    u = [0.49, 0.5, 0.0, 0.999, 0.3]
    assert rs.accept_reject(p, q, u, M).tolist() == [True, False, False, True, False]
    assert rs.acceptance_ratio(p, q, M).tolist() == pytest.approx([0.5, 0.5, 0.0, 1.0, 0.25])


def test_accept_reject_ties_and_zero_density():
    # u == p/(Mq) is rejected (accept iff u < ratio); p = 0 is never accepted, not even with u = 0
    assert rs.accept_reject([0.25, 0.0, 0.0], [1.0, 1.0, 0.0], [0.25, 0.0, 0.0], 1.0).tolist() == [False] * 3


def test_accept_reject_matches_a_loop():
    rng = np.random.default_rng(0)
    q = rng.uniform(0.01, 1.0, 500)
    M = 3.0
    p = q * M * rng.uniform(0.0, 1.0, 500)
    p[::7] = 0.0
    u = rng.random(500)
    expected = [ui < pi / (M * qi) for pi, qi, ui in zip(p, q, u)]
    assert rs.accept_reject(p, q, u, M).tolist() == expected


@pytest.mark.parametrize("p, q, u, M, match", [
    ([0.5, 0.9], [0.5, 0.4], [0.1, 0.1], 2.0, "does not bound"),        # 0.9 > 2 * 0.4
    ([0.1], [0.0], [0.1], 5.0, "does not bound"),                       # q = 0 < p
    ([0.1, 0.1], [0.5], [0.1, 0.1], 1.0, "same shape"),
    ([0.1], [0.5], [0.1, 0.2], 1.0, "shape"),
    ([0.1], [0.5], [1.0], 1.0, r"\[0, 1\)"),
    ([0.1], [0.5], [-0.1], 1.0, r"\[0, 1\)"),
    ([-0.1], [0.5], [0.1], 1.0, ">= 0"),
    ([0.1], [0.5], [0.1], 0.0, "M must be"),
    ([0.1], [0.5], [0.1], math.inf, "M must be"),
    ([float("nan")], [0.5], [0.1], 1.0, "finite"),
])
def test_accept_reject_bad_input(p, q, u, M, match):
    with pytest.raises(ValueError, match=match):
        rs.accept_reject(p, q, u, M)


def test_bound_allows_rounding_only():
    p, q = np.array([0.3]), np.array([0.7])
    M = float(p[0] / q[0])  # the tightest bound, up to rounding
    rs.accept_reject(p, q, [0.5], M)
    with pytest.raises(ValueError, match="does not bound"):
        rs.accept_reject(p, q, [0.5], M * (1 - 1e-6))


# ------------------------------------------------------------------------------------------------ sampling
P4 = np.array([0.1, 0.2, 0.3, 0.4])
UNIFORM4 = np.full(4, 0.25)


@pytest.mark.parametrize("M", [1.6, 3.2])
def test_discrete_acceptance_rate_is_one_over_M_and_samples_follow_p(M):
    samples, stats = rs.discrete_rejection_sample(P4, UNIFORM4, M, 20_000, np.random.default_rng(1))
    assert samples.shape == (20_000,) and stats.accepted == 20_000
    rate = stats.acceptance_rate
    sd = math.sqrt((1 / M) * (1 - 1 / M) / stats.proposed)
    assert abs(rate - 1 / M) < 4 * sd
    assert rs.total_variation(rs.empirical_pmf(samples, 4), P4) < 0.015
    assert stats.max_ratio == pytest.approx(1.6 / M)  # p/(Mq) peaks at the largest p: 0.4 / (M * 0.25)
    assert stats.violations == 0


def test_unnormalised_target_accepts_Z_over_M():
    weights = 5 * P4  # Z = 5
    samples, stats = rs.discrete_rejection_sample(weights, UNIFORM4, 10.0, 10_000, np.random.default_rng(2))
    assert abs(stats.acceptance_rate - 0.5) < 0.02
    assert rs.total_variation(rs.empirical_pmf(samples, 4), P4) < 0.02


def test_continuous_target_and_determinism():
    def normal(x, mu, sd):
        return np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    def target(x):  # a mixture of two normals: mean 0.8, variance 0.3*1 + 0.7*0.25 + spread of means
        return 0.3 * normal(x, -1.0, 1.0) + 0.7 * normal(x, 1.5, 0.5)

    grid = np.linspace(-10, 10, 20_001)
    M = 1.05 * rs.smallest_bound(target(grid), normal(grid, 0.0, 3.0))
    args = (target, lambda g, b: g.normal(0.0, 3.0, b), lambda x: normal(x, 0.0, 3.0), M, 20_000)
    x, stats = rs.rejection_sample(*args, rng=np.random.default_rng(3))
    mean = 0.3 * -1.0 + 0.7 * 1.5
    var = 0.3 * (1.0 + 1.0) + 0.7 * (0.25 + 1.5 ** 2) - mean ** 2
    assert abs(x.mean() - mean) < 0.03 and abs(x.var() - var) < 0.05
    assert abs(stats.acceptance_rate - 1 / M) < 0.01
    y, stats_y = rs.rejection_sample(*args, rng=np.random.default_rng(3))
    assert np.array_equal(x, y) and stats == stats_y


def test_proposals_counted_up_to_the_last_acceptance():
    # q = p: every proposal is accepted with M = 1, so exactly n proposals are used
    _, stats = rs.discrete_rejection_sample(P4, P4, 1.0, 10, np.random.default_rng(0), batch_size=64)
    assert (stats.proposed, stats.accepted) == (10, 10)


def test_a_bound_that_is_too_small_is_reported():
    with pytest.raises(ValueError, match=r"M >= 1.6"):
        rs.discrete_rejection_sample(P4, UNIFORM4, 1.2, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="inf"):
        rs.discrete_rejection_sample([0.5, 0.5], [1.0, 0.0], 100.0, 10, np.random.default_rng(0))
    args = (lambda x: P4[x], lambda g, b: g.choice(4, size=b, p=UNIFORM4), lambda x: UNIFORM4[x], 1.2, 5000)
    with pytest.raises(ValueError, match="does not bound"):
        rs.rejection_sample(*args, rng=np.random.default_rng(0))
    samples, stats = rs.rejection_sample(*args, rng=np.random.default_rng(0), strict=False)
    assert stats.violations > 0
    clipped = np.minimum(P4, 1.2 * UNIFORM4)   # what it samples instead: min(p, Mq), normalised
    assert rs.total_variation(rs.empirical_pmf(samples, 4), clipped / clipped.sum()) < 0.03
    assert rs.total_variation(rs.empirical_pmf(samples, 4), P4) > 0.03


def test_sampler_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be"):
        rs.discrete_rejection_sample(P4, UNIFORM4, 2.0, 0, rng)
    with pytest.raises(ValueError, match="probability vector"):
        rs.discrete_rejection_sample(P4, [0.5, 0.5, 0.5, 0.5], 2.0, 5, rng)
    with pytest.raises(ValueError, match="rng"):
        rs.discrete_rejection_sample(P4, UNIFORM4, 2.0, 5, 0)
    with pytest.raises(ValueError, match="max_proposals"):  # p is 0 wherever q proposes
        rs.rejection_sample(lambda x: np.zeros(len(x)), lambda g, b: g.random(b), lambda x: np.ones(len(x)), 1.0, 3,
                            rng, batch_size=100, max_proposals=1000)


# ------------------------------------------------------------------------------------------------ filtering
def test_best_of_n():
    scores = [[0.1, 0.9, 0.9], [-1.0, -2.0, -0.5], [0.0, 0.0, 0.0]]
    assert rs.best_of_n(scores).tolist() == [1, 2, 0]  # ties: the first
    for bad in ([0.1, 0.2], [[0.1, float("nan")]], np.zeros((2, 0))):
        with pytest.raises(ValueError, match="scores"):
            rs.best_of_n(bad)


def test_accept_by_score():
    assert rs.accept_by_score([0.0, 1.0, 0.5, 0.5], [0.0, 0.99, 0.5, 0.49]).tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rs.accept_by_score([1.2], [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rs.accept_by_score([-0.1], [0.5])


def test_rft_dataset_by_hand():
    p, q = Problem(47, 85, "+"), Problem(85, 47, "-")
    right_p, right_q = cot_response(p), cot_response(q)
    responses = [
        [right_p, "7+5+0=12|4+8+1=13|=133", right_p, "132", "7+5+0=12|4+8+1=13|=0132"],
        [right_q, "garbage"],
        [],
    ]
    pairs, counts = rs.rft_dataset([p, q, Problem(1, 1, "+")], responses, max_per_prompt=4)
    # "132" (direct) and "...=0132" (leading zero) have the right answer but not the step-by-step form
    assert pairs == [("47+85=", right_p), ("85-47=", right_q)]
    assert counts == {"responses": 7, "wrong": 2, "malformed": 2, "duplicates": 1, "over_cap": 0, "kept": 2,
                      "prompts_with_data": 2}
    assert sum(counts[k] for k in ("wrong", "malformed", "duplicates", "over_cap", "kept")) == counts["responses"]


def test_rft_dataset_cap_and_repeated_prompts():
    p = Problem(47, 85, "+")
    a = cot_response(p)
    b = "7+5+0=12|4+8+1=13|=132"  # the same text as a: a duplicate
    assert a == b
    # right answers written differently count as different responses: steps with the wrong carry but a right answer
    c = "7+5+0=12|4+8+0=12|=132"
    d = "7+5+0=2|4+8+1=13|=132"
    pairs, counts = rs.rft_dataset([p, p], [[a, c], [b, d, a]], max_per_prompt=2)
    assert pairs == [("47+85=", a), ("47+85=", c)]  # one prompt: the cap and the duplicates span both entries
    assert counts["duplicates"] == 2 and counts["over_cap"] == 1 and counts["prompts_with_data"] == 1
    pairs, _ = rs.rft_dataset([p], [["132", "0132"]], fmt="direct", max_per_prompt=1)
    assert pairs == [("47+85=", "132")]


def test_rft_dataset_bad_input():
    p = Problem(1, 2, "+")
    with pytest.raises(ValueError, match="max_per_prompt"):
        rs.rft_dataset([p], [["3"]], max_per_prompt=0)
    with pytest.raises(ValueError, match="same length"):
        rs.rft_dataset([p, p], [["3"]])
    with pytest.raises(ValueError, match="fmt"):
        rs.rft_dataset([p], [["3"]], fmt="json")
    with pytest.raises(ValueError, match="list of responses"):
        rs.rft_dataset([p], ["3"])


@pytest.mark.parametrize("kwargs, match", [({"k": 0}, "k must be"), ({"k": -2}, "k must be"),
                                           ({"rounds": 0}, "rounds"), ({"temperature": 0.0}, "temperature"),
                                           ({"max_per_prompt": 0}, "max_per_prompt"), ({"fmt": "x"}, "fmt"),
                                           ({"prompts_per_round": 0}, "prompts_per_round"), ({"sft": {}}, "sft")])
def test_rft_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rs.RFTConfig(**kwargs)


# ------------------------------------------------------------------------------------------------ RFT on the model
@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    if not CHECKPOINT.exists():
        pytest.fail(f"{CHECKPOINT} is missing: run `make models` first")
    return GPT.load(CHECKPOINT)


def test_one_rft_round_trains_on_the_filtered_samples(model):
    from aiterms.arithmetic import sample_problems
    problems = sample_problems(12, 4, seed=17, ops=("+", "-"))
    held = sample_problems(10, 4, seed=18, ops=("+", "-"))
    config = rs.RFTConfig(rounds=1, k=4, max_per_prompt=2, sft=TrainConfig(steps=3, batch_size=8, lr=1e-4, warmup=1),
                          seed=5)
    # the oracle: the same samples (seed + round), filtered
    samples = solve(model, problems, "cot", samples=4, temperature=1.0, seed=6)
    _, counts = rs.rft_dataset(problems, samples, "cot", 2)
    policy = copy.deepcopy(model)
    out, history = rs.rft(policy, problems, config, eval_problems=held)
    assert out is policy
    assert history["round"] == [1] and history["eval_round"] == [0, 1]
    assert history["sampled"] == [48] and history["kept"] == [counts["kept"]] > [0]
    assert history["acceptance"] == [(48 - counts["wrong"]) / 48]
    assert history["prompts_with_data"] == [counts["prompts_with_data"]]
    assert math.isfinite(history["loss"][0])
    changed = any(not torch.equal(a, b) for a, b in zip(model.parameters(), policy.parameters()))
    assert changed, "the policy was not trained"
