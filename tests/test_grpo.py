"""aiterms.grpo, aiterms.rollout and aiterms.ppo_lm: hand-computed cases, slow oracles, TRL's GRPO loss, bad input."""
from __future__ import annotations

import copy
import math
import random
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aiterms import arithmetic, grpo, ppo_lm, rollout, sft
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------- advantages
def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.5, 0.5, 0.5])          # two groups of 3
    std = math.sqrt(1 / 3)                                    # unbiased: ((2/3)^2 + 2 (1/3)^2) / 2 = 1/3
    a = grpo.group_advantages(r, 3, eps=1e-4)
    expected = [(2 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4), 0, 0, 0]
    assert torch.allclose(a, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(grpo.group_advantages(r, 3, scale_std=False), torch.tensor([2 / 3, -1 / 3, -1 / 3, 0, 0, 0]))


def test_group_advantages_match_a_numpy_oracle():
    rng = np.random.default_rng(0)
    for G in (2, 4, 8):
        r = rng.random(5 * G)
        out = grpo.group_advantages(torch.tensor(r), G).numpy()
        oracle = []
        for i in range(0, len(r), G):
            g = r[i:i + G]
            oracle += [(x - g.mean()) / (g.std(ddof=1) + 1e-4) for x in g]
        assert np.allclose(out, oracle, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(rewards=torch.zeros(7), group_size=2), "divisible"),
    (dict(rewards=torch.zeros(4), group_size=1), "group_size"),
    (dict(rewards=torch.zeros(2, 2), group_size=2), "rewards"),
    (dict(rewards=torch.zeros(4), group_size=2, eps=0.0), "eps"),
])
def test_group_advantages_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grpo.group_advantages(**kwargs)


# ------------------------------------------------------------------------------------------- the loss
def slow_loss(logp, old, adv, mask, ref, eps, beta, loss_type, max_len):
    """Token by token, with Python floats."""
    N, T = len(logp), len(logp[0])
    rows, total, count = [], 0.0, 0.0
    for i in range(N):
        s = n = 0.0
        for t in range(T):
            if mask[i][t]:
                ratio = math.exp(logp[i][t] - old[i][t])
                l = -min(ratio * adv[i], min(max(ratio, 1 - eps), 1 + eps) * adv[i])
                if beta:
                    d = ref[i][t] - logp[i][t]
                    l += beta * (math.exp(d) - d - 1)
                s, n = s + l, n + 1
        rows.append(s / max(n, 1))
        total, count = total + s, count + n
    return {"grpo": sum(rows) / N, "bnpo": total / max(count, 1), "dr_grpo": total / (N * max_len)}[loss_type]


def random_inputs(seed, N=6, T=7):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(N, T, generator=g) * 3
    old = logp + torch.randn(N, T, generator=g) * 0.3                 # ratios both inside and outside the clip range
    ref = logp + torch.randn(N, T, generator=g) * 0.5
    adv = torch.randn(N, generator=g)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    lengths[0] = 0                                                    # an empty response
    start = torch.randint(0, 2, (N,), generator=g)
    mask = torch.zeros(N, T)
    for i in range(N):
        mask[i, start[i]:start[i] + lengths[i]] = 1
    return logp, old, adv, mask, ref


@pytest.mark.parametrize("loss_type", grpo.LOSS_TYPES)
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_matches_a_token_by_token_oracle(loss_type, beta):
    for seed in range(3):
        logp, old, adv, mask, ref = random_inputs(seed)
        got = grpo.grpo_loss(logp, old, adv, mask, ref, 0.2, beta, loss_type, max_len=9).item()
        expected = slow_loss(logp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), ref.tolist(), 0.2, beta,
                             loss_type, 9)
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_loss_by_hand():
    # one response of two tokens; ratio e^0.5 ~ 1.65 is clipped to 1.2 for a positive advantage, not for a negative
    logp, old = torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 0.0]])
    mask = torch.ones(1, 2)
    assert grpo.grpo_loss(logp, old, torch.tensor([1.0]), mask).item() == pytest.approx(-(1.2 + 1.0) / 2)
    assert grpo.grpo_loss(logp, old, torch.tensor([-1.0]), mask).item() == pytest.approx((math.exp(0.5) + 1) / 2)
    # on-policy (ratio 1) the gradient is the policy gradient: -A / |o| per token, for every loss type
    logp = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    grpo.grpo_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), mask).backward()
    assert torch.allclose(logp.grad, torch.tensor([[-0.25, -0.25, 0.0], [0.5, 0.0, 0.0]]))


