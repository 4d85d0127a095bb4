"""aiterms.quantization: int8/int4 per-channel quantization by hand, its error bound, torch's peers, the GPT."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from aiterms import checkpoints
from aiterms import arithmetic, evaluation, quantization as Q
from aiterms.transformer import GPT, generate_batch

torch.set_num_threads(1)


def test_quantize_by_hand():
    w = torch.tensor([[0.5, -1.27, 0.0], [0.0, 0.0, 0.0], [2.54, 1.0, -0.01]])
    q, s = Q.quantize_per_channel(w)
    assert q.dtype == torch.int8 and s.dtype == torch.float32
    assert torch.allclose(s, torch.tensor([0.01, 1.0, 0.02]))       # max|row| / 127; a zero row gets 1
    assert q.tolist() == [[50, -127, 0], [0, 0, 0], [127, 50, 0]]  # -0.01 / 0.02 = -0.5 rounds to even: 0
    assert torch.allclose(Q.dequantize_per_channel(q, s), torch.tensor([[0.5, -1.27, 0], [0, 0, 0], [2.54, 1.0, 0]]))
    q4, s4 = Q.quantize_per_channel(torch.tensor([[7.0, -3.5, 1.6]]), bits=4)
    assert s4.tolist() == [1.0] and q4.tolist() == [[7, -4, 2]]    # -3.5 rounds to even (-4)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_matches_torch_per_channel_quantizer_and_the_error_bound():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 48, generator=g) * torch.rand(64, 1, generator=g)
    q, s = Q.quantize_per_channel(w)
    ref = torch.quantize_per_channel(w, s.double(), torch.zeros(64, dtype=torch.long), 0, torch.qint8)
    assert torch.equal(ref.int_repr(), q)
    for bits in (8, 4):
        q, s = Q.quantize_per_channel(w, bits)
        err = (w - Q.dequantize_per_channel(q, s)).abs()
        assert (err <= Q.error_bound(s)[:, None] * (1 + 1e-5)).all()
        assert int(q.abs().max()) == Q.qmax(bits) and int(q.min()) >= -Q.qmax(bits)


def test_int4_packing_round_trips():
    q = torch.randint(-8, 8, (5, 7), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    packed = Q.pack_int4(q)
    assert packed.shape == (5, 4) and packed.dtype == torch.uint8
    assert torch.equal(Q.unpack_int4(packed, 7), q)


def test_quant_linear_equals_linear_with_dequantized_weights():
    lin = nn.Linear(10, 6)
    x = torch.randn(3, 4, 10)
    for bits in (8, 4):
        ql = Q.QuantLinear.from_linear(lin, bits)
        expected = x @ ql.weight_dequantized().T + lin.bias
        assert torch.allclose(ql(x), expected, atol=1e-5)


@pytest.fixture(scope="module")
def model():
    return checkpoints.load("sft-cot")


def test_quantized_gpt_size_accuracy_and_torch_dynamic_peer(model):
    q8, q4, dyn = Q.quantize_model(model, 8), Q.quantize_model(model, 4), Q.dynamic_quantize(model)
    assert isinstance(q8, GPT) and q8.config == model.config and model.blocks[0].mlp.fc.__class__ is nn.Linear
    assert sum(isinstance(m, Q.QuantLinear) for m in q8.modules()) == 4 * model.config.n_layer
    sizes = {name: Q.model_size_bytes(m) for name, m in [("fp32", model), ("int8", q8), ("int4", q4), ("dyn", dyn)]}
    linear = sum(model.get_submodule(n).weight.numel() for n in Q.linear_names(model))
    assert sizes["fp32"] - sizes["int8"] > 0.9 * 3 * linear            # 4 bytes -> 1 byte per linear weight
    assert sizes["int8"] - sizes["int4"] > 0.9 * 0.5 * linear
    assert abs(sizes["int8"] - sizes["dyn"]) < 0.05 * sizes["int8"]    # same layers, same int8 storage
    problems = arithmetic.sample_problems(40, 3, seed=7, ops=("+", "-"))
    acc = {name: evaluation.score(problems, evaluation.solve(m, problems, "cot"))["accuracy"]
           for name, m in [("fp32", model), ("int8", q8), ("dyn", dyn)]}
    assert acc["fp32"] >= 0.85 and acc["int8"] >= acc["fp32"] - 0.05 and acc["dyn"] >= acc["fp32"] - 0.05
    ratios = Q.weight_error(model, q8)
    assert len(ratios) == 8 and max(ratios.values()) <= 1 + 1e-4


def test_quantized_model_generates_with_the_kv_cache(model):
    q8 = Q.quantize_model(model, 8)
    prompts = [[1, 5, 6, 3], [1, 7, 8, 3]]
    assert generate_batch(q8, prompts, 8, use_cache=True) == generate_batch(q8, prompts, 8, use_cache=False)


@pytest.mark.parametrize("bad", [
    lambda: Q.quantize_per_channel(torch.zeros(3)),
    lambda: Q.quantize_per_channel(torch.zeros(2, 2), bits=3),
    lambda: Q.quantize_per_channel(torch.tensor([[1.0, float("nan")]])),
    lambda: Q.quantize_per_channel(torch.zeros(2, 2, dtype=torch.long)),
    lambda: Q.dequantize_per_channel(torch.zeros(2, 3, dtype=torch.int8), torch.ones(3)),
    lambda: Q.quantize_model(nn.Linear(2, 2)),
    lambda: Q.pack_int4(torch.tensor([[9]])),
])
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        bad()
