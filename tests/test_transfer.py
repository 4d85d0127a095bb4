"""aiterms.transfer: the shared interface, cross-evaluation, the normalised transfer matrix and the gap."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from aiterms.transfer import (RandomPolicy, SharedInterface, TransferConfig, cross_returns, episode_return,
                              generalisation_gap, make_shared, map_action, pad_observation, shared_sizes,
                              transfer_matrix)

torch.set_num_threads(1)
nan = np.nan


# ------------------------------------------------------------------------------------------------ the interface
def test_pad_observation_box_and_discrete():
    box = gym.spaces.Box(-1, 1, (2, 2))
    out = pad_observation(np.array([[1, 2], [3, 4]]), box, 6)
    assert out.dtype == np.float32 and out.tolist() == [1, 2, 3, 4, 0, 0]
    assert pad_observation(2, gym.spaces.Discrete(4), 5).tolist() == [0, 0, 1, 0, 0]  # one-hot, then padding
    assert pad_observation(np.int64(0), gym.spaces.Discrete(1), 1).tolist() == [1]
    with pytest.raises(ValueError, match="obs_size must be >= 4"):
        pad_observation(np.zeros((2, 2)), box, 3)
    with pytest.raises(ValueError, match="space"):
        pad_observation((0, 1), gym.spaces.Tuple([gym.spaces.Discrete(2)] * 2), 4)


def test_map_action():
    assert [map_action(a, 3) for a in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert map_action(np.int64(5), 2) == 1 and type(map_action(np.int64(5), 2)) is int
    with pytest.raises(ValueError, match="n"):
        map_action(1, 0)


def test_shared_sizes():
    envs = [gym.make("CartPole-v1"), gym.make("Acrobot-v1"), gym.make("FrozenLake-v1")]
    assert shared_sizes(envs) == (16, 4)   # FrozenLake's 16 cells one-hot; its 4 actions
    assert shared_sizes(envs[:2]) == (6, 3)
    with pytest.raises(ValueError, match="at least one"):
        shared_sizes([])
    with pytest.raises(ValueError, match="action_space must be Discrete"):
        shared_sizes([gym.make("Pendulum-v1")])


def test_shared_interface_pads_and_maps_actions():
    raw = gym.make("CartPole-v1")
    env = SharedInterface(gym.make("CartPole-v1"), 6, 4)
    assert env.observation_space.shape == (6,) and env.action_space.n == 4
    o_raw, _ = raw.reset(seed=3)
    o, _ = env.reset(seed=3)
    assert o.shape == (6,) and np.allclose(o[:4], o_raw) and o[4:].tolist() == [0, 0]
    for a in [2, 3, 0, 1, 2, 2, 3]:   # shared action a is CartPole's a % 2
        o_raw, r_raw, term_raw, trunc_raw, _ = raw.step(a % 2)
        o, r, term, trunc, _ = env.step(a)
        assert np.allclose(o[:4], o_raw) and (r, term, trunc) == (r_raw, term_raw, trunc_raw)
    lake = SharedInterface(gym.make("FrozenLake-v1"), 16, 4)
    o, _ = lake.reset(seed=0)
    assert o.tolist() == [1] + [0] * 15  # the start cell, one-hot
    with pytest.raises(ValueError, match="obs_size"):
        SharedInterface(gym.make("Acrobot-v1"), 5, 3)
    with pytest.raises(ValueError, match="n_actions"):
        SharedInterface(gym.make("Acrobot-v1"), 6, 2)


def test_make_shared_gives_one_interface():
    makers = make_shared([lambda: gym.make("CartPole-v1"), lambda: gym.make("Acrobot-v1")])
    envs = [make() for make in makers]
    assert [e.observation_space.shape for e in envs] == [(6,), (6,)]
    assert [e.action_space.n for e in envs] == [3, 3]
    assert [e.task_actions for e in envs] == [2, 3]


# ------------------------------------------------------------------------------------------------ evaluation
def test_episode_return_counts_every_reward_including_the_last():
    env = gym.make("CartPole-v1")
    always_left = lambda obs: 0
    # CartPole pays 1 per step; pushing left all the time falls after a few steps: count them by hand
    obs, _ = env.reset(seed=5)
    steps = 0
    while True:
        steps += 1
        _, _, term, trunc, _ = env.step(0)
        if term or trunc:
            break
    assert episode_return(always_left, env, seed=5) == steps
    short = gym.make("CartPole-v1", max_episode_steps=4)   # truncation ends the episode too
    assert episode_return(lambda obs: int(obs[2] > 0), short, seed=0) == 4


def slow_cross_returns(policies, envs, episodes, seed):
    """The obvious double loop, each rollout written out."""
    table = []
    for policy in policies:
        row = []
        for env in envs:
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=seed + e)
                while True:
                    obs, r, term, trunc, _ = env.step(policy(obs))
                    total += r
                    if term or trunc:
                        break
            row.append(total / episodes)
        table.append(row)
    return np.array(table)


def test_cross_returns_matches_the_obvious_loops_and_pairs_the_seeds():
    envs = [make() for make in make_shared([lambda: gym.make("CartPole-v1", max_episode_steps=60),
                                            lambda: gym.make("Acrobot-v1", max_episode_steps=40),
                                            lambda: gym.make("FrozenLake-v1", max_episode_steps=30)])]
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 16)) for _ in range(2)]
    policies = [lambda o, w=w: int(np.argmax(w @ o)) for w in weights] + [lambda o: 1]
    R = cross_returns(policies, envs, episodes=3, seed=7)
    assert R.shape == (3, 3) and R.dtype == np.float64
    assert np.array_equal(R, slow_cross_returns(policies, envs, 3, 7))
    # episode e uses seed + e: three one-episode evaluations average to the three-episode one
    parts = [cross_returns(policies, envs, episodes=1, seed=7 + e) for e in range(3)]
    assert np.allclose(R, np.mean(parts, axis=0))
    assert not np.array_equal(parts[0], parts[1])   # the seeds matter (different start states)
    with pytest.raises(ValueError, match="episodes"):
        cross_returns(policies, envs, episodes=0)
    with pytest.raises(ValueError, match="empty"):
        cross_returns([], envs)


def test_random_policy_is_seeded_and_uniform():
    p, q = RandomPolicy(3, seed=1), RandomPolicy(np.int64(3), seed=1)   # numpy ints are ints too
    xs = [p(None) for _ in range(3000)]
    assert xs == [q(None) for _ in range(3000)] and all(type(x) is int for x in xs)
    assert xs != [RandomPolicy(3, seed=2)(None) for _ in range(3000)]
    assert np.allclose(np.bincount(xs) / 3000, 1 / 3, atol=0.03)
    with pytest.raises(ValueError, match="n_actions"):
        RandomPolicy(0)
    with pytest.raises(ValueError, match="n_actions"):
        RandomPolicy(True)


def test_config_validates():
    assert TransferConfig().episodes >= 1
    with pytest.raises(ValueError, match="episodes"):
        TransferConfig(episodes=0)
    with pytest.raises(ValueError, match="seed"):
        TransferConfig(seed=1.5)


# ------------------------------------------------------------------------------------------------ the matrix
def test_transfer_matrix_by_hand():
    R = [[10.0, 2.0], [4.0, 8.0]]
    r = [0.0, 2.0]
    # column 0: random 0, own 10; column 1: random 2, own 8
    assert np.allclose(transfer_matrix(R, r), [[1.0, 0.0], [0.4, 1.0]])
    # Acrobot-like negative returns: higher (less negative) is better
    R = [[-100.0, -500.0], [-400.0, -80.0]]
    assert np.allclose(transfer_matrix(R, [-500.0, -500.0]), [[1.0, 0.0], [0.25, 1.0]])
    # worse than random is negative; one task alone is its own column
    assert np.allclose(transfer_matrix([[5, -10], [0, 10]], [0, 0]), [[1, -1], [0, 1]])
    assert transfer_matrix([[3.0]], [1.0]).tolist() == [[1.0]]


def test_transfer_matrix_columns_without_scale_are_nan():
    T = transfer_matrix([[1.0, 5.0, 0.0], [2.0, 3.0, 9.0], [4.0, 6.0, 4.0]], [0.0, 3.0, 5.0])
    assert np.allclose(T[:, 0], [1.0, 2.0, 4.0])
    assert np.isnan(T[:, 1]).all()   # own policy 3.0 == random 3.0
    assert np.isnan(T[:, 2]).all()   # own policy 4.0 < random 5.0


def test_transfer_matrix_is_invariant_to_each_tasks_reward_scale():
    rng = np.random.default_rng(1)
    R, r = rng.normal(size=(4, 4)) + 3 * np.eye(4), rng.normal(size=4) - 3
    a, b = rng.uniform(0.1, 10, size=4), rng.normal(size=4) * 100
    assert np.allclose(transfer_matrix(R * a + b, r * a + b), transfer_matrix(R, r))
    slow = [[(R[i, j] - r[j]) / (R[j, j] - r[j]) for j in range(4)] for i in range(4)]
    assert np.allclose(transfer_matrix(R, r), slow)


def test_transfer_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        transfer_matrix([[1.0, 2.0]], [0.0])
    with pytest.raises(ValueError, match="square"):
        transfer_matrix(np.zeros((0, 0)), [])
    with pytest.raises(ValueError, match=r"random_returns must have shape \(2,\)"):
        transfer_matrix(np.eye(2), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        transfer_matrix([[1.0, nan], [0.0, 1.0]], [0.0, 0.0])


def test_generalisation_gap_by_hand():
    T = [[1.0, 0.0, 0.2], [0.4, 1.0, -0.2], [1.0, 1.0, 1.0]]
    assert np.allclose(generalisation_gap(T), [0.9, 0.9, 0.0])
    assert np.allclose(generalisation_gap([[3.0, 1.0], [0.0, 2.0]]), [2.0, 2.0])   # raw scores work too
    # nan entries are left out of the mean; nothing left, or a nan diagonal, gives nan
    gap = generalisation_gap([[1.0, nan, 0.5], [nan, nan, 0.1], [0.0, nan, nan]])
    assert np.isclose(gap[0], 0.5) and np.isnan(gap[1]) and np.isnan(gap[2])
    assert np.isnan(generalisation_gap([[1.0, nan], [0.2, 1.0]])[0])


def test_generalisation_gap_of_the_normalised_matrix():
    rng = np.random.default_rng(2)
    R, r = rng.uniform(0, 1, (5, 5)) + 2 * np.eye(5), np.zeros(5)
    T = transfer_matrix(R, r)
    slow = [T[i, i] - np.mean([T[i, j] for j in range(5) if j != i]) for i in range(5)]
    assert np.allclose(generalisation_gap(T), slow)
    with pytest.raises(ValueError, match="K >= 2"):
        generalisation_gap([[1.0]])
    with pytest.raises(ValueError, match="square"):
        generalisation_gap(np.zeros((2, 3)))
