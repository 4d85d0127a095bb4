"""Batched generation: left padding, attention masks, and static vs continuous batching of a stream of requests.

One forward pass over ``B`` sequences costs far less than ``B`` passes over one: the weights are read once and the
matrix products are bigger. But prompts have different lengths and a tensor needs a rectangle, so the short ones are
**left-padded**: pad tokens go in front, so that every row's *last* token sits in the last column and the next
token of every row is read from ``logits[:, -1]``. Padding must not change the answer; two things take care of it:

* an **attention mask** ``m (B, T_k)`` (True = a real token): no query attends to a pad key. With the causal mask,
  query ``i`` of row ``b`` sees key ``j`` iff ``j <= i`` and ``m[b, j]`` (a pad *query* also sees itself, so that its
  softmax is defined; its output is never used);
* **position ids** per row: the first real token of every row is at position 0,
  ``positions[b, j] = j - pads_b`` (pads at 0), so the learned position embeddings are those of the unpadded prompt.

Then batched greedy decoding gives each row the tokens it would get alone (up to float rounding), with the KV cache of
:mod:`aiterms.kv_cache` extended by one column per step (Hugging Face transformers does the same with
``padding_side="left"``, ``attention_mask`` and ``position_ids``).

**Serving a stream.** Requests arrive over time with different lengths. *Static batching* takes up to ``batch_size``
waiting requests and runs them until the *last* one is done: finished rows keep their slot, and newcomers wait for
the whole batch. *Continuous batching* (iteration-level scheduling, Yu et al., 2022, "Orca"; Kwon et al., 2023,
vLLM) checks the queue at every step: a finished row leaves at once and a waiting request takes its slot (its prompt
is "prefilled" in the same forward pass as the other rows' next token, and joins the batch's cache).
:func:`simulate_serving` runs both with the real model on a simulated clock that advances by the measured time of
each forward pass (or by a fixed ``step_seconds``: a cost model, and deterministic for tests).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from aiterms.decoding import as_prompt, check_positive_int
from aiterms.transformer import GPT, KVCache, eval_mode


@dataclass
class ServingConfig:
    """A serving policy: at most ``batch_size`` requests generate at once; ``policy`` is ``"static"`` or
    ``"continuous"``; ``step_seconds`` (if set) is the simulated cost of every forward pass instead of its measured
    wall time."""

    batch_size: int = 8
    policy: str = "continuous"
    step_seconds: float | None = None

    def __post_init__(self):
        check_positive_int("batch_size", self.batch_size)
        if self.policy not in ("static", "continuous"):
            raise ValueError(f"policy must be 'static' or 'continuous', got {self.policy!r}")
        if self.step_seconds is not None and not (isinstance(self.step_seconds, (int, float))
                                                  and not isinstance(self.step_seconds, bool)
                                                  and self.step_seconds > 0):
            raise ValueError(f"step_seconds must be a number > 0 or None, got {self.step_seconds!r}")


def _check_prompts(prompts: Sequence[Sequence[int]], block_size: int | None) -> list[list[int]]:
    if isinstance(prompts, torch.Tensor):
        raise ValueError("prompts must be a list of id lists (of different lengths), not a tensor")
    if not isinstance(prompts, Sequence) or len(prompts) == 0:
        raise ValueError("prompts must be a non-empty list of prompts (batch size >= 1)")
    rows = [as_prompt(p) for p in prompts]
    if block_size is not None:
        check_positive_int("block_size", block_size)
        for i, r in enumerate(rows):
            if len(r) > block_size:
                raise ValueError(f"prompts[{i}] has {len(r)} tokens, longer than the context block_size={block_size}")
    return rows


def left_pad_batch(prompts: Sequence[Sequence[int]], pad_id: int = 0, block_size: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad prompts of different lengths into one batch.

    With ``T = max_b len(prompts[b])`` and ``p_b = T - len(prompts[b])`` pads in front of row ``b``::

        ids[b]            = [pad_id] * p_b + prompts[b]                        (B, T) long
        attention_mask[b] = [False]  * p_b + [True] * len(prompts[b])          (B, T) bool
        positions[b]      = [0]      * p_b + [0, 1, ..., len(prompts[b]) - 1]   (B, T) long

    Args:
        prompts: ``B >= 1`` non-empty lists of token ids.
        pad_id: the id written in the padding (the mask, not the id, keeps it out of attention).
        block_size: if given, a prompt longer than it raises ``ValueError``.
    Returns:
        ``(ids, attention_mask, positions)``.
    """
    rows = _check_prompts(prompts, block_size)
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or pad_id < 0:
        raise ValueError(f"pad_id must be a token id (an int >= 0), got {pad_id!r}")
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.bool)
    positions = torch.zeros(len(rows), T, dtype=torch.long)
    for b, r in enumerate(rows):
        p = T - len(r)
        ids[b, p:] = torch.tensor(r, dtype=torch.long)
        mask[b, p:] = True
        positions[b, p:] = torch.arange(len(r))
    return ids, mask, positions