def test_k3_is_zero_at_the_reference_and_positive_elsewhere():
    x = torch.linspace(-3, 0, 7)
    assert torch.all(grpo.kl_k3(x, x) == 0)
    assert torch.all(grpo.kl_k3(x, x - 0.5) > 0) and torch.all(grpo.kl_k3(x, x + 0.5) > 0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(old_logp=torch.zeros(2, 4)), "old_logp"),
    (dict(mask=torch.ones(3, 3)), "mask"),
    (dict(advantages=torch.zeros(3)), "advantages"),
    (dict(clip_eps=0.0), "clip_eps"),
    (dict(beta=-0.1), "beta"),
    (dict(beta=0.1), "ref_logp"),
    (dict(loss_type="sum"), "loss_type"),
])
def test_loss_bad_input(kwargs, match):
    args = dict(logp=torch.zeros(2, 3), old_logp=torch.zeros(2, 3), advantages=torch.zeros(2), mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=match):
        grpo.grpo_loss(**{**args, **kwargs})


# ------------------------------------------------------------------------------------------- TRL's loss
def trl_loss(loss_type, logp, old, adv, mask, ref, eps, beta, max_len):
    """TRL 1.16's GRPOTrainer._compute_loss, run on a stand-in `self` that hands it our log-probabilities."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    accelerator = SimpleNamespace(num_processes=1, reduce=lambda x, reduction="sum": x, gather=lambda x: x,
                                  gather_for_metrics=lambda x: x)
    this = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type, epsilon_low=eps, epsilon_high=eps, use_vllm=False,
        vllm_importance_sampling_correction=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, max_completion_length=max_len, _entropy_bonus_enabled=False,
        aux_loss_enabled=False, _metrics={"train": defaultdict(list)}, accelerator=accelerator)
    N, T = logp.shape
    inputs = {"prompt_ids": torch.zeros(N, 1, dtype=torch.long), "prompt_mask": torch.ones(N, 1),
              "completion_ids": torch.zeros(N, T, dtype=torch.long), "completion_mask": mask,
              "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
              "num_items_in_batch": mask.sum()}
    return GRPOTrainer._compute_loss(this, None, inputs)


@pytest.mark.parametrize("ours, theirs", [("grpo", "grpo"), ("bnpo", "bnpo"), ("bnpo", "dapo"),
                                          ("dr_grpo", "dr_grpo")])
def test_loss_matches_trl(ours, theirs):
    for seed, beta in [(0, 0.0), (1, 0.04), (2, 0.3)]:
        logp, old, adv, mask, ref = random_inputs(seed, N=8, T=10)
        logp.requires_grad_(True)
        a = grpo.grpo_loss(logp, old, adv, mask, ref, 0.2, beta, ours, max_len=12)
        (ga,) = torch.autograd.grad(a, logp)
        b = trl_loss(theirs, logp, old, adv, mask, ref, 0.2, beta, 12)
        (gb,) = torch.autograd.grad(b, logp)
        assert a.item() == pytest.approx(b.item(), rel=1e-6, abs=1e-7)
        assert torch.allclose(ga, gb, atol=1e-7)


# ------------------------------------------------------------------------------------------- rollouts
def tiny_model(seed=0):
    return GPT(GPTConfig(TOKENIZER.vocab_size, 48, n_layer=1, n_head=2, n_embd=16), seed=seed)


def test_pad_sequences_layout():
    ids, mask = rollout.pad_sequences([[1, 5, 3], [1, 5, 6, 3]], [[7, 2], [8]])
    assert ids.tolist() == [[1, 5, 3, 7, 2], [1, 5, 6, 3, 8]]
    # position t predicts token t + 1: response tokens are 7, 2 (row 0) and 8 (row 1)
    assert mask.tolist() == [[0, 0, 1, 1], [0, 0, 0, 1]]


def test_sample_group_is_prompt_major_deterministic_and_logps_match():
    model = tiny_model()
    problems = [arithmetic.Problem(12, 3, "+"), arithmetic.Problem(456, 78, "-")]
    r1 = rollout.sample_group(model, problems, 3, generator=torch.Generator().manual_seed(1), max_new_tokens=10)
    r2 = rollout.sample_group(model, problems, 3, generator=torch.Generator().manual_seed(1), max_new_tokens=10)
    assert r1.prompt_index == [0, 0, 0, 1, 1, 1] and r1.responses == r2.responses
    assert torch.equal(r1.ids, r2.ids) and r1.ids.shape[0] == 6
    for b in range(6):  # the prompt of row b, then its response, then padding
        prompt_ids = TOKENIZER.encode_prompt(arithmetic.prompt(problems[r1.prompt_index[b]]))
        assert r1.ids[b, :len(prompt_ids)].tolist() == prompt_ids
        n = int(r1.mask[b].sum())
        assert 1 <= n <= 10
        assert TOKENIZER.decode(r1.ids[b, len(prompt_ids):len(prompt_ids) + n]) == r1.responses[b]
    # the stored log-probability of each response equals a direct computation on the unpadded sequence
    with torch.no_grad():
        b = 4
        seq = r1.ids[b, :int((r1.mask[b] > 0).nonzero().max()) + 2]
        logits, _ = model(seq[None, :-1])
        direct = torch.log_softmax(logits[0], -1).gather(-1, seq[1:, None]).squeeze(-1)
        n = int(r1.mask[b].sum())
        assert torch.allclose(r1.logp[b][r1.mask[b] > 0], direct[-n:], atol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        rollout.sample_group(model, problems, 2, temperature=0.0)
    with pytest.raises(ValueError, match="group_size"):
        rollout.sample_group(model, problems, 0)


# ------------------------------------------------------------------------------------------- PPO pieces
def slow_gae(rewards, values, mask, gamma, lam):
    adv = [[0.0] * len(r) for r in rewards]
    for i in range(len(rewards)):
        ts = [t for t, m in enumerate(mask[i]) if m]
        for k in reversed(range(len(ts))):
            t = ts[k]
            nv = values[i][ts[k + 1]] if k + 1 < len(ts) else 0.0
            na = adv[i][ts[k + 1]] if k + 1 < len(ts) else 0.0
            adv[i][t] = rewards[i][t] + gamma * nv - values[i][t] + gamma * lam * na
    return adv


def test_gae_matches_a_slow_oracle_and_monte_carlo_returns():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    mask = torch.tensor([[0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]).float()
    rewards, values = rewards * mask, values * mask
    adv, ret = ppo_lm.gae(rewards, values, mask, 0.9, 0.8)
    assert torch.allclose(adv, torch.tensor(slow_gae(rewards.tolist(), values.tolist(), mask.tolist(), 0.9, 0.8)),
                          atol=1e-6)
    # lam = 1: the return is the discounted sum of the rewards still to come
    _, ret = ppo_lm.gae(rewards, values, mask, 1.0, 1.0)
    assert torch.allclose(ret[0, 1:4], torch.tensor([rewards[0, 1:4].sum(), rewards[0, 2:4].sum(), rewards[0, 3]]))


def test_token_rewards_put_the_score_on_the_last_token():
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]]).float()
    logp = torch.tensor([[0.0, -1.0, -2.0, 0.0], [-1.0, -1.0, -1.0, -1.0]])
    ref = logp - 0.5
    r = ppo_lm.token_rewards(torch.tensor([1.0, 0.1]), logp, ref, mask, kl_coef=0.1)
    assert torch.allclose(r, torch.tensor([[0, -0.05, 0.95, 0], [-0.05, -0.05, -0.05, 0.05]]))
    empty = ppo_lm.token_rewards(torch.tensor([2.0]), logp[:1], ref[:1], torch.zeros(1, 4), kl_coef=0.1)
    assert torch.equal(empty, torch.zeros(1, 4)), "a row without response tokens gets no reward"
    with pytest.raises(ValueError, match="kl_coef"):
        ppo_lm.token_rewards(torch.tensor([1.0, 0.1]), logp, ref, mask, kl_coef=-0.1)
    with pytest.raises(ValueError, match="expected scores"):
        ppo_lm.token_rewards(torch.tensor([1.0]), logp, ref, mask, kl_coef=0.1)


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="clip_eps"):
        grpo.GRPOConfig(clip_eps=0.0)
    with pytest.raises(ValueError, match="group_size"):
        grpo.GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="loss_type"):
        grpo.GRPOConfig(loss_type="mean")
    with pytest.raises(ValueError, match="minibatches"):
        ppo_lm.PPOLMConfig(prompts_per_step=10, minibatches=3)


# ------------------------------------------------------------------------------------------- training
def test_grpo_train_is_deterministic_and_reports_its_history():
    problems = [arithmetic.Problem(a, b, "+") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    config = grpo.GRPOConfig(steps=3, prompts_per_step=4, group_size=4, lr=1e-2, max_new_tokens=6, eval_every=3)
    runs = [grpo.train(tiny_model(), problems, config, eval_problems=problems[:2]) for _ in range(2)]
    (m1, h1), (m2, h2) = runs
    assert h1 == {**h2, "seconds": h1["seconds"]}
    assert all(torch.equal(x, y) for x, y in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert len(h1["step"]) == 3 and h1["eval_step"] == [0, 3] and h1["kl"][0] == pytest.approx(0.0, abs=1e-6)
    assert all(len(h1[k]) == 3 for k in ("reward", "correct", "length", "kl", "clip_fraction", "loss", "seconds"))


def test_grpo_with_another_reward_and_tracked_values():
    """reward_fn replaces the verifiable reward (RLHF: a learned one), track records more means; a constant reward
    gives zero advantages, so the weights do not move (beta 0); a reward of the wrong length is an error."""
    problems = [arithmetic.Problem(a, b, "+") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    config = grpo.GRPOConfig(steps=2, prompts_per_step=4, group_size=4, lr=1e-2, max_new_tokens=6, beta=0.0)
    seen = []

    def length_reward(ps, rs):
        seen.append((len(ps), len(rs), all(isinstance(p, arithmetic.Problem) for p in ps)))
        return [float(len(r)) for r in rs]

    _, h = grpo.train(tiny_model(), problems, config, reward_fn=length_reward,
                      track={"chars": lambda ps, rs: [len(r) for r in rs], "one": lambda ps, rs: [1.0] * len(rs)})
    assert seen == [(16, 16, True)] * 2 and h["one"] == [1.0, 1.0]
    assert h["reward"] == pytest.approx(h["chars"]), "the reward is the length reward, and chars tracks the same"
    start = tiny_model()
    model, _ = grpo.train(copy.deepcopy(start), problems, config, reward_fn=lambda ps, rs: [0.5] * len(rs))
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), start.state_dict().values()))
    with pytest.raises(ValueError, match="one reward per response"):
        grpo.train(tiny_model(), problems, config, reward_fn=lambda ps, rs: [1.0])


def test_grpo_data_parallel_matches_one_process_and_keeps_ranks_identical():
    """train_parallel: 1 process reproduces train() exactly; 2 processes (gloo) run deterministically, split the
    prompts, and end with the same weights on both ranks (train_parallel raises otherwise)."""
    problems = [arithmetic.Problem(a, b, "+") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    start = tiny_model()        # taught a little, so that the sampled answers get different rewards
    sft.train(start, sft.sft_examples([(arithmetic.prompt(p), arithmetic.cot_response(p)) for p in problems], 48),
              sft.TrainConfig(steps=80, batch_size=8, lr=1e-2, warmup=5), progress=False)
    fresh = lambda: copy.deepcopy(start)  # noqa: E731
    config = grpo.GRPOConfig(steps=2, prompts_per_step=4, group_size=4, lr=1e-2, max_new_tokens=16, eval_every=2)
    m0, h0 = grpo.train(fresh(), problems, config, eval_problems=problems[:3])
    assert 0 < h0["reward"][0] and any(not torch.equal(x, y) for x, y in zip(m0.state_dict().values(),
                                                                             start.state_dict().values()))
    m1, h1 = grpo.train_parallel(fresh(), problems, config, processes=1, eval_problems=problems[:3])
    assert h1 == {**h0, "seconds": h1["seconds"]}
    assert all(torch.equal(x, y) for x, y in zip(m0.state_dict().values(), m1.state_dict().values()))
    runs = [grpo.train_parallel(fresh(), problems, config, processes=2, eval_problems=problems[:3])
            for _ in range(2)]
    (m2, h2), (m3, h3) = runs
    assert h2 == {**h3, "seconds": h2["seconds"]} and h2["eval_step"] == [0, 2] and len(h2["step"]) == 2
    assert all(torch.equal(x, y) for x, y in zip(m2.state_dict().values(), m3.state_dict().values()))
    assert any(not torch.equal(x, y) for x, y in zip(m0.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError, match="divisible"):
        grpo.train_parallel(fresh(), problems, grpo.GRPOConfig(prompts_per_step=3), processes=2)


def test_grpo_data_parallel_step_equals_a_replay_of_both_ranks():
    """One step on 2 processes == replaying both ranks here: each rank's own samples, the mean of the two ranks'
    gradients, one AdamW step (catches ranks that share weights and step twice, or forget to average)."""
    problems = [arithmetic.Problem(a, b, "+") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    start = tiny_model()
    sft.train(start, sft.sft_examples([(arithmetic.prompt(p), arithmetic.cot_response(p)) for p in problems], 48),
              sft.TrainConfig(steps=80, batch_size=8, lr=1e-2, warmup=5), progress=False)
    config = grpo.GRPOConfig(steps=1, prompts_per_step=4, group_size=4, lr=1e-2, max_new_tokens=16, beta=0.0,
                             warmup=0)
    parallel, _ = grpo.train_parallel(copy.deepcopy(start), problems, config, processes=2)
    rng = random.Random(config.seed)
    batch = [problems[rng.randrange(len(problems))] for _ in range(config.prompts_per_step)]
    replay = copy.deepcopy(start)
    grads = []
    for rank in range(2):
        half = batch[2 * rank:2 * rank + 2]
        r = rollout.sample_group(replay, half, 4, 1.0, torch.Generator().manual_seed(config.seed + 1_000_003 * rank),
                                 16)
        rewards, _ = rollout.score_rollout(half, r)
        replay.zero_grad()
        replay.train()
        grpo.grpo_loss(rollout.token_logprobs(replay, r.ids), r.logp, grpo.group_advantages(rewards, 4), r.mask,
                       max_len=16).backward()
        grads.append([p.grad.clone() for p in replay.parameters()])
    for p, g0, g1 in zip(replay.parameters(), *grads):
        p.grad = (g0 + g1) / 2
    torch.nn.utils.clip_grad_norm_(replay.parameters(), config.grad_clip)
    torch.optim.AdamW(replay.parameters(), lr=config.lr, weight_decay=0.0, betas=(0.9, 0.99)).step()
    moved = max((a - b).abs().max().item() for a, b in zip(start.parameters(), replay.parameters()))
    error = max((a - b).abs().max().item() for a, b in zip(parallel.parameters(), replay.parameters()))
    assert moved > 1e-3 and error < 1e-6, (moved, error)


def test_grpo_learning_rate_warms_up_then_stays_or_decays():
    problems = [arithmetic.Problem(1, 2, "+")]
    config = grpo.GRPOConfig(steps=4, prompts_per_step=1, group_size=2, lr=1e-2, max_new_tokens=4, warmup=1)
    _, constant = grpo.train(tiny_model(), problems, config)
    config.decay = True
    _, decayed = grpo.train(tiny_model(), problems, config)
    assert constant["lr"] == pytest.approx([5e-3, 1e-2, 1e-2, 1e-2])
    assert decayed["lr"] == pytest.approx([5e-3, 0.75e-2, 0.5e-2, 0.25e-2])


def test_grpo_raises_the_probability_of_rewarded_responses():
    """One update on a fixed group: the rewarded response becomes more likely, the others less."""
    model = tiny_model(1)
    problems = [arithmetic.Problem(1, 2, "+")]
    r = rollout.sample_group(model, problems, 4, generator=torch.Generator().manual_seed(0), max_new_tokens=5)
    adv = grpo.group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = grpo.grpo_loss(rollout.token_logprobs(model, r.ids), r.logp, adv, r.mask)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = (rollout.token_logprobs(model, r.ids) * r.mask).sum(-1)
    before = (r.logp * r.mask).sum(-1)
    assert after[0] > before[0]
    if r.responses[1] != r.responses[0]:
        assert after[1] < before[1]


def test_ppo_lm_trains_and_keeps_a_critic():
    problems = [arithmetic.Problem(a, b, "+") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    config = ppo_lm.PPOLMConfig(steps=2, prompts_per_step=4, minibatches=2, max_new_tokens=6)
    policy = tiny_model()
    critic = ppo_lm.Critic(policy)
    start = [p.clone() for p in critic.parameters()]
    policy, history = ppo_lm.train(policy, problems, config, critic=critic)
    assert len(history["step"]) == 2 and all(math.isfinite(x) for x in history["value_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(start, critic.parameters()))
    assert critic(torch.tensor([[1, 5, 6]])).shape == (1, 3)
    assert sum(p.numel() for p in critic.parameters()) == policy.num_parameters() + 17
