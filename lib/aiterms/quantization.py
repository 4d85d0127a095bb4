"""Weight quantization: store every linear layer's weights as small integers plus one scale per output channel.

**Symmetric per-channel quantization** (the absmax scheme of Dettmers et al., 2022, "LLM.int8()", applied per row
of the weight matrix). For a weight ``W`` of shape ``(out, in)`` and ``b`` bits, with ``q_max = 2^(b-1) - 1`` (127
for int8, 7 for int4)::

    s_i   = max_j |W_ij| / q_max                 (out,)      one scale per output channel (row); 1.0 if the row is 0
    Q_ij  = clamp(round(W_ij / s_i), -q_max, q_max)          (out, in)   int8 (round half to even, torch.round)
    W^_ij = Q_ij * s_i                                       (out, in)   the dequantized weight

Because ``|W_ij / s_i| <= q_max`` the clamp never bites, and rounding moves a value by at most half a step, so the
**error bound** is ``|W_ij - W^_ij| <= s_i / 2`` for every entry. The range is symmetric (-127..127, not -128), so 0
is exact and no zero point is needed.

A :class:`QuantLinear` keeps ``Q`` (int8; two int4 values packed per byte for ``bits=4``) and ``s`` and computes
``y = (x Q^T) * s + bias``: the scale of row ``i`` factors out of output ``i``, so the weights are dequantized on
the fly and the float matrix is never stored. :func:`quantize_model` returns a copy of a
:class:`~aiterms.transformer.GPT` whose ``nn.Linear`` layers are :class:`QuantLinear`; it is still a ``GPT`` (same
``config``, ``forward``, ``forward_cached``), so :func:`aiterms.transformer.generate_batch` and
:func:`aiterms.evaluation.solve` take it unchanged::

    from aiterms.quantization import quantize_model, model_size_bytes
    q8 = quantize_model(checkpoints.load("sft-cot"), bits=8)
    solve(q8, problems, "cot"); model_size_bytes(q8)

The output layer ``lm_head`` is tied to the token embedding (one matrix used twice) and is left in float32 by
default, like the embeddings and LayerNorms. :func:`dynamic_quantize` is PyTorch's peer,
``torch.ao.quantization.quantize_dynamic`` (int8 weights with one scale per tensor, activations quantized on the
fly), applied to the same layers, for comparison.
"""
from __future__ import annotations

import copy
import io
import warnings
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from aiterms.transformer import GPT

BITS = (4, 8)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    return bits


def qmax(bits: int = 8) -> int:
    """The largest integer level of a symmetric ``bits``-bit code: ``2^(bits-1) - 1`` (127 for 8, 7 for 4)."""
    return 2 ** (_check_bits(bits) - 1) - 1