def forward_padded(model: GPT, idx: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                   past_kv: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
    """The GPT's forward pass over a left-padded batch, with an attention mask and per-row positions.

    The same modules and weights as :meth:`aiterms.transformer.GPT.forward_cached` (works on a quantized copy too);
    only the mask and the positions differ. New query ``i`` (at cache column ``T_past + i``) of row ``b`` attends to
    key ``j`` iff ``j <= T_past + i`` and ``attention_mask[b, j]``, or ``j == T_past + i`` (itself).

    Args:
        idx: ``(B, T)`` new token ids.
        attention_mask: ``(B, T_past + T)`` bool, True where the key is a real token (cached columns first).
        positions: ``(B, T)`` position ids of the new tokens (``< block_size``).
        past_kv: per layer ``(k, v)``, each ``(B, H, T_past, D)``, or ``None``.
    Returns:
        ``logits (B, T, V)`` and the cache extended to ``T_past + T`` columns.
    """
    B, T = idx.shape
    t_past = 0 if past_kv is None else past_kv[0][0].shape[2]
    if attention_mask.shape != (B, t_past + T) or attention_mask.dtype != torch.bool:
        raise ValueError(f"attention_mask must be a bool tensor of shape {(B, t_past + T)}, "
                         f"got {tuple(attention_mask.shape)} {attention_mask.dtype}")
    if positions.shape != (B, T):
        raise ValueError(f"positions must have shape {(B, T)}, got {tuple(positions.shape)}")
    if int(positions.max()) >= model.config.block_size or int(positions.min()) < 0:
        raise ValueError(f"positions must be in 0..{model.config.block_size - 1} (the context block_size)")
    causal = torch.ones(T, t_past + T, dtype=torch.bool).tril(diagonal=t_past)               # (T, T_k)
    itself = torch.zeros(T, t_past + T, dtype=torch.bool)
    itself[torch.arange(T), t_past + torch.arange(T)] = True
    mask = (causal[None] & attention_mask[:, None, :]) | itself[None]                           # (B, T, T_k)
    mask = mask[:, None]                                                                        # (B, 1, T, T_k)
    x = model.tok_emb(idx) + model.pos_emb(positions)                                           # (B, T, C)
    present: KVCache = []
    for i, block in enumerate(model.blocks):
        attn, h = block.attn, block.ln_1(x)
        C = h.shape[-1]
        q, k, v = attn.qkv(h).split(C, dim=2)
        q, k, v = (z.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        if past_kv is not None:
            k, v = torch.cat([past_kv[i][0], k], dim=2), torch.cat([past_kv[i][1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)                              # (B, H, T, D)
        x = x + attn.proj(y.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp(block.ln_2(x))
        present.append((k, v))
    return model.lm_head(model.ln_f(x)), present


def _check_model_args(model: GPT, max_new_tokens: int, eos_id: int | None) -> None:
    if not isinstance(model, GPT):
        raise ValueError(f"model must be a GPT, got {type(model).__name__}")
    check_positive_int("max_new_tokens", max_new_tokens)
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int)
                               or not 0 <= eos_id < model.config.vocab_size):
        raise ValueError(f"eos_id={eos_id!r} is not a token id of the vocabulary (0..{model.config.vocab_size - 1})")


def batched_greedy_decode(model: GPT, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                          eos_id: int | None = None, pad_id: int = 0) -> list[list[int]]:
    """Greedy decoding of prompts of different lengths in one left-padded batch with a KV cache.

    ``ids, mask, pos = left_pad_batch(prompts)``; ``logits, cache = forward_padded(model, ids, mask, pos)``; then per
    step: ``y_b = argmax logits[b, -1]`` for every row, append a True column to the mask, and feed ``y (B, 1)`` at
    positions ``len(prompts[b]) + step`` with the cache. A row is done after ``eos_id`` (included) or
    ``max_new_tokens`` tokens; stop when every row is done (a done row's later tokens are dropped).

    Args:
        prompts: ``B >= 1`` prompts of any lengths; ``len(prompts[b]) + max_new_tokens - 1 <= block_size``.
    Returns:
        ``B`` lists of generated ids, each equal to what the prompt gets alone
        (:func:`aiterms.kv_cache.kv_cached_decode`).
    """
    _check_model_args(model, max_new_tokens, eos_id)
    rows = _check_prompts(prompts, model.config.block_size)
    longest = max(len(r) for r in rows)
    if longest + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"the longest prompt ({longest} tokens) + max_new_tokens {max_new_tokens} - 1 exceeds the "
                         f"context block_size={model.config.block_size}")
    ids, mask, positions = left_pad_batch(rows, pad_id)
    out: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    next_pos = torch.tensor([len(r) for r in rows], dtype=torch.long)                          # (B,)
    with torch.no_grad(), eval_mode(model):
        logits, cache = forward_padded(model, ids, mask, positions)
        for step in range(max_new_tokens):
            tokens = torch.argmax(logits[:, -1, :], dim=-1)                                     # (B,)
            for b, t in enumerate(tokens.tolist()):
                if not done[b]:
                    out[b].append(t)
                    done[b] = t == eos_id or len(out[b]) == max_new_tokens
            if all(done):
                break
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.bool)], dim=1)
            logits, cache = forward_padded(model, tokens[:, None], mask, (next_pos + step)[:, None], cache)
    return out


