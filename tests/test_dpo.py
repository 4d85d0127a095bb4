"""aiterms.dpo: the DPO loss by hand, against TRL's DPOTrainer on the same tensors, preference pairs, training."""
from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from aiterms import checkpoints
from aiterms import arithmetic, dpo
from aiterms.rollout import token_logprobs
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig

torch.set_num_threads(1)

CONFIG = GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=48, n_layer=1, n_head=2, n_embd=32)


def test_dpo_loss_by_hand():
    # one pair: policy moved +1 on chosen and -1 on rejected relative to the reference, beta = 0.5:
    # margin = 0.5 * (1 - (-1)) = 1, loss = -log sigmoid(1) = log(1 + e^-1)
    loss, rw, rl = dpo.dpo_loss(torch.tensor([-3.0]), torch.tensor([-6.0]), torch.tensor([-4.0]),
                                torch.tensor([-5.0]), beta=0.5)
    assert math.isclose(float(loss), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    assert rw.tolist() == [0.5] and rl.tolist() == [-0.5]
    # policy = reference: every margin is 0, the loss is log 2 whatever beta
    x = torch.tensor([-2.0, -7.0, -1.0])
    assert math.isclose(float(dpo.dpo_loss(x, x - 1, x, x - 1, beta=3.0)[0]), math.log(2), rel_tol=1e-6)


def test_dpo_loss_matches_a_loop_and_its_gradient_sign():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-5 * torch.rand(6, generator=g) for _ in range(4))
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    loss, _, _ = dpo.dpo_loss(pc, pr, rc, rr, beta=0.2)
    slow = sum(-math.log(1 / (1 + math.exp(-0.2 * ((a - c) - (b - d)))))
               for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())) / 6
    assert math.isclose(float(loss.detach()), slow, rel_tol=1e-6)
    loss.backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()   # descent raises chosen, lowers rejected


def test_sequence_logprobs_sums_only_the_mask():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -9.0, -9.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert dpo.sequence_logprobs(logp, mask).tolist() == [-5.0, -0.5]


@pytest.mark.parametrize("bad", [
    lambda: dpo.dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2)),
    lambda: dpo.dpo_loss(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1)),
    lambda: dpo.dpo_loss(torch.zeros(0), torch.zeros(0), torch.zeros(0), torch.zeros(0)),
    lambda: dpo.dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=0.0),
    lambda: dpo.sequence_logprobs(torch.zeros(2, 3), torch.zeros(2, 4)),
    lambda: dpo.DPOConfig(beta=-1.0),
    lambda: dpo.DPOConfig(steps=0),
    lambda: dpo.encode_pairs([]),
])
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        bad()


def _pairs() -> list[dpo.PreferencePair]:
    p = [arithmetic.Problem(47, 85, "+"), arithmetic.Problem(85, 47, "-"), arithmetic.Problem(5, 3, "+")]
    return [dpo.PreferencePair(p[0], "7+5+0=12|4+8+1=13|=132", "7+5+0=12|4+8+0=12|=122"),
            dpo.PreferencePair(p[1], "15-7-0=8|8-4-1=3|=38", "=38"),
            dpo.PreferencePair(p[2], "5+3+0=8|=8", "5+3+0=9|=9")]


def _trl_loss(policy: GPT, ref: GPT, ids: torch.Tensor, mask: torch.Tensor, beta: float,
              loss_types: list[str], weights: list[float]) -> torch.Tensor:
    """TRL's own DPOTrainer._compute_loss on our model, through a minimal stand-in trainer and model wrapper."""
    from trl.trainer.dpo_trainer import DPOTrainer

    def wrap(model: GPT):
        def forward(input_ids, attention_mask=None, labels=None, use_cache=False, fused_lm_head=True):
            logits, _ = model(input_ids)
            logits = logits[:, :-1].float()                                    # predicts input_ids[:, 1:]
            logp_all = torch.log_softmax(logits, -1)
            target = labels[:, 1:]
            logp = logp_all.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1) * (target != -100)
            return SimpleNamespace(log_probs=logp, entropy=-(logp_all.exp() * logp_all).sum(-1),
                                   mean_logits=logits.mean(-1), is_top1=logits.argmax(-1) == target)
        return forward

    completion_mask = torch.cat([torch.zeros(ids.shape[0], 1), mask], dim=1).long()   # (2B, T)
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True, is_gradient_checkpointing=False), ref_model=wrap(ref),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x, gather=lambda x: x),
        aux_loss_enabled=False, precompute_ref_logps=False, ld_alpha=None, f_divergence_type="reverse_kl",
        loss_types=loss_types, loss_weights=weights, beta=beta, use_weighting=False,
        _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None))
    inputs = {"input_ids": ids, "attention_mask": (ids != TOKENIZER.pad_id).long(), "completion_mask": completion_mask}
    return DPOTrainer._compute_loss(trainer, wrap(policy), inputs, False)


