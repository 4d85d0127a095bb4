"""A tiny decoder-only transformer (GPT), in the style of nanoGPT (Karpathy, 2022), with a KV cache.

Radford et al. (2019)'s GPT-2 architecture at toy size: token and learned position embeddings, ``n_layer`` pre-LayerNorm
blocks, a final LayerNorm and an output layer tied to the token embedding (Press & Wolf, 2017)::

    h_0 = E[idx] + P[0..T-1]                                   (B, T, C)    C = n_embd
    h   = h + Attn(LN(h));   h = h + MLP(LN(h))                 per block
    logits = LN(h) E^T                                          (B, T, V)

Causal self-attention (Vaswani et al., 2017) with H = n_head heads of size D = C / H:
``softmax(q k^T / sqrt(D) + causal mask) v``, computed by ``torch.nn.functional.scaled_dot_product_attention``.
``logits[:, t]`` is the model's prediction of token ``t + 1``; it depends on ``idx[:, :t+1]`` only.

**KV cache.** Generating token by token would recompute the keys and values of the whole prefix at every step. The
cache keeps them: per layer a pair ``(k, v)``, each ``(B, H, T_past, D)``. :meth:`GPT.forward_cached` runs only the
new tokens (at positions ``T_past .. T_past + T - 1``), attends to the cached keys plus their own, and returns the
cache extended to ``T_past + T``. The logits are those of the full recomputation (up to float rounding).

**The course's language-model protocol** (ids ``(N, T)`` -> next-token logits ``(N, V)``, see
:mod:`aiterms.decoding`) is :func:`as_lm` (model), so greedy decoding, sampling and beam search run on it unchanged.

**Checkpoints**: :meth:`GPT.save` writes ``{"format", "config", "state_dict", "metadata"}`` with ``torch.save``;
:meth:`GPT.load` rebuilds the model from its config, loads the weights and returns it in eval mode (milliseconds).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from aiterms.decoding import LanguageModel, as_prompt, check_positive_int

#: Per layer, the cached keys and values, each ``(B, n_head, T_past, head_dim)``.
KVCache = list[tuple[torch.Tensor, torch.Tensor]]

CHECKPOINT_FORMAT = "aiterms.transformer.GPT/1"


@dataclass
class GPTConfig:
    """The model's size. ``block_size`` is the context (most positions a forward pass sees); ``n_embd`` must be a
    multiple of ``n_head``; ``dropout`` applies to embeddings, attention weights and residual branches in training."""

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that can continue from cached keys and values."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x (B, T, C)``, ``past`` = cached ``(k, v)`` each ``(B, H, T_past, D)`` -> ``(B, T, C)`` and ``(k, v)``
        extended to ``T_past + T``."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)                                             # (B, T, C) each
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)          # (B, H, T_past + T, D)
        t_past = k.shape[2] - T
        dropout_p = self.dropout if self.training else 0.0
        if t_past == 0:       # no cache: the usual lower-triangular mask
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
        elif T == 1:          # one new token: it may see every cached position and itself
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:                 # new query i sits at position t_past + i and sees keys 0 .. t_past + i
            mask = torch.ones(T, t_past + T, dtype=torch.bool, device=x.device).tril(diagonal=t_past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                                  # (B, T, C)
        return self.resid_drop(self.proj(y)), (k, v)


class MLP(nn.Module):
    """``Dropout(W_2 GELU(W_1 x))`` with a hidden width of ``4 C``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(config.n_embd), CausalSelfAttention(config)
        self.ln_2, self.mlp = nn.LayerNorm(config.n_embd), MLP(config)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