def greedy_accuracy(model: GPT, problems: Sequence, batch_size: int = 32) -> float:
    """Greedy pass@1 on arithmetic problems: the share whose decoded answer
    (:func:`aiterms.arithmetic.extract_answer`) is right, decoding ``batch_size`` prompts at a time with
    :func:`batched_greedy_decode` (the answer does not depend on ``batch_size``)."""
    right = greedy_right(model, problems, batch_size)
    return sum(right) / len(right)


def greedy_right(model: GPT, problems: Sequence, batch_size: int = 32) -> list[bool]:
    """Per problem, whether greedy decoding gets its answer right (see :func:`greedy_accuracy`); two models'
    lists on the same problems give a paired comparison."""
    from aiterms import arithmetic
    from aiterms.tokenizer import TOKENIZER
    check_positive_int("batch_size", batch_size)
    if not problems:
        raise ValueError("problems must hold at least one Problem")
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in problems]
    right = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        budget = model.config.block_size - max(map(len, chunk)) + 1
        generated = batched_greedy_decode(model, chunk, budget, eos_id=TOKENIZER.eos_id, pad_id=TOKENIZER.pad_id)
        for p, ids in zip(problems[start:start + batch_size], generated):
            right.append(arithmetic.extract_answer(TOKENIZER.decode(ids)) == p.answer)
    return right


