"""aiterms.gridworld: a gymnasium Env with an exact model; value iteration."""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from aiterms.gridworld import GridWorld, policy_arrows, value_iteration

UP, RIGHT, DOWN, LEFT = range(4)


def test_default_world_is_a_valid_gymnasium_env():
    env = GridWorld()
    assert env.action_space == gym.spaces.Discrete(4)
    assert env.observation_space.shape == (25,) and env.observation_space.dtype == np.float32
    with warnings.catch_warnings():  # gymnasium notes that it cannot test render modes of an env made without a spec
        warnings.simplefilter("ignore")
        check_env(GridWorld())
    check_env(gym.make("aiterms/GridWorld-v0", slip=0.3, obs="coords").unwrapped, skip_render_check=True)
    envs = gym.make_vec("aiterms/GridWorld-v0", num_envs=3)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 25) and (obs.argmax(1) == 0).all()


def test_a_shortest_path_reaches_the_goal():
    env = GridWorld()
    obs, _ = env.reset(seed=0)
    assert obs[0] == 1 and obs.sum() == 1
    path = [RIGHT, RIGHT, DOWN, DOWN, RIGHT, DOWN, DOWN, RIGHT]  # (0,0) -> (0,2) -> (2,2) -> (2,3) -> (4,3) -> (4,4)
    for i, a in enumerate(path):
        obs, reward, terminated, truncated, info = env.step(a)
        assert not truncated
        assert terminated == (i == len(path) - 1)
        assert reward == (1.0 if terminated else 0.0)
    assert info["cell"] == (4, 4) and obs[24] == 1


def test_border_hole_and_time_limit():
    env = GridWorld(max_steps=3, step_reward=-0.1)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(UP)  # the border blocks
    assert info["cell"] == (0, 0) and reward == pytest.approx(-0.1) and not terminated
    env.step(DOWN)
    obs, reward, terminated, truncated, info = env.step(RIGHT)  # into the hole at (1, 1)
    assert (reward, terminated, truncated) == (-1.0, True, False)
    env.reset()
    for _ in range(3):
        _, _, terminated, truncated, _ = env.step(LEFT)
    assert truncated and not terminated


def test_coords_observation():
    env = GridWorld(rows=3, cols=5, obs="coords", goal=(2, 0), holes=())
    obs, _ = env.reset()
    assert obs.tolist() == [0.0, 0.0]
    obs, *_ = env.step(RIGHT)
    assert obs.tolist() == [0.0, 0.25]


def test_slip_model_matches_sampled_steps():
    env = GridWorld(slip=0.4, holes=())
    s = env.state((2, 2))
    model = {s2: p for p, s2, _, _ in env.transitions(s, RIGHT)}
    assert sum(model.values()) == pytest.approx(1.0) and model[env.state((2, 3))] == pytest.approx(0.7)
    env.reset(seed=1)
    counts: dict[int, int] = {}
    for _ in range(4000):
        env.pos = (2, 2)
        env.step(RIGHT)
        counts[env.state(env.pos)] = counts.get(env.state(env.pos), 0) + 1
    for s2, p in model.items():
        assert counts[s2] / 4000 == pytest.approx(p, abs=0.03)


def test_value_iteration_solves_the_bellman_equation():
    env, gamma = GridWorld(slip=0.2), 0.9
    values, policy = value_iteration(env, gamma)
    for s in range(env.num_states):
        if env.is_terminal(env.cell(s)):
            assert values[s] == 0.0
            continue
        q = [sum(p * (r + (0 if done else gamma * values[s2])) for p, s2, r, done in env.transitions(s, a))
             for a in range(4)]
        assert values[s] == pytest.approx(max(q)) and q[policy[s]] == pytest.approx(max(q))
    deterministic, _ = value_iteration(GridWorld(), gamma)
    assert deterministic[0] == pytest.approx(gamma ** 7)  # 8 steps to the goal, the reward comes with the 8th
    assert policy_arrows(GridWorld(), value_iteration(GridWorld(), gamma)[1]).count("H") == 4


def test_bad_input():
    with pytest.raises(ValueError, match="slip"):
        GridWorld(slip=1.5)
    with pytest.raises(ValueError, match="goal"):
        GridWorld(goal=(5, 5))
    with pytest.raises(ValueError, match="different"):
        GridWorld(holes=[(0, 0)])
    with pytest.raises(ValueError, match="obs"):
        GridWorld(obs="pixels")
    env = GridWorld()
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(4)
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(env, 1.0)
