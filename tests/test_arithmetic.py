"""aiterms.arithmetic: problem generation, the two formats, step verification, answer extraction, rewards."""
from __future__ import annotations

import pytest

from aiterms.arithmetic import (MAX_DIGITS, Problem, Step, correctness_reward, cot_response, direct_response,
                                extract_answer, format_reward, gold_steps, is_well_formed, parse_prompt, parse_step,
                                parse_steps, prompt, response, reward, sample_problems, split_response, verify_steps)
from aiterms.tokenizer import TOKENIZER


# ---------------------------------------------------------------- exact small cases
def test_formats_by_hand():
    p = Problem(47, 85)
    assert prompt(p) == "47+85=" and direct_response(p) == "132"
    assert cot_response(p) == "7+5+0=12|4+8+1=13|=132"
    q = Problem(85, 47, "-")
    assert prompt(q) == "85-47=" and direct_response(q) == "38"
    assert cot_response(q) == "15-7-0=8|8-4-1=3|=38"
    assert response(p, "direct") == "132" and response(q, "cot") == cot_response(q)


@pytest.mark.parametrize("a,b,op,expected", [
    (0, 0, "+", "0+0+0=0|=0"),
    (5, 5, "+", "5+5+0=10|=10"),
    (347, 5, "+", "7+5+0=12|4+0+1=5|3+0+0=3|=352"),
    (5, 347, "+", "5+7+0=12|0+4+1=5|0+3+0=3|=352"),
    (999, 1, "+", "9+1+0=10|9+0+1=10|9+0+1=10|=1000"),
    (100, 1, "-", "10-1-0=9|10-0-1=9|1-0-1=0|=99"),
    (85, 80, "-", "5-0-0=5|8-8-0=0|=5"),
    (7, 7, "-", "7-7-0=0|=0"),
    (1000, 999, "-", "10-9-0=1|10-9-1=0|10-9-1=0|1-0-1=0|=1"),
])
def test_cot_edge_cases(a, b, op, expected):
    p = Problem(a, b, op)
    assert cot_response(p) == expected
    assert all(verify_steps(p, expected)) and len(verify_steps(p, expected)) == p.num_steps
    assert extract_answer(expected) == p.answer
    assert is_well_formed(expected, "cot")


def test_gold_steps_fields():
    assert gold_steps(Problem(47, 85)) == [Step("+", 7, 5, 0, 1, 2), Step("+", 4, 8, 1, 1, 3)]
    assert gold_steps(Problem(85, 47, "-")) == [Step("-", 5, 7, 0, 1, 8), Step("-", 8, 4, 1, 0, 3)]


def test_parse_step_round_trip_over_every_step():
    """Every syntactically possible step parses back to its own text; is_true is the equation."""
    for op in "+-":
        for x in range(10):
            for y in range(10):
                for c in (0, 1):
                    for c_out in (0, 1):
                        for d in range(10):
                            step = Step(op, x, y, c, c_out, d)
                            assert parse_step(step.text) == step
                            value = x + y + c == 10 * c_out + d if op == "+" else 10 * c_out + x - y - c == d
                            assert step.is_true == value
    assert parse_step("7+5+0=3").is_true is False


@pytest.mark.parametrize("text", ["", "7+5=12", "7+5+2=14", "7+5+0=20", "7+5+0=012", "17+5+0=22", "7+5+0=12,c1",
                                  "5-7-0=-2", "15-7-0=08", "25-7-0=18", "7*5+0=35", " 7+5+0=12", "=132"])
def test_parse_step_rejects_non_steps(text):
    with pytest.raises(ValueError, match="step"):
        parse_step(text)


def test_split_and_parse_steps():
    assert split_response("7+5+0=12|4+8+1=13|=132") == (["7+5+0=12", "4+8+1=13"], "=132")
    assert split_response("7+5+0=12|4+8") == (["7+5+0=12", "4+8"], None)
    assert parse_steps("7+5+0=12|4+8+1=13|=132") == gold_steps(Problem(47, 85))
    with pytest.raises(ValueError, match=r"step 1 \('4\+8'\)"):
        parse_steps("7+5+0=12|4+8")