# ---------------------------------------------------------------------------------------------- serving a stream
@dataclass
class Request:
    """One user's request: it arrives at ``arrival`` (seconds), with ``prompt`` ids, wanting at most
    ``max_new_tokens`` tokens (stopping earlier at EOS)."""

    arrival: float
    prompt: list[int]
    max_new_tokens: int
    # filled in by simulate_serving:
    start: float = math.nan            # admitted into the batch (its prefill begins)
    first_token: float = math.nan      # its first generated token exists
    finish: float = math.nan           # its last token exists
    output: list[int] = field(default_factory=list)
    # the same two moments on a clock that counts forward passes (deterministic where the schedule is):
    start_pass: int = -1               # passes run before the one that admitted it
    finish_pass: int = -1              # passes run when its last token exists

    @property
    def latency(self) -> float:
        """End-to-end seconds: ``finish - arrival`` (queueing included)."""
        return self.finish - self.arrival


class _Batch:
    """The running batch: per-row cache (each row's real columns right-aligned, pads left), mask, next position,
    last token, request."""

    def __init__(self, model: GPT):
        self.model = model
        self.cache: KVCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.bool)
        self.next_pos = torch.zeros(0, dtype=torch.long)
        self.last = torch.zeros(0, dtype=torch.long)
        self.requests: list[Request] = []

    def __len__(self) -> int:
        return len(self.requests)

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (then :meth:`compact`)."""
        if rows == list(range(len(self))):
            return
        index = torch.tensor(rows, dtype=torch.long)
        self.requests = [self.requests[i] for i in rows]
        if not rows:
            self.cache, self.mask = None, torch.zeros(0, 0, dtype=torch.bool)
            self.next_pos, self.last = self.next_pos[index], self.last[index]
            return
        self.mask, self.next_pos, self.last = self.mask[index], self.next_pos[index], self.last[index]
        self.cache = [(k[index], v[index]) for k, v in self.cache]
        self.compact()

    def compact(self) -> None:
        """Move every row's real columns to the right end, in order (a stable sort of the mask), and drop the
        columns that are padding in every row: the width becomes the longest row's length."""
        order = torch.argsort(self.mask.to(torch.int8), dim=1, stable=True)                     # pads first
        width = int(self.mask.sum(dim=1).max())
        order = order[:, order.shape[1] - width:]                                                # (B, width)
        self.mask = torch.gather(self.mask, 1, order)
        index = order[:, None, :, None]                                                          # (B, 1, width, 1)
        self.cache = [tuple(torch.gather(z, 2, index.expand(-1, z.shape[1], -1, z.shape[3])) for z in kv)
                      for kv in self.cache]

    def step(self, joining: list[Request]) -> None:
        """One forward pass: every running row feeds its last token and the ``joining`` requests their whole prompt
        (prefilled in the same pass, Orca's iteration-level scheduling). The inputs are left-padded to one width
        ``T_in`` (1 without newcomers); newcomers get masked cache columns. ``self.last`` becomes the next tokens."""
        n_old, W = len(self), self.mask.shape[1]
        T_in = max([1] + [len(r.prompt) for r in joining])
        idx = torch.zeros(n_old, T_in, dtype=torch.long)
        idx[:, -1] = self.last
        positions = torch.zeros(n_old, T_in, dtype=torch.long)
        positions[:, -1] = self.next_pos
        mask = torch.zeros(n_old, W + T_in, dtype=torch.bool)
        mask[:, :W], mask[:, -1] = self.mask, True
        past = self.cache
        if joining:
            ids_new, mask_new, pos_new = left_pad_batch([r.prompt for r in joining])
            ids_new, mask_new, pos_new = (F.pad(z, (T_in - z.shape[1], 0)) for z in (ids_new, mask_new, pos_new))
            idx, positions = torch.cat([idx, ids_new]), torch.cat([positions, pos_new])
            mask = torch.cat([mask, F.pad(mask_new, (W, 0))])
            if past is not None:
                past = [tuple(torch.cat([z, z.new_zeros(len(joining), *z.shape[1:])]) for z in kv) for kv in past]
            self.next_pos = torch.cat([self.next_pos, torch.tensor([len(r.prompt) for r in joining])])
            self.requests = self.requests + joining
        logits, self.cache = forward_padded(self.model, idx, mask, positions, past)
        self.mask = mask
        if T_in > 1:       # the running rows' input pads left masked columns behind
            self.compact()
        self.next_pos = self.next_pos + torch.tensor([1] * n_old + [0] * len(joining), dtype=torch.long)
        self.last = torch.argmax(logits[:, -1, :], dim=-1)


