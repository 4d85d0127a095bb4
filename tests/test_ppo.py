"""aiterms.ppo: GAE, the clipped surrogate, the value loss, the agent, training and evaluation."""
from __future__ import annotations

import math
import random

import gymnasium as gym
import numpy as np
import pytest
import torch

from aiterms import ppo

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------ GAE
def slow_gae(rewards, values, dones, next_value, gamma, lam):
    """The definition, one env at a time: A_t = sum_l (gamma lam)^l delta_{t+l}, stopping at the episode's end."""
    T = len(rewards)
    later = [values[t + 1] if t + 1 < T else next_value for t in range(T)]
    deltas = [rewards[t] + gamma * (1 - dones[t]) * later[t] - values[t] for t in range(T)]
    out = []
    for t in range(T):
        total, weight = 0.0, 1.0
        for k in range(t, T):
            total += weight * deltas[k]
            if dones[k]:
                break
            weight *= gamma * lam
        out.append(total)
    return out


def test_gae_by_hand():
    r, v, d = torch.ones(3), torch.zeros(3), torch.zeros(3)
    assert ppo.gae(r, v, d, torch.tensor(0.0), gamma=1.0, lam=1.0).tolist() == [3.0, 2.0, 1.0]
    # the episode ends with step 1: step 2 (a new episode) does not flow back
    assert ppo.gae(r, v, torch.tensor([0.0, 1.0, 0.0]), torch.tensor(0.0), 1.0, 1.0).tolist() == [2.0, 1.0, 1.0]
    # bootstrap from next_value when the rollout is cut in the middle of an episode
    assert ppo.gae(r, v, d, torch.tensor(10.0), 1.0, 1.0).tolist() == [13.0, 12.0, 11.0]
    # lam = 0: the one-step TD errors r_t + gamma V(s_{t+1}) - V(s_t)
    v = torch.tensor([1.0, 2.0, 3.0])
    got = ppo.gae(r, v, d, torch.tensor(4.0), gamma=0.5, lam=0.0)
    assert torch.allclose(got, torch.tensor([1 + 0.5 * 2 - 1, 1 + 0.5 * 3 - 2, 1 + 0.5 * 4 - 3]))
    # gamma = 0.5, lam = 0.5, no values: A_2 = 1, A_1 = 1 + 0.25, A_0 = 1 + 0.25 * 1.25
    got = ppo.gae(torch.ones(3), torch.zeros(3), torch.zeros(3), torch.tensor(0.0), 0.5, 0.5)
    assert torch.allclose(got, torch.tensor([1.3125, 1.25, 1.0]))


@pytest.mark.parametrize("seed", range(5))
def test_gae_matches_the_slow_definition(seed):
    g = torch.Generator().manual_seed(seed)
    T, N = 17, 4
    rewards, values = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    dones = (torch.rand(T, N, generator=g) < 0.2).float()
    next_value = torch.randn(N, generator=g)
    gamma, lam = 0.9 + 0.1 * random.Random(seed).random(), random.Random(seed + 1).random()
    got = ppo.gae(rewards, values, dones, next_value, gamma, lam)
    assert got.shape == (T, N) and got.dtype == torch.float32
    for n in range(N):
        expected = slow_gae(rewards[:, n].tolist(), values[:, n].tolist(), dones[:, n].tolist(),
                            float(next_value[n]), gamma, lam)
        assert got[:, n].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # the 1-D form is the same computation for one env; bool dones work like floats
    one = ppo.gae(rewards[:, 0], values[:, 0], dones[:, 0].bool(), next_value[0], gamma, lam)
    assert torch.allclose(one, got[:, 0])


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rewards, values = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.5, -1.0, 2.0, 0.0])
    dones = torch.tensor([0.0, 1.0, 0.0, 0.0])
    got = ppo.gae(rewards, values, dones, torch.tensor(5.0), gamma=0.9, lam=1.0)
    returns = [1 + 0.9 * 2, 2, 3 + 0.9 * 4 + 0.81 * 5, 4 + 0.9 * 5]
    assert got.tolist() == pytest.approx([r - v for r, v in zip(returns, values.tolist())])


