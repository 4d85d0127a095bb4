"""Hidden checks of exercise 13 (effective test-time scaling): kv_cached_decode, left_pad_batch,
batched_greedy_decode.

Cases are plain data; models are described, not passed: ``{"vocab_size": 9, "block_size": 16, "n_layer": 2,
"n_head": 2, "n_embd": 16, "seed": 3}`` is a random :class:`~aiterms.transformer.GPT` whose token and position
embeddings are scaled up (:func:`build_model`), so that greedy decoding does not just repeat one token. The calls
record how many tokens each forward pass fed (a hook on the token embedding), so a decoder that recomputes the
whole sequence, or decodes the prompts one by one, is told apart from one that uses the KV cache on a batch.
A reference that raises ``ValueError`` gives the plain value ``"ValueError"``, and so must the learner's function.
"""
from __future__ import annotations

import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task
from aiterms.transformer import GPT, GPTConfig

ASSIGNMENT = "13-effective-test-time-scaling"

#: the plain value of "raised ValueError"
ERROR = "ValueError"
NAMES = ("ids", "attention_mask", "positions")
TOKEN_SCALE, POSITION_SCALE, ATTENTION_SCALE, OUTPUT_SCALE = 3.0, 20.0, 2.0, 20.0


def build_model(spec: dict) -> GPT:
    """The random tiny GPT of a case (eval mode), with peaked next-token distributions."""
    config = GPTConfig(spec["vocab_size"], spec["block_size"], spec["n_layer"], spec["n_head"], spec["n_embd"])
    model = GPT.from_seed(config, spec["seed"]).eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(TOKEN_SCALE)
        model.pos_emb.weight.mul_(POSITION_SCALE)
        for block in model.blocks:
            block.attn.qkv.weight.mul_(ATTENTION_SCALE)
            block.attn.proj.weight.mul_(OUTPUT_SCALE)
    return model


def _spec(rng: random.Random) -> dict:
    n_head = rng.choice([1, 2, 2, 4])
    return {"vocab_size": rng.randint(6, 12), "block_size": rng.randint(10, 24), "n_layer": rng.choice([1, 2, 2]),
            "n_head": n_head, "n_embd": n_head * rng.choice([4, 8]), "seed": rng.randrange(10**6)}


def _prompt(rng: random.Random, spec: dict, longest: int) -> list[int]:
    return [rng.randrange(spec["vocab_size"]) for _ in range(rng.randint(1, longest))]


