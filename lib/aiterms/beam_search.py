"""Beam search: keep the k most likely partial sequences instead of only the single best one.

Greedy decoding commits to the most likely next token at every step. Beam search keeps a *beam* of ``k`` partial
sequences ("hypotheses"); at each step it scores every (beam, next token) continuation by its total log-probability,
keeps the best ones and sets aside those that end. Finished hypotheses are ranked by a length-normalised score::

    score(y) = log p(y | x) / |y| ** length_penalty,   log p(y | x) = sum_t log p(y_t | x, y_<t)

where ``|y|`` counts the generated tokens including EOS and excluding the prompt (Wu et al., 2016, use a
different normaliser; this one is Hugging Face's). ``length_penalty > 0`` favours longer outputs, ``< 0`` shorter.

The semantics follow Hugging Face transformers' ``generate(num_beams=k, do_sample=False)`` (version 5), which the
tests check token for token:

* each step keeps the top ``2k`` continuations over all beams x vocabulary, so that ``k`` unfinished ones remain
  even if up to ``k`` of them end;
* only continuations ranked in the top ``k`` of those ``2k`` may finish (hit EOS or the length limit); the best ``k``
  unfinished ones are the next beams;
* the search stops when every continuation hits a stop, or when ``k`` hypotheses are finished and

  - ``early_stopping=True``: at once;
  - ``early_stopping=False``: the best running beam, normalised by its *current* length, cannot beat the worst
    finished hypothesis (a heuristic);
  - ``early_stopping="never"``: the same test, but with the best length it could still reach when
    ``length_penalty > 0`` (exact: no better hypothesis can be missed).

Two differences, both outside what a model sees: Hugging Face pads the beam with dummy hypotheses of score -1e9 at
the first step, we simply keep fewer beams (identical whenever ``V >= 2k``); and ``num_beams=1`` runs beam search
here, whereas ``generate`` switches to greedy decoding.

Shapes: B = beams alive (<= k), V = vocabulary size.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from aiterms.decoding import LanguageModel, as_prompt, check_eos, check_positive_int, next_token_logprobs

class Hypothesis(NamedTuple):
    """A finished beam: the generated ``tokens`` (EOS included, prompt excluded) and its length-normalised ``score``."""

    tokens: list[int]
    score: float


def beam_step(beam_scores: torch.Tensor, logprobs: torch.Tensor, k: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One expansion step: the ``k`` best continuations over *all* beams x vocabulary.

    ``total[b, v] = beam_scores[b] + logprobs[b, v]``; return the top-k entries of ``total`` flattened, best first.

    Args:
        beam_scores: ``(B,)`` summed log-probability of each beam so far.
        logprobs: ``(B, V)`` next-token log-probabilities of each beam.
        k: how many continuations to keep (at most ``B * V`` are returned).
    Returns:
        ``scores (K,)``, ``beam_index (K,)`` (which beam each continuation extends) and ``token (K,)``,
        with ``K = min(k, B * V)``, sorted by score, best first.
    """
    if not isinstance(logprobs, torch.Tensor) or logprobs.dim() != 2:
        raise ValueError(f"logprobs must be a (B, V) tensor, got {getattr(logprobs, 'shape', type(logprobs))}")
    if not isinstance(beam_scores, torch.Tensor) or beam_scores.shape != logprobs.shape[:1]:
        raise ValueError(f"beam_scores must be a ({logprobs.shape[0]},) tensor matching logprobs (B, V) = "
                         f"{tuple(logprobs.shape)}, got {getattr(beam_scores, 'shape', type(beam_scores))}")
    check_positive_int("k", k)
    num_beams, vocab_size = logprobs.shape
    total = (beam_scores[:, None] + logprobs).reshape(-1)  # (B * V,), beam-major
    scores, flat = torch.topk(total, min(k, total.numel()))
    return scores, flat // vocab_size, flat % vocab_size


