"""Supervised training data for the arithmetic task: collected messy, processed into clean input/output pairs.

Supervised data is a list of input/output pairs, here ``("47+85=", "132")`` (direct) or ``("47+85=",
"7+5+0=12|4+8+1=13|=132")`` (step by step; formats in :mod:`aiterms.arithmetic`). Real corpora are not collected
that clean, so :func:`collect` imitates a scrape: lines like ``"47+85=132"``, mixed with

* exact duplicates (the same line again) and near-duplicates (the same problem written differently:
  ``" 47 + 85 = 132 "``, ``"047+85=0132"``, and for ``+`` the commuted ``"85+47=132"``);
* malformed lines (``"47+85=13x"``, ``"47+=132"``, ``"47+85="``, ``""``, ``"lorem ipsum"``, ...);
* wrong answers (``"47+85=133"``);
* leaked test problems (copies of held-out test problems, verbatim or in another surface form).

Processing is a chain of pure functions; each returns what it kept and how many items it dropped, so every stage
can be counted (:func:`process` runs them in this order and reports the counts)::

    raw lines --parse_lines--> ParsedLine --verify--> Problem --deduplicate--> --decontaminate--> --split--> train, val
              (drop malformed)           (drop wrong)        (one per key)    (drop test keys)           --to_pairs-->

Two problems are *the same* when :func:`normalise_key` gives the same key: surface forms are gone after parsing
(spaces, leading zeros), and ``a + b`` equals ``b + a``. Deduplication, decontamination and the split all use this
key, so no problem appears twice, none equals a test problem, and none is in both train and val — also not in
another surface form. The order matters: verifying before deduplicating keeps a right copy of a problem even when a
wrong copy came first.

:func:`naive_pairs` is what you would train on without processing, so that the cost of skipping it can be measured.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Sequence

from aiterms.arithmetic import MAX_DIGITS, OPS, Problem, prompt, response
from aiterms.tokenizer import CHARACTERS

#: The kinds of line :func:`collect_with_kinds` labels, in the order their counts are allocated.
KINDS: tuple[str, ...] = ("clean", "noisy", "duplicate", "near_duplicate", "wrong", "malformed", "leak")
#: The rows of :attr:`ProcessedData.report`, in order.
REPORT_KEYS: tuple[str, ...] = ("raw lines", "malformed dropped", "wrong answers dropped", "duplicates dropped",
                                "contaminated dropped", "kept", "train", "val")

_LINE = re.compile(r"([0-9]+)([+-])([0-9]+)=([0-9]+)")
_GARBAGE = "xXoOlI?#.,;|"                        # look-alikes and punctuation; "|" is even in the tokenizer
_TEXT = ("lorem ipsum", "lorem", "Exercise 3:", "answer:", "N/A", "<br>", "see below", "== Addition ==", "TODO",
         "plus", "Solutions")
_MAX_TRIES = 10_000


# ---------------------------------------------------------------- argument checks
def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_int(name: str, value: int, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return int(seed)


def _check_items(name: str, items: Sequence, kind: type) -> list:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a sequence (list or tuple) of {kind.__name__}, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise ValueError(f"{name}[{i}] must be a {kind.__name__}, got {type(item).__name__}")
    return list(items)


def _check_digits(digits: int | Sequence[int]) -> tuple[int, ...]:
    sizes = (digits,) if isinstance(digits, Integral) else digits
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes or any(
            isinstance(d, bool) or not isinstance(d, Integral) or not 1 <= d <= MAX_DIGITS for d in sizes):
        raise ValueError(f"digits must be an integer in 1..{MAX_DIGITS} or a non-empty sequence of them, "
                         f"got {digits!r}")
    return tuple(int(d) for d in sizes)


def _check_ops(ops: Sequence[str]) -> tuple[str, ...]:
    ops = tuple(ops) if isinstance(ops, (str, Sequence)) else ()
    if not ops or any(op not in OPS for op in ops):
        raise ValueError(f"ops must be a non-empty sequence of operations from {OPS}, got {ops!r}")
    return ops


# ---------------------------------------------------------------- collection
def _draw(rng: random.Random, sizes: tuple[int, ...], ops: tuple[str, ...]) -> Problem:
    """One problem as :func:`aiterms.arithmetic.sample_problems` draws it, with the digit count drawn from ``sizes``."""
    d = rng.choice(sizes)
    op = rng.choice(ops)
    low, high = (0 if d == 1 else 10 ** (d - 1)), 10 ** d
    a, b = rng.randrange(low, high), rng.randrange(low, high)
    if op == "-" and a < b:
        a, b = b, a
    return Problem(a, b, op)


def _draw_fresh(rng: random.Random, sizes: tuple[int, ...], ops: tuple[str, ...], banned: set) -> Problem:
    """A problem whose key is not in ``banned`` (the test set's keys), by rejection."""
    for _ in range(_MAX_TRIES):
        p = _draw(rng, sizes, ops)
        if normalise_key(p) not in banned:
            return p
    raise ValueError(f"test_problems cover (almost) every problem with digits {sizes} and ops {ops}: "
                     f"nothing left to collect")


def _canonical(p: Problem, answer: int | None = None) -> str:
    return f"{p.a}{p.op}{p.b}={p.answer if answer is None else answer}"


def _variant(p: Problem, rng: random.Random) -> str:
    """The (right) line of ``p`` in another surface form: some of spaces, leading zeros, and (``+``) commuted.

    Always differs from the canonical line ``_canonical(p)``.
    """
    transforms = ["spaces", "zeros"] + (["commute"] if p.op == "+" and p.a != p.b else [])
    chosen: list[str] = []
    while not chosen:
        chosen = [t for t in transforms if rng.random() < 0.5]
    a, b, c = str(p.a), str(p.b), str(p.answer)
    if "commute" in chosen:
        a, b = b, a
    if "zeros" in chosen:
        parts = [a, b, c]
        for i in rng.sample(range(3), rng.randint(1, 3)):
            parts[i] = "0" * rng.randint(1, 2) + parts[i]
        a, b, c = parts
    if "spaces" in chosen:
        pattern = rng.choice(["{a} {op} {b} = {c}", " {a}{op}{b}={c} ", " {a} {op} {b} = {c} ", "{a}{op}{b} = {c}",
                              "{a} {op} {b}={c}", "{a}{op}{b}={c}  "])
        return pattern.format(a=a, op=p.op, b=b, c=c)
    return f"{a}{p.op}{b}={c}"


def _wrong_answer(answer: int, rng: random.Random) -> int:
    """A plausible wrong answer: off by one, or by a carry (10, 100, ...)."""
    delta = 10 ** rng.randrange(len(str(answer)) + 1) * rng.choice((-1, 1))
    return answer + delta if answer + delta >= 0 else answer - delta


def _malformed(p: Problem, rng: random.Random) -> str:
    """A line :func:`parse_line` rejects, made from ``p``'s line in one of several ways."""
    line = _canonical(p)
    eq = line.index("=")
    kind = rng.randrange(8)
    if kind == 0:       # a garbage character instead of a digit, mostly in the answer: "47+85=13x"
        digits = [i for i, ch in enumerate(line) if ch.isdigit()]
        i = digits[-1] if rng.random() < 0.5 else rng.choice(digits)
        return line[:i] + rng.choice(_GARBAGE) + line[i + 1:]
    if kind == 1:       # a missing operand: "47+=132", "+85=132"
        op_at = line.index(p.op)
        return line[:op_at + 1] + line[eq:] if rng.random() < 0.5 else line[op_at:]
    if kind == 2:       # no answer: "47+85="
        return line[:eq + 1]
    if kind == 3:       # an empty or blank line
        return rng.choice(["", " ", "  ", "\t"])
    if kind == 4:       # text
        return rng.choice(_TEXT)
    if kind == 5:       # doubled symbols: "47++85=132", "47+85==132", "47+85=132=132"
        return rng.choice([line.replace(p.op, p.op * 2, 1), line.replace("=", "==", 1), line + line[eq:]])
    if kind == 6:       # cut off before the "=": "47+8"
        return line[:rng.randint(1, eq)]
    return f"{p.a} {'plus' if p.op == '+' else 'minus'} {p.b} is {p.answer}"   # words


def _allocate(n: int, rates: Sequence[float]) -> list[int]:
    """Counts ``c_k`` with ``sum_{j<=k} c_j = round(n * sum_{j<=k} rate_j)`` (cumulative rounding: never exceeds n)."""
    counts, total, done = [], 0.0, 0
    for rate in rates:
        total += rate
        upto = min(n, math.floor(n * total + 0.5))
        counts.append(upto - done)
        done = upto
    return counts


def collect_with_kinds(n: int, digits: int | Sequence[int], seed: int, ops: Sequence[str] = ("+", "-"),
                       test_problems: Sequence[Problem] = (), leak_rate: float = 0.02, dup_rate: float = 0.08,
                       near_dup_rate: float = 0.04, wrong_rate: float = 0.05, malformed_rate: float = 0.05,
                       noise_rate: float = 0.05) -> list[tuple[str, str]]:
    """:func:`collect`, with each line's kind (one of :data:`KINDS`): ``[(line, kind), ...]``.

    The ground truth of the mess, for tests and for the chapter's tables.
    """
    n = _check_int("n", n)
    sizes, ops, seed = _check_digits(digits), _check_ops(ops), _check_seed(seed)
    tests = _check_items("test_problems", test_problems, Problem)
    rates = {name: _check_rate(name, value) for name, value in (
        ("malformed_rate", malformed_rate), ("wrong_rate", wrong_rate), ("leak_rate", leak_rate),
        ("dup_rate", dup_rate), ("near_dup_rate", near_dup_rate))}
    noise_rate = _check_rate("noise_rate", noise_rate)
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(f"malformed_rate + wrong_rate + leak_rate + dup_rate + near_dup_rate must be <= 1, got "
                         f"{sum(rates.values()):.4g}")
    if not tests:
        rates["leak_rate"] = 0.0                            # nothing can leak without a test set
    n_malformed, n_wrong, n_leak, n_dup, n_near = _allocate(n, list(rates.values()))
    n_clean = n - (n_malformed + n_wrong + n_leak + n_dup + n_near)
    if n_clean == 0 and n_dup + n_near > 0:                 # a duplicate needs an original
        n_clean = 1
        n_dup, n_near = (n_dup - 1, n_near) if n_dup > 0 else (n_dup, n_near - 1)

    rng = random.Random(seed)
    banned = {normalise_key(t) for t in tests}
    originals = [_draw_fresh(rng, sizes, ops, banned) for _ in range(n_clean)]
    noisy = set(rng.sample(range(n_clean), round(noise_rate * n_clean)))
    lines = [(_variant(p, rng), "noisy") if i in noisy else (_canonical(p), "clean")
             for i, p in enumerate(originals)]
    sources = [line for line, _ in lines]
    for _ in range(n_dup):
        lines.append((rng.choice(sources), "duplicate"))
    for _ in range(n_near):
        i = rng.randrange(n_clean)
        near = _variant(originals[i], rng)
        lines.append((near if near != sources[i] else _canonical(originals[i]), "near_duplicate"))
    for _ in range(n_wrong):
        p = _draw_fresh(rng, sizes, ops, banned)
        lines.append((_canonical(p, _wrong_answer(p.answer, rng)), "wrong"))
    for _ in range(n_malformed):
        lines.append((_malformed(_draw_fresh(rng, sizes, ops, banned), rng), "malformed"))
    for _ in range(n_leak):
        t = rng.choice(tests)
        lines.append((_variant(t, rng) if rng.random() < 0.5 else _canonical(t), "leak"))
    rng.shuffle(lines)
    return lines


def collect(n: int, digits: int | Sequence[int], seed: int, ops: Sequence[str] = ("+", "-"),
            test_problems: Sequence[Problem] = (), leak_rate: float = 0.02, dup_rate: float = 0.08,
            near_dup_rate: float = 0.04, wrong_rate: float = 0.05, malformed_rate: float = 0.05,
            noise_rate: float = 0.05) -> list[str]:
    """A "scraped" raw corpus of ``n`` lines like ``"47+85=132"``, deliberately messy.

    Line kinds and their default shares of the ``n`` lines (exact counts: cumulative rounding of ``rate * n``, in
    the order below; the rest are clean lines):

    ==================  =======  ===================================================================================
    kind                default  what
    ==================  =======  ===================================================================================
    malformed           5 %      ``"47+85=13x"``, ``"47+=132"``, ``"47+85="``, ``""``, ``"lorem"``, ``"47++85=132"``,
                                 ``"47+8"``, ``"47 plus 85 is 132"``: :func:`parse_line` rejects every one
    wrong               5 %      a right line with the answer off by 1, 10, 100, ...: ``"47+85=133"``
    leak                2 %      a copy of one of ``test_problems`` with its right answer; half verbatim, half in
                                 another surface form (spaces, leading zeros, commuted ``"85+47=132"`` for ``+``);
                                 none when ``test_problems`` is empty
    duplicate           8 %      an exact copy of a clean line
    near_duplicate      4 %      a clean line's problem in another surface form: ``" 47 + 85 = 132 "``,
                                 ``"047+85=0132"``, ``"85+47=132"``
    clean               rest     a fresh problem, right answer; a ``noise_rate`` share of them (5 %) in a
                                 non-canonical surface form (kind ``"noisy"``), the rest canonical
    ==================  =======  ===================================================================================

    Fresh problems (clean, wrong, malformed) are drawn like :func:`aiterms.arithmetic.sample_problems`, each with a
    digit count drawn uniformly from ``digits``, and never equal a test problem (under :func:`normalise_key`), so
    every contaminated line is a leak. Problems of few digits also repeat by chance (there are only 110 one-digit
    problems), on top of the injected duplicates. Lines are shuffled. Deterministic for a seed
    (``random.Random(seed)``).

    Args:
        n: number of lines (>= 0).
        digits: operand size, an int in ``1..6``, or a sequence of them for a mix of sizes.
        seed: random seed.
        ops: operations to draw from (``"+"``, ``"-"``).
        test_problems: held-out problems, some of which leak in.
        leak_rate, dup_rate, near_dup_rate, wrong_rate, malformed_rate: shares of ``n``, each in ``[0, 1]``,
            together at most 1.
        noise_rate: share of the clean lines written in another surface form, in ``[0, 1]``.
    Raises:
        ValueError: naming the argument: negative ``n``, bad ``digits``/``ops``/``seed``, a rate outside
            ``[0, 1]`` or rates summing above 1, ``test_problems`` not Problems.
    """
    return [line for line, _ in collect_with_kinds(
        n, digits, seed, ops, test_problems, leak_rate=leak_rate, dup_rate=dup_rate, near_dup_rate=near_dup_rate,
        wrong_rate=wrong_rate, malformed_rate=malformed_rate, noise_rate=noise_rate)]


# ---------------------------------------------------------------- processing
@dataclass(frozen=True)
class ParsedLine:
    """A line that parses: a :class:`~aiterms.arithmetic.Problem` and the answer the line claims (right or not)."""

    problem: Problem
    claimed: int

    @property
    def is_correct(self) -> bool:
        """Whether the claimed answer is the problem's answer."""
        return self.claimed == self.problem.answer


def parse_line(line: str) -> ParsedLine | None:
    """Normalise one raw line and parse it strictly; ``None`` if it is malformed.

    Normalisation: remove all whitespace (which also strips the ends), then read the numbers as integers, which
    drops leading zeros. The rest must be exactly ``<digits><op><digits>=<digits>`` with ``op`` in ``+ -``, and a
    subtraction must have ``a >= b`` (the task has no negative results). ``" 047 + 85 = 0132 "`` -> ``47+85``,
    claimed 132; ``"47+85=13x"``, ``"47+=132"``, ``"47+85="``, ``""``, ``"47-85=38"`` -> ``None``.

    Raises:
        ValueError: if ``line`` is not a str.
    """
    if not isinstance(line, str):
        raise ValueError(f"line must be a str, got {type(line).__name__}")
    m = _LINE.fullmatch("".join(line.split()))
    if m is None:
        return None
    a, op, b, claimed = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    if op == "-" and a < b:
        return None
    return ParsedLine(Problem(a, b, op), claimed)


def parse_lines(lines: Sequence[str]) -> tuple[list[ParsedLine], int]:
    """:func:`parse_line` on every line: ``(parsed lines, in order; number of malformed lines dropped)``."""
    lines = _check_items("lines", lines, str)
    parsed = [parse_line(line) for line in lines]
    kept = [p for p in parsed if p is not None]
    return kept, len(lines) - len(kept)


def verify(parsed: Sequence[ParsedLine]) -> tuple[list[Problem], int]:
    """Keep the problems whose claimed answer is right: ``(problems, in order; number of wrong answers dropped)``.

    The task's answers are checkable, so a wrong label is not noise to average out but an error to remove.
    """
    parsed = _check_items("parsed", parsed, ParsedLine)
    kept = [p.problem for p in parsed if p.is_correct]
    return kept, len(parsed) - len(kept)


def normalise_key(problem: Problem) -> tuple[str, int, int]:
    """The key under which two forms of one problem are equal: ``(op, a, b)``, with ``a <= b`` for ``+``.

    Surface forms (spaces, leading zeros) are already gone in a :class:`~aiterms.arithmetic.Problem`; addition
    commutes, so ``47+85`` and ``85+47`` both give ``("+", 47, 85)``. Subtraction does not: ``85-47`` is
    ``("-", 85, 47)``.

    Raises:
        ValueError: if ``problem`` is not a Problem.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be an aiterms.arithmetic.Problem, got {type(problem).__name__}")
    if problem.op == "+":
        return ("+", min(problem.a, problem.b), max(problem.a, problem.b))
    return ("-", problem.a, problem.b)


def deduplicate(problems: Sequence[Problem]) -> tuple[list[Problem], int]:
    """Keep the first problem of each :func:`normalise_key`: ``(problems, in order; number of duplicates dropped)``."""
    problems = _check_items("problems", problems, Problem)
    seen, kept = set(), []
    for p in problems:
        key = normalise_key(p)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept, len(problems) - len(kept)


def decontaminate(problems: Sequence[Problem], test_problems: Sequence[Problem]) -> tuple[list[Problem], int]:
    """Drop every problem whose :func:`normalise_key` is a test problem's key.

    Returns ``(problems, in order; number dropped)``. Comparing keys, not strings, also catches a test problem
    written with spaces, leading zeros or (for ``+``) the operands swapped.
    """
    problems = _check_items("problems", problems, Problem)
    banned = {normalise_key(t) for t in _check_items("test_problems", test_problems, Problem)}
    kept = [p for p in problems if normalise_key(p) not in banned]
    return kept, len(problems) - len(kept)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or not fractions or any(
            isinstance(f, bool) or not isinstance(f, Real) or not 0.0 <= f <= 1.0 for f in fractions):
        raise ValueError(f"fractions must be a non-empty sequence of numbers in [0, 1], got {fractions!r}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {sum(fractions):.6g})")
    return tuple(float(f) for f in fractions)


def split(problems: Sequence[Problem], fractions: Sequence[float] = (0.9, 0.1), seed: int = 0
          ) -> tuple[list[Problem], ...]:
    """Split problems into ``len(fractions)`` parts (train, val, ...) with no :func:`normalise_key` in two parts.

    The distinct keys are sorted, shuffled with ``random.Random(seed)`` and cut at ``round(K * (f_0 + ... + f_j))``
    (K = number of distinct keys), so part ``j`` gets ``f_j`` of the keys up to rounding (after
    :func:`deduplicate`, of the problems). All problems of one key go to the same part: splitting per line instead
    would put ``47+85`` in train and ``85+47`` in val, a leak. A part lists its problems by shuffled key, problems of
    one key in input order. Which part a key lands in depends only on the set of keys and the seed.

    Raises:
        ValueError: ``fractions`` not in ``[0, 1]`` or not summing to 1, ``problems`` not Problems, bad ``seed``.
    """
    problems = _check_items("problems", problems, Problem)
    fractions, seed = _check_fractions(fractions), _check_seed(seed)
    groups: dict[tuple, list[Problem]] = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    cuts = [0] + _cumulative_cuts(len(keys), fractions)
    return tuple([p for key in keys[lo:hi] for p in groups[key]] for lo, hi in zip(cuts, cuts[1:]))


def _cumulative_cuts(k: int, fractions: tuple[float, ...]) -> list[int]:
    cuts, total = [], 0.0
    for f in fractions[:-1]:
        total += f
        cuts.append(min(k, math.floor(k * total + 0.5)))
    return cuts + [k]


def to_pairs(problems: Sequence[Problem], fmt: str = "direct") -> list[tuple[str, str]]:
    """``(prompt, response)`` pairs: ``("47+85=", "132")`` (``fmt="direct"``) or ``("47+85=",
    "7+5+0=12|4+8+1=13|=132")`` (``fmt="cot"``), by :func:`aiterms.arithmetic.prompt` and ``response``.

    Raises:
        ValueError: unknown ``fmt``, ``problems`` not Problems.
    """
    if fmt not in ("direct", "cot"):
        raise ValueError(f"fmt must be 'direct' or 'cot', got {fmt!r}")
    return [(prompt(p), response(p, fmt)) for p in _check_items("problems", problems, Problem)]


@dataclass
class ProcessedData:
    """The result of :func:`process`: clean ``train`` and ``val`` problems and the per-stage ``report``.

    ``report`` maps each of :data:`REPORT_KEYS` to a count, in that order; the counts add up:
    ``raw lines = malformed + wrong + duplicates + contaminated dropped + kept`` and ``kept = train + val``.
    """

    train: list[Problem]
    val: list[Problem]
    report: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """The report as a plain-text table: stage, count, share of the raw lines."""
        raw = self.report.get("raw lines", 0)
        rows = [f"{'stage':<22} {'count':>7} {'% of raw':>9}"]
        for key, count in self.report.items():
            share = f"{100 * count / raw:.1f}%" if raw else "-"
            rows.append(f"{key:<22} {count:>7} {share:>9}")
        return "\n".join(rows)


def process(raw_lines: Sequence[str], test_problems: Sequence[Problem] = (), val_fraction: float = 0.1,
            seed: int = 0) -> ProcessedData:
    """Run the whole processing: parse, verify, deduplicate, decontaminate, split (see the module docstring).

    Args:
        raw_lines: the collected corpus (e.g. from :func:`collect`).
        test_problems: held-out problems; no kept problem equals one of them under :func:`normalise_key`.
        val_fraction: share of the kept problems in ``val`` (:func:`split` with ``(1 - val_fraction,
            val_fraction)``).
        seed: seed of the split.
    Raises:
        ValueError: naming the argument, as the stages do.
    """
    val_fraction = _check_rate("val_fraction", val_fraction)
    parsed, malformed = parse_lines(_check_items("raw_lines", raw_lines, str))
    right, wrong = verify(parsed)
    unique, duplicates = deduplicate(right)
    clean, contaminated = decontaminate(unique, test_problems)
    train, val = split(clean, (1.0 - val_fraction, val_fraction), seed)
    report = dict(zip(REPORT_KEYS, (len(raw_lines), malformed, wrong, duplicates, contaminated, len(clean),
                                    len(train), len(val))))
    return ProcessedData(train, val, report)


def naive_pairs(raw_lines: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs you would train on without processing: each stripped line split after its first ``"="``.

    ``" 47 + 85 = 132 "`` -> ``("47 + 85 =", " 132")``. Only lines the model cannot be trained on at all are
    skipped: lines without ``"="`` (no prompt/response boundary) and lines with a character outside the tokenizer's
    vocabulary (:data:`aiterms.tokenizer.CHARACTERS`). Everything else stays: wrong answers, duplicates, spaces,
    leading zeros, ``"47+=132"``, ``"47+85="`` and leaked test problems.
    """
    pairs = []
    for line in _check_items("raw_lines", raw_lines, str):
        text = line.strip()
        if "=" in text and all(ch in CHARACTERS for ch in text):
            eq = text.index("=")
            pairs.append((text[:eq + 1], text[eq + 1:]))
    return pairs
