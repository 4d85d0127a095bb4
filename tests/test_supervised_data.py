"""aiterms.supervised_data: the messy collection, each processing stage, and the pipeline, against the ground truth
(the kind of every collected line) and slow obvious implementations."""
from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from aiterms.arithmetic import Problem, extract_answer, parse_prompt, sample_problems
from aiterms.supervised_data import (KINDS, REPORT_KEYS, ParsedLine, ProcessedData, collect, collect_with_kinds,
                                     decontaminate, deduplicate, naive_pairs, normalise_key, parse_line, parse_lines,
                                     process, split, to_pairs, verify)
from aiterms.tokenizer import TOKENIZER

OPS = ("+", "-")
TEST = sample_problems(60, 2, seed=101, ops=OPS) + sample_problems(60, 3, seed=102, ops=OPS)


def same_problem(p: Problem, q: Problem) -> bool:
    """The obvious definition: same operation and operands, or swapped operands of an addition."""
    return p.op == q.op and ((p.a, p.b) == (q.a, q.b) or (p.op == "+" and (p.a, p.b) == (q.b, q.a)))


def dedup_slow(problems):
    """Keep a problem unless an earlier one is the same problem (pairwise comparison)."""
    return [p for i, p in enumerate(problems) if not any(same_problem(p, q) for q in problems[:i])]


@pytest.fixture(scope="module")
def corpus():
    return collect_with_kinds(3000, (1, 2, 3), seed=0, ops=OPS, test_problems=TEST)


# ---------------------------------------------------------------- collect
def test_collect_deterministic_and_seed_dependent():
    a = collect(500, (1, 2, 3), seed=3, test_problems=TEST)
    assert a == collect(500, (1, 2, 3), seed=3, test_problems=TEST)
    assert a != collect(500, (1, 2, 3), seed=4, test_problems=TEST)
    assert len(a) == 500 and all(isinstance(line, str) for line in a)
    assert collect(0, 2, seed=0) == []
    assert [line for line, _ in collect_with_kinds(500, (1, 2, 3), 3, test_problems=TEST)] == a


def test_collect_kinds_have_the_configured_counts():
    n = 2000
    rates = dict(malformed_rate=0.07, wrong_rate=0.06, leak_rate=0.03, dup_rate=0.1, near_dup_rate=0.05)
    lines = collect_with_kinds(n, 3, seed=1, test_problems=TEST, noise_rate=0.2, **rates)
    counts = Counter(kind for _, kind in lines)
    assert set(counts) <= set(KINDS)
    for kind, rate in (("malformed", 0.07), ("wrong", 0.06), ("leak", 0.03), ("duplicate", 0.1),
                       ("near_duplicate", 0.05)):
        assert abs(counts[kind] - rate * n) <= 1, kind
    n_clean = counts["clean"] + counts["noisy"]
    assert n_clean == n - sum(round(r * n) for r in rates.values())
    assert abs(counts["noisy"] - 0.2 * n_clean) <= 1
    # no test problems: nothing leaks
    assert "leak" not in Counter(kind for _, kind in collect_with_kinds(300, 2, seed=0, leak_rate=0.5))


def test_every_kind_of_mess_is_what_it_claims(corpus):
    """Classify each line independently of collect (parse, check the answer, look up keys) and compare."""
    test_keys = {normalise_key(t) for t in TEST}
    canonical = lambda p: f"{p.problem.a}{p.problem.op}{p.problem.b}={p.claimed}"
    seen_originals = {line for line, kind in corpus if kind in ("clean", "noisy")}
    original_keys = Counter(normalise_key(parse_line(line).problem) for line in seen_originals)
    for line, kind in corpus:
        parsed = parse_line(line)
        if kind == "malformed":
            assert parsed is None, line
            continue
        assert parsed is not None, (line, kind)
        assert parsed.is_correct == (kind != "wrong"), (line, kind)
        assert (normalise_key(parsed.problem) in test_keys) == (kind == "leak"), (line, kind)
        if kind == "clean":
            assert line == canonical(parsed)
        if kind == "noisy":                         # spaces or zeros, or an addition written commuted
            assert line != canonical(parsed) or parsed.problem.op == "+"
        if kind == "near_duplicate":                # another form of a collected problem
            assert normalise_key(parsed.problem) in original_keys
            assert any(other != line and normalise_key(parse_line(other).problem) == normalise_key(parsed.problem)
                       for other in seen_originals)
        if kind == "duplicate":
            assert line in seen_originals