def test_gae_bad_input():
    r = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="values"):
        ppo.gae(r, torch.zeros(4, 3), r, torch.zeros(2))
    with pytest.raises(ValueError, match="dones"):
        ppo.gae(r, r, torch.zeros(4), torch.zeros(2))
    with pytest.raises(ValueError, match="next_value"):
        ppo.gae(r, r, r, torch.zeros(4))
    with pytest.raises(ValueError, match="rewards"):
        ppo.gae(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="gamma"):
        ppo.gae(r, r, r, torch.zeros(2), gamma=1.5)
    with pytest.raises(ValueError, match="lam"):
        ppo.gae(r, r, r, torch.zeros(2), lam=-0.1)


# ------------------------------------------------------------------------------------------------ losses
def test_clipped_surrogate_by_hand():
    # ratio 1.5 and 0.5; eps 0.2
    logp_old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5]))
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    # per element min(r A, clip(r) A): 1.2, -1.5, 0.5, -0.8
    expected = -(1.2 - 1.5 + 0.5 - 0.8) / 4
    assert float(ppo.clipped_surrogate_loss(logp, logp_old, adv, 0.2)) == pytest.approx(expected)
    # inside the clip range the loss is -mean(r A)
    logp = torch.log(torch.tensor([1.1, 0.9]))
    assert float(ppo.clipped_surrogate_loss(logp, torch.zeros(2), torch.tensor([2.0, 3.0]), 0.2)) == \
        pytest.approx(-(1.1 * 2 + 0.9 * 3) / 2)


def test_clipped_surrogate_gradient_is_zero_where_clipped():
    logp = torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5])).requires_grad_()
    ppo.clipped_surrogate_loss(logp, torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, -1.0]), 0.2).backward()
    # clipped (no gradient): ratio 1.5 with A > 0 and ratio 0.5 with A < 0; d(-r A / 4)/d logp = -r A / 4
    assert logp.grad.tolist() == pytest.approx([0.0, 1.5 / 4, -0.5 / 4, 0.0])


def test_clipped_surrogate_bad_input():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.clipped_surrogate_loss(x, x, x, 0.0)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.clipped_surrogate_loss(x, x, x, -0.2)
    with pytest.raises(ValueError, match="logp_old"):
        ppo.clipped_surrogate_loss(x, torch.zeros(4), x)
    with pytest.raises(ValueError, match="advantages"):
        ppo.clipped_surrogate_loss(x, x, torch.zeros(3, 1))


def test_value_loss():
    v, r = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])
    assert float(ppo.value_loss(v, r)) == pytest.approx(0.5 * (1 + 9) / 2)
    # clipped around old values 0 with eps 0.5: V_clip = [0.5, 0.5]; max((V-R)^2, (V_clip-R)^2) = [1, 9]
    assert float(ppo.value_loss(v, r, torch.zeros(2), 0.5)) == pytest.approx(0.5 * (1 + 9) / 2)
    # when the clipped value is further from the target, it wins: V = 0.1, old = 1, R = 2 -> V_clip = 0.5
    got = ppo.value_loss(torch.tensor([0.1]), torch.tensor([2.0]), torch.tensor([1.0]), 0.5)
    assert float(got) == pytest.approx(0.5 * 1.9 ** 2)
    got = ppo.value_loss(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([0.0]), 0.5)
    assert float(got) == pytest.approx(0.5 * 4.0)
    with pytest.raises(ValueError, match="returns"):
        ppo.value_loss(v, torch.zeros(3))
    with pytest.raises(ValueError, match="both"):
        ppo.value_loss(v, r, old_values=r)
    with pytest.raises(ValueError, match="old_values"):
        ppo.value_loss(v, r, torch.zeros(3), 0.2)


def test_normalize_advantages_and_entropy():
    a = torch.tensor([1.0, 2.0, 3.0, 6.0])
    expected = (a - 3.0) / math.sqrt(((a - 3.0) ** 2).sum() / 3)  # the unbiased std
    assert torch.allclose(ppo.normalize_advantages(a, eps=0.0), expected)
    assert ppo.normalize_advantages(torch.tensor([5.0])).tolist() == [0.0]
    with pytest.raises(ValueError, match="empty"):
        ppo.normalize_advantages(torch.zeros(0))
    assert float(ppo.entropy_bonus(torch.zeros(2, 4))) == pytest.approx(math.log(4))
    assert float(ppo.entropy_bonus(torch.tensor([[0.0, -1e9]]))) == pytest.approx(0.0, abs=1e-6)


