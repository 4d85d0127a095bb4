"""Hidden checks of exercise 16 (beam search): greedy_decode, beam_step, beam_search.

Cases are plain data; models are described, not passed: ``{"kind": "bigram", "vocab_size": 7, "seed": 3,
"scale": 2.0}`` is an :class:`~aiterms.decoding.RandomBigramLM`, ``{"kind": "ngram"}`` the chapter's toy trigram
model.
"""
from __future__ import annotations

import random
from typing import Any, Callable

import torch

from aiterms import grading
from aiterms.grading.tasks import Task
from aiterms.decoding import RandomBigramLM, sequence_logprob
from aiterms.ngram import NGramLM

ASSIGNMENT = "16-beam-search"
_NGRAM_PROMPT = "i am going to the"


def build_model(spec: dict) -> Callable:
    if spec["kind"] == "ngram":
        return NGramLM()
    if spec["kind"] == "bigram":
        return RandomBigramLM(spec["vocab_size"], seed=spec["seed"], scale=spec["scale"],
                              position_scale=spec.get("position_scale", 0.0))
    raise ValueError(f"unknown model kind {spec['kind']!r}")


def _bigram(rng: random.Random, vocab_size: int) -> dict:
    # the per-position term makes exact ties between different sequences (practically) impossible
    return {"kind": "bigram", "vocab_size": vocab_size, "seed": rng.randrange(10**6),
            "scale": rng.choice([1.0, 2.0, 3.0]), "position_scale": 0.5}


def _ngram_prompt() -> list[int]:
    return NGramLM().encode(_NGRAM_PROMPT)


# ------------------------------------------------------------------------------------------------ greedy_decode
def greedy_cases(rng: random.Random) -> list[dict]:
    cases = [{"model": {"kind": "ngram"}, "prompt": _ngram_prompt(), "max_new_tokens": 10, "eos_token_id": 1},
             {"model": {"kind": "ngram"}, "prompt": _ngram_prompt()[:3], "max_new_tokens": 1, "eos_token_id": None}]
    for i in range(18):
        vocab_size = rng.randint(3, 9)
        cases.append({"model": _bigram(rng, vocab_size),
                      "prompt": [rng.randrange(vocab_size) for _ in range(rng.randint(1, 4))],
                      "max_new_tokens": rng.randint(1, 9),
                      "eos_token_id": None if i % 4 == 0 else rng.randrange(vocab_size)})
    # an EOS that greedy produces at once: output must be exactly [eos]
    model = _bigram(rng, 5)
    first = int(torch.argmax(build_model(model)(torch.tensor([[2]]))[0]))
    cases.append({"model": model, "prompt": [2], "max_new_tokens": 6, "eos_token_id": first})
    return cases


def call_greedy(fn: Callable, case: dict) -> Any:
    return fn(build_model(case["model"]), list(case["prompt"]), case["max_new_tokens"],
              eos_token_id=case["eos_token_id"])


# ------------------------------------------------------------------------------------------------ beam_step
def beam_step_cases(rng: random.Random) -> list[dict]:
    cases = [{"beam_scores": [0.0], "logprobs": [[-2.4076, -1.4076, -0.4076]], "k": 1}]
    for _ in range(24):
        beams, vocab_size = rng.randint(1, 4), rng.randint(2, 9)
        scores = [-0.1] + [-5 * rng.random() for _ in range(beams - 1)]  # one strong beam dominates
        logits = torch.tensor([[2 * rng.gauss(0, 1) for _ in range(vocab_size)] for _ in range(beams)])
        cases.append({"beam_scores": scores, "logprobs": torch.log_softmax(logits, -1).tolist(),
                      "k": rng.randint(1, 2 * beams * vocab_size)})
    return cases


def call_beam_step(fn: Callable, case: dict) -> Any:
    return fn(torch.tensor(case["beam_scores"], dtype=torch.float32),
              torch.tensor(case["logprobs"], dtype=torch.float32), case["k"])


