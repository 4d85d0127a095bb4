"""aiterms.pipeline on a tiny configuration: every stage runs, exports loadable checkpoints, is deterministic."""
from __future__ import annotations

import json

import pytest
import torch

from aiterms import grpo, pipeline, prm
from aiterms.sft import TrainConfig
from aiterms.transformer import GPT


def tiny(out) -> pipeline.PipelineConfig:
    return pipeline.PipelineConfig(out=str(out), raw_lines=600, digits=(1, 2), hard_digits=3, test_per_size=20,
                                   n_layer=1, n_head=2, n_embd=32, pretrain=TrainConfig(steps=5, batch_size=16),
                                   sft=TrainConfig(steps=10, batch_size=16), pass_k=2, rl_pool=40, hard_test=20,
                                   sampled_problems=10, rl_ready_problems=6, rl_ready_every=4,
                                   rl=grpo.GRPOConfig(steps=2, prompts_per_step=2, group_size=2, max_new_tokens=12),
                                   reward_models=prm.PRMConfig(digits=3, problems=3, samples_per_problem=2,
                                                               val_problems=3, rollouts=2, steps=2, batch_size=4))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    return out, pipeline.run(tiny(out), progress=False)


def test_every_stage_reports_and_exports(run):
    out, metrics = run
    for stage in ("collection", "processing", "pretraining", "sft_cot", "sft_direct", "rl", "evaluation",
                  "reward_models"):
        assert stage in metrics["seconds"]
    rl = metrics["rl"]  # chapter 7: GRPO from the step-by-step model, with its training curve
    assert "GRPO" in rl["stage"] and rl["digits"] == 3 and 0 < rl["problems"] <= 40
    assert rl["history"]["step"] == [1, 2] and rl["history"]["eval_step"] == [0, 2]
    assert rl["history"]["eval_pass@1"][0] == metrics["hard"]["greedy_pass@1"]
    assert 0 <= metrics["hard_rl"]["greedy_pass@1"] <= 1 and set(metrics["rl_accuracy_by_digits"]) == {1, 2}
    report = metrics["data"]
    assert report["raw lines"] == 600 and report["contaminated dropped"] > 0
    assert report["train"] + report["val"] == report["kept"]
    assert set(metrics["cot_accuracy_by_digits"]) == {1, 2}
    assert 0 <= metrics["hard"]["sampled_pass@1"] <= metrics["hard"]["sampled_pass@2"] <= 1
    assert json.loads((out / "metrics.json").read_text())["data"] == report
    for name in ("pretrained", "sft-cot", "sft-direct", "rl-grpo"):
        model = GPT.load(out / f"{name}.pt")
        assert model.config.n_embd == 32
    assert metrics["reward_models"]["train_responses"] == 6   # chapter 14: 3 problems x 2 sampled answers
    for name in prm.REWARD_MODELS:
        assert prm.load_reward_model(out / f"{name}.pt").config.n_embd == 32
    assert all(word in pipeline.table(metrics) for word in ("SFT cot", "RL (GRPO)", "total"))


def test_deterministic_for_a_seed(run, tmp_path):
    out, metrics = run
    again = pipeline.run(tiny(tmp_path), progress=False)
    for key in ("data", "pretrain_loss", "sft_cot_loss", "cot_accuracy_by_digits", "hard", "hard_rl"):
        assert again[key] == metrics[key]
    a, b = GPT.load(out / "sft-cot.pt"), GPT.load(tmp_path / "sft-cot.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_rl_ready_checks_and_the_direct_models_budget(run):
    """The step-by-step SFT asks "RL-ready?" every rl_ready_every steps (a tiny model never is: all 10 steps run,
    checks at 4 and 8); the direct model trains exactly as many steps."""
    _, metrics = run
    ready = metrics["rl_ready"]
    assert ready["target"] == 0.5 and ready["problems"] == 6 and len(ready["curve"]) == 2
    assert all(0 <= acc < 0.5 for acc in ready["curve"])
    assert metrics["sft_cot_steps"] == metrics["sft_direct_steps"] == 10
    assert metrics["hard"]["problems"] == 20 and metrics["hard"]["sampled_problems"] == 10
    gain = metrics["rl_gain"]
    assert gain["gain"] == pytest.approx(metrics["hard_rl"]["greedy_pass@1"] - metrics["hard"]["greedy_pass@1"])
    assert gain["se"] >= 0 and metrics["hard"]["greedy_se"] >= 0


def test_data_parallel_sft_matches_one_process(run, tmp_path):
    """processes=2 (the default) trains SFT data-parallel in two processes; processes=1 trains in this one. Same data,
    same batches: the models agree up to float rounding (the order of the gradient sums differs)."""
    out, metrics = run
    config = tiny(tmp_path)
    config.processes, config.rl, config.reward_models = 1, None, None
    alone = pipeline.run(config, progress=False)
    assert alone["rl"] == pipeline.RL_SKIPPED and alone["data"] == metrics["data"]
    for key in ("sft_cot_loss", "sft_direct_loss"):
        assert alone[key] == pytest.approx(metrics[key], rel=1e-4)
    for name in ("sft-cot", "sft-direct"):
        a, b = GPT.load(out / f"{name}.pt"), GPT.load(tmp_path / f"{name}.pt")
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.allclose(x, y, rtol=1e-3, atol=1e-4)


def test_bad_process_counts_are_rejected(tmp_path):
    for name, value in (("processes", 0), ("threads", 1.5)):
        config = tiny(tmp_path)
        setattr(config, name, value)
        with pytest.raises(ValueError, match=name):
            pipeline.run(config, progress=False)