@pytest.mark.parametrize("beta, sft_weight", [(0.1, 0.0), (0.7, 0.0), (0.3, 0.5)])
def test_loss_matches_trl_dpo_trainer(beta, sft_weight):
    policy, ref = GPT(CONFIG, seed=1), GPT(CONFIG, seed=2)
    ids, mask = dpo.encode_pairs(_pairs())
    assert mask.sum(-1).tolist() == [len(s) + 1 for s in ("7+5+0=12|4+8+1=13|=132", "15-7-0=8|8-4-1=3|=38",
                                                          "5+3+0=8|=8", "7+5+0=12|4+8+0=12|=122", "=38",
                                                          "5+3+0=9|=9")]
    logp = token_logprobs(policy, ids)
    pc, pr = dpo.sequence_logprobs(logp, mask).chunk(2)
    with torch.no_grad():
        rc, rr = dpo.pair_logprobs(ref, ids, mask)
    ours = dpo.dpo_loss(pc, pr, rc, rr, beta)[0]
    types, weights = ["sigmoid"], [1.0]
    if sft_weight:
        ours = ours + sft_weight * dpo.chosen_nll(logp[:3], mask[:3])
        types, weights = ["sigmoid", "sft"], [1.0, sft_weight]
    theirs = _trl_loss(policy, ref, ids, mask, beta, types, weights)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6), (float(ours), float(theirs))
    (g_ours,) = torch.autograd.grad(ours, policy.tok_emb.weight, retain_graph=True)
    (g_theirs,) = torch.autograd.grad(theirs, policy.tok_emb.weight)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-7)


def test_preference_pairs_are_right_and_wrong_and_deterministic():
    model = checkpoints.load("sft-cot")
    problems = arithmetic.sample_problems(12, 4, seed=5, ops=("+", "-"))
    pairs = dpo.preference_pairs(model, problems, samples=6, seed=3)
    assert pairs == dpo.preference_pairs(model, problems, samples=6, seed=3)
    assert pairs, "4-digit problems: the SFT model is right on some samples and wrong on others"
    for pair in pairs:
        assert arithmetic.extract_answer(pair.chosen) == pair.problem.answer
        assert arithmetic.extract_answer(pair.rejected) != pair.problem.answer


def test_pairs_from_samples_takes_the_first_right_and_first_wrong():
    p, q = arithmetic.Problem(12, 30, "+"), arithmetic.Problem(5, 4, "-")
    right, wrong, other_wrong = arithmetic.cot_response(p), "2+0+0=2|1+3+0=4|=41", "=40"
    pairs = dpo.pairs_from_samples([p, q], [[wrong, right, other_wrong, right], [arithmetic.cot_response(q)] * 2])
    assert pairs == [dpo.PreferencePair(p, right, wrong)], "one pair per problem with a right and a wrong answer"
    assert dpo.pairs_from_samples([p], [[wrong, other_wrong]]) == []
    with pytest.raises(ValueError, match="same length"):
        dpo.pairs_from_samples([p, q], [[right]])


def test_training_raises_the_margin_and_keeps_the_reference():
    model = GPT(CONFIG, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    policy, history = dpo.train_dpo(model, _pairs(), dpo.DPOConfig(beta=0.5, lr=3e-3, steps=25, batch_size=3, sft_weight=0.0))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())     # the reference is frozen
    assert math.isclose(history["loss"][0], math.log(2), rel_tol=1e-5)             # policy == reference at step 0
    assert history["margin"][-1] > 1.0 and history["accuracy"][-1] == 1.0
    assert history["loss"][-1] < 0.4
    again = dpo.train_dpo(model, _pairs(), dpo.DPOConfig(beta=0.5, lr=3e-3, steps=25, batch_size=3, sft_weight=0.0))[1]
    assert again == history                                                        # deterministic
    assert history["loss"] == history["dpo_loss"]
    with_sft = dpo.train_dpo(model, _pairs(), dpo.DPOConfig(beta=0.5, lr=3e-3, steps=2, batch_size=3))[1]
    assert math.isclose(with_sft["dpo_loss"][0], math.log(2), rel_tol=1e-5) and with_sft["loss"][0] > math.log(2) + 0.1