def test_config_validation():
    assert ppo.PPOConfig().batch_size == 256
    for bad in ({"clip_eps": 0.0}, {"clip_eps": -0.1}, {"gamma": 1.1}, {"gae_lambda": 2.0}, {"num_envs": 0},
                {"total_steps": 10}, {"num_minibatches": 3}, {"learning_rate": 0.0}, {"ent_coef": -1.0},
                {"eval_every": -1}, {"num_steps": 2.5}):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            ppo.PPOConfig(**bad)


# ------------------------------------------------------------------------------------------------ agent, training
def test_agent_shapes_and_act():
    torch.manual_seed(0)
    agent = ppo.Agent.for_env(gym.make("CartPole-v1"))
    obs = torch.randn(5, 4)
    action, logp, entropy, value = agent.action_and_value(obs)
    assert action.shape == logp.shape == entropy.shape == value.shape == (5,)
    assert torch.allclose(logp.exp(), torch.softmax(agent.actor(obs), -1).gather(1, action[:, None])[:, 0])
    assert isinstance(agent.act(np.zeros(4)), int)
    assert agent.act(obs.numpy()).tolist() == agent.actor(obs).argmax(-1).tolist()
    # the first policy is nearly uniform
    assert torch.allclose(torch.softmax(agent.actor(obs), -1), torch.full((5, 2), 0.5), atol=0.02)
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.zeros(3))
    with pytest.raises(ValueError, match="action space"):
        ppo.Agent.for_env(gym.make("Pendulum-v1"))


def test_train_is_deterministic_and_records_history():
    config = ppo.PPOConfig(total_steps=512, num_envs=2, num_steps=64, update_epochs=2, num_minibatches=2,
                           eval_every=256, eval_episodes=2)
    a1, h1 = ppo.train("CartPole-v1", config, seed=3)
    a2, h2 = ppo.train(lambda: gym.make("CartPole-v1"), config, seed=3)
    assert h1["env_steps"] == [128, 256, 384, 512]
    assert h1["eval_steps"] == [256, 512] and len(h1["eval_returns"]) == 2
    for key in ("mean_return", "policy_loss", "value_loss", "episode_returns", "eval_returns"):
        assert h1[key] == h2[key], key
    for p1, p2 in zip(a1.parameters(), a2.parameters()):
        assert torch.equal(p1, p2)
    # every step of the training envs belongs to a finished or a running episode
    assert sum(h1["episode_returns"]) <= 512 and len(h1["episode_returns"]) >= 10
    _, h3 = ppo.train("CartPole-v1", config, seed=4)
    assert h3["episode_returns"] != h1["episode_returns"]


def test_evaluate():
    torch.manual_seed(0)
    agent = ppo.Agent.for_env(gym.make("CartPole-v1"))
    returns = ppo.evaluate(agent, "CartPole-v1", episodes=3, seed=1)
    assert len(returns) == 3 and all(isinstance(r, float) and 1 <= r <= 500 for r in returns)
    assert returns == ppo.evaluate(agent, "CartPole-v1", episodes=3, seed=1)
    assert ppo.evaluate(agent, "CartPole-v1", episodes=3, seed=1, greedy=False) == \
        ppo.evaluate(agent, "CartPole-v1", episodes=3, seed=1, greedy=False)
    # an "always push left" policy loses quickly
    assert max(ppo.run_episodes(lambda obs: np.zeros(len(obs), dtype=int), "CartPole-v1", 4)) < 20
    with pytest.raises(ValueError, match="episodes"):
        ppo.evaluate(agent, "CartPole-v1", episodes=0)