# ---------------------------------------------------------------- thousands of random problems
@pytest.mark.parametrize("digits", range(1, MAX_DIGITS + 1))
def test_every_generated_cot_response_verifies(digits):
    for p in sample_problems(500, digits, seed=digits, ops=("+", "-")):
        r = cot_response(p)
        checks = verify_steps(p, r)
        assert all(checks) and len(checks) == p.num_steps == digits, (p, r)
        assert extract_answer(r) == p.answer and extract_answer(direct_response(p)) == p.answer
        assert is_well_formed(r, "cot") and is_well_formed(direct_response(p), "direct")
        assert reward(p, r, "cot") == 1.0 and reward(p, direct_response(p), "direct") == 1.0
        assert parse_prompt(prompt(p)) == p
        # the step-by-step answer is the written digits: last carry, then the digits from the left
        steps = parse_steps(r)
        written = "".join(str(s.digit) for s in reversed(steps))
        if p.op == "+":
            written = str(steps[-1].carry_out) + written
        assert int(written) == p.answer
        TOKENIZER.encode(prompt(p) + r)  # every format uses only the tokenizer's characters


def corrupt_digit(step_text: str, position: int) -> str:
    ch = step_text[position]
    return step_text[:position] + str((int(ch) + 1) % 10) + step_text[position + 1:]


def test_corrupted_steps_fail_at_the_right_step():
    for p in sample_problems(200, 4, seed=7, ops=("+", "-")):
        steps = [s.text for s in gold_steps(p)]
        answer = f"|={p.answer}"
        for k in range(len(steps)):
            for position, ch in enumerate(steps[k]):
                if not ch.isdigit():
                    continue
                bad = steps[:k] + [corrupt_digit(steps[k], position)] + steps[k + 1:]
                checks = verify_steps(p, "|".join(bad) + answer)
                assert checks[:k] == [True] * k and checks[k] is False, (p, bad)
                assert checks[k + 1:] == [True] * (len(steps) - k - 1)  # later steps are judged on their own


def test_wrong_carry_is_caught_where_it_is_used():
    p = Problem(47, 85)
    assert verify_steps(p, "7+5+1=13|4+8+1=13|=132") == [False, True]    # carry in 1 instead of 0
    assert verify_steps(p, "7+5+0=12|4+8+0=12|=122") == [True, False]    # dropped the carry
    assert verify_steps(p, "7+5+0=2|4+8+0=12|=122") == [False, False]    # wrong sum, then its wrong carry propagated
    q = Problem(85, 47, "-")
    assert verify_steps(q, "5-7-0=8|8-4-1=3|=38") == [False, True]       # forgot to write the borrow
    assert verify_steps(q, "15-7-0=8|8-4-0=4|=48") == [True, False]      # forgot to pay the borrow back


def test_truncated_and_padded_responses():
    p = Problem(4721, 385)
    full = cot_response(p)
    assert all(verify_steps(p, full))
    segments = full.split("|")
    for cut in range(len(full)):
        r = full[:cut]
        checks = verify_steps(p, r)
        assert not all(checks) or extract_answer(r) != p.answer
        assert len(checks) >= p.num_steps
        complete = len(r.split("|")) - 1  # segments followed by a "|"
        assert checks[:complete] == [True] * min(complete, p.num_steps)
    assert verify_steps(p, "|".join(segments[:2]) + f"|={p.answer}") == [True, True, False, False]  # skipped steps
    assert verify_steps(p, "|".join(segments[:-1]) + "|0+0+0=0" + f"|={p.answer}") == [True] * 4 + [False]
    assert verify_steps(p, "") == [False] * 4
    assert verify_steps(p, "5009") == [False] * 4


def test_verify_steps_wrong_operation():
    assert verify_steps(Problem(85, 47, "-"), cot_response(Problem(85, 47))) == [False, False]