class GPT(nn.Module):
    """The tiny GPT (see the module docstring). ``GPT(config, seed)`` initialises deterministically from ``seed``.

    Initialisation as GPT-2: weights ``N(0, 0.02)``, the residual output projections ``N(0, 0.02 / sqrt(2 n_layer))``,
    biases 0, LayerNorms identity. Building a model leaves PyTorch's global random state untouched.
    """

    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.metadata: dict[str, Any] = {}
        with torch.random.fork_rng(devices=[]):   # nn.Linear's own init draws from the global generator
            self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
            self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
            self.drop = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: logits = h E^T
        self._init_weights(seed)

    @classmethod
    def from_seed(cls, config: GPTConfig, seed: int) -> GPT:
        """A freshly initialised model; the same ``(config, seed)`` always gives the same weights."""
        return cls(config, seed)

    @torch.no_grad()
    def _init_weights(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        g = torch.Generator().manual_seed(seed)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and name != "lm_head":
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith(".proj") else 0.02
                nn.init.normal_(module.weight, 0.0, std, generator=g)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02, generator=g)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Number of trainable numbers (the tied embedding/output matrix counted once)."""
        return sum(p.numel() for p in self.parameters())

    def _check_idx(self, idx: torch.Tensor, t_past: int = 0) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long or idx.shape[1] == 0:
            raise ValueError(f"idx must be a (B, T) LongTensor of token ids with T >= 1, got "
                             f"{tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__}"
                             f"{' of dtype ' + str(idx.dtype) if isinstance(idx, torch.Tensor) else ''}")
        if t_past + idx.shape[1] > self.config.block_size:
            raise ValueError(f"idx has {idx.shape[1]} tokens" + (f" after {t_past} cached ones" if t_past else "")
                             + f", longer than the context block_size={self.config.block_size}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            raise ValueError(f"idx contains token ids outside 0..{self.config.vocab_size - 1}")

    def _run(self, idx: torch.Tensor, past_kv: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        t_past = 0 if past_kv is None else past_kv[0][0].shape[2]
        self._check_idx(idx, t_past)
        positions = torch.arange(t_past, t_past + idx.shape[1], device=idx.device)            # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(positions))                              # (B, T, C)
        present: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if past_kv is None else past_kv[i])
            present.append(kv)
        return self.lm_head(self.ln_f(x)), present                                              # (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of every position and, given ``targets``, the mean cross-entropy over the non-ignored ones.

        ``loss = sum_{b,t: y[b,t] != -100} -log softmax(logits[b, t])[y[b, t]] / #{b,t: y[b,t] != -100}``: one mean
        over all counted tokens of the batch (``F.cross_entropy(..., ignore_index=-100)``); NaN if none is counted.

        Args:
            idx: ``(B, T)`` token ids, ``T <= block_size``.
            targets: ``(B, T)`` next-token labels (``targets[:, t]`` is the token after ``idx[:, t]``), ``-100`` =
                ignore; e.g. the labels of :meth:`aiterms.tokenizer.CharTokenizer.encode_pair`.
        Returns:
            ``logits (B, T, V)`` and ``loss`` (a scalar tensor, or ``None`` without targets).
        """
        logits, _ = self._run(idx, None)
        if targets is None:
            return logits, None
        if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape or targets.dtype != torch.long:
            raise ValueError(f"targets must be a LongTensor shaped like idx {tuple(idx.shape)}, got "
                             f"{getattr(targets, 'shape', type(targets).__name__)}")
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def forward_cached(self, idx: torch.Tensor, past_kv: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Run only the new tokens ``idx`` after a cached prefix (see "KV cache" in the module docstring).

        Args:
            idx: ``(B, T)`` new token ids, at positions ``T_past .. T_past + T - 1``; ``T_past + T <= block_size``.
            past_kv: the cache returned by the previous call (``None``: start from scratch), ``n_layer`` pairs of
                ``(B, n_head, T_past, head_dim)`` tensors.
        Returns:
            ``logits (B, T, V)`` of the new positions and the cache extended to ``T_past + T`` positions.
        """
        if past_kv is not None:
            if len(past_kv) != self.config.n_layer or any(len(kv) != 2 for kv in past_kv):
                raise ValueError(f"past_kv must hold one (k, v) pair per layer ({self.config.n_layer}), "
                                 f"got {len(past_kv)} entries")
            if isinstance(idx, torch.Tensor) and past_kv[0][0].shape[0] != idx.shape[0]:
                raise ValueError(f"past_kv has batch size {past_kv[0][0].shape[0]} but idx has {idx.shape[0]} rows")
        return self._run(idx, past_kv)

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | Path, **metadata: Any) -> None:
        """Write ``{"format", "config" (a dict), "state_dict", "metadata"}`` to ``path`` with ``torch.save``.

        ``metadata`` (plain Python values: numbers, strings, lists, dicts) travels along, e.g. the data format or
        the metrics of the run; :meth:`load` puts it in ``model.metadata``.
        """
        torch.save({"format": CHECKPOINT_FORMAT, "config": asdict(self.config), "state_dict": self.state_dict(),
                    "metadata": {**self.metadata, **metadata}}, path)

    @classmethod
    def load(cls, path: str | Path) -> GPT:
        """Rebuild the model saved by :meth:`save` (on the CPU, in eval mode, ``metadata`` restored).

        Uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain values, never code.
        """
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"path {str(path)!r} is not a checkpoint written by GPT.save ({CHECKPOINT_FORMAT})")
        model = cls(GPTConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        model.metadata = dict(ckpt["metadata"])
        return model.eval()


# ---------------------------------------------------------------- using the model
@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put ``model`` in eval mode (no dropout), restoring its train/eval mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def as_lm(model: GPT) -> LanguageModel:
    """The course's language-model protocol: ``ids (N, T) -> logits (N, V)`` of the next token.

    The logits of the last position, computed without gradients and in eval mode (the model's mode is restored), as
    float32; ``T <= block_size``. No cache: every call recomputes the whole sequence.
    """
    if not isinstance(model, GPT):
        raise ValueError(f"model must be a GPT, got {type(model).__name__}")

    def lm(input_ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), eval_mode(model):
            logits, _ = model(input_ids)
        return logits[:, -1, :].float()  # (N, V)

    return lm


@torch.no_grad()
def generate_batch(model: GPT, prompts: Sequence[Sequence[int]] | torch.Tensor, max_new_tokens: int,
                   eos_id: int | None = None, use_cache: bool = True, temperature: float = 0.0,
                   generator: torch.Generator | None = None) -> list[list[int]]:
    """Continue B prompts of equal length at once: greedy (``temperature=0``) or sampled.

    Greedy: ``y_t = argmax_v logits_t[v]`` (ties to the lowest id); sampled: ``y_t ~ softmax(logits_t / temperature)``
    drawn with ``generator`` (default: seed 0), so a generator seeded the same gives the same samples. Runs in eval
    mode (restored afterwards). With ``use_cache`` each step feeds one token per row through
    :meth:`GPT.forward_cached`; without it each step recomputes the whole sequence. The two give the same tokens.

    Args:
        prompts: B prompts of the same length T0 (a list of id lists or a ``(B, T0)`` tensor).
        max_new_tokens: tokens to generate at most; ``T0 + max_new_tokens - 1 <= block_size``.
        eos_id: a row stops right after producing it.
    Returns:
        B lists of generated ids (prompt excluded, ``eos_id`` included when produced).
    """
    if not isinstance(model, GPT):
        raise ValueError(f"model must be a GPT, got {type(model).__name__}")
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2:
            raise ValueError(f"prompts must be a (B, T0) tensor or a list of id lists, "
                             f"got shape {tuple(prompts.shape)}")
        prompts = prompts.tolist()
    if len(prompts) == 0:
        raise ValueError("prompts must contain at least one prompt")
    rows = [as_prompt(p) for p in prompts]
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"prompts must all have the same length, got lengths {sorted({len(r) for r in rows})}")
    check_positive_int("max_new_tokens", max_new_tokens)
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int)
                               or not 0 <= eos_id < model.config.vocab_size):
        raise ValueError(f"eos_id={eos_id!r} is not a token id of the vocabulary (0..{model.config.vocab_size - 1})")
    if len(rows[0]) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"prompt length {len(rows[0])} + max_new_tokens {max_new_tokens} - 1 exceeds the context "
                         f"block_size={model.config.block_size}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if temperature > 0 and generator is None:
        generator = torch.Generator().manual_seed(0)

    seq = torch.tensor(rows, dtype=torch.long)                   # (B, T0)
    done = torch.zeros(len(rows), dtype=torch.bool)              # (B,)
    out: list[torch.Tensor] = []
    with eval_mode(model):
        if use_cache:
            logits, cache = model.forward_cached(seq)
        else:
            logits, _ = model(seq)
        for step in range(max_new_tokens):
            last = logits[:, -1, :].float()                      # (B, V)
            if temperature == 0:
                token = torch.argmax(last, dim=-1)               # (B,)
            else:
                token = torch.multinomial(torch.softmax(last / temperature, -1), 1, generator=generator)[:, 0]
            out.append(token)
            if eos_id is not None:
                done |= token == eos_id
            if bool(done.all()) or step == max_new_tokens - 1:
                break
            if use_cache:
                logits, cache = model.forward_cached(token[:, None], cache)
            else:
                seq = torch.cat([seq, token[:, None]], dim=1)
                logits, _ = model(seq)
    generated = torch.stack(out, dim=1).tolist()                # (B, steps)
    if eos_id is not None:
        generated = [g[:g.index(eos_id) + 1] if eos_id in g else g for g in generated]
    return generated


def generate(model: GPT, prompt_ids: Sequence[int] | torch.Tensor, max_new_tokens: int, eos_id: int | None = None,
             use_cache: bool = True) -> list[int]:
    """Greedy decoding of one prompt: ``y_t = argmax_v p(v | prompt, y_<t)`` until ``eos_id`` or ``max_new_tokens``.

    The same tokens as :func:`aiterms.decoding.greedy_decode` (``as_lm(model)``, ...), faster with the KV cache;
    ``use_cache=False`` recomputes the whole sequence at each step and gives the same tokens.

    Returns:
        the generated ids (prompt excluded, ``eos_id`` included when produced).
    """
    return generate_batch(model, [as_prompt(prompt_ids)], max_new_tokens, eos_id=eos_id, use_cache=use_cache)[0]