def _check_weight(w: torch.Tensor, name: str = "w") -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or not w.is_floating_point():
        raise ValueError(f"{name} must be a 2-D float tensor (out, in), got "
                         f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return w


def quantize_per_channel(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel quantization of a weight matrix (see the module docstring).

    ``s_i = max_j |w_ij| / q_max`` (1.0 for a row of zeros), ``q_ij = clamp(round(w_ij / s_i), -q_max, q_max)``.

    Args:
        w: ``(out, in)`` float weights (an ``nn.Linear.weight``).
        bits: 8 (``q_max = 127``) or 4 (``q_max = 7``).
    Returns:
        ``q (out, in)`` int8 and ``scale (out,)`` float32.
    Raises:
        ValueError: ``w`` not a finite non-empty 2-D float tensor, or ``bits`` not 4 or 8.
    """
    _check_weight(w)
    levels = qmax(bits)
    w = w.detach().float()
    amax = w.abs().amax(dim=1)                                                   # (out,)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))         # (out,)
    q = torch.round(w / scale[:, None]).clamp(-levels, levels).to(torch.int8)   # (out, in)
    return q, scale


def dequantize_per_channel(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``w^_ij = q_ij * s_i``: ``q (out, in)`` integers and ``scale (out,)`` -> ``(out, in)`` float32.

    Raises:
        ValueError: ``q`` not 2-D, ``scale`` not ``(out,)``.
    """
    if not isinstance(q, torch.Tensor) or q.dim() != 2:
        raise ValueError(f"q must be a 2-D tensor (out, in), got "
                         f"{tuple(q.shape) if isinstance(q, torch.Tensor) else type(q).__name__}")
    if not isinstance(scale, torch.Tensor) or scale.shape != (q.shape[0],):
        raise ValueError(f"scale must have shape ({q.shape[0]},) (one per row of q), got "
                         f"{tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__}")
    return q.float() * scale.float()[:, None]


def error_bound(scale: torch.Tensor) -> torch.Tensor:
    """The largest possible ``|w_ij - w^_ij|`` in row ``i``: half a quantization step, ``s_i / 2``. ``(out,)``."""
    return scale / 2


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two 4-bit values per byte: ``q (out, in)`` in ``-8..7`` -> ``(out, ceil(in / 2))`` uint8.

    Byte ``k`` of a row holds ``q[2k] + 8`` in its low nibble and ``q[2k+1] + 8`` in its high nibble (an odd last
    column is padded with 0). :func:`unpack_int4` inverts it.
    """
    if not isinstance(q, torch.Tensor) or q.dim() != 2:
        raise ValueError("q must be a 2-D integer tensor")
    if q.numel() and (int(q.min()) < -8 or int(q.max()) > 7):
        raise ValueError("q must hold 4-bit values in -8..7")
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    if u.shape[1] % 2:
        u = torch.cat([u, torch.full((u.shape[0], 1), 8, dtype=torch.uint8)], dim=1)
    return u[:, 0::2] | (u[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor, columns: int) -> torch.Tensor:
    """Inverse of :func:`pack_int4`: ``(out, ceil(columns / 2))`` uint8 -> ``(out, columns)`` int8."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack([low, high], dim=2).reshape(packed.shape[0], -1)[:, :columns]


class QuantLinear(nn.Module):
    """A linear layer with int8 (or packed int4) weights and one float32 scale per output channel.

    ``y = (x Q^T) * s + bias``; ``x (..., in)`` -> ``(..., out)``. Built from an ``nn.Linear`` with
    :meth:`from_linear`. Buffers: ``qweight`` (int8 ``(out, in)``, or uint8 ``(out, ceil(in/2))`` for 4 bits),
    ``scale (out,)``, ``bias (out,)`` or none.
    """

    def __init__(self, in_features: int, out_features: int, bits: int = 8, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.bits = in_features, out_features, _check_bits(bits)
        cols = in_features if bits == 8 else (in_features + 1) // 2
        self.register_buffer("qweight", torch.zeros(out_features, cols,
                                                    dtype=torch.int8 if bits == 8 else torch.uint8))
        self.register_buffer("scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int = 8) -> QuantLinear:
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.in_features, linear.out_features, bits, bias=linear.bias is not None)
        q, scale = quantize_per_channel(linear.weight, bits)
        layer.qweight = q if bits == 8 else pack_int4(q)
        layer.scale = scale
        if linear.bias is not None:
            layer.bias = linear.bias.detach().float().clone()
        return layer

    def int_weight(self) -> torch.Tensor:
        """The integer levels ``Q (out, in)`` as int8 (unpacked for 4 bits)."""
        return self.qweight if self.bits == 8 else unpack_int4(self.qweight, self.in_features)

    def weight_dequantized(self) -> torch.Tensor:
        """``W^ = Q * s`` as ``(out, in)`` float32."""
        return dequantize_per_channel(self.int_weight(), self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.int_weight().to(x.dtype)) * self.scale.to(x.dtype)   # (..., out)
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


def linear_names(model: nn.Module, skip: Iterable[str] = ("lm_head",)) -> list[str]:
    """Names of the ``nn.Linear`` submodules of ``model`` that are not in ``skip`` (default: the tied output layer)."""
    skip = set(skip)
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and name not in skip]


def quantize_model(model: GPT, bits: int = 8, skip: Iterable[str] = ("lm_head",)) -> GPT:
    """A copy of ``model`` whose ``nn.Linear`` layers (except ``skip``) are :class:`QuantLinear` with ``bits`` bits.

    The copy is still a :class:`~aiterms.transformer.GPT` in eval mode (``config``, ``forward``, ``forward_cached``),
    so ``generate_batch``, ``solve`` and the readiness checks take it as they take the float model; ``model`` is
    left unchanged. Embeddings, LayerNorms and the tied ``lm_head`` stay float32. For inference only.

    Raises:
        ValueError: ``model`` not a GPT, ``bits`` not 4 or 8.
    """
    if not isinstance(model, GPT):
        raise ValueError(f"model must be an aiterms.transformer.GPT, got {type(model).__name__}")
    _check_bits(bits)
    names = linear_names(model, skip)
    out = copy.deepcopy(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, QuantLinear.from_linear(getattr(parent, child), bits))
    out.metadata = {**model.metadata, "quantized": f"int{bits} per-channel symmetric", "quantized_layers": names}
    return out.eval()


def dynamic_quantize(model: GPT, skip: Iterable[str] = ("lm_head",), per_channel: bool = False) -> GPT:
    """PyTorch's peer: ``torch.ao.quantization.quantize_dynamic`` with ``qint8`` weights on the same layers as
    :func:`quantize_model` (a copy; ``model`` is unchanged). Per-tensor scales by default (PyTorch's default
    qconfig), per-channel with ``per_channel=True``. Activations are quantized on the fly at each matmul."""
    if not isinstance(model, GPT):
        raise ValueError(f"model must be an aiterms.transformer.GPT, got {type(model).__name__}")
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch.ao.quantization announces its move to torchao
        out = quantize_dynamic(copy.deepcopy(model).eval(), {name: qconfig for name in linear_names(model, skip)},
                               dtype=torch.qint8)
    return out.eval()


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what the checkpoint would take on disk (shared tensors once)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def weight_error(model: GPT, quantized: GPT) -> dict[str, float]:
    """Per quantized layer: the largest ``|W - W^|`` divided by the largest ``s_i / 2`` (at most 1 by the bound)."""
    out = {}
    for name, m in quantized.named_modules():
        if isinstance(m, QuantLinear):
            w = model.get_submodule(name).weight.detach().float()
            err = (w - m.weight_dequantized()).abs().amax(dim=1)
            out[name] = float((err / error_bound(m.scale)).max())
    return out