def test_ppo_learns_cartpole():
    """A short run learns (the full "solved within 50k steps for 3 seeds" lives in tools/bench_ppo.py)."""
    config = ppo.PPOConfig(total_steps=8192, eval_every=4096, eval_episodes=5)
    agent, history = ppo.train("CartPole-v1", config, seed=0)
    first, last = np.mean(history["episode_returns"][:10]), np.mean(history["episode_returns"][-10:])
    assert first < 40  # an untrained policy balances for a few dozen steps at most
    assert last > 3 * first
    assert max(history["eval_returns"]) > 150
    assert np.mean(ppo.evaluate(agent, "CartPole-v1", episodes=5, seed=123)) > 150


def test_time_limit_rewards():
    got = ppo.time_limit_rewards(np.array([1.0, 1.0, 1.0, 1.0]), np.array([False, True, True, False]),
                                 np.array([True, True, False, False]), np.array([10.0, 10.0, 10.0, 10.0]), 0.9)
    # only env 0 was cut off by the time limit without failing
    assert got.tolist() == [10.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="final_values"):
        ppo.time_limit_rewards(np.ones(2), np.zeros(2), np.zeros(2), np.zeros(3), 0.9)


class Endless(gym.Env):
    """Reward 1 forever: with a time limit, every episode is truncated, never terminated."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}


def test_truncated_episodes_are_bootstrapped():
    """All states look the same and pay 1 forever: the critic must learn V = 1 / (1 - gamma), not a value that
    sinks towards the end of an episode (it cannot see the time) or treats the cut as a failure (V near 5)."""
    make = lambda: gym.wrappers.TimeLimit(Endless(), max_episode_steps=10)
    config = ppo.PPOConfig(total_steps=2048, num_envs=4, num_steps=32, gamma=0.8, clip_vloss=False,
                           learning_rate=3e-3, anneal_lr=False)
    agent, history = ppo.train(make, config, seed=0)
    assert history["episode_returns"][:3] == [10.0, 10.0, 10.0]
    with torch.no_grad():
        value = float(agent.value(torch.zeros(1, 2))[0])
    assert value == pytest.approx(1 / (1 - 0.8), abs=0.5)


@pytest.mark.parametrize("seed", ["public", "salt-x", "salt-y"])
def test_reference_passes_its_own_hidden_checks(seed):
    import json

    from aiterms import grading
    for t in grading.tasks("06-ppo"):
        cases = grading.draw_cases(t, "06-ppo", seed)
        assert len(cases) >= 20
        json.dumps(cases)  # plain data only
        for case in cases:
            out = grading.to_plain(t.call(grading.resolve(t.reference), case))
            assert t.compare(out, out, case) is None


@pytest.mark.parametrize("clip_vloss", [False, True])
def test_ppo_loss_is_the_sum_of_its_parts(clip_vloss):
    torch.manual_seed(0)
    agent = ppo.Agent(3, 4)
    g = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(16, 3, generator=g), torch.randint(0, 4, (16,), generator=g)
    logp_old = torch.log_softmax(torch.randn(16, 4, generator=g), -1).gather(1, actions[:, None])[:, 0]
    adv, ret, old_v = torch.randn(16, generator=g), torch.randn(16, generator=g), torch.randn(16, generator=g)
    config = ppo.PPOConfig(ent_coef=0.01, clip_vloss=clip_vloss)
    loss, stats = ppo.ppo_loss(agent, obs, actions, logp_old, adv, ret, old_v, config)
    dist = agent.dist(obs)
    pg = ppo.clipped_surrogate_loss(dist.log_prob(actions), logp_old, ppo.normalize_advantages(adv), 0.2)
    vl = ppo.value_loss(agent.value(obs), ret, *((old_v, 0.2) if clip_vloss else ()))
    ent = ppo.entropy_bonus(agent.actor(obs))
    assert loss.item() == pytest.approx((pg + 0.5 * vl - 0.01 * ent).item(), rel=1e-5, abs=1e-6)
    assert stats["policy_loss"] == pytest.approx(pg.item(), rel=1e-5, abs=1e-6)
    assert stats["entropy"] == pytest.approx(ent.item(), rel=1e-5, abs=1e-6)
    assert 0.0 <= stats["clip_frac"] <= 1.0 and stats["approx_kl"] >= 0.0
