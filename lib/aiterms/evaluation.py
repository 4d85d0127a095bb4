"""Evaluation metrics for models whose answers can be checked: accuracy, pass@k and majority vote.

pass@k (Chen et al., 2021, "Evaluating Large Language Models Trained on Code") is the probability that at least
one of k samples is correct. Drawing exactly k samples per problem gives a high-variance estimate; instead draw
n >= k samples, count the c correct ones, and use the unbiased estimator

    pass@k = 1 - C(n - c, k) / C(n, k)

(the chance that a random k-subset of the n samples contains no correct one, subtracted from 1), averaged over
problems. Computed as ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)``, which never forms huge binomials.

Majority vote (self-consistency, Wang et al., 2023) answers with the most frequent final answer among k samples.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem from ``n`` samples of which ``c`` are correct.

    Raises:
        ValueError: unless ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {value!r}")
    if n < 1:
        raise ValueError(f"n (samples) must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c (correct samples) must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n} (cannot estimate pass@{k} from {n} samples)")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems; ``correct[p]`` lists which samples of problem ``p`` were right."""
    if not correct:
        raise ValueError("correct must hold at least one problem")
    return sum(pass_at_k(len(s), sum(map(bool, s)), k) for s in correct) / len(correct)


def majority_vote(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent answer, ignoring ``None`` (unparseable outputs).

    Ties go to the tied answer that appears first in ``answers`` (so the result is deterministic);
    ``None`` if no answer was parseable.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def accuracy(predictions: Sequence, targets: Sequence) -> float:
    """Fraction of exact matches; ``None`` predictions count as wrong."""
    if len(predictions) != len(targets):
        raise ValueError(f"predictions and targets must have the same length, got {len(predictions)} and "
                         f"{len(targets)}")
    if not targets:
        raise ValueError("targets must not be empty")
    return sum(p is not None and p == t for p, t in zip(predictions, targets)) / len(targets)


def by_prompt_length(prompts: list[list[int]]) -> list[tuple[int, list[int]]]:
    """``[(length, indices of the prompts of that length)]``, shortest first: prompts of one length batch together
    without padding."""
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(prompts):
        by_length.setdefault(len(ids), []).append(i)
    return sorted(by_length.items())


def solve(model, problems: Sequence, fmt: str, samples: int = 1, temperature: float = 0.0, seed: int = 0,
          max_new_tokens: int | None = None) -> list[list[str]]:
    """The model's responses to arithmetic problems: ``samples`` per problem, greedy or sampled.

    Prompts of equal length are batched together (:func:`aiterms.transformer.generate_batch`). Deterministic for a
    ``seed``. Returns, per problem, ``samples`` decoded responses (specials removed).
    """
    import torch

    from aiterms import arithmetic
    from aiterms.tokenizer import TOKENIZER
    from aiterms.transformer import generate_batch

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if temperature == 0 and samples > 1:
        raise ValueError("samples > 1 needs temperature > 0 (greedy decoding gives the same answer every time)")
    prompts = [TOKENIZER.encode_prompt(arithmetic.prompt(p)) for p in problems]
    out: list[list[str]] = [[] for _ in problems]
    generator = torch.Generator().manual_seed(seed)
    for length, rows in by_prompt_length(prompts):
        budget = max_new_tokens or model.config.block_size - length + 1
        batch = [prompts[i] for i in rows for _ in range(samples)]
        for start in range(0, len(batch), 512):
            chunk = batch[start:start + 512]
            generated = generate_batch(model, chunk, budget, eos_id=TOKENIZER.eos_id, temperature=temperature,
                                       generator=generator)
            for j, ids in enumerate(generated, start=start):
                out[rows[j // samples]].append(TOKENIZER.decode(ids))
    return out


def score(problems: Sequence, responses: Sequence[Sequence[str]], k: int | None = None) -> dict[str, float]:
    """Accuracy of the first response, majority-vote accuracy and (with ``k``) pass@k over the responses."""
    from aiterms import arithmetic

    answers = [[arithmetic.extract_answer(r) for r in rs] for rs in responses]
    right = [[a == p.answer for a in ans] for p, ans in zip(problems, answers)]
    result = {"accuracy": sum(r[0] for r in right) / len(right),
              "majority": sum(majority_vote(a) == p.answer for p, a in zip(problems, answers)) / len(problems)}
    if k is not None:
        result[f"pass@{k}"] = mean_pass_at_k(right, k)
        result["pass@1"] = mean_pass_at_k(right, 1)
    return result