def _calling(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return ERROR


def _recording(model: GPT) -> tuple[list[list[int]], Any]:
    """A list that receives ``[B, T]`` of every forward pass's new tokens, and the hook's handle."""
    fed: list[list[int]] = []
    handle = model.tok_emb.register_forward_hook(lambda mod, args, out: fed.append(list(args[0].shape)))
    return fed, handle


def _error_problem(got: Any, expected: Any) -> str | None | bool:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError: the request does not fit in the context"
    if got == ERROR:
        return "raised ValueError for a request it should accept"
    return False


def _ids_problem(got: Any, expected: list, what: str) -> str | None:
    if not isinstance(got, list) or any(isinstance(t, bool) or not isinstance(t, int) for t in got):
        return f"{what} should be a list of ints (token ids)"
    if len(got) != len(expected):
        return f"{what} has {len(got)} tokens, expected {len(expected)}"
    return None if got == expected else f"{what} has the wrong tokens"


# ------------------------------------------------------------------------------------------------ kv_cached_decode
def kv_cached_decode_cases(rng: random.Random) -> list[dict]:
    cases = []
    for i in range(22):
        spec = _spec(rng)
        prompt = _prompt(rng, spec, min(6, spec["block_size"]))
        room = spec["block_size"] - len(prompt) + 1
        n = room if i % 5 == 0 else (1 if i % 7 == 1 else rng.randint(1, room))
        cases.append({"model": spec, "prompt": prompt, "max_new_tokens": n, "eos_id": None})
    # an EOS that appears after a few tokens, and one produced at once
    from aiterms.kv_cache import kv_cached_decode
    for k in (3, 0, 5):
        spec = _spec(rng)
        prompt = _prompt(rng, spec, 4)
        n = spec["block_size"] - len(prompt) + 1
        full = kv_cached_decode(build_model(spec), prompt, n)
        cases.append({"model": spec, "prompt": prompt, "max_new_tokens": n, "eos_id": full[min(k, n - 1)]})
    # too long for the context
    spec = _spec(rng)
    cases.append({"model": spec, "prompt": _prompt(rng, spec, 3), "max_new_tokens": spec["block_size"] + 1,
                  "eos_id": None})
    return cases


def call_kv_cached_decode(fn: Callable, case: dict) -> Any:
    model = build_model(case["model"])
    fed, handle = _recording(model)
    try:
        tokens = _calling(fn, model, list(case["prompt"]), case["max_new_tokens"], eos_id=case["eos_id"])
    finally:
        handle.remove()
    return [tokens, [t for _, t in fed]]


@grading.plain_compare()
def compare_kv_cached_decode(got: Any, expected: Any, case: dict) -> str | None:
    (tokens, fed), (expected_tokens, expected_fed) = got, expected
    problem = _error_problem(tokens, expected_tokens)
    if problem is not False:
        return problem
    problem = _ids_problem(tokens, expected_tokens, "the result")
    if problem:
        return problem
    budget = sum(expected_fed)
    if sum(fed) > budget + 1:
        return (f"the model processed {sum(fed)} tokens in all, but with a KV cache this takes only "
                f"{budget}: feed only the newest token, together with the cache")
    return None


# ------------------------------------------------------------------------------------------------ left_pad_batch
def left_pad_batch_cases(rng: random.Random) -> list[dict]:
    cases = [{"prompts": [[5, 6, 7], [8], [9, 4]], "pad_id": 0, "block_size": None},
             {"prompts": [[3]], "pad_id": 0, "block_size": None},
             {"prompts": [[1, 2], [3, 4]], "pad_id": 2, "block_size": 2},
             {"prompts": [[1, 2, 3], [4]], "pad_id": 0, "block_size": 2},     # a prompt longer than the context
             {"prompts": [], "pad_id": 0, "block_size": None}]                # no prompt: batch size 0
    for i in range(20):
        count = rng.randint(1, 6)
        prompts = [[rng.randrange(20) for _ in range(rng.randint(1, 8))] for _ in range(count)]
        longest = max(map(len, prompts))
        block = [None, longest, longest + rng.randint(0, 5), max(1, longest - rng.randint(1, 3))][i % 4]
        cases.append({"prompts": prompts, "pad_id": rng.randrange(5), "block_size": block})
    return cases


def call_left_pad_batch(fn: Callable, case: dict) -> Any:
    result = _calling(fn, [list(p) for p in case["prompts"]], pad_id=case["pad_id"], block_size=case["block_size"])
    if result == ERROR:
        return ERROR
    if not isinstance(result, tuple) or len(result) != 3:
        return "not a tuple of three tensors"
    out: list[Any] = []
    for name, value in zip(NAMES, result):
        if not isinstance(value, torch.Tensor):
            return f"{name} is not a tensor"
        out.append([str(value.dtype), value.tolist()])
    return out


def compare_left_pad_batch(got: Any, expected: Any, case: dict) -> str | None:
    if expected == ERROR:
        return None if got == ERROR else ("should raise ValueError: a prompt is longer than block_size, or there "
                                          "is no prompt at all")
    if got == ERROR:
        return "raised ValueError for prompts it should accept"
    if isinstance(got, str) or not isinstance(got, list) or len(got) != 3:
        detail = f": {got}" if isinstance(got, str) else ""
        return f"should return (ids, attention_mask, positions), three tensors{detail}"
    for name, (got_dtype, g), (dtype, e) in zip(NAMES, got, expected):
        if got_dtype != dtype:
            return f"{name} should have dtype {dtype}, got {got_dtype}"
        if len(g) != len(e) or any(len(a) != len(b) for a, b in zip(g, e)):
            return f"{name} has the wrong shape"
        for b, (a, c) in enumerate(zip(g, e)):
            if a != c:
                return f"{name}[{b}] is wrong"
    return None


def describe_prompts(case: dict) -> str:
    return f"prompt lengths {[len(p) for p in case['prompts']]}, block_size {case['block_size']}"


# ------------------------------------------------------------------------------------------------ batched decoding
def batched_cases(rng: random.Random) -> list[dict]:
    from aiterms.kv_cache import kv_cached_decode
    cases = []
    for i in range(18):
        spec = _spec(rng)
        count = 1 if i == 0 else rng.randint(2, 6)
        prompts = [_prompt(rng, spec, min(7, spec["block_size"])) for _ in range(count)]
        room = spec["block_size"] - max(map(len, prompts)) + 1
        n = room if i % 4 == 0 else rng.randint(1, room)
        eos = None
        if i % 3 == 1:  # an EOS that some rows produce early
            eos = kv_cached_decode(build_model(spec), prompts[0], n)[min(n - 1, rng.randint(0, 3))]
        cases.append({"model": spec, "prompts": prompts, "max_new_tokens": n, "eos_id": eos,
                      "pad_id": rng.randrange(spec["vocab_size"])})
    spec = _spec(rng)  # the longest prompt leaves no room for the tokens
    prompts = [[1, 2], [3] * spec["block_size"]]
    cases.append({"model": spec, "prompts": prompts, "max_new_tokens": 3, "eos_id": None, "pad_id": 0})
    return cases


def call_batched(fn: Callable, case: dict) -> Any:
    model = build_model(case["model"])
    fed, handle = _recording(model)
    try:
        tokens = _calling(fn, model, [list(p) for p in case["prompts"]], case["max_new_tokens"],
                          eos_id=case["eos_id"], pad_id=case["pad_id"])
    finally:
        handle.remove()
    return [tokens, fed]


@grading.plain_compare()
def compare_batched(got: Any, expected: Any, case: dict) -> str | None:
    (tokens, fed), (expected_tokens, expected_fed) = got, expected
    problem = _error_problem(tokens, expected_tokens)
    if problem is not False:
        return problem
    if not isinstance(tokens, list) or len(tokens) != len(expected_tokens):
        return f"should return one list of generated ids per prompt ({len(expected_tokens)})"
    for b, (g, e) in enumerate(zip(tokens, expected_tokens)):
        problem = _ids_problem(g, e, f"row {b}")
        if problem:
            return problem
    if not fed or fed[0][0] != len(case["prompts"]):
        return "the first forward pass should run all prompts at once, as one left-padded batch"
    budget = sum(t for _, t in expected_fed)
    if sum(t for _, t in fed) > budget + 1:
        return "the model recomputed old positions: with the KV cache, feed only the newest token of every row"
    return None


def describe_model_case(case: dict) -> str:
    lengths = [len(p) for p in case["prompts"]] if "prompts" in case else len(case["prompt"])
    return (f"prompt lengths {lengths}, max_new_tokens {case['max_new_tokens']}, eos_id {case['eos_id']}, "
            f"block_size {case['model']['block_size']}")


FORBID = ("aiterms.transformer:generate", "aiterms.transformer:generate_batch", "aiterms.kv_cache:recompute_decode",
          "aiterms.batching:simulate_serving")

TASKS = [
    Task("kv_cached_decode", "test_kv_cached_decode", 3, kv_cached_decode_cases, call_kv_cached_decode,
         "aiterms.kv_cache:kv_cached_decode", compare=compare_kv_cached_decode, describe=describe_model_case,
         forbid=FORBID),
    Task("left_pad_batch", "test_left_pad_batch", 2, left_pad_batch_cases, call_left_pad_batch,
         "aiterms.batching:left_pad_batch", compare=compare_left_pad_batch, describe=describe_prompts,
         forbid=FORBID),
    Task("batched_greedy_decode", "test_batched_greedy_decode", 3, batched_cases, call_batched,
         "aiterms.batching:batched_greedy_decode", compare=compare_batched, describe=describe_model_case,
         forbid=FORBID),
]