def test_collect_shows_every_surface_form(corpus):
    lines = [line for line, _ in corpus]
    malformed = [line for line, kind in corpus if kind == "malformed"]
    assert any(line == "" for line in malformed) and any(line.isalpha() or " " in line.strip() for line in malformed)
    assert any(line.endswith("=") for line in malformed)                        # missing answer
    assert any("+=" in line or "-=" in line for line in malformed)              # missing operand
    assert any(ch in "xXoOlI?#.,;" for line in malformed for ch in line)        # garbage characters
    assert any(line.count("=") > 1 or "++" in line or "--" in line for line in malformed)
    varied = [line for line, kind in corpus if kind in ("near_duplicate", "noisy", "leak")]
    assert any(" " in line for line in varied)
    assert any(part.startswith("0") and len(part) > 1
               for line in varied for part in line.replace("+", "=").replace("-", "=").replace(" ", "").split("="))
    # commuted additions of test problems leak in
    commuted = [line for line, kind in corpus if kind == "leak" and (p := parse_line(line)).problem.op == "+"
                and any(t.op == "+" and t.a != t.b and (t.b, t.a) == (p.problem.a, p.problem.b) for t in TEST)]
    leaks = collect_with_kinds(400, 2, seed=2, test_problems=TEST, leak_rate=0.5)
    commuted += [line for line, kind in leaks if kind == "leak" and (p := parse_line(line)).problem.op == "+"
                 and any(t.op == "+" and t.a != t.b and (t.b, t.a) == (p.problem.a, p.problem.b) for t in TEST)]
    assert commuted
    # exact duplicates are in the plain lines too
    assert len(set(lines)) < len(lines)