# ------------------------------------------------------------------------------------------------ beam_search
def beam_search_cases(rng: random.Random) -> list[dict]:
    cases = [{"model": {"kind": "ngram"}, "prompt": _ngram_prompt(), "num_beams": 3, "max_new_tokens": 6,
              "eos_token_id": 1, "length_penalty": 0.0, "early_stopping": "never"},
             {"model": {"kind": "ngram"}, "prompt": _ngram_prompt(), "num_beams": 1, "max_new_tokens": 6,
              "eos_token_id": 1, "length_penalty": 1.0, "early_stopping": False}]
    # found by search: here the result depends on when the search stops (early_stopping True / False)
    for seed, vocab_size, prompt, k, n, eos, alpha, stop in [(10, 6, 4, 2, 8, 4, 0.0, True),
                                                             (14, 10, 4, 2, 8, 8, 0.0, True),
                                                             (21, 7, 0, 3, 7, 0, 2.0, False),
                                                             (48, 9, 3, 2, 6, 3, 1.0, False)]:
        cases.append({"model": {"kind": "bigram", "vocab_size": vocab_size, "seed": seed, "scale": 2.0,
                                "position_scale": 0.5}, "prompt": [prompt], "num_beams": k, "max_new_tokens": n,
                      "eos_token_id": eos, "length_penalty": alpha, "early_stopping": stop})
    for i in range(30):
        vocab_size = rng.randint(4, 12)
        cases.append({"model": _bigram(rng, vocab_size),
                      "prompt": [rng.randrange(vocab_size) for _ in range(rng.randint(1, 3))],
                      "num_beams": rng.randint(1, max(1, vocab_size // 2)),  # V >= 2k, as in transformers' tests
                      "max_new_tokens": rng.randint(1, 8),
                      "eos_token_id": None if i % 6 == 5 else rng.randrange(vocab_size),
                      "length_penalty": [1.0, 0.0, 2.0, -0.5][i % 4],
                      "early_stopping": [False, True, "never"][i % 3]})
    return cases


def call_beam_search(fn: Callable, case: dict) -> Any:
    hyps = fn(build_model(case["model"]), list(case["prompt"]), case["num_beams"], case["max_new_tokens"],
              eos_token_id=case["eos_token_id"], length_penalty=case["length_penalty"],
              early_stopping=case["early_stopping"])
    return [(tokens, score) for tokens, score in hyps]


def compare_beam_search(got: Any, expected: Any, case: dict) -> str | None:
    """Same number of hypotheses with the same scores, best first. A hypothesis whose tokens differ from the
    reference's is accepted only as a tie: a finished sequence, distinct from the others, whose score is its own
    (recomputed from the model) and equals the reference's score at that rank."""
    try:
        got = [(list(map(int, tokens)), float(score)) for tokens, score in grading.to_plain(got)]
    except (TypeError, ValueError) as e:
        return f"expected a list of (tokens, score) pairs ({e})"
    if len(got) != len(expected):
        return f"returned {len(got)} hypotheses, expected {len(expected)}"
    problem = grading.compare_values([s for _, s in got], [s for _, s in expected])
    if problem:
        return problem.replace("the result", "the scores")
    if len({tuple(t) for t, _ in got}) != len(got):
        return "the same hypothesis appears twice"
    model, eos, n = build_model(case["model"]), case["eos_token_id"], case["max_new_tokens"]
    for i, ((tokens, score), (exp_tokens, _)) in enumerate(zip(got, expected)):
        if tokens == exp_tokens:
            continue
        finished = tokens and (eos not in tokens[:-1]) and (tokens[-1] == eos or len(tokens) == n) and len(tokens) <= n
        true = sequence_logprob(model, case["prompt"], tokens) / len(tokens) ** case["length_penalty"] if finished \
            else None
        if true is None or not grading.close(true, score):
            return f"the result[{i}] is wrong"
    return None


def describe_beam_search(case: dict) -> str:
    return ", ".join(f"{k}={case[k]!r}" for k in
                     ("num_beams", "max_new_tokens", "eos_token_id", "length_penalty", "early_stopping"))


FORBID = ("aiterms.decoding:greedy_decode", "aiterms.decoding:sample", "aiterms.beam_search:beam_step",
          "aiterms.beam_search:beam_search", "aiterms.beam_search:beam_table")

TASKS = [
    Task("greedy_decode", "test_greedy_decode", 2, greedy_cases, call_greedy, "aiterms.decoding:greedy_decode",
         compare=grading.compare_tokens, forbid=FORBID),
    Task("beam_step", "test_beam_step", 3, beam_step_cases, call_beam_step, "aiterms.beam_search:beam_step",
         forbid=FORBID),
    Task("beam_search", "test_beam_search", 5, beam_search_cases, call_beam_search, "aiterms.beam_search:beam_search",
         compare=compare_beam_search, describe=describe_beam_search, forbid=FORBID),
]
