"""aiterms.distributed: data-parallel REINFORCE with torchrun (2 processes, gloo) keeps the ranks identical."""
from __future__ import annotations

import pytest
import torch

from aiterms.distributed import launch, parse_args


def test_two_ranks_end_with_identical_parameters(tmp_path):
    results = launch(2, tmp_path, updates=4, num_envs=2, rollout_steps=16, save_params=True)
    assert results["world_size"] == 2 and results["env_steps"] == 2 * 4 * 2 * 16
    assert results["max_parameter_difference"] == 0.0
    assert 0 < results["median_update_cpu_seconds"] and results["steps_per_update"] == 2 * 2 * 16
    rank0 = torch.load(tmp_path / "params-rank0.pt")
    rank1 = torch.load(tmp_path / "params-rank1.pt")
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # and training moved them: the same seed's initial weights differ from the final ones
    from aiterms.reinforce import Policy
    torch.manual_seed(0)  # how train() initialises the policy for seed 0
    start = Policy(4, 2, 32)
    assert any(not torch.equal(p, rank0[n]) for n, p in start.state_dict().items())


def test_command_line_and_bad_input():
    config, args = parse_args(["--updates", "7", "--normalize", "false", "--lr", "0.01"])
    assert (config.updates, config.normalize, config.lr, args.save_params) == (7, False, 0.01, False)
    with pytest.raises(ValueError, match="nproc"):
        launch(0)
    with pytest.raises(ValueError, match="unknown"):
        launch(1, learning_rate=0.1)
