"""Decoding: turning a language model's next-token distribution into text.

The language-model protocol used across the course is deliberately tiny::

    model(input_ids: LongTensor (N, T)) -> logits: FloatTensor (N, V)

A model is any callable that takes a batch of N token sequences of equal length T and returns the logits of the
*next* token for each of them (V = vocabulary size). The n-gram model of chapter 16, the random bigram model used
by the exercises' hidden tests and the tiny transformer of later chapters all follow it, and so does a Hugging Face
model wrapped as ``lambda ids: hf_model(ids).logits[:, -1, :]``.

This module holds what every decoder needs (input checks, log-probabilities, a call counter), greedy decoding and
seeded sampling with temperature, top-k and top-p. Beam search lives in :mod:`aiterms.beam_search`.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch


class LanguageModel(Protocol):
    """Anything that maps token ids ``(N, T)`` to next-token logits ``(N, V)``."""

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor: ...


def as_prompt(prompt: Sequence[int] | torch.Tensor) -> list[int]:
    """Return ``prompt`` as a non-empty list of non-negative ints, or raise ``ValueError`` naming ``prompt``."""
    if isinstance(prompt, torch.Tensor):
        if prompt.dim() != 1 or prompt.dtype.is_floating_point:
            raise ValueError(f"prompt must be a 1-D integer tensor or a list of ints, got a tensor of shape "
                             f"{tuple(prompt.shape)} and dtype {prompt.dtype}")
        prompt = prompt.tolist()
    try:
        ids = [int(t) for t in prompt]
    except (TypeError, ValueError):
        raise ValueError(f"prompt must be a sequence of token ids (ints), got {prompt!r}") from None
    if any(int(t) != t for t in prompt):
        raise ValueError(f"prompt must contain whole-number token ids, got {list(prompt)!r}")
    if not ids:
        raise ValueError("prompt must contain at least one token (a model needs something to condition on)")
    if min(ids) < 0:
        raise ValueError(f"prompt token ids must be >= 0, got {min(ids)}")
    return ids


def check_positive_int(name: str, value: int) -> int:
    """Raise ``ValueError`` unless ``value`` is an int >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_eos(eos_token_id: int | None, vocab_size: int) -> None:
    """Raise ``ValueError`` if ``eos_token_id`` is given but is not a token of a vocabulary of ``vocab_size``."""
    if eos_token_id is not None and not (0 <= eos_token_id < vocab_size):
        raise ValueError(f"eos_token_id={eos_token_id} is outside the vocabulary (ids 0..{vocab_size - 1})")


@torch.no_grad()
def next_token_logprobs(model: LanguageModel, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """Log-probabilities of the next token after each sequence.

    ``log p(v | x) = logits_v - logsumexp(logits)``, computed in float32 like Hugging Face's ``generate``.

    Args:
        model: a :class:`LanguageModel`.
        sequences: N token sequences of equal length T.
    Returns:
        ``(N, V)`` float32 tensor of log-probabilities (each row sums to 1 after ``exp``).
    Raises:
        ValueError: if the model's output is not ``(N, V)`` logits or the sequences differ in length.
    """
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequences must all have the same length, got lengths {sorted(lengths)}")
    ids = torch.tensor([list(s) for s in sequences], dtype=torch.long)  # (N, T)
    logits = model(ids)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != ids.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must return next-token logits of shape (N, V) = ({ids.shape[0]}, V) "
                         f"for input_ids of shape {tuple(ids.shape)}, got {shape}")
    if logits.shape[1] < 2:
        raise ValueError(f"model logits must cover a vocabulary of at least 2 tokens, got V={logits.shape[1]}")
    return torch.log_softmax(logits.float(), dim=-1)


