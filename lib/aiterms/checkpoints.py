"""The course's released checkpoints: where they live, loading them with a clear error, and their held-out sets.

Training is chaotic in the CPU's floating-point kernels: the same seed gives other models with AVX-512, AVX2 or no
vector kernels. So the models that the chapters, exercises, tests and benchmarks use are **released** with the
repository, in ``checkpoints/`` at its root, made once by ``make models`` (:mod:`aiterms.pipeline`) with the canonical
:class:`~aiterms.pipeline.PipelineConfig`; ``metrics.json`` there records that run (its configuration, metrics and
the machine). Evaluating a checkpoint gives the same answers on every CPU; only training differs.

::

    from aiterms import checkpoints
    sft = checkpoints.load("sft-cot")            # a GPT, eval mode
    prm = checkpoints.load_reward_model("prm")   # an aiterms.prm.StepVerifier
    metrics = checkpoints.metrics()               # the pipeline run that made them
    test, hard = checkpoints.held_out()           # its held-out problems (never trained on)

``AITERMS_CHECKPOINTS=<folder>`` points everything at another folder (e.g. one written by ``make models``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from aiterms import arithmetic

#: the folder of the released checkpoints: ``checkpoints/`` at the repository root
RELEASED = Path(__file__).resolve().parents[2] / "checkpoints"
#: language models (``GPT``) and reward models (``aiterms.prm.StepVerifier``) in the release
MODELS: tuple[str, ...] = ("pretrained", "sft-cot", "sft-direct", "rl-grpo")
REWARD_MODELS: tuple[str, ...] = ("prm", "prm-mc", "orm")
REBUILD = "`git checkout -- checkpoints` restores the released ones; `make models OUT=checkpoints FORCE=1` retrains them"


def _why(error: Exception) -> str:
    """The first line of an error, shortened (torch.load's messages run over many lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:160] if lines else ''}"


def folder() -> Path:
    """The checkpoint folder in use: ``$AITERMS_CHECKPOINTS`` if set, else :data:`RELEASED`."""
    return Path(os.environ.get("AITERMS_CHECKPOINTS") or RELEASED)


def path(name: str) -> Path:
    """The file of checkpoint ``name`` (``"sft-cot"`` or ``"sft-cot.pt"``, ``"metrics.json"``); a clear
    ``FileNotFoundError`` naming the file and how to get it back when it is missing."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a checkpoint name such as 'sft-cot', got {name!r}")
    file = folder() / (name if Path(name).suffix else f"{name}.pt")
    if not file.exists():
        raise FileNotFoundError(f"checkpoint file {file} is missing: {REBUILD}")
    return file


def load(name: str):
    """The language model ``name`` (one of :data:`MODELS`), a :class:`~aiterms.transformer.GPT` in eval mode."""
    from aiterms.transformer import GPT
    file = path(name)
    try:
        return GPT.load(file)
    except Exception as error:   # a truncated or foreign file: say which, and how to rebuild it
        raise RuntimeError(f"checkpoint file {file} could not be loaded ({_why(error)}): {REBUILD}") from error


def load_reward_model(name: str):
    """The reward model ``name`` (``"prm"``: a PRM trained on exact step labels, ``"prm-mc"``: on Monte Carlo labels,
    ``"orm"``: an outcome reward model), an :class:`aiterms.prm.StepVerifier` in eval mode."""
    from aiterms.prm import StepVerifier
    file = path(name)
    try:
        return StepVerifier.load(file)
    except Exception as error:
        raise RuntimeError(f"checkpoint file {file} could not be loaded ({_why(error)}): {REBUILD}") from error


def metrics() -> dict:
    """``metrics.json`` of the run that made the checkpoints (configuration, metrics by stage, machine)."""
    file = path("metrics.json")
    try:
        return json.loads(file.read_text())
    except ValueError as error:
        raise RuntimeError(f"checkpoint file {file} is not valid JSON ({_why(error)}): {REBUILD}") from error


def held_out(run: dict | None = None) -> tuple[list[arithmetic.Problem], list[arithmetic.Problem]]:
    """The held-out problems of the run (default: :func:`metrics`): the test problems of every trained size, and the
    harder set (``hard_digits``) on which the RL stage is evaluated; the same draws as :mod:`aiterms.pipeline`."""
    from aiterms.pipeline import PipelineConfig, held_out_problems
    config = (run or metrics())["config"]
    return held_out_problems(PipelineConfig.from_dict(config))