def test_collect_respects_digits_and_ops():
    for line in collect(300, (1, 3), seed=5, ops=("-",), malformed_rate=0, wrong_rate=0):
        p = parse_line(line).problem
        assert p.op == "-" and max(len(str(p.a)), len(str(p.b))) in (1, 3)
        assert len(str(p.a)) in (1, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=-1), "n"), (dict(n=2.5), "n"), (dict(digits=0), "digits"), (dict(digits=(1, 7)), "digits"),
    (dict(digits=()), "digits"), (dict(seed="s"), "seed"), (dict(ops=("*",)), "ops"), (dict(ops=()), "ops"),
    (dict(leak_rate=-0.1), "leak_rate"), (dict(dup_rate=1.5), "dup_rate"), (dict(wrong_rate=2), "wrong_rate"),
    (dict(malformed_rate=-1), "malformed_rate"), (dict(near_dup_rate=1.01), "near_dup_rate"),
    (dict(noise_rate=-0.5), "noise_rate"), (dict(malformed_rate=0.6, wrong_rate=0.6), "<= 1"),
    (dict(test_problems=["47+85"]), "test_problems"),
])
def test_collect_bad_input(kwargs, match):
    args = dict(n=10, digits=2, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        collect(**args)


def test_collect_refuses_when_the_test_set_covers_everything():
    every_one_digit = [Problem(a, b, "+") for a in range(10) for b in range(10)]
    with pytest.raises(ValueError, match="test_problems"):
        collect(10, 1, seed=0, ops=("+",), test_problems=every_one_digit)


# ---------------------------------------------------------------- parse_line and verify
@pytest.mark.parametrize("line,expected", [
    ("47+85=132", (47, 85, "+", 132)),
    (" 47 + 85 = 132 ", (47, 85, "+", 132)),
    ("047+085=0132", (47, 85, "+", 132)),
    ("\t85-47=38\n", (85, 47, "-", 38)),
    ("47+85=133", (47, 85, "+", 133)),                     # parses; verify drops it
    ("0+0=0", (0, 0, "+", 0)), ("00-0=000", (0, 0, "-", 0)),
    ("47+85=13x", None), ("47+=132", None), ("+85=132", None), ("47+85=", None), ("", None), ("   ", None),
    ("lorem", None), ("47++85=132", None), ("47+85==132", None), ("47+85=132=132", None), ("47+8", None),
    ("47-85=-38", None), ("47-85=38", None), ("47*85=3995", None), ("47 plus 85 is 132", None),
    ("４7+85=132", None), ("-47+85=38", None),
])
def test_parse_line(line, expected):
    parsed = parse_line(line)
    if expected is None:
        assert parsed is None
    else:
        a, b, op, claimed = expected
        assert parsed == ParsedLine(Problem(a, b, op), claimed)


def test_parse_lines_and_verify_counts():
    kept, malformed = parse_lines(["1+2=3", "x", "1+2=4", "", "9-9=0"])
    assert malformed == 2 and [p.claimed for p in kept] == [3, 4, 0]
    right, wrong = verify(kept)
    assert wrong == 1 and right == [Problem(1, 2), Problem(9, 9, "-")]
    with pytest.raises(ValueError, match="line"):
        parse_line(47)
    with pytest.raises(ValueError, match="lines"):
        parse_lines("47+85=132")
    with pytest.raises(ValueError, match="parsed"):
        verify([Problem(1, 2)])


# ---------------------------------------------------------------- keys, dedup, decontamination
def test_normalise_key_matches_the_definition():
    problems = [Problem(a, b, op) for a in range(0, 12, 3) for b in range(0, 12, 4) for op in OPS
                if op == "+" or a >= b]
    for p, q in itertools.product(problems, repeat=2):
        assert (normalise_key(p) == normalise_key(q)) == same_problem(p, q), (p, q)
    assert normalise_key(parse_line(" 085+047=132").problem) == normalise_key(Problem(47, 85))
    with pytest.raises(ValueError, match="problem"):
        normalise_key("47+85")


def test_deduplicate_matches_pairwise_comparison():
    rng = random.Random(0)
    for trial in range(20):
        problems = [Problem(rng.randrange(6), rng.randrange(6), "+") for _ in range(15)]
        problems += [Problem(5, rng.randrange(6), "-") for _ in range(5)]
        rng.shuffle(problems)
        kept, dropped = deduplicate(problems)
        assert kept == dedup_slow(problems)
        assert dropped == len(problems) - len(kept)
    assert deduplicate([]) == ([], 0)


def test_decontaminate_matches_pairwise_comparison():
    rng = random.Random(1)
    problems = [Problem(rng.randrange(8), rng.randrange(8), "+") for _ in range(40)]
    tests = [Problem(3, 5), Problem(7, 7), Problem(6, 2, "-")]
    kept, dropped = decontaminate(problems, tests)
    assert kept == [p for p in problems if not any(same_problem(p, t) for t in tests)]
    assert dropped == len(problems) - len(kept) and dropped > 0
    assert decontaminate(problems, []) == (problems, 0)
    with pytest.raises(ValueError, match="test_problems"):
        decontaminate(problems, ["3+5"])


# ---------------------------------------------------------------- the pipeline
def test_process_by_hand():
    lines = [
        "47+85=132",        # kept
        " 47 + 85 = 132 ",  # duplicate (spaces)
        "85+47=132",        # duplicate (commuted)
        "047+85=0132",      # duplicate (leading zeros)
        "47+85=133",        # wrong
        "47+85=13x",        # malformed
        "47+=132",          # malformed
        "",                 # malformed
        "lorem",            # malformed
        "47+85=",           # malformed
        "47-85=38",         # malformed (a < b)
        "85-47=38",         # kept (another problem than 47+85)
        "12+3=15",          # contaminated (test has 3+12)
        "3+12=15",          # duplicate of 12+3
        "9-9=0",            # kept
        "09-9=0",           # duplicate
        "1+1=3",            # wrong, and before the right copy:
        "1+1=2",            # kept
    ]
    data = process(lines, [Problem(3, 12), Problem(50, 50, "-")], val_fraction=0.25, seed=0)
    assert isinstance(data, ProcessedData)
    assert list(data.report) == list(REPORT_KEYS)
    assert list(data.report.values()) == [18, 6, 2, 5, 1, 4, 3, 1]
    assert sorted(map(normalise_key, data.train + data.val)) == sorted(
        map(normalise_key, [Problem(47, 85), Problem(85, 47, "-"), Problem(9, 9, "-"), Problem(1, 1)]))
    table = data.table()
    assert table.splitlines()[0].split()[0] == "stage" and len(table.splitlines()) == 1 + len(REPORT_KEYS)
    assert "contaminated dropped" in table and "100.0%" in table


def test_process_removes_all_mess(corpus):
    lines = [line for line, _ in corpus]
    data = process(lines, TEST, val_fraction=0.2, seed=3)
    r = data.report
    assert r["raw lines"] == r["malformed dropped"] + r["wrong answers dropped"] + r["duplicates dropped"] + \
        r["contaminated dropped"] + r["kept"]
    assert r["kept"] == r["train"] + r["val"] == len(data.train) + len(data.val)
    kinds = Counter(kind for _, kind in corpus)
    assert r["malformed dropped"] == kinds["malformed"] and r["wrong answers dropped"] == kinds["wrong"]
    assert 0 < r["contaminated dropped"] <= kinds["leak"]
    kept = data.train + data.val
    # the ground truth: right answers only, no test problem in any form, each problem once
    assert all(isinstance(p, Problem) for p in kept)
    test_keys = {normalise_key(t) for t in TEST}
    assert not any(normalise_key(p) in test_keys for p in kept)
    assert not any(same_problem(p, t) for p in kept[:300] for t in TEST)      # slow check on a part
    assert len({normalise_key(p) for p in kept}) == len(kept)
    # every right, non-test problem of the corpus survives
    expected = {normalise_key(x.problem) for line in lines if (x := parse_line(line)) and x.is_correct} - test_keys
    assert {normalise_key(p) for p in kept} == expected
    assert process(lines, TEST, val_fraction=0.2, seed=3) == data


def test_process_bad_input():
    with pytest.raises(ValueError, match="raw_lines"):
        process("47+85=132")
    with pytest.raises(ValueError, match="raw_lines"):
        process(["47+85=132", None])
    with pytest.raises(ValueError, match="val_fraction"):
        process(["47+85=132"], val_fraction=1.5)
    with pytest.raises(ValueError, match="test_problems"):
        process(["47+85=132"], [(47, 85)])
    empty = process([])
    assert empty.train == empty.val == [] and all(v == 0 for v in empty.report.values())


# ---------------------------------------------------------------- split
@pytest.mark.parametrize("seed", range(6))
def test_split_has_no_key_in_two_parts(seed):
    rng = random.Random(seed)
    # not deduplicated on purpose: commuted and repeated forms must land together
    problems = [Problem(rng.randrange(12), rng.randrange(12), "+") for _ in range(150)]
    problems += [Problem(11, rng.randrange(12), "-") for _ in range(30)]
    parts = split(problems, (0.7, 0.2, 0.1), seed=seed)
    assert sorted(map(repr, itertools.chain(*parts))) == sorted(map(repr, problems))   # a partition
    for x, y in itertools.combinations(parts, 2):
        assert not any(same_problem(p, q) for p in x for q in y)
    train, val = split(problems, seed=seed)
    assert not {normalise_key(p) for p in train} & {normalise_key(p) for p in val}


@pytest.mark.parametrize("fractions", [(0.9, 0.1), (0.5, 0.5), (0.8, 0.1, 0.1), (1.0, 0.0), (0.0, 1.0),
                                       (0.33, 0.33, 0.34)])
def test_split_respects_fractions(fractions):
    problems, _ = deduplicate(sample_problems(503, 3, seed=7, ops=OPS))
    parts = split(problems, fractions, seed=1)
    assert len(parts) == len(fractions) and sum(map(len, parts)) == len(problems)
    for part, f in zip(parts, fractions):
        assert abs(len(part) - f * len(problems)) <= 1


def test_split_is_deterministic_and_order_independent():
    problems, _ = deduplicate(sample_problems(200, 2, seed=8, ops=OPS))
    assert split(problems, seed=4) == split(problems, seed=4)
    assert split(problems, seed=4) != split(problems, seed=5)
    shuffled = problems[:]
    random.Random(0).shuffle(shuffled)
    assert split(shuffled, seed=4) == split(problems, seed=4)   # depends on the set of keys only
    assert split([], seed=0) == ([], [])


@pytest.mark.parametrize("fractions", [(0.9, 0.2), (0.5,), (1.2, -0.2), (), "ab", (0.5, "0.5"), (True, False)])
def test_split_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split([Problem(1, 2)], fractions)


def test_split_bad_seed_and_problems():
    with pytest.raises(ValueError, match="seed"):
        split([Problem(1, 2)], seed=1.5)
    with pytest.raises(ValueError, match="problems"):
        split(["1+2"])


# ---------------------------------------------------------------- formatting and naive pairs
@pytest.mark.parametrize("fmt", ["direct", "cot"])
def test_to_pairs_encode_and_answer(fmt):
    problems = sample_problems(40, 1, seed=0, ops=OPS) + sample_problems(40, 3, seed=1, ops=OPS)
    pairs = to_pairs(problems, fmt)
    assert len(pairs) == len(problems)
    for p, (prompt_text, response_text) in zip(problems, pairs):
        TOKENIZER.encode(prompt_text)
        TOKENIZER.encode(response_text)
        assert parse_prompt(prompt_text) == p
        assert extract_answer(response_text) == p.answer
    assert to_pairs([Problem(47, 85)], fmt) == [("47+85=", "132" if fmt == "direct" else "7+5+0=12|4+8+1=13|=132")]


def test_to_pairs_bad_input():
    with pytest.raises(ValueError, match="fmt"):
        to_pairs([Problem(1, 2)], "steps")
    with pytest.raises(ValueError, match="problems"):
        to_pairs([(1, 2)])


def test_naive_pairs(corpus):
    lines = ["47+85=132", " 47 + 85 = 132 ", "47+85=133", "47+85=13x", "47+=132", "", "lorem", "47+85=",
             "47+85==132"]
    assert naive_pairs(lines) == [("47+85=", "132"), ("47 + 85 =", " 132"), ("47+85=", "133"), ("47+=", "132"),
                                  ("47+85=", ""), ("47+85=", "=132")]
    pairs = naive_pairs([line for line, _ in corpus])
    for prompt_text, response_text in pairs:                  # all trainable ...
        TOKENIZER.encode(prompt_text + response_text)
    clean = to_pairs(process([line for line, _ in corpus], TEST).train)
    assert len(pairs) > len(clean)                             # ... and much messier than the processed pairs
    assert any(extract_answer(r) != parse_line(p + r).problem.answer for p, r in pairs if parse_line(p + r))
    with pytest.raises(ValueError, match="raw_lines"):
        naive_pairs("47+85=132")