def greedy_decode(model: LanguageModel, prompt: Sequence[int] | torch.Tensor, max_new_tokens: int,
                  eos_token_id: int | None = None) -> list[int]:
    """Greedy decoding: always take the single most likely next token.

    ``y_t = argmax_v log p(v | x, y_<t)`` for t = 1..max_new_tokens, stopping right after ``eos_token_id``.
    Ties go to the lowest token id (``torch.argmax``), as in Hugging Face's ``generate(do_sample=False)``.

    Returns:
        the generated token ids (the prompt excluded, the EOS token included if it was produced).
    """
    seq = as_prompt(prompt)
    check_positive_int("max_new_tokens", max_new_tokens)
    generated: list[int] = []
    for _ in range(max_new_tokens):
        logp = next_token_logprobs(model, [seq + generated])[0]  # (V,)
        check_eos(eos_token_id, logp.shape[0])
        token = int(torch.argmax(logp))
        generated.append(token)
        if token == eos_token_id:
            break
    return generated


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Mask (set to ``-inf``) the tokens that top-k and then top-p (nucleus) sampling exclude.

    top-k keeps the k largest logits. top-p keeps the smallest set of most likely tokens whose probability mass
    reaches ``top_p`` (the token that crosses the threshold is kept) (Holtzman et al., 2020).

    Args:
        logits: ``(..., V)``.
    Returns:
        a new tensor of the same shape.
    """
    out = logits.clone()
    if top_k is not None:
        check_positive_int("top_k", top_k)
        k = min(top_k, out.shape[-1])
        kth = torch.topk(out, k, dim=-1).values[..., -1:]  # (..., 1)
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None:
        if not (0.0 < top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly more likely tokens
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def sample(model: LanguageModel, prompt: Sequence[int] | torch.Tensor, max_new_tokens: int, *,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           eos_token_id: int | None = None, generator: torch.Generator | None = None,
           seed: int | None = None) -> list[int]:
    """Ancestral sampling: ``y_t ~ softmax(filter(logits) / temperature)``.

    Deterministic given ``seed`` (or a ``torch.Generator``): the same seed gives the same text.

    Returns:
        the generated token ids (prompt excluded, EOS included if produced).
    """
    seq = as_prompt(prompt)
    check_positive_int("max_new_tokens", max_new_tokens)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy_decode for temperature 0), got {temperature!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    generated: list[int] = []
    for _ in range(max_new_tokens):
        logp = next_token_logprobs(model, [seq + generated])[0]
        check_eos(eos_token_id, logp.shape[0])
        probs = torch.softmax(filter_logits(logp / temperature, top_k, top_p), dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
        generated.append(token)
        if token == eos_token_id:
            break
    return generated


def sequence_logprob(model: LanguageModel, prompt: Sequence[int] | torch.Tensor, continuation: Sequence[int]) -> float:
    """``log p(y | x) = sum_t log p(y_t | x, y_<t)``: how likely the model finds ``continuation`` after ``prompt``."""
    seq = as_prompt(prompt)
    total = 0.0
    for t, token in enumerate(continuation):
        total += float(next_token_logprobs(model, [seq + list(continuation[:t])])[0, token])
    return total


class CountingModel:
    """Wraps a model and counts its cost: ``calls`` (forward passes) and ``rows`` (sequences scored)."""

    def __init__(self, model: LanguageModel):
        self.model = model
        self.calls = 0
        self.rows = 0

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += int(input_ids.shape[0])
        return self.model(input_ids)


class RandomBigramLM:
    """A random bigram language model: ``logits = scale * W[last token] (+ position_scale * P[position])``.

    ``W ~ N(0, 1)`` of shape ``(V, V)`` and ``P ~ N(0, 1)`` of shape ``(max_len, V)``, seeded. Cheap, deterministic and
    peaked enough (``scale`` > 1) that decoders disagree in interesting ways; the exercises' hidden tests draw many.
    With ``position_scale = 0`` it is a true bigram model, in which two sequences made of the same transitions in a
    different order have exactly the same probability; the per-position term breaks such ties.
    """

    def __init__(self, vocab_size: int, seed: int = 0, scale: float = 2.0, position_scale: float = 0.0,
                 max_len: int = 64):
        check_positive_int("vocab_size", vocab_size)
        g = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab_size
        self.table = scale * torch.randn(vocab_size, vocab_size, generator=g)           # (V, V)
        self.position = position_scale * torch.randn(max_len, vocab_size, generator=g)  # (max_len, V)

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] > self.position.shape[0]:
            raise ValueError(f"input_ids are longer ({input_ids.shape[1]}) than max_len={self.position.shape[0]}")
        return self.table[input_ids[:, -1]] + self.position[input_ids.shape[1] - 1]  # (N, V)