# ---------------------------------------------------------------- reading answers, format, reward
@pytest.mark.parametrize("text,expected", [
    ("132", 132), ("=132", 132), ("7+5+0=12|4+8+1=13|=132", 132), ("0", 0), ("=0132", 132), ("x|=5", 5),
    ("", None), ("=", None), ("7+5+0=12|4+8+1=13", None), ("7+5+0=12|4+8+1=13|", None), ("=132|", None),
    ("= 132", None), ("132 ", None), ("13=2", None), ("1+2", None), ("==132", None), ("|", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text,fmt,expected", [
    ("132", "direct", True), ("0", "direct", True), ("0132", "direct", False), ("", "direct", False),
    ("=132", "direct", False), ("13 2", "direct", False),
    ("7+5+0=12|4+8+1=13|=132", "cot", True), ("7+5+0=3|4+8+1=99|=1", "cot", False),  # 99 is no step result
    ("7+5+0=3|4+8+1=9|=1", "cot", True),                 # well formed, wrong: format says nothing of truth
    ("7+5+0=12|4+8+1=13", "cot", False), ("=132", "cot", False), ("132", "cot", False),
    ("7+5+0=12|=0132", "cot", False), ("7+5+0=12|8-4-1=3|=38", "cot", False), ("7+5+0=12||=132", "cot", False),
])
def test_is_well_formed(text, fmt, expected):
    assert is_well_formed(text, fmt) is expected


def test_rewards():
    p = Problem(47, 85)
    assert correctness_reward(p, "132") == 1.0 and correctness_reward(p, "131") == 0.0
    assert format_reward("132", "direct") == 1.0 and format_reward("0132", "direct") == 0.0
    assert reward(p, "7+5+0=12|4+8+1=13|=132", "cot") == 1.0
    assert reward(p, "132", "cot") == pytest.approx(0.9)                 # right answer, not step by step
    assert reward(p, "7+5+0=12|4+8+1=13|=133", "cot") == pytest.approx(0.1)
    assert reward(p, "garbage", "cot") == 0.0
    assert reward(p, "132", "cot", format_weight=0.0) == 1.0
    assert reward(p, "0132", "direct", format_weight=0.5) == 0.5


def test_sample_problems_deterministic_and_sized():
    a = sample_problems(300, 3, seed=1, ops=("+", "-"))
    assert a == sample_problems(300, 3, seed=1, ops=("+", "-"))
    assert a != sample_problems(300, 3, seed=2, ops=("+", "-"))
    assert {p.op for p in a} == {"+", "-"}
    assert all(len(str(p.a)) == len(str(p.b)) == 3 for p in a)
    assert all(p.a >= p.b for p in a if p.op == "-")
    assert all(p.op == "+" for p in sample_problems(50, 2, seed=0))
    ones = sample_problems(2000, 1, seed=0)
    assert {p.a for p in ones} == set(range(10)) and {p.b for p in ones} == set(range(10))
    assert all(len(str(p.a)) == 6 for p in sample_problems(100, 6, seed=0, ops="-"))
    assert sample_problems(5, 2, seed=3)[:3] == sample_problems(3, 2, seed=3)  # a prefix does not depend on n


def test_problem_is_frozen_and_hashable():
    p = Problem(1, 2)
    with pytest.raises(AttributeError):
        p.a = 3
    assert len({Problem(1, 2), Problem(1, 2), Problem(2, 1)}) == 2
    assert Problem(85, 47, "-").answer == 38 and Problem(1, 22).num_steps == 2


@pytest.mark.parametrize("call,match", [
    (lambda: sample_problems(10, 0, seed=0), "digits"),
    (lambda: sample_problems(10, 7, seed=0), "digits"),
    (lambda: sample_problems(10, 2.0, seed=0), "digits"),
    (lambda: sample_problems(0, 2, seed=0), "n must"),
    (lambda: sample_problems(10, 2, seed=0, ops=("*",)), "ops"),
    (lambda: sample_problems(10, 2, seed=0, ops=()), "ops"),
    (lambda: sample_problems(10, 2, seed=None), "seed"),
    (lambda: Problem(-1, 2), "a must"),
    (lambda: Problem(1, 2.5), "b must"),
    (lambda: Problem(1, 2, "*"), "op must"),
    (lambda: Problem(1, 2, "-"), "a must be >= b"),
    (lambda: prompt((47, 85)), "problem must"),
    (lambda: parse_prompt("47+85"), "prompt"),
    (lambda: response(Problem(1, 2), "steps"), "fmt"),
    (lambda: is_well_formed("1", "Direct"), "fmt"),
    (lambda: extract_answer(None), "response"),
    (lambda: verify_steps(Problem(1, 2), 3), "response"),
    (lambda: reward(Problem(1, 2), "3", "direct", format_weight=2), "format_weight"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
