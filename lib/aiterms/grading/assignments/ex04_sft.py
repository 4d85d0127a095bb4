"""Hidden checks of exercise 4 (supervised fine-tuning): encode_pair, collate, sft_loss.

Cases are plain data: strings and ints for ``encode_pair``, nested lists for ``collate`` and ``sft_loss`` (the
``call`` functions turn them into the tensors the functions take).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import torch

from aiterms import arithmetic, grading
from aiterms.grading.tasks import Task
from aiterms.tokenizer import IGNORE_INDEX, TOKENIZER

ASSIGNMENT = "04-sft"

FORBID = ("aiterms.tokenizer:encode_pair", "aiterms.tokenizer:collate", "aiterms.sft:sft_loss",
          "aiterms.sft:lm_loss", "aiterms.sft:sft_examples")

RAISED = grading.RAISED
_FIELDS = ("ids", "labels", "response_mask")


def _describe_pair(case: dict) -> str:
    return f"prompt={case['prompt']!r}, response={case['response']!r}, max_len={case['max_len']}"


# ------------------------------------------------------------------------------------------------ encode_pair
def encode_pair_cases(rng: random.Random) -> list[dict]:
    cot = arithmetic.cot_response(arithmetic.Problem(47, 85))
    cases = [{"prompt": "1+2=", "response": "3", "max_len": 7},           # fits exactly: L - 1 == max_len
             {"prompt": "1+2=", "response": "3", "max_len": 6},           # one position too many
             {"prompt": "47+85=", "response": cot, "max_len": 96},
             {"prompt": "5+3=", "response": "", "max_len": 10},            # only <eos> is learned
             {"prompt": "", "response": "12", "max_len": 10},
             {"prompt": "4*5=", "response": "20", "max_len": 20},          # '*' is not in the vocabulary
             {"prompt": "12 + 7 =", "response": "19", "max_len": 13}]     # spaces are characters too
    for i in range(24):
        problem = arithmetic.sample_problems(1, rng.randint(1, 4), seed=rng.randrange(10**6), ops=("+", "-"))[0]
        prompt, response = arithmetic.prompt(problem), arithmetic.response(problem, rng.choice(arithmetic.FORMATS))
        needed = len(prompt) + len(response) + 2  # input positions: <bos> prompt <sep> response
        max_len = [needed, needed - 1, needed + rng.randint(1, 40), 96][i % 4]
        cases.append({"prompt": prompt, "response": response, "max_len": max(1, max_len)})
    return cases


def call_encode_pair(fn: Callable, case: dict) -> Any:
    try:
        out = fn(case["prompt"], case["response"], case["max_len"])
    except ValueError:
        return list(RAISED)
    return ["returned", out]


@grading.plain_compare("should raise ValueError: the example does not fit in max_len, or has a character the "
                       "tokenizer does not know", "raised ValueError, but this example is valid and fits in max_len")
def compare_encode_pair(got: Any, expected: Any, case: dict) -> str | None:
    result = got[1] if isinstance(got, list) and len(got) == 2 else None
    if not isinstance(result, list) or len(result) != 3:
        return "should return three lists: (ids, labels, response_mask)"
    for name, g, e in zip(_FIELDS, result, expected[1]):
        if not isinstance(g, list):
            return f"{name} should be a list of ints"
        if len(g) != len(e):
            return f"{name} has {len(g)} items, expected {len(e)}"
        for t, (a, b) in enumerate(zip(g, e)):
            if isinstance(a, bool) or not isinstance(a, int):
                return f"{name}[{t}] should be an int, got {a!r}"
            if a != b:
                return f"{name}[{t}] is wrong"
    return None


# ------------------------------------------------------------------------------------------------ collate
def _random_example(rng: random.Random) -> list[list[int]]:
    """A random (ids, labels, mask) triple shaped like encode_pair's: a prompt part, then a response part."""
    n = rng.randint(1, 12)
    start = rng.randint(0, n - 1)  # first learned position
    ids = [rng.randrange(TOKENIZER.vocab_size) for _ in range(n)]
    labels = [IGNORE_INDEX if t < start else rng.randrange(TOKENIZER.vocab_size) for t in range(n)]
    return [ids, labels, [int(t >= start) for t in range(n)]]


def collate_cases(rng: random.Random) -> list[dict]:
    cases = [{"examples": [[[1, 5, 14, 6, 16, 3, 7], [-100, -100, -100, -100, -100, 7, 2], [0, 0, 0, 0, 0, 1, 1]],
                           [[1, 7, 14, 7, 16, 3], [-100, -100, -100, -100, -100, 2], [0, 0, 0, 0, 0, 1]]],
              "pad_id": None},
             {"examples": [[[1, 3, 9], [-100, 9, 2], [0, 1, 1]]], "pad_id": None},         # nothing to pad
             {"examples": [[[1, 3], [-100, 2], [0, 1]], [[1, 4, 3, 9], [-100, -100, 9, 2], [0, 0, 1, 1]]],
              "pad_id": 2}]
    for i in range(20):
        cases.append({"examples": [_random_example(rng) for _ in range(rng.randint(1, 5))],
                      "pad_id": None if i % 3 == 0 else rng.randrange(TOKENIZER.vocab_size)})
    return cases


