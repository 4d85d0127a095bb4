"""A character-level tokenizer for the arithmetic world: one token per character, plus four special tokens.

The vocabulary is small and fixed, so that every checkpoint of the course speaks the same ids::

    id:     0       1       2       3      4..13       14  15  16  17  18
    token:  <pad>   <bos>   <eos>   <sep>  0 1 ... 9   +   -   =   |   " " (space)

``<pad>`` fills batches, ``<bos>``/``<eos>`` open and close a sequence, ``<sep>`` separates the prompt from the
response. The characters are what the arithmetic formats need (digits, ``+ - =``, the step separator ``|``), plus
the space, which only messy raw data contains.

Supervised fine-tuning works on (prompt, response) pairs laid out as one sequence

    s = <bos> prompt <sep> response <eos>,     L = len(prompt) + len(response) + 3 tokens,

and trained for next-token prediction: the model reads ``ids = s[:-1]`` and, at every position ``t``, predicts
``labels[t] = s[t + 1]``. Only the response is taught: ``labels[t] = -100`` (PyTorch's ``ignore_index``) wherever
``s[t + 1]`` is part of ``<bos> prompt <sep>``. So the first predicted token is the first response character (read
at the ``<sep>`` position) and the last is ``<eos>``; ``response_mask[t] = 1`` exactly on those ``len(response) + 1``
positions, i.e. ``response_mask[t] == (labels[t] != -100)``. Example, prompt ``"1+2="``, response ``"3"``::

    t              0      1    2    3    4    5      6
    ids[t]         <bos>  1    +    2    =    <sep>  3
    labels[t]      -100   -100 -100 -100 -100 3      <eos>
    response_mask  0      0    0    0    0    1      1
"""
from __future__ import annotations

from typing import Sequence

import torch

from aiterms.decoding import check_positive_int

PAD, BOS, EOS, SEP = "<pad>", "<bos>", "<eos>", "<sep>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, SEP)
#: The characters after the special tokens, in id order (ids 4, 5, ...).
CHARACTERS = "0123456789+-=| "
#: The label of a position the loss ignores (``torch.nn.functional.cross_entropy``'s default ``ignore_index``).
IGNORE_INDEX = -100