def beam_search(model: LanguageModel, prompt: Sequence[int] | torch.Tensor, num_beams: int, max_new_tokens: int,
                eos_token_id: int | None = None, length_penalty: float = 1.0,
                early_stopping: bool | str = False) -> list[Hypothesis]:
    """Beam search with length penalty, EOS handling and early stopping (Hugging Face semantics; see module doc).

    Args:
        model: a :class:`~aiterms.decoding.LanguageModel`, ids ``(N, T)`` -> next-token logits ``(N, V)``.
        prompt: the prompt's token ids (non-empty).
        num_beams: beam width k >= 1.
        max_new_tokens: the most tokens to generate; a hypothesis that reaches it finishes there.
        eos_token_id: the token that ends a hypothesis (``None``: only the length limit ends them).
        length_penalty: exponent of the length normaliser in ``score = log p / len ** length_penalty``.
        early_stopping: ``True``, ``False`` or ``"never"``: when to stop once ``k`` hypotheses are finished.
    Returns:
        ``k`` :class:`Hypothesis` (fewer only if fewer sequences exist), best score first.
    """
    prompt_ids = as_prompt(prompt)
    check_positive_int("num_beams", num_beams)
    check_positive_int("max_new_tokens", max_new_tokens)
    if not (early_stopping is True or early_stopping is False or early_stopping == "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")

    beams: list[list[int]] = [[]]            # generated tokens of each running beam
    scores = torch.zeros(1)                  # (B,) summed log-probs of the running beams, float32
    finished: list[Hypothesis] = []          # at most k, best first

    for step in range(max_new_tokens):
        logprobs = next_token_logprobs(model, [prompt_ids + b for b in beams])  # (B, V)
        check_eos(eos_token_id, logprobs.shape[1])
        cand_scores, cand_beam, cand_token = beam_step(scores, logprobs, 2 * num_beams)  # (2k,) each
        length = step + 1                     # generated tokens after this step, EOS included
        candidates = [beams[b] + [t] for b, t in zip(cand_beam.tolist(), cand_token.tolist())]
        ends = [t == eos_token_id or length == max_new_tokens for t in cand_token.tolist()]

        # Finish: only the top-k candidates may; score them with the length penalty and keep the best k.
        for rank in range(min(num_beams, len(candidates))):
            if ends[rank]:
                finished.append(Hypothesis(candidates[rank], float(cand_scores[rank] / length ** length_penalty)))
        finished = sorted(finished, key=lambda h: h.score, reverse=True)[:num_beams]

        # Continue: the best k candidates that did not end.
        alive = [rank for rank in range(len(candidates)) if not ends[rank]][:num_beams]
        if not alive:
            break
        beams = [candidates[rank] for rank in alive]
        scores = cand_scores[alive]

        # Stop early once k hypotheses are finished and (by the chosen rule) none of the running beams can win.
        if len(finished) == num_beams:
            if early_stopping is True:
                break
            best_length = max_new_tokens if early_stopping == "never" and length_penalty > 0 else length
            if not float(scores[0] / best_length ** length_penalty) > finished[-1].score:
                break
    return finished


def beam_table(model: LanguageModel, prompt: Sequence[int] | torch.Tensor, num_beams: int, steps: int
               ) -> list[list[tuple[list[int], float]]]:
    """The beams after each step of a plain beam search (no EOS, no length penalty), for worked examples.

    Returns:
        ``steps`` lists, each with up to ``num_beams`` ``(generated tokens, summed log-prob)`` pairs, best first.
    """
    prompt_ids = as_prompt(prompt)
    check_positive_int("num_beams", num_beams)
    check_positive_int("steps", steps)
    beams, scores, table = [[]], torch.zeros(1), []
    for _ in range(steps):
        logprobs = next_token_logprobs(model, [prompt_ids + b for b in beams])
        scores, beam, token = beam_step(scores, logprobs, num_beams)
        beams = [beams[b] + [t] for b, t in zip(beam.tolist(), token.tolist())]
        table.append([(b, float(s)) for b, s in zip(beams, scores)])
    return table