def call_collate(fn: Callable, case: dict) -> Any:
    examples = [tuple(list(x) for x in ex) for ex in case["examples"]]
    out = fn(examples) if case["pad_id"] is None else fn(examples, pad_id=case["pad_id"])
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError("collate should return three tensors: (ids, labels, response_mask)")
    for name, x in zip(_FIELDS, out):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} should be a torch tensor, got {type(x).__name__}")
    ids, labels, mask = out
    for name, x in (("ids", ids), ("labels", labels)):
        if x.dtype != torch.long:
            raise TypeError(f"{name} should have dtype torch.long (token ids index the embedding and the "
                            f"log-probabilities), got {x.dtype}")
    if not mask.is_floating_point():
        raise TypeError(f"response_mask should be a float tensor (0.0 / 1.0), got {mask.dtype}")
    return [ids, labels, mask]


def compare_collate(got: Any, expected: Any, case: dict) -> str | None:
    for name, g, e in zip(_FIELDS, got, expected):
        problem = grading.compare_values(g, e)
        if problem:
            return problem.replace("the result", name)
    return None


def describe_collate(case: dict) -> str:
    lengths = [len(ex[0]) for ex in case["examples"]]
    pad = "default pad_id" if case["pad_id"] is None else f"pad_id={case['pad_id']}"
    return f"{len(lengths)} examples of lengths {lengths}, {pad}"


# ------------------------------------------------------------------------------------------------ sft_loss
def _mask_rows(rng: random.Random, batch: int, length: int) -> list[list[float]]:
    """Rows like real batches: a prompt part (0), a response part (1), then padding (0); at least one 1 per row."""
    rows = []
    for _ in range(batch):
        start = rng.randint(0, length - 1)
        end = rng.randint(start + 1, length)
        rows.append([float(start <= t < end) for t in range(length)])
    return rows


def sft_loss_cases(rng: random.Random) -> list[dict]:
    ln3 = math.log(3.0)
    cases = [
        # by hand: position 0 is uniform over 2 tokens, position 1 gives token 0 probability 3/4
        {"logits": [[[0.0, 0.0], [ln3, 0.0]]], "labels": [[1, 0]], "mask": [[0.0, 1.0]]},
        {"logits": [[[0.0, 0.0], [ln3, 0.0]]], "labels": [[1, 0]], "mask": [[1.0, 1.0]]},
        # the mask decides, not the labels: real next tokens under a 0 mask must not count
        {"logits": [[[2.0, -1.0, 0.5], [0.0, 1.0, 3.0], [-2.0, 0.0, 1.0]]], "labels": [[0, 2, 0]],
         "mask": [[0.0, 0.0, 1.0]]},
        # two rows with 1 and 3 learned tokens: the mean is over the 4 tokens, not over the 2 rows
        {"logits": [[[1.0, 0.0, -1.0]] * 4, [[0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]],
         "labels": [[-100, -100, -100, 2], [1, 1, 2, -100]], "mask": [[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]]},
        # large logits: log(softmax(x)) underflows to log(0) here, log_softmax does not
        {"logits": [[[50.0, -60.0, 0.0], [0.0, 1.0, 2.0]]], "labels": [[1, 2]], "mask": [[1.0, 1.0]]},
    ]
    for i in range(22):
        batch, length, vocab = rng.randint(1, 4), rng.randint(1, 8), rng.choice([2, 3, 5, 11, 19])
        scale = rng.choice([0.5, 1.0, 3.0])
        mask = _mask_rows(rng, batch, length)
        labels = [[rng.randrange(vocab) for _ in range(length)] for _ in range(batch)]
        if i % 2 == 0:  # as collate makes them: -100 wherever the mask is 0
            labels = [[lab if m else IGNORE_INDEX for lab, m in zip(row, mrow)] for row, mrow in zip(labels, mask)]
        logits = [[[round(rng.gauss(0.0, scale), 4) for _ in range(vocab)] for _ in range(length)]
                  for _ in range(batch)]
        cases.append({"logits": logits, "labels": labels, "mask": mask})
    return cases


def call_sft_loss(fn: Callable, case: dict) -> Any:
    logits = torch.tensor(case["logits"], dtype=torch.float32, requires_grad=True)
    out = fn(logits, torch.tensor(case["labels"], dtype=torch.long), torch.tensor(case["mask"], dtype=torch.float32))
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise TypeError(f"sft_loss should return a scalar (0-dimensional) tensor, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise TypeError("the loss must stay a tensor that gradients flow through (no .item(), numpy or "
                        "torch.tensor(...) of a number)")
    return out.detach()


def describe_sft_loss(case: dict) -> str:
    b, t, v = len(case["logits"]), len(case["logits"][0]), len(case["logits"][0][0])
    return f"logits of shape ({b}, {t}, {v})"


TASKS = [
    Task("encode_pair", "test_encode_pair", 3, encode_pair_cases, call_encode_pair, "aiterms.tokenizer:encode_pair",
         compare=compare_encode_pair, describe=_describe_pair, forbid=FORBID),
    Task("collate", "test_collate", 2, collate_cases, call_collate, "aiterms.tokenizer:collate",
         compare=compare_collate, describe=describe_collate, forbid=FORBID),
    Task("sft_loss", "test_sft_loss", 3, sft_loss_cases, call_sft_loss, "aiterms.sft:sft_loss",
         describe=describe_sft_loss, forbid=FORBID),
]
