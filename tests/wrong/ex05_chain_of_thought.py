"""Plausible wrong answers to exercise 5 (chain-of-thought reasoning), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_ADD = r'r"(\d)\+(\d)\+([01])=(1?\d)"'
_SUB = r'r"(1?\d)-(\d)-([01])=(\d)"'

WRONG = {
    "parse_steps": {
        # the answer segment "=132" is treated as a step, so every complete response raises
        "answer_segment_parsed": f'''
def parse_steps(response):
    steps = []
    for text in response.split("|"):
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # a carry only above 10: "7+5+0=10" gives carry 0, digit 10
        "carry_threshold": f'''
def parse_steps(response):
    segments = response.split("|")
    if segments[-1].startswith("="):
        segments = segments[:-1]
    steps = []
    for text in segments:
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            carry = 1 if s > 10 else 0
            steps.append(Step("+", x, y, c, carry, s - 10 * carry))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # the borrowed ten is left in the top digit: "15-7-0=8" gives top 15, carry out 0
        "borrow_ignored": f'''
def parse_steps(response):
    segments = response.split("|")
    if segments[-1].startswith("="):
        segments = segments[:-1]
    steps = []
    for text in segments:
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top, y, c, 0, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # malformed segments are skipped instead of rejected
        "skips_malformed": f'''
def parse_steps(response):
    steps = []
    for text in response.split("|"):
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
    return steps
''',
        # re.match checks only a prefix: "7+5+0=123" is read as 7+5+0=12
        "prefix_match": f'''
def parse_steps(response):
    segments = response.split("|")
    if segments[-1].startswith("="):
        segments = segments[:-1]
    steps = []
    for text in segments:
        if m := re.match({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.match({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # assumes there is always an answer segment: drops the last segment, even a (cut-off) step
        "last_segment_dropped": f'''
def parse_steps(response):
    steps = []
    for text in response.split("|")[:-1]:
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # splits at "|" or "|=" and takes any all-digit segment for the answer: "132" and "" give no steps
        "digits_taken_as_answer": f'''
def parse_steps(response):
    segments = [s for s in re.split(r"[|]=?", response) if s]
    steps = []
    for text in segments:
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        elif not text.isdigit():
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        # cuts the answer off at the first "|=" instead of looking at the last segment
        "split_at_bar_equals": f'''
def parse_steps(response):
    steps = []
    for text in response.split("|=")[0].split("|"):
        if m := re.fullmatch({_ADD}, text):
            x, y, c, s = map(int, m.groups())
            steps.append(Step("+", x, y, c, s // 10, s % 10))
        elif m := re.fullmatch({_SUB}, text):
            top, y, c, d = map(int, m.groups())
            steps.append(Step("-", top % 10, y, c, top // 10, d))
        else:
            raise ValueError(f"not a step: {{text!r}}")
    return steps
''',
        "calls_reference": '''
from aiterms.arithmetic import parse_steps as _parse_steps
def parse_steps(response):
    return _parse_steps(response)
''',
    },
    "verify_steps": {
        # every column computed as if no carry came in
        "carry_ignored": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    right = []
    for i in range(problem.num_steps):
        x, y = problem.a // 10 ** i % 10, problem.b // 10 ** i % 10
        if problem.op == "+":
            right.append(f"{x}+{y}+0={x + y}")
        else:
            borrow = int(x - y < 0)
            right.append(f"{10 * borrow + x}-{y}-0={x - y + 10 * borrow}")
    return [i < len(texts) and i < len(right) and texts[i] == right[i]
            for i in range(max(len(texts), len(right)))]
''',
        # only checks that each step is a true equation, not that it is about this problem's digits and carries
        "equation_only": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    out = []
    for text in texts:
        try:
            out.append(parse_steps(text)[0].is_true)
        except (ValueError, IndexError):
            out.append(False)
    return out + [False] * (problem.num_steps - len(out))
''',
        # zip stops at the shorter list: missing and extra steps are not reported
        "step_count_ignored": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    right, carry = [], 0
    for i in range(problem.num_steps):
        x, y = problem.a // 10 ** i % 10, problem.b // 10 ** i % 10
        if problem.op == "+":
            s = x + y + carry
            right.append(f"{x}+{y}+{carry}={s}")
            carry = s // 10
        else:
            d = x - y - carry
            borrow = int(d < 0)
            right.append(f"{10 * borrow + x}-{y}-{carry}={d + 10 * borrow}")
            carry = borrow
    return [t == r for t, r in zip(texts, right)]
''',
        # takes the carry in from the response's own previous step: a wrong carry passed on counts as right
        "carry_from_response": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    out, carry = [], 0
    for i in range(max(len(texts), problem.num_steps)):
        if i >= len(texts) or i >= problem.num_steps:
            out.append(False)
            continue
        x, y = problem.a // 10 ** i % 10, problem.b // 10 ** i % 10
        if problem.op == "+":
            right = f"{x}+{y}+{carry}={x + y + carry}"
        else:
            d = x - y - carry
            right = f"{10 * int(d < 0) + x}-{y}-{carry}={d + 10 * int(d < 0)}"
        out.append(texts[i] == right)
        try:
            carry = parse_steps(texts[i])[0].carry_out
        except (ValueError, IndexError):
            carry = 0
    return out
''',
        # judges the steps by the final answer only
        "answer_only": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    right = response.endswith(f"={problem.answer}")
    return [right] * max(len(texts), problem.num_steps)
''',
        # reads the columns from the left
        "columns_from_left": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    n = problem.num_steps
    a, b = str(problem.a).zfill(n), str(problem.b).zfill(n)
    right, carry = [], 0
    for i in range(n):
        x, y = int(a[i]), int(b[i])
        if problem.op == "+":
            s = x + y + carry
            right.append(f"{x}+{y}+{carry}={s}")
            carry = s // 10
        else:
            d = x - y - carry
            borrow = int(d < 0)
            right.append(f"{10 * borrow + x}-{y}-{carry}={d + 10 * borrow}")
            carry = borrow
    return [i < len(texts) and i < len(right) and texts[i] == right[i]
            for i in range(max(len(texts), len(right)))]
''',
        # borrows when the difference is zero too
        "borrow_at_zero": '''
def verify_steps(problem, response):
    texts = response.split("|")
    if texts[-1].startswith("="):
        texts = texts[:-1]
    right, carry = [], 0
    for i in range(problem.num_steps):
        x, y = problem.a // 10 ** i % 10, problem.b // 10 ** i % 10
        if problem.op == "+":
            s = x + y + carry
            right.append(f"{x}+{y}+{carry}={s}")
            carry = s // 10
        else:
            d = x - y - carry
            borrow = int(d <= 0)
            right.append(f"{10 * borrow + x}-{y}-{carry}={d + 10 * borrow}")
            carry = borrow
    return [i < len(texts) and i < len(right) and texts[i] == right[i]
            for i in range(max(len(texts), len(right)))]
''',
        "calls_reference": '''
import aiterms.arithmetic
def verify_steps(problem, response):
    return aiterms.arithmetic.verify_steps(problem, response)
''',
    },
    "extract_answer": {
        # the first number in the response, not the final one
        "first_number": '''
def extract_answer(response):
    m = re.search(r"-?\\d+", response)
    return int(m.group()) if m else None
''',
        # 0 for "no answer": indistinguishable from the answer 0
        "zero_for_none": '''
def extract_answer(response):
    m = re.fullmatch(r"=?(-?\\d+)", response.rsplit("|", 1)[-1])
    return int(m.group(1)) if m else 0
''',
        # int() accepts spaces, "+" and "_"
        "int_too_lenient": '''
def extract_answer(response):
    last = response.rsplit("|", 1)[-1]
    if last.startswith("="):
        last = last[1:]
    try:
        return int(last)
    except ValueError:
        return None
''',
        # the number after the last "=", even inside a step that was cut off
        "after_last_equals": '''
def extract_answer(response):
    m = re.fullmatch(r"-?\\d+", response.rsplit("=", 1)[-1])
    return int(m.group()) if m else None
''',
        # only the step-by-step format: a direct answer is not read
        "needs_equals": '''
def extract_answer(response):
    m = re.fullmatch(r"=(-?\\d+)", response.rsplit("|", 1)[-1])
    return int(m.group(1)) if m else None
''',
        # returns the digits as a string
        "returns_str": '''
def extract_answer(response):
    m = re.fullmatch(r"=?(-?\\d+)", response.rsplit("|", 1)[-1])
    return m.group(1) if m else None
''',
        "calls_reference": '''
from aiterms import arithmetic
def extract_answer(response):
    return arithmetic.extract_answer(response)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
