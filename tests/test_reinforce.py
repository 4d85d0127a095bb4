"""aiterms.reinforce: discounted returns with episode ends, the REINFORCE loss, training on CartPole."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aiterms.reinforce import (ReinforceConfig, discounted_returns, evaluate, make_envs, reinforce_loss,
                               rollout_costs, rollout_returns, train)

torch.set_num_threads(1)


def slow_returns(rewards: list[float], dones: list[bool], gamma: float) -> list[float]:
    """The definition: sum of gamma^k r_{t+k} up to and including the step that ends the episode."""
    out = []
    for t in range(len(rewards)):
        total, k = 0.0, 0
        for s in range(t, len(rewards)):
            total += gamma ** k * rewards[s]
            k += 1
            if dones[s]:
                break
        out.append(total)
    return out


def test_discounted_returns_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    d = torch.tensor([0.0, 1.0, 0.0, 0.0])
    # episode 1: G1 = 2, G0 = 1 + 0.5 * 2 = 2; episode 2 (cut off): G3 = 4, G2 = 3 + 0.5 * 4 = 5
    assert discounted_returns(r, d, 0.5).tolist() == [2.0, 2.0, 5.0, 4.0]
    assert discounted_returns(r, d.bool(), 1.0).tolist() == [3.0, 2.0, 7.0, 4.0]
    assert discounted_returns(r, torch.zeros(4), 0.0).tolist() == r.tolist()
    assert discounted_returns(torch.zeros(0), torch.zeros(0), 0.9).shape == (0,)


def test_discounted_returns_match_the_definition_for_many_envs():
    rng = np.random.default_rng(0)
    T, N, gamma = 30, 5, 0.9
    rewards = rng.normal(size=(T, N))
    dones = rng.random((T, N)) < 0.2
    got = discounted_returns(torch.tensor(rewards), torch.tensor(dones), gamma)
    assert got.shape == (T, N) and got.dtype == torch.float64
    for n in range(N):  # every column is its own env, independent of the others
        assert got[:, n].tolist() == pytest.approx(slow_returns(list(rewards[:, n]), list(dones[:, n]), gamma))
        single = discounted_returns(torch.tensor(rewards[:, n]), torch.tensor(dones[:, n]), gamma)
        assert torch.allclose(single, got[:, n])


def test_rollout_returns_bootstrap_from_the_baseline():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    dones = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    got = rollout_returns(rewards, dones, torch.tensor([10.0, 10.0]), 0.5)
    # env 0 is cut off: 1 + 0.5 * (1 + 0.5 * 10); env 1 ended, nothing to bootstrap
    assert got.tolist() == [[1 + 0.5 * 6, 1.5], [6.0, 1.0]]


def test_reinforce_loss_value_and_gradients():
    logp = torch.log(torch.tensor([[0.5, 0.25], [0.8, 0.1]])).requires_grad_()
    returns = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    baseline = torch.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    loss = reinforce_loss(logp, returns, baseline)
    adv = returns - 1.0
    assert loss.item() == pytest.approx(-(adv * logp.detach()).mean().item())
    loss.backward()
    assert torch.allclose(logp.grad, -adv / 4)   # d loss / d logp = -(G - b) / (T N)
    assert baseline.grad is None or (baseline.grad == 0).all()  # the baseline gets no gradient from this loss
    assert reinforce_loss(logp, returns).item() == pytest.approx(-(returns * logp.detach()).mean().item())


def test_bad_input():
    with pytest.raises(ValueError, match="dones"):
        discounted_returns(torch.zeros(3), torch.zeros(4), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(torch.zeros(3), torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match="rewards"):
        discounted_returns(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), 0.9)
    with pytest.raises(ValueError, match="baseline"):
        reinforce_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="returns"):
        reinforce_loss(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="num_envs"):
        ReinforceConfig(num_envs=0)
    with pytest.raises(ValueError, match="vectorization"):
        make_envs("CartPole-v1", 2, 0, vectorization="threads")
    with pytest.raises(ValueError, match="last_values"):
        rollout_returns(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), 0.9)


def test_training_is_deterministic():
    config = ReinforceConfig(updates=3, num_envs=2, rollout_steps=8, seed=5)
    a, b = train(config), train(config)
    for p, q in zip(a["policy"].parameters(), b["policy"].parameters()):
        assert torch.equal(p, q)
    assert a["episode_returns"] == b["episode_returns"]
    assert all(0 <= h["collect_cpu_seconds"] <= h["cpu_seconds"] for h in a["history"])
    assert a["median_update_cpu_seconds"] >= 0


def test_rollout_costs_split_the_cpu_time():
    c = rollout_costs(num_envs=4, steps=20)
    assert (c["env_steps"], c["policy_calls"]) == (80, 20)  # one forward pass per step, shared by the 4 envs
    assert c["policy_us"] > 0 and c["env_us"] > 0 and c["seconds"] > 0
    assert c["env_steps_per_second"] == pytest.approx(80 / c["seconds"])
    parts = (c["policy_us"] + c["env_us"] + c["other_us"]) * c["env_steps"] / 1e6
    assert parts == pytest.approx(c["seconds"])


def test_reinforce_learns_cartpole():
    out = train(ReinforceConfig(updates=60, seed=0))
    returns = out["episode_returns"]
    first, last = np.mean(returns[:20]), np.mean(returns[-10:])
    assert first < 40 and last > 2 * first, (first, last)  # random play lasts about 22 steps
    assert np.mean(evaluate(out["policy"], episodes=3)) > first
