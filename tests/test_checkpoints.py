"""The released checkpoints (checkpoints/, made by `make models OUT=checkpoints FORCE=1`): every file loads,
metrics.json records the committed canonical configuration, and re-evaluating each model on this machine reproduces
the greedy accuracies recorded where it was trained (evaluation, unlike training, gives the same answers on every
CPU); a missing or corrupt file names itself and the command that rebuilds it."""
from __future__ import annotations

import json

import pytest
import torch

from aiterms import checkpoints, pipeline
from aiterms.evaluation import solve
from aiterms.prm import StepVerifier
from aiterms.transformer import GPT

METRICS = checkpoints.metrics()


def test_every_released_checkpoint_loads():
    assert checkpoints.folder() == checkpoints.RELEASED
    for name in checkpoints.MODELS:
        model = checkpoints.load(name)
        assert isinstance(model, GPT) and not model.training
        assert model.config.n_embd == METRICS["config"]["n_embd"]
    for name in checkpoints.REWARD_MODELS:
        assert isinstance(checkpoints.load_reward_model(name), StepVerifier)
    assert checkpoints.load("sft-cot").metadata["stage"] == "sft-cot"


def test_metrics_record_the_committed_configuration():
    """The release was made by the canonical PipelineConfig: change a default and the release is stale."""
    recorded = dict(METRICS["config"])
    canonical = pipeline.PipelineConfig().to_dict()
    recorded.pop("out"), canonical.pop("out")   # where it was written is not part of the recipe
    assert recorded == canonical
    assert pipeline.PipelineConfig.from_dict(METRICS["config"]).to_dict() == METRICS["config"]
    machine = METRICS["machine"]
    assert machine["torch"].startswith(torch.__version__.split("+")[0]) and machine["cpu_capability"]


def test_held_out_sets_are_the_pipelines_draws():
    test, hard = checkpoints.held_out()
    config = pipeline.PipelineConfig.from_dict(METRICS["config"])
    assert len(hard) == config.hard_test == METRICS["hard"]["problems"]
    assert {len(str(max(p.a, p.b))) for p in test} == set(config.digits)
    assert (test, hard) == pipeline.held_out_problems(config)


def _accuracy(model, problems, fmt):
    return sum(pipeline._right(problems, solve(model, problems, fmt))) / len(problems)


@pytest.mark.slow
@pytest.mark.parametrize("name, fmt, key", [("sft-cot", "cot", "cot_accuracy"),
                                            ("sft-direct", "direct", "direct_accuracy"),
                                            ("rl-grpo", "cot", "rl_accuracy")])
def test_re_evaluation_reproduces_the_recorded_accuracy(name, fmt, key):
    torch.set_num_threads(1)
    test, hard = checkpoints.held_out()
    model = checkpoints.load(name)
    assert _accuracy(model, test, fmt) == pytest.approx(METRICS[key], abs=0.01)
    if fmt == "cot":
        recorded = METRICS["hard" if name == "sft-cot" else "hard_rl"]["greedy_pass@1"]
        assert _accuracy(model, hard, "cot") == pytest.approx(recorded, abs=0.01)


def test_a_missing_or_corrupt_checkpoint_names_the_file_and_the_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("AITERMS_CHECKPOINTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"sft-cot\.pt is missing.*make models OUT=checkpoints FORCE=1"):
        checkpoints.load("sft-cot")
    (tmp_path / "sft-cot.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"sft-cot\.pt could not be loaded.*make models"):
        checkpoints.load("sft-cot")
    (tmp_path / "prm.pt").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"prm\.pt could not be loaded"):
        checkpoints.load_reward_model("prm")
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"metrics\.json is not valid JSON"):
        checkpoints.metrics()
    with pytest.raises(ValueError, match="name"):
        checkpoints.path("")


def test_the_pipeline_refuses_to_overwrite_the_release_unless_forced(capsys):
    with pytest.raises(SystemExit):
        pipeline.main(["--out", str(checkpoints.RELEASED)])
    assert "--force" in capsys.readouterr().err
    assert json.loads(checkpoints.path("metrics.json").read_text()) == METRICS   # untouched
