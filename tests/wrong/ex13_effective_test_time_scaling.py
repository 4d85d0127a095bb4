"""Plausible wrong answers to exercise 13 (effective test-time scaling), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

WRONG = {
    "kv_cached_decode": {
        # right tokens, but the whole sequence is recomputed at every step: no cache
        "recomputes": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    if len(prompt_ids) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    seq = list(prompt_ids)
    out = []
    while True:
        logits, _ = model(torch.tensor([seq]))
        token = int(torch.argmax(logits[0, -1]))
        out.append(token)
        seq.append(token)
        if token == eos_id or len(out) == max_new_tokens:
            return out
''',
        # the cache of the prompt is reused at every step instead of the extended one
        "cache_not_updated": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    if len(prompt_ids) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    out = []
    logits, cache = model.forward_cached(torch.tensor([list(prompt_ids)]))
    while True:
        token = int(torch.argmax(logits[0, -1]))
        out.append(token)
        if token == eos_id or len(out) == max_new_tokens:
            return out
        logits, _ = model.forward_cached(torch.tensor([[token]]), cache)
''',
        # the first token is read at the first prompt position instead of the last
        "first_position": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    if len(prompt_ids) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    out = []
    logits, cache = model.forward_cached(torch.tensor([list(prompt_ids)]))
    while True:
        token = int(torch.argmax(logits[0, 0]))
        out.append(token)
        if token == eos_id or len(out) == max_new_tokens:
            return out
        logits, cache = model.forward_cached(torch.tensor([[token]]), cache)
''',
        # EOS ends the decoding but is not returned
        "eos_dropped": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    if len(prompt_ids) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    out = []
    logits, cache = model.forward_cached(torch.tensor([list(prompt_ids)]))
    while len(out) < max_new_tokens:
        token = int(torch.argmax(logits[0, -1]))
        if token == eos_id:
            break
        out.append(token)
        logits, cache = model.forward_cached(torch.tensor([[token]]), cache)
    return out
''',
        # off by one in the context check: the last generated token is never fed, so it needs no room
        "context_off_by_one": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    if len(prompt_ids) + max_new_tokens > model.config.block_size:
        raise ValueError("too long")
    out = []
    logits, cache = model.forward_cached(torch.tensor([list(prompt_ids)]))
    while True:
        token = int(torch.argmax(logits[0, -1]))
        out.append(token)
        if token == eos_id or len(out) == max_new_tokens:
            return out
        logits, cache = model.forward_cached(torch.tensor([[token]]), cache)
''',
        "calls_reference": '''
def kv_cached_decode(model, prompt_ids, max_new_tokens, eos_id=None):
    from aiterms.kv_cache import kv_cached_decode as reference
    return reference(model, prompt_ids, max_new_tokens, eos_id)
''',
    },
    "left_pad_batch": {
        "right_padding": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    if len(prompts) == 0:
        raise ValueError("no prompt")
    T = max(len(p) for p in prompts)
    if block_size is not None and T > block_size:
        raise ValueError("too long")
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    positions = torch.zeros(len(prompts), T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, :len(p)] = torch.tensor(p)
        mask[b, :len(p)] = True
        positions[b, :len(p)] = torch.arange(len(p))
    return ids, mask, positions
''',
        # positions of the padded rectangle, not of each prompt
        "positions_not_shifted": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    if len(prompts) == 0:
        raise ValueError("no prompt")
    T = max(len(p) for p in prompts)
    if block_size is not None and T > block_size:
        raise ValueError("too long")
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = True
    return ids, mask, torch.arange(T).repeat(len(prompts), 1)
''',
        # pads get negative positions (j - pads) instead of 0
        "negative_pad_positions": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    if len(prompts) == 0:
        raise ValueError("no prompt")
    T = max(len(p) for p in prompts)
    if block_size is not None and T > block_size:
        raise ValueError("too long")
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    positions = torch.zeros(len(prompts), T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = True
        positions[b] = torch.arange(T) - (T - len(p))
    return ids, mask, positions
''',
        # a 0/1 integer mask instead of a bool one
        "int_mask": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    if len(prompts) == 0:
        raise ValueError("no prompt")
    T = max(len(p) for p in prompts)
    if block_size is not None and T > block_size:
        raise ValueError("too long")
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.long)
    positions = torch.zeros(len(prompts), T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = 1
        positions[b, T - len(p):] = torch.arange(len(p))
    return ids, mask, positions
''',
        # no context check
        "no_block_size_check": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    if len(prompts) == 0:
        raise ValueError("no prompt")
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    positions = torch.zeros(len(prompts), T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = True
        positions[b, T - len(p):] = torch.arange(len(p))
    return ids, mask, positions
''',
        "calls_reference": '''
def left_pad_batch(prompts, pad_id=0, block_size=None):
    from aiterms.batching import left_pad_batch as reference
    return reference(prompts, pad_id, block_size)
''',
    },
}

# the batched decoder: small edits of the solution
BATCHED_EDITS = {
    # pads are attended to
    "no_attention_mask": [("logits, cache = forward_padded(model, ids, mask, positions)",
                           "mask = torch.ones_like(mask); "
                           "logits, cache = forward_padded(model, ids, mask, positions)")],
    # the new tokens get the position of the padded column, not of the row's own sequence
    "padded_positions": [("(lengths + step)[:, None]", "torch.full((len(prompts), 1), ids.shape[1] + step)")],
    # positions one too far
    "position_off_by_one": [("(lengths + step)[:, None]", "(lengths + step + 1).clamp(max=model.config.block_size - 1)"
                             "[:, None]")],
    # rows keep going after their EOS
    "eos_ignored_per_row": [("done[b] = t == eos_id or len(out[b]) == max_new_tokens",
                             "done[b] = len(out[b]) == max_new_tokens")],
    # the mask is not extended: the cached columns keep the prompt's mask and the new column is dropped
    "mask_not_extended": [("mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=torch.bool)], dim=1)",
                           "mask = torch.cat([torch.zeros(len(prompts), 1, dtype=torch.bool), mask], dim=1)")],
}

WRONG["batched_greedy_decode"] = {
    # right tokens, one prompt at a time
    "one_by_one": '''
def batched_greedy_decode(model, prompts, max_new_tokens, eos_id=None, pad_id=0):
    if max(len(p) for p in prompts) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    results = []
    for p in prompts:
        out = []
        logits, cache = model.forward_cached(torch.tensor([list(p)]))
        while True:
            token = int(torch.argmax(logits[0, -1]))
            out.append(token)
            if token == eos_id or len(out) == max_new_tokens:
                break
            logits, cache = model.forward_cached(torch.tensor([[token]]), cache)
        results.append(out)
    return results
''',
    # right tokens, but the padded batch is recomputed at every step
    "recomputes": '''
def batched_greedy_decode(model, prompts, max_new_tokens, eos_id=None, pad_id=0):
    if max(len(p) for p in prompts) + max_new_tokens - 1 > model.config.block_size:
        raise ValueError("too long")
    seqs = [list(p) for p in prompts]
    out = [[] for _ in prompts]
    done = [False] * len(prompts)
    for step in range(max_new_tokens):
        ids, mask, positions = left_pad_batch(seqs, pad_id)
        logits, _ = forward_padded(model, ids, mask, positions)
        tokens = torch.argmax(logits[:, -1], dim=-1).tolist()
        for b, t in enumerate(tokens):
            seqs[b].append(t)
            if not done[b]:
                out[b].append(t)
                done[b] = t == eos_id or len(out[b]) == max_new_tokens
        if all(done):
            break
    return out
''',
    "calls_reference": '''
def batched_greedy_decode(model, prompts, max_new_tokens, eos_id=None, pad_id=0):
    from aiterms.batching import batched_greedy_decode as reference
    return reference(model, prompts, max_new_tokens, eos_id, pad_id)
''',
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    out = {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
    for name, edits in BATCHED_EDITS.items():
        src = solution["batched_greedy_decode"]
        for old, new in edits:
            if old not in src:
                raise AssertionError(f"edit {name!r} no longer applies to the solution: {old!r}")
            src = src.replace(old, new)
        out[f"batched_greedy_decode-{name}"] = ("batched_greedy_decode", src)
    return out
