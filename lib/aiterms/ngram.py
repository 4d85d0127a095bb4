"""A word-level n-gram language model: next-word probabilities counted from a corpus.

    p(w | context) = (count(context, w) + alpha) / (count(context) + alpha * V)

where ``context`` is the previous ``n - 1`` words (sentences are padded on the left with ``<bos>`` and end with
``<eos>``) and ``alpha`` is add-alpha smoothing so that unseen words keep a little probability. This is the
"how often certain words follow a given phrase in the training data" of the seed glossary, made literal; the model
follows the course's language-model protocol (ids ``(N, T)`` -> next-token logits ``(N, V)``), so every decoder in
:mod:`aiterms.decoding` and :mod:`aiterms.beam_search` runs on it.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

import torch

BOS, EOS = "<bos>", "<eos>"

#: Chapter 16's corpus. After "i am going to the", "store" is the most frequent word (5 of 10), then "park" (3),
#: then "beach" (2). But "store" is followed by four different phrases (in five sentences), while "park" is always
#: followed by "at noon": greedy decoding takes "store" and ends with a less likely sentence than beam search finds.
TOY_CORPUS: tuple[str, ...] = (
    "i am going to the store for milk",
    "i am going to the store for milk",
    "i am going to the store with mum",
    "i am going to the store after work",
    "i am going to the store on foot",
    "i am going to the park at noon",
    "i am going to the park at noon",
    "i am going to the park at noon",
    "i am going to the beach with friends",
    "i am going to the beach with friends",
)


class NGramLM:
    """Counts n-grams of whitespace-separated words; callable as a language model over word ids."""

    def __init__(self, corpus: Sequence[str] = TOY_CORPUS, n: int = 3, alpha: float = 0.01):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not alpha > 0:
            raise ValueError(f"alpha (smoothing) must be > 0, got {alpha!r}")
        sentences = [s.split() for s in corpus]
        if not any(sentences):
            raise ValueError("corpus must contain at least one non-empty sentence")
        words = sorted({w for s in sentences for w in s} - {BOS, EOS})
        self.vocab: list[str] = [BOS, EOS] + words
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.bos_id, self.eos_id = 0, 1
        self.n, self.alpha = n, alpha
        self.counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        for s in sentences:
            ids = [self.bos_id] * (n - 1) + self.encode(" ".join(s)) + [self.eos_id]
            for i in range(n - 1, len(ids)):
                self.counts[tuple(ids[i - n + 1:i])][ids[i]] += 1

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text``; raises ``ValueError`` naming any word not in the vocabulary."""
        unknown = [w for w in text.split() if w not in self.index]
        if unknown:
            raise ValueError(f"text contains words not in the vocabulary: {unknown}")
        return [self.index[w] for w in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.vocab[i] for i in ids)

    def next_word_probs(self, context: Sequence[int]) -> torch.Tensor:
        """``(V,)`` probabilities of the next word after ``context`` (a list of word ids)."""
        ctx = ([self.bos_id] * (self.n - 1) + list(context))[-(self.n - 1):] if self.n > 1 else []
        counts = self.counts.get(tuple(ctx), Counter())
        probs = torch.full((self.vocab_size,), self.alpha, dtype=torch.float64)
        for w, c in counts.items():
            probs[w] += c
        probs[self.bos_id] = 0.0  # <bos> is never generated
        return probs / probs.sum()

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Language-model protocol: ``(N, T)`` word ids -> ``(N, V)`` next-word logits (log-probabilities)."""
        rows = [self.next_word_probs(seq) for seq in input_ids.tolist()]
        return torch.stack(rows).log().float()  # (N, V); log 0 = -inf for <bos>

    def top_next_words(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely next words after ``text`` with their probabilities."""
        probs = self.next_word_probs(self.encode(text))
        top = torch.topk(probs, min(k, self.vocab_size))
        return [(self.vocab[i], float(p)) for p, i in zip(top.values, top.indices)]
