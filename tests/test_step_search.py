"""aiterms.step_search: the step verifier, and MCTS over reasoning steps against sampling."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aiterms import checkpoints
from aiterms.arithmetic import Problem, cot_response
from aiterms.step_search import StepSearchConfig, next_steps, sample_until_verified, step_mcts, verifier
from aiterms.transformer import GPT

CHECKPOINT = checkpoints.RELEASED / "sft-cot.pt"


def test_verifier_by_hand():
    p = Problem(47, 85, "+")
    assert verifier(p, "7+5+0=12|4+8+1=13|=132") == (True, True)
    assert verifier(p, "7+5+0=12|") == (True, False)            # a right prefix
    assert verifier(p, "7+5+0=12|4+8+1=13|") == (True, False)
    assert verifier(p, "") == (True, False)                     # nothing written yet
    assert verifier(p, "7+5+0=12|4+8+0=12|") == (False, False)  # carry ignored
    assert verifier(p, "7+5+0=12|4+8+1=13|=133") == (True, False)  # right steps, wrong answer
    assert verifier(p, "7+5+0=12|=12") == (True, False)         # a column missing
    assert verifier(p, "7+5+0=12|4+8+1=13|0+0+1=1|") == (False, False)  # one step too many
    q = Problem(1000, 1, "-")
    assert verifier(q, cot_response(q)) == (True, True)


@pytest.mark.parametrize("kwargs", [{"token_budget": 0}, {"c": 0.0}, {"width": 0}, {"temperature": 0.0},
                                    {"max_expansions": 0}])
def test_bad_config(kwargs):
    with pytest.raises(ValueError):
        StepSearchConfig(**kwargs)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    if not CHECKPOINT.exists():
        pytest.fail(f"{CHECKPOINT} is missing: run `make models` first")
    return GPT.load(CHECKPOINT)


def test_next_steps_stop_after_one_step(model):
    p = Problem(4701, 8532, "+")
    steps, tokens = next_steps(model, p, "", 4, 1.0, torch.Generator().manual_seed(0))
    assert len(steps) == 4 and tokens > 0
    assert all(s.count("|") <= 1 and (s.endswith("|") or "=" in s) for s in steps)
    (rest,), _ = next_steps(model, p, "1+2+0=3|", 1, 0.0, None)  # greedy: the whole rest
    assert rest.count("|") >= 1 or rest.startswith("=")


def test_search_solves_an_easy_problem_and_is_deterministic(model):
    p = Problem(23, 45, "+")
    a = step_mcts(model, p, StepSearchConfig(token_budget=200), seed=3)
    assert a["correct"] and a["response"] == cot_response(p) and a["tokens"] <= 200 + 12 * 4
    assert a == step_mcts(model, p, StepSearchConfig(token_budget=200), seed=3)
    b = sample_until_verified(model, p, 200, seed=3)
    assert b["correct"] and b["response"] == cot_response(p)


def test_search_beats_sampling_at_equal_tokens_on_hard_problems(model):
    from aiterms.arithmetic import sample_problems
    from aiterms.evaluation import solve
    problems = sample_problems(12, 4, seed=1313, ops=("+", "-"))
    greedy = [r[0] for r in solve(model, problems, "cot")]
    hard = [p for p, r in zip(problems, greedy) if not verifier(p, r)[1]][:6]
    assert len(hard) >= 4
    mcts = [step_mcts(model, p, StepSearchConfig(token_budget=600), seed=i) for i, p in enumerate(hard)]
    sampled = [sample_until_verified(model, p, 600, temperature=1.5, seed=i) for i, p in enumerate(hard)]
    assert all(r["tokens"] <= 600 + 12 * 4 for r in mcts)
    assert all(verifier(p, r["response"])[1] == r["correct"] for p, r in zip(hard, mcts))
    assert sum(r["correct"] for r in mcts) >= sum(r["correct"] for r in sampled)
