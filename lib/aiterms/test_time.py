"""Inference-time scaling: spend more compute on a hard question, and spend it only where it is needed.

One model, one set of problems, several ways to turn more compute into accuracy {cite}`snell2024scaling`:

* **greedy**: one answer, the most likely token at every step;
* a **pool** of sampled responses per problem (:func:`sample_pool`), from which the curves below read the first
  ``n`` samples, so that every method sees the same samples;
* **majority vote** (self-consistency, Wang et al., 2023): sample ``N`` responses, answer with the most frequent
  final answer (:func:`aiterms.evaluation.majority_vote`: unparseable answers ignored, ties to the tied answer that
  appeared first);
* **best-of-N**: sample ``N`` responses, keep the one a scorer likes most, ``argmax_i score(response_i)``
  (:func:`best_of_n`); the scorer is an outcome reward model (ORM, one score per response) or a process reward model
  (PRM, one score per step, aggregated; Lightman et al., 2023, "Let's Verify Step by Step");
* **step-level beam search** (:func:`step_beam_search`, and :func:`step_beam_search_many` for many problems at once):
  keep the ``beam_width`` best partial responses by a step scorer, extend each by ``expand`` sampled next steps,
  rescore, repeat;
* **MCTS over steps** (:func:`aiterms.step_search.step_mcts`);
* the reward models themselves come from :mod:`aiterms.prm` (chapter 14); :func:`prm_scorer` turns a PRM into the
  step scorer that beam search needs, and :func:`pairwise_accuracy` measures what best-of-N needs from a scorer:
  ranking a right response above a wrong one *to the same question*;
* **adaptive sampling** (:func:`adaptive_vote`): sample in small batches and stop as soon as the answers agree,
  so easy questions get few samples and hard ones many.

**The unit of compute** is the *generated token*: one forward pass of the policy for one sequence (with the KV cache
every new token costs one pass, so ``N`` responses of ``L`` tokens cost ``N * L``). Every method below reports the
tokens it generated, including tokens of steps it threw away. A reward model's own passes are not counted (they are
another, here equally small, network; with a large PRM they would matter too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import torch

from aiterms.arithmetic import Problem, extract_answer, prompt
from aiterms.evaluation import by_prompt_length, majority_vote
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, generate_batch

__all__ = ["ScalingConfig", "majority_vote", "sample_responses", "sample_pool", "best_of_n", "adaptive_vote",
           "vote_curve", "pairwise_accuracy", "prm_scorer", "best_of_n_curve", "adaptive_curve", "step_beam_search",
           "step_beam_search_many"]

#: ``scorer(problem, text) -> float``: a response (outcome scorer) or a prefix of whole steps (step scorer)
Scorer = Callable[[Problem, str], float]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class ScalingConfig:
    """Hyperparameters of the sampling-based methods and of step-level beam search."""

    temperature: float = 1.0      # sampling temperature (> 0)
    max_samples: int = 16         # the most responses per problem (the adaptive budget's cap)
    batch_size: int = 2           # adaptive sampling: responses drawn per round
    min_votes: int = 2            # adaptive sampling: the leading answer needs at least this many votes ...
    agreement: float = 0.6        # ... and at least this share of the responses drawn so far, to stop
    beam_width: int = 2           # step beam search: partial responses kept
    expand: int = 2               # step beam search: next steps sampled per kept partial response

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        for name in ("max_samples", "batch_size", "min_votes", "beam_width", "expand"):
            _positive_int(name, getattr(self, name))
        if not (isinstance(self.agreement, (int, float)) and 0 < self.agreement <= 1):
            raise ValueError(f"agreement must be in (0, 1], got {self.agreement!r}")


# ------------------------------------------------------------------------------------------------ sampling
def sample_responses(model: GPT, problem: Problem, n: int, temperature: float = 1.0,
                     generator: torch.Generator | None = None) -> tuple[list[str], list[int]]:
    """``n`` step-by-step responses to ``problem`` sampled at ``temperature`` in one batch.

    Returns ``(texts, tokens)``: the decoded responses and, per response, the tokens generated (``<eos>`` included),
    the compute unit of this module.
    """
    _positive_int("n", n)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    ids = TOKENIZER.encode_prompt(prompt(problem))
    room = model.config.block_size - len(ids) + 1
    out = generate_batch(model, [ids] * n, room, eos_id=TOKENIZER.eos_id, temperature=temperature,
                         generator=generator)
    return [TOKENIZER.decode(row) for row in out], [len(row) for row in out]


def sample_pool(model: GPT, problems: Sequence[Problem], n: int, temperature: float = 1.0, seed: int = 0,
                max_batch: int = 512) -> tuple[list[list[str]], list[list[int]]]:
    """``n`` step-by-step responses to every problem, sampled at ``temperature``: the pool that the curves below read.

    What :func:`sample_responses` gives for one problem, for many at once and faster: prompts of equal length are
    generated together, at most ``max_batch`` rows per batch, with one generator seeded with ``seed``.

    Returns:
        ``(texts, tokens)``: ``texts[p][i]`` is response ``i`` to problem ``p`` and ``tokens[p][i]`` the tokens it
        generated (``<eos>`` included).
    """
    _positive_int("n", n)
    _positive_int("max_batch", max_batch)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not problems:
        raise ValueError("problems must hold at least one problem")
    prompts = [TOKENIZER.encode_prompt(prompt(p)) for p in problems]
    texts: list[list[str]] = [[] for _ in problems]
    tokens: list[list[int]] = [[] for _ in problems]
    generator = torch.Generator().manual_seed(seed)
    for length, rows in by_prompt_length(prompts):
        batch = [i for i in rows for _ in range(n)]                   # problem index of each row
        for start in range(0, len(batch), max_batch):
            chunk = batch[start:start + max_batch]
            out = generate_batch(model, [prompts[i] for i in chunk], model.config.block_size - length + 1,
                                 eos_id=TOKENIZER.eos_id, temperature=temperature, generator=generator)
            for i, row in zip(chunk, out):
                texts[i].append(TOKENIZER.decode(row))
                tokens[i].append(len(row))
    return texts, tokens


# ------------------------------------------------------------------------------------------------ choosing an answer
def best_of_n(scores: Sequence[float]) -> int:
    """Best-of-N: the index ``argmax_i scores[i]`` of the best-scored of ``N`` responses (ties: the first).

    Raises:
        ValueError: ``scores`` is empty or holds a NaN.
    """
    if len(scores) == 0:
        raise ValueError("scores must hold at least one score")
    values = [float(s) for s in scores]
    if any(math.isnan(v) for v in values):
        raise ValueError("scores must not contain NaN")
    return max(range(len(values)), key=lambda i: (values[i], -i))


def adaptive_vote(sample: Callable[[int], Sequence[Hashable | None]], max_samples: int, batch_size: int = 2,
                  min_votes: int = 2, agreement: float = 0.6) -> tuple[Hashable | None, int]:
    """Majority vote with early stopping: sample until the answers agree, at most ``max_samples`` answers.

    Round after round, draw ``b = min(batch_size, max_samples - n)`` answers with ``sample(b)`` (``n`` answers drawn
    so far; ``None`` = unparseable). After each round, let ``a*`` be the majority answer of all ``n`` answers
    (:func:`aiterms.evaluation.majority_vote`) and ``v`` its count; stop when

        v >= min_votes   and   v / n >= agreement          (unparseable answers count in n)

    or when ``n = max_samples``. An easy question stops after the first round (``batch_size`` answers that agree),
    a hard one uses the whole budget. With ``min_votes > max_samples`` it never stops early: plain majority vote of
    ``max_samples`` answers.

    Returns:
        ``(a*, n)``: the majority answer of everything drawn and the number of answers drawn.
    Raises:
        ValueError: a non-positive ``max_samples``, ``batch_size`` or ``min_votes``, ``agreement`` outside (0, 1],
        or ``sample(b)`` not returning ``b`` answers.
    """
    _positive_int("max_samples", max_samples)
    _positive_int("batch_size", batch_size)
    _positive_int("min_votes", min_votes)
    if not (isinstance(agreement, (int, float)) and not isinstance(agreement, bool) and 0 < agreement <= 1):
        raise ValueError(f"agreement must be in (0, 1], got {agreement!r}")
    answers: list = []
    while len(answers) < max_samples:
        b = min(batch_size, max_samples - len(answers))
        drawn = list(sample(b))
        if len(drawn) != b:
            raise ValueError(f"sample({b}) must return {b} answers, got {len(drawn)}")
        answers.extend(drawn)
        leader = majority_vote(answers)
        votes = sum(a == leader for a in answers) if leader is not None else 0
        if votes >= min_votes and votes / len(answers) >= agreement:
            break
    return majority_vote(answers), len(answers)


# ------------------------------------------------------------------------------------------------ curves from a pool
def _check_pool(answers: Sequence[Sequence], tokens: Sequence[Sequence[int]], targets: Sequence) -> int:
    if not answers:
        raise ValueError("answers must hold at least one problem")
    if len(tokens) != len(answers) or len(targets) != len(answers):
        raise ValueError(f"answers, tokens and targets must have one entry per problem, got {len(answers)}, "
                         f"{len(tokens)} and {len(targets)}")
    pool = min(len(a) for a in answers)
    if pool < 1 or any(len(t) != len(a) for t, a in zip(tokens, answers)):
        raise ValueError("every problem needs >= 1 sample and one token count per sample")
    return pool


def _check_ns(ns: Sequence[int], pool: int) -> list[int]:
    ns = [_positive_int("n", n) for n in ns]
    if any(n > pool for n in ns):
        raise ValueError(f"ns must be at most the pool size {pool}, got {max(ns)}")
    return ns


def vote_curve(answers: Sequence[Sequence[Hashable | None]], tokens: Sequence[Sequence[int]], targets: Sequence,
               ns: Sequence[int]) -> list[dict]:
    """Majority vote of the first ``n`` samples of each problem's pool, for each ``n`` in ``ns``.

    ``answers[p][i]``, ``tokens[p][i]``: the answer and the generated tokens of sample ``i`` of problem ``p``.
    Returns one ``{"n", "accuracy", "tokens"}`` per ``n`` (``tokens``: mean generated tokens per problem).
    """
    ns = _check_ns(ns, _check_pool(answers, tokens, targets))
    return [{"n": n, "accuracy": sum(majority_vote(a[:n]) == t for a, t in zip(answers, targets)) / len(targets),
             "tokens": sum(sum(tk[:n]) for tk in tokens) / len(targets)} for n in ns]


def best_of_n_curve(answers: Sequence[Sequence[Hashable | None]], scores: Sequence[Sequence[float]],
                    tokens: Sequence[Sequence[int]], targets: Sequence, ns: Sequence[int]) -> list[dict]:
    """Best-of-N (:func:`best_of_n`) among the first ``n`` samples of each pool, for each ``n`` in ``ns``."""
    pool = _check_pool(answers, tokens, targets)
    if len(scores) != len(answers) or any(len(s) != len(a) for s, a in zip(scores, answers)):
        raise ValueError("scores must hold one score per sample")
    ns = _check_ns(ns, pool)
    return [{"n": n, "accuracy": sum(a[best_of_n(s[:n])] == t for a, s, t in zip(answers, scores, targets))
             / len(targets), "tokens": sum(sum(tk[:n]) for tk in tokens) / len(targets)} for n in ns]


def adaptive_curve(answers: Sequence[Sequence[Hashable | None]], tokens: Sequence[Sequence[int]], targets: Sequence,
                   max_samples: int, batch_size: int = 2, min_votes: Sequence[int] = (2, 3, 4),
                   agreement: float = 0.6) -> list[dict]:
    """:func:`adaptive_vote` on each problem's pool (samples taken in the pool's order), for each ``min_votes``.

    Returns one ``{"min_votes", "accuracy", "tokens", "samples", "drawn"}`` per setting: means per problem, and
    ``drawn[p]``, the number of samples the rule drew for problem ``p``.
    """
    pool = _check_pool(answers, tokens, targets)
    _check_ns([max_samples], pool)
    rows = []
    for k in min_votes:
        right = spent = 0
        drawn = []
        for a, tk, t in zip(answers, tokens, targets):
            pos = [0]

            def sample(b: int, a=a, pos=pos) -> list:
                pos[0] += b
                return list(a[pos[0] - b:pos[0]])

            answer, n = adaptive_vote(sample, max_samples, batch_size, k, agreement)
            right += answer == t
            spent += sum(tk[:n])
            drawn.append(n)
        rows.append({"min_votes": k, "accuracy": right / len(targets), "tokens": spent / len(targets),
                     "samples": sum(drawn) / len(targets), "drawn": drawn})
    return rows


# ------------------------------------------------------------------------------------------------ search over steps
#: the most tokens one sampled step may take (a step is ``a+b+c=dd|``, at most 10 characters; as in step_search)
STEP_TOKENS = 12


def _score_many(scorer: Scorer, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
    """``scorer`` on many ``(problem, text)`` pairs: in one call if it has a batched form ``scorer.many(problems,
    texts)`` (as :func:`prm_scorer`'s has), else one text at a time."""
    if not texts:
        return []
    many = getattr(scorer, "many", None)
    if many is not None:
        return [float(s) for s in many(list(problems), list(texts))]
    return [float(scorer(p, t)) for p, t in zip(problems, texts)]


def step_beam_search_many(model: GPT, problems: Sequence[Problem], scorer: Scorer, beam_width: int = 2,
                          expand: int = 2, temperature: float = 1.0, seed: int = 0,
                          max_rounds: int | None = None) -> list[dict]:
    """Step-level beam search guided by a step scorer (a PRM), as in Snell et al. (2024), on many problems at once.

    For each problem, start from the empty response. Each round, every kept partial response (a prefix of whole
    steps) gets ``expand`` sampled next steps (at most :data:`STEP_TOKENS` tokens each, cut after the step's ``|``, as
    :func:`aiterms.step_search.next_steps` does); duplicates are merged; a candidate that ends the response (its
    answer segment and ``<eos>``) is *finished*; the others are scored with ``scorer(problem, prefix)`` and the
    ``beam_width`` best are kept (ties: the first sampled). A problem's search stops when no partial response is left
    or after ``max_rounds`` rounds (default ``problem.num_steps + 2``); its answer is the finished response with the
    highest ``scorer(problem, response)`` (ties: the first finished), or ``""`` if none finished.

    The same search as :func:`step_beam_search`, batched: the prefixes of all problems that have the same length are
    extended in one call of the model, and the scorer scores all candidates of a round at once if it can
    (``scorer.many``). One generator seeded with ``seed`` draws every sample; ``step_beam_search(model, p, ...)`` is
    ``step_beam_search_many(model, [p], ...)[0]``.

    Returns:
        one ``{"response", "answer", "tokens", "finished"}`` per problem: the chosen response, its answer, the tokens
        generated (all sampled steps, kept or not, including tokens sampled after a step's ``|``) and how many
        responses finished.
    """
    _positive_int("beam_width", beam_width)
    _positive_int("expand", expand)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    problems = list(problems)
    if not problems:
        raise ValueError("problems must hold at least one problem")
    limit = [p.num_steps + 2 for p in problems] if max_rounds is None else \
        [_positive_int("max_rounds", max_rounds)] * len(problems)
    generator = torch.Generator().manual_seed(seed)
    prompts = [TOKENIZER.encode_prompt(prompt(p)) for p in problems]
    beams: list[list[str]] = [[""] for _ in problems]
    finished: list[list[str]] = [[] for _ in problems]
    tokens = [0] * len(problems)
    for round_ in range(max(limit)):
        # 1. extend: every (problem, prefix) of the same length in one batch of `expand` rows each
        jobs: dict[int, list[tuple[int, str, list[int]]]] = {}
        for i, beam in enumerate(beams):
            if round_ < limit[i]:
                for prefix in beam:
                    ids = prompts[i] + TOKENIZER.encode(prefix)
                    jobs.setdefault(len(ids), []).append((i, prefix, ids))
        if not jobs:
            break
        candidates: list[dict[str, None]] = [{} for _ in problems]
        for length, members in sorted(jobs.items()):
            room = model.config.block_size - length + 1
            if room <= 0:                        # a prefix that fills the context: nothing more to sample
                for i, prefix, _ in members:
                    candidates[i].setdefault(prefix)
                continue
            out = generate_batch(model, [ids for _, _, ids in members for _ in range(expand)], min(room, STEP_TOKENS),
                                 eos_id=TOKENIZER.eos_id, temperature=temperature, generator=generator)
            for j, row in enumerate(out):
                i, prefix, _ = members[j // expand]
                text = TOKENIZER.decode(row)
                if "|" in text:
                    text = text[:text.index("|") + 1]
                tokens[i] += len(row)         # every generated token counts, also those after the cut
                candidates[i].setdefault(prefix + text)
        # 2. sort the candidates: finished ones aside, the live ones scored all at once
        live: list[tuple[int, str]] = []
        for i, texts in enumerate(candidates):
            for text in texts:
                if text.endswith("|"):
                    live.append((i, text))
                elif text:                         # ended (answer segment, or cut off by the context)
                    finished[i].append(text)
        scores = _score_many(scorer, [problems[i] for i, _ in live], [t for _, t in live])
        ranked: list[list[tuple[float, int, str]]] = [[] for _ in problems]
        for k, ((i, text), s) in enumerate(zip(live, scores)):
            ranked[i].append((s, k, text))
        beams = [[t for _, _, t in sorted(r, key=lambda x: (-x[0], x[1]))[:beam_width]] for r in ranked]
    # 3. the answer of each problem: its best finished response
    flat = [(i, r) for i, rs in enumerate(finished) for r in rs]
    final = _score_many(scorer, [problems[i] for i, _ in flat], [r for _, r in flat])
    results = []
    for i, rs in enumerate(finished):
        if not rs:
            results.append({"response": "", "answer": None, "tokens": tokens[i], "finished": 0})
            continue
        mine = [s for (j, _), s in zip(flat, final) if j == i]
        best = rs[best_of_n(mine)]
        results.append({"response": best, "answer": extract_answer(best), "tokens": tokens[i], "finished": len(rs)})
    return results


def step_beam_search(model: GPT, problem: Problem, scorer: Scorer, beam_width: int = 2, expand: int = 2,
                     temperature: float = 1.0, seed: int = 0, max_rounds: int | None = None) -> dict:
    """Step-level beam search guided by a step scorer (a PRM), as in Snell et al. (2024), on one problem.

    Start from the empty response. Each round, every kept partial response (a prefix of whole steps) gets ``expand``
    sampled next steps; duplicates are merged; a candidate that ends the response (its answer segment and ``<eos>``)
    is *finished*; the others are scored with ``scorer(problem, prefix)`` and the ``beam_width`` best are kept. The
    search stops when no partial response is left or after ``max_rounds`` rounds (default ``problem.num_steps + 2``);
    the answer is the finished response with the highest ``scorer(problem, response)`` (ties: the first finished), or
    ``""`` if none finished. :func:`step_beam_search_many` runs it on many problems at once (faster).

    Returns:
        ``{"response", "answer", "tokens", "finished"}``: the chosen response, its answer, the tokens generated (all
        sampled steps, kept or not) and how many responses finished.
    """
    return step_beam_search_many(model, [problem], scorer, beam_width, expand, temperature, seed, max_rounds)[0]


# ------------------------------------------------------------------------------------------------ judging the judges
def pairwise_accuracy(scores: Sequence[Sequence[float]], correct: Sequence[Sequence[bool]]) -> float | None:
    """How often a scorer ranks a right response above a wrong one to the *same* problem (ties count 1/2).

    ``P = mean over problems p and pairs (i right, j wrong) of [s_pi > s_pj] + 1/2 [s_pi = s_pj]``, i.e. the AUC
    within each problem, pooled over pairs. This is what best-of-N needs; an AUC over all responses of all problems
    also rewards a scorer that only knows which *problems* are hard. ``None`` if no problem has both a right and a
    wrong response.
    """
    if len(scores) != len(correct):
        raise ValueError(f"scores and correct must have one entry per problem, got {len(scores)} and {len(correct)}")
    good = pairs = 0.0
    for p, (s, c) in enumerate(zip(scores, correct)):
        if len(s) != len(c):
            raise ValueError(f"problem {p}: scores and correct must have the same length, got {len(s)} and {len(c)}")
        right = [float(v) for v, ok in zip(s, c) if ok]
        wrong = [float(v) for v, ok in zip(s, c) if not ok]
        for r in right:
            for w in wrong:
                good += (r > w) + 0.5 * (r == w)
        pairs += len(right) * len(wrong)
    return good / pairs if pairs else None


def prm_scorer(prm_model: torch.nn.Module, aggregate: str = "min") -> Scorer:
    """A step scorer for :func:`step_beam_search` from a reward model of :mod:`aiterms.prm` (a :class:`~aiterms.prm.StepVerifier`).

    A prefix of whole steps (``"7+5+0=12|"``) scores its steps (read at each ``|``; the empty segment after the last
    ``|`` is not a step and is dropped); a complete response scores its steps and its answer segment. The scores are
    aggregated with :func:`aiterms.prm.aggregate_step_scores` (``"min"``, ``"prod"`` or ``"last"``). The scorer also
    has a batched form, ``score.many(problems, texts) -> list[float]``: the same scores, one forward pass per batch.
    """
    from aiterms import prm

    if aggregate not in prm.AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {prm.AGGREGATIONS}, got {aggregate!r}")

    def many(problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        out = []
        for text, s in zip(texts, prm.step_scores(prm_model, problems, texts)):
            if text.endswith("|"):
                s = s[:-1]
            out.append(prm.aggregate_step_scores(s, aggregate) if s else 0.5)
        return out

    def score(problem: Problem, text: str) -> float:
        return many([problem], [text])[0]

    score.many = many
    return score