def simulate_serving(model: GPT, requests: Sequence[Request], config: ServingConfig,
                     eos_id: int | None = None) -> dict[str, float]:
    """Serve a stream of requests with static or continuous batching; fills in each request's times and output.

    A simulated clock ``t`` starts at the first arrival. Each forward pass (one step of the whole batch: the running
    rows' next token, plus the prompts of the requests admitted at this step) advances ``t`` by its measured wall
    time (or ``config.step_seconds``); when nothing runs, ``t`` jumps to the next arrival. Requests are admitted
    first come, first served:

    * static: only when the batch is empty, up to ``batch_size`` waiting ones; finished rows stay (and are computed)
      until the whole batch is done;
    * continuous: before every step, finished rows leave and waiting requests fill the free slots; their prompts
      run in the same forward pass as the other rows' next token (iteration-level scheduling, Orca).

    Every request gets the tokens greedy decoding gives it alone (the outputs do not depend on the policy).

    Besides seconds, the simulation counts work that does not depend on the machine: forward passes, rows computed
    (a finished row that keeps its slot in a static batch counts), and positions (rows x input width, padding
    included). Each request records ``start_pass`` and ``finish_pass``, its admission and finish on a clock that
    counts passes. The measured wall time of every pass is kept by kind even under ``step_seconds``: passes that
    prefill newcomers' prompts, and plain decoding passes (one new token per row).

    Returns:
        ``{"requests", "tokens", "passes" (forward passes), "seconds" (first arrival to last finish),
        "tokens_per_s", "latency_p50", "latency_p95", "first_token_p50", "service_p50", "service_p95",
        "row_steps", "positions", "prefill_passes", "prefill_positions" (positions in the passes that prefilled),
        "decode_pass_s", "prefill_pass_s", "service_passes_p50", "service_passes_p95"}``: latency = finish - arrival (queueing included), service = finish - start (time in
        the batch), in seconds; ``service_passes`` = finish_pass - start_pass; ``decode_pass_s``/``prefill_pass_s``:
        median measured seconds of a pass without/with newcomers (nan if there was none); percentiles by
        ``numpy.percentile`` (linear interpolation).
    """
    if not isinstance(config, ServingConfig):
        raise ValueError(f"config must be a ServingConfig, got {type(config).__name__}")
    if not requests:
        raise ValueError("requests must hold at least one Request")
    for i, r in enumerate(requests):
        if not isinstance(r, Request):
            raise ValueError(f"requests[{i}] must be a Request, got {type(r).__name__}")
        _check_model_args(model, r.max_new_tokens, eos_id)
        r.prompt = as_prompt(r.prompt)
        if len(r.prompt) + r.max_new_tokens - 1 > model.config.block_size:
            raise ValueError(f"requests[{i}]: prompt length {len(r.prompt)} + max_new_tokens {r.max_new_tokens} - 1 "
                             f"exceeds the context block_size={model.config.block_size}")
        r.start = r.first_token = r.finish = math.nan
        r.start_pass = r.finish_pass = -1
        r.output = []
    queue = sorted(requests, key=lambda r: r.arrival)
    t = queue[0].arrival
    batch = _Batch(model)

    passes = row_steps = positions = prefill_positions = 0
    pass_seconds: dict[bool, list[float]] = {False: [], True: []}   # measured, by "newcomers joined"

    def timed(fn, joining: list[Request]) -> None:
        nonlocal t, passes, row_steps, positions, prefill_positions
        rows, width = len(batch) + len(joining), max([1] + [len(r.prompt) for r in joining])
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        passes, row_steps, positions = passes + 1, row_steps + rows, positions + rows * width
        prefill_positions += rows * width if joining else 0
        pass_seconds[bool(joining)].append(seconds)
        t += config.step_seconds if config.step_seconds is not None else seconds

    def finished(r: Request) -> bool:
        return len(r.output) == r.max_new_tokens or (bool(r.output) and r.output[-1] == eos_id)

    def record() -> None:  # the batch's newest tokens, at time t
        for r, token in zip(batch.requests, batch.last.tolist()):
            if not finished(r):
                r.output.append(token)
                if len(r.output) == 1:
                    r.first_token = t
                if finished(r):
                    r.finish, r.finish_pass = t, passes

    with torch.no_grad(), eval_mode(model):
        while True:
            joining: list[Request] = []
            if config.policy == "continuous" or all(finished(r) for r in batch.requests):
                batch.keep([i for i, r in enumerate(batch.requests) if not finished(r)])
                if not len(batch) and queue and queue[0].arrival > t:
                    t = queue[0].arrival
                while queue and queue[0].arrival <= t and len(batch) + len(joining) < config.batch_size:
                    joining.append(queue.pop(0))
            if not len(batch) and not joining:
                break
            for r in joining:
                r.start, r.start_pass = t, passes
            timed(lambda: batch.step(joining), joining)
            record()
    latencies = [r.latency for r in requests]
    service = [r.finish - r.start for r in requests]
    service_passes = [r.finish_pass - r.start_pass for r in requests]
    tokens = sum(len(r.output) for r in requests)
    seconds = max(r.finish for r in requests) - min(r.arrival for r in requests)
    median = {joined: float(np.median(s)) if s else math.nan for joined, s in pass_seconds.items()}
    return {"requests": len(requests), "tokens": tokens, "passes": passes, "seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds > 0 else math.inf,
            "latency_p50": float(np.percentile(latencies, 50)), "latency_p95": float(np.percentile(latencies, 95)),
            "first_token_p50": float(np.percentile([r.first_token - r.arrival for r in requests], 50)),
            "service_p50": float(np.percentile(service, 50)), "service_p95": float(np.percentile(service, 95)),
            "row_steps": row_steps, "positions": positions, "prefill_passes": len(pass_seconds[True]),
            "prefill_positions": prefill_positions,
            "decode_pass_s": median[False], "prefill_pass_s": median[True],
            "service_passes_p50": float(np.percentile(service_passes, 50)),
            "service_passes_p95": float(np.percentile(service_passes, 95))}


def request_stream(prompts: Sequence[Sequence[int]], rate: float, max_new_tokens: int | Sequence[int],
                   seed: int = 0) -> list[Request]:
    """Requests arriving as a Poisson process of ``rate`` per second (exponential gaps, ``numpy`` seeded), one per
    prompt, in order; ``max_new_tokens`` one number or one per prompt."""
    rows = _check_prompts(prompts, None)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"rate must be a number > 0 (requests per second), got {rate!r}")
    budgets = [max_new_tokens] * len(rows) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(budgets) != len(rows):
        raise ValueError(f"max_new_tokens must be one int or one per prompt ({len(rows)}), got {len(budgets)}")
    for b in budgets:
        check_positive_int("max_new_tokens", b)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=len(rows))
    arrivals = np.cumsum(gaps) - gaps[0]
    return [Request(float(a), r, n) for a, r, n in zip(arrivals, rows, budgets)]
