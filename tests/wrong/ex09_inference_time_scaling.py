"""Plausible wrong answers to exercise 9 (inference-time scaling), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_CHECKS = '''
    for name, value in (("max_samples", max_samples), ("batch_size", batch_size), ("min_votes", min_votes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0 < agreement <= 1:
        raise ValueError(f"agreement must be in (0, 1], got {agreement!r}")
'''

WRONG = {
    "majority_vote": {
        # None is counted as an answer: a response nobody could read can win
        "counts_none": '''
def majority_vote(answers):
    counts = Counter(answers)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)
''',
        # ties go to the tied answer that appears last
        "ties_to_last": '''
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return [a for a in answers if a is not None and counts[a] == best][-1]
''',
        # ties go to the smallest answer
        "ties_to_smallest": '''
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return min(a for a in counts if counts[a] == best)
''',
        # a tie is treated as "no majority"
        "tie_is_none": '''
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    (a, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return None
    return a
''',
        # returns the count, not the answer
        "returns_count": '''
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    return max(counts.values())
''',
        "calls_reference": '''
from aiterms import evaluation
def majority_vote(answers):
    return evaluation.majority_vote(answers)
''',
    },
    "adaptive_vote": {
        # the share ignores unreadable answers (n counts only readable ones)
        "share_of_readable": f'''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
{_CHECKS}
    drawn = []
    while len(drawn) < max_samples:
        drawn.extend(sample(min(batch_size, max_samples - len(drawn))))
        readable = [a for a in drawn if a is not None]
        leader = majority_vote(drawn)
        votes = readable.count(leader) if leader is not None else 0
        if votes >= min_votes and votes / len(readable) >= agreement:
            break
    return majority_vote(drawn), len(drawn)
''',
        # the last round is not cut to the budget: it may draw more than max_samples answers
        "last_batch_not_cut": f'''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
{_CHECKS}
    drawn = []
    while len(drawn) < max_samples:
        drawn.extend(sample(batch_size))
        leader = majority_vote(drawn)
        votes = drawn.count(leader) if leader is not None else 0
        if votes >= min_votes and votes / len(drawn) >= agreement:
            break
    return majority_vote(drawn), len(drawn)
''',
        # only the vote count is checked, not the agreement share
        "ignores_agreement": f'''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
{_CHECKS}
    drawn = []
    while len(drawn) < max_samples:
        drawn.extend(sample(min(batch_size, max_samples - len(drawn))))
        leader = majority_vote(drawn)
        votes = drawn.count(leader) if leader is not None else 0
        if votes >= min_votes:
            break
    return majority_vote(drawn), len(drawn)
''',
        # strict inequalities: exactly min_votes votes or exactly the agreement share does not stop
        "strict_thresholds": f'''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
{_CHECKS}
    drawn = []
    while len(drawn) < max_samples:
        drawn.extend(sample(min(batch_size, max_samples - len(drawn))))
        leader = majority_vote(drawn)
        votes = drawn.count(leader) if leader is not None else 0
        if votes > min_votes and votes / len(drawn) > agreement:
            break
    return majority_vote(drawn), len(drawn)
''',
        # the agreement is measured in the last round only, and the answer is that round's majority
        "last_round_only": f'''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
{_CHECKS}
    n, batch = 0, []
    while n < max_samples:
        batch = sample(min(batch_size, max_samples - n))
        n += len(batch)
        leader = majority_vote(batch)
        votes = batch.count(leader) if leader is not None else 0
        if votes >= min_votes and votes / len(batch) >= agreement:
            break
    return majority_vote(batch), n
''',
        # settings are not checked: agreement 0 or 1.5 and min_votes 0 are accepted
        "no_validation": '''
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
    if max_samples <= 0 or batch_size <= 0:
        raise ValueError("max_samples and batch_size must be positive")
    drawn = []
    while len(drawn) < max_samples:
        drawn.extend(sample(min(batch_size, max_samples - len(drawn))))
        leader = majority_vote(drawn)
        votes = drawn.count(leader) if leader is not None else 0
        if votes >= min_votes and votes / len(drawn) >= agreement:
            break
    return majority_vote(drawn), len(drawn)
''',
        "calls_reference": '''
from aiterms import test_time
def adaptive_vote(sample, max_samples, batch_size=2, min_votes=2, agreement=0.6):
    return test_time.adaptive_vote(sample, max_samples, batch_size, min_votes, agreement)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