class CharTokenizer:
    """Maps text to token ids one character at a time; special tokens first (``pad_id=0, bos_id=1, eos_id=2,
    sep_id=3``), then ``characters``."""

    def __init__(self, characters: str = CHARACTERS):
        if not isinstance(characters, str) or not characters or len(set(characters)) != len(characters):
            raise ValueError(f"characters must be a non-empty string without repeated characters, got {characters!r}")
        self.tokens: list[str] = list(SPECIAL_TOKENS) + list(characters)
        self.characters = characters
        self.stoi = {ch: i for i, ch in enumerate(characters, start=len(SPECIAL_TOKENS))}
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = range(len(SPECIAL_TOKENS))
        self.special_ids = frozenset(range(len(SPECIAL_TOKENS)))

    @property
    def vocab_size(self) -> int:
        """V = number of special tokens + number of characters."""
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """One id per character of ``text`` (no special tokens added).

        Raises:
            ValueError: naming the first character that is not in the vocabulary, and its position.
        """
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        ids = []
        for i, ch in enumerate(text):
            if ch not in self.stoi:
                raise ValueError(f"text contains the unknown character {ch!r} at position {i}; "
                                 f"the vocabulary has only {self.characters!r} and the special tokens")
            ids.append(self.stoi[ch])
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special: bool = True) -> str:
        """The text of ``ids``: special tokens dropped (``skip_special=True``) or written as ``<eos>`` etc.

        Raises:
            ValueError: if ``ids`` is not a 1-D sequence of ids in ``0..vocab_size-1``.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1 or ids.dtype.is_floating_point:
                raise ValueError(f"ids must be a 1-D integer tensor or a list of ints, got shape {tuple(ids.shape)} "
                                 f"and dtype {ids.dtype}")
            ids = ids.tolist()
        out = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.vocab_size:
                raise ValueError(f"ids must be token ids in 0..{self.vocab_size - 1}, got {i!r}")
            if not (skip_special and i in self.special_ids):
                out.append(self.tokens[i])
        return "".join(out)

    def encode_prompt(self, prompt: str) -> list[int]:
        """``<bos> prompt <sep>``: what a model is given to generate a response (see the module docstring)."""
        return [self.bos_id] + self.encode(prompt) + [self.sep_id]

    def encode_pair(self, prompt: str, response: str, max_len: int) -> tuple[list[int], list[int], list[int]]:
        """Token ids, next-token labels and response mask of one supervised example (layout in the module docstring).

        With ``s = <bos> prompt <sep> response <eos>`` (length L)::

            ids[t]           = s[t]                                   t = 0 .. L-2
            labels[t]        = s[t+1] if t + 1 >= len(prompt) + 2 else -100
            response_mask[t] = 1      if t + 1 >= len(prompt) + 2 else 0

        so the response characters and the closing ``<eos>`` are predicted, nothing of the prompt.

        Args:
            prompt, response: text made of the tokenizer's characters.
            max_len: the model's context (``block_size``); the ``L - 1`` input positions must fit in it.
        Returns:
            three lists of length ``L - 1`` (not padded; :func:`collate` pads a batch).
        Raises:
            ValueError: unknown character, or ``L - 1 > max_len`` ("response longer than the context").
        """
        return encode_pair(prompt, response, max_len, tokenizer=self)


#: The course's tokenizer (vocabulary above); use it rather than building another, so that ids stay stable.
TOKENIZER = CharTokenizer()


def collate(examples: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]], pad_id: int = TOKENIZER.pad_id
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(ids, labels, response_mask)`` triples (from :meth:`CharTokenizer.encode_pair`) on the right into a batch.

    Padding adds ``pad_id`` to ``ids``, ``-100`` to ``labels`` and ``0`` to the mask, so padded positions are never
    learned; with causal attention, right padding does not change the logits of the real positions.

    Returns:
        ``ids (B, T)`` long, ``labels (B, T)`` long, ``response_mask (B, T)`` float32, with T the longest example.
    """
    if not examples:
        raise ValueError("examples must contain at least one (ids, labels, response_mask) triple")
    for i, ex in enumerate(examples):
        if len(ex) != 3 or not len(ex[0]) == len(ex[1]) == len(ex[2]):
            raise ValueError(f"examples[{i}] must be an (ids, labels, response_mask) triple of equal-length lists")
    T = max(len(ex[0]) for ex in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.float32)
    for row, (i, l, m) in enumerate(examples):
        ids[row, :len(i)] = torch.tensor(list(i), dtype=torch.long)
        labels[row, :len(l)] = torch.tensor(list(l), dtype=torch.long)
        mask[row, :len(m)] = torch.tensor(list(m), dtype=torch.float32)
    return ids, labels, mask


def encode_pair(prompt: str, response: str, max_len: int, tokenizer: CharTokenizer | None = None
                ) -> tuple[list[int], list[int], list[int]]:
    """``(ids, labels, response_mask)`` of one supervised example: see :meth:`CharTokenizer.encode_pair`, which
    calls this function (so that one function holds the layout; exercise 4 asks learners to write it)."""
    tok = TOKENIZER if tokenizer is None else tokenizer
    check_positive_int("max_len", max_len)
    prompt_part = tok.encode_prompt(prompt)                 # <bos> prompt <sep>
    response_part = tok.encode(response) + [tok.eos_id]    # response <eos>
    ids = prompt_part + response_part[:-1]
    if len(ids) > max_len:
        raise ValueError(f"prompt and response need {len(ids)} input positions (<bos> prompt <sep> response) but "
                         f"max_len={max_len}: response longer than the context")
    labels = [IGNORE_INDEX] * (len(prompt_part) - 1) + response_part
    response_mask = [0] * (len(prompt_part) - 1) + [1] * len(response_part)
    return ids, labels, response_mask

