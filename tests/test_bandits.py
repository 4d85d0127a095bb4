"""aiterms.bandits: epsilon-greedy (exact rng protocol), UCB1, bandit runs and regret."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiterms.bandits import Bandit, BanditConfig, epsilon_greedy, run_bandit, ucb1


def test_epsilon_greedy_follows_the_documented_rng_protocol():
    q = [0.2, 0.9, 0.1, 0.9]
    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(200):
        got = epsilon_greedy(q, 0.3, rng)
        expected = int(twin.integers(4)) if twin.random() < 0.3 else 1  # ties: the lowest index
        assert got == expected and type(got) is int


def test_epsilon_greedy_extremes_and_frequencies():
    rng = np.random.default_rng(0)
    assert {epsilon_greedy([0.0, 0.0, 0.0], 0.0, rng) for _ in range(50)} == {0}
    picks = np.array([epsilon_greedy([5.0, 1.0, 0.0, 2.0], 0.4, rng) for _ in range(20_000)])
    freq = np.bincount(picks, minlength=4) / len(picks)
    # the greedy arm: 1 - eps + eps / k; any other: eps / k
    assert freq[0] == pytest.approx(0.6 + 0.1, abs=0.015)
    assert freq[1:] == pytest.approx([0.1, 0.1, 0.1], abs=0.01)
    all_random = np.array([epsilon_greedy([5.0, 1.0, 0.0, 2.0], 1.0, rng) for _ in range(8000)])
    assert np.bincount(all_random, minlength=4) / 8000 == pytest.approx([0.25] * 4, abs=0.02)


def test_ucb1_by_hand():
    assert ucb1([0.0, 0.0, 0.0], [1, 0, 0], 1) == 1  # the first untried arm
    # t = 10: bonuses sqrt(2 ln 10 / n) for n = 5, 3, 2: 0.960, 1.239, 1.517
    q, n = [0.9, 0.5, 0.6], [5, 3, 2]  # scores 1.860, 1.739, 2.117: the least tried arm wins
    scores = [qi + math.sqrt(2 * math.log(10) / ni) for qi, ni in zip(q, n)]
    assert ucb1(q, n, 10) == int(np.argmax(scores)) == 2
    assert ucb1(q, n, 10, c=0.0) == 0  # no exploration bonus: greedy


def test_run_bandit_sample_averages_and_regret():
    bandit = Bandit([0.2, 0.5, 0.8], "bernoulli", seed=3)
    out = run_bandit(bandit, "epsilon_greedy", BanditConfig(steps=500, epsilon=0.2, seed=1))
    for a in range(3):  # the incremental update equals the plain average of the arm's rewards
        pulled = out["actions"] == a
        assert out["counts"][a] == pulled.sum()
        if pulled.any():
            assert out["q"][a] == pytest.approx(out["rewards"][pulled].mean())
    lost = 0.8 - bandit.means[out["actions"]]
    assert np.allclose(out["regret"], np.cumsum(lost)) and (np.diff(out["regret"]) >= 0).all()
    assert out["optimal"].mean() == pytest.approx((out["actions"] == 2).mean())


def test_learning_agents_beat_random_on_average():
    final = {agent: np.mean([run_bandit(Bandit.random(10, "gaussian", seed=s), agent,
                                        BanditConfig(steps=400, seed=s))["regret"][-1] for s in range(20)])
             for agent in ("random", "epsilon_greedy", "ucb1")}
    assert final["epsilon_greedy"] < 0.5 * final["random"]
    assert final["ucb1"] < 0.5 * final["random"]


def test_runs_are_deterministic_given_the_seeds():
    a = run_bandit(Bandit.random(5, "bernoulli", seed=2), "ucb1", BanditConfig(steps=100, seed=4))
    b = run_bandit(Bandit.random(5, "bernoulli", seed=2), "ucb1", BanditConfig(steps=100, seed=4))
    assert (a["actions"] == b["actions"]).all() and (a["rewards"] == b["rewards"]).all()


def test_gaussian_rewards_have_unit_variance():
    bandit = Bandit([1.5], "gaussian", seed=0)
    r = np.array([bandit.pull(0) for _ in range(20_000)])
    assert r.mean() == pytest.approx(1.5, abs=0.03) and r.std() == pytest.approx(1.0, abs=0.03)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy([1.0, 2.0], 1.5, rng)
    with pytest.raises(ValueError, match="q_values"):
        epsilon_greedy([], 0.1, rng)
    with pytest.raises(ValueError, match="counts"):
        ucb1([1.0, 2.0], [1], 3)
    with pytest.raises(ValueError, match="means"):
        Bandit([0.5, 1.2], "bernoulli")
    with pytest.raises(ValueError, match="kind"):
        Bandit([0.5], "poisson")
    with pytest.raises(ValueError, match="action"):
        Bandit([0.5]).pull(1)
    with pytest.raises(ValueError, match="steps"):
        BanditConfig(steps=0)
    with pytest.raises(ValueError, match="agent"):
        run_bandit(Bandit([0.5]), "thompson")
