"""Plausible wrong answers to exercise 8 (the full training pipeline), per task (grade_id -> name -> source).

Each source replaces the learner's answer cell; the other cells keep the reference solution, and the setup cell
(``math``, ``re``, ``Counter``, ``Problem``, ``ParsedLine``) is there. Autograding must give every one of them less
than full marks on its task (tests/test_exercises.py), whatever the grading salt (tests/test_checks.py).
"""

_PATTERN = 'r"([0-9]+)([+-])([0-9]+)=([0-9]+)"'


def _parse(normalise: str, pattern: str = _PATTERN, match: str = "re.fullmatch", order: str = "return None",
           numbers: str = "int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))") -> str:
    return f'''
import re
def parse_line(line):
    text = {normalise}
    m = {match}({pattern}, text)
    if m is None:
        return None
    a, op, b, claimed = {numbers}
    if op == "-" and a < b:
        {order}
    return ParsedLine(Problem(a, b, op), claimed)
'''


WRONG = {
    "parse_line": {
        "keeps_whitespace": _parse("line"),
        "strips_ends_only": _parse("line.strip()"),
        "removes_spaces_only": _parse('line.replace(" ", "")'),
        "accepts_missing_operand": _parse('"".join(line.split())', pattern='r"([0-9]*)([+-])([0-9]*)=([0-9]+)"',
                                          numbers="int(m.group(1) or 0), m.group(2), int(m.group(3) or 0), "
                                                  "int(m.group(4))"),
        "rejects_leading_zeros": _parse('"".join(line.split())',
                                        pattern='r"(0|[1-9][0-9]*)([+-])(0|[1-9][0-9]*)=(0|[1-9][0-9]*)"'),
        "swaps_negative_subtraction": _parse('"".join(line.split())', order="a, b = b, a"),
        "prefix_match": _parse('"".join(line.split())', match="re.match"),
        "calls_reference": '''
from aiterms.supervised_data import parse_line as _parse_line
def parse_line(line):
    return _parse_line(line)
''',
    },
    "pass_at_k": {
        "fraction_correct": '''
def pass_at_k(n, c, k):
    return c / n
''',
        "biased_estimator": '''
def pass_at_k(n, c, k):
    return 1.0 - (1.0 - c / n) ** k
''',
        "product_off_by_one": '''
import math
def pass_at_k(n, c, k):
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c, n + 1))
''',
        "lgamma_without_guard": '''
import math
def pass_at_k(n, c, k):
    def log_comb(m, r):
        return math.lgamma(m + 1) - math.lgamma(r + 1) - math.lgamma(m - r + 1)
    return 1.0 - math.exp(log_comb(n - c, k) - log_comb(n, k))
''',
        "integer_division": '''
import math
def pass_at_k(n, c, k):
    return 1 - math.comb(n - c, k) // math.comb(n, k)
''',
        "any_correct": '''
def pass_at_k(n, c, k):
    return 1.0 if c > 0 else 0.0
''',
        "calls_reference": '''
import aiterms.evaluation
def pass_at_k(n, c, k):
    return aiterms.evaluation.pass_at_k(n, c, k)
''',
    },
    "majority_vote": {
        "none_votes": '''
from collections import Counter
def majority_vote(answers):
    return Counter(answers).most_common(1)[0][0] if answers else None
''',
        "zero_dropped": '''
from collections import Counter
def majority_vote(answers):
    counts = Counter(a for a in answers if a)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a and counts[a] == best)
''',
        "tie_to_smallest": '''
from collections import Counter
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    return max(sorted(counts), key=counts.get) if counts else None
''',
        "tie_to_later": '''
from collections import Counter
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    best, best_count = None, 0
    for answer, count in counts.items():
        if count >= best_count:
            best, best_count = answer, count
    return best
''',
        "statistics_mode": '''
import statistics
def majority_vote(answers):
    return statistics.mode(answers)
''',
        "calls_reference": '''
from aiterms.evaluation import majority_vote as _vote
def majority_vote(answers):
    return _vote(answers)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
