"""Plausible wrong answers to exercise 12 (inference-time scaling), per task.

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

_CURVE_CHECKS = '''
def vote_curve(answers, tokens, targets, ns):
    if not answers or len(tokens) != len(answers) or len(targets) != len(answers):
        raise ValueError("one entry per problem")
    if any(len(a) == 0 or len(t) != len(a) for a, t in zip(answers, tokens)):
        raise ValueError("samples and token counts")
    pool = min(len(a) for a in answers)
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= pool:
            raise ValueError("bad n")
    rows = []
    for n in ns:
'''


def _curve(body: str) -> str:
    return _CURVE_CHECKS + body


WRONG = {
    "vote_curve": {
        # the tokens of the whole pool, whatever n: the compute axis is flat
        "tokens_of_whole_pool": _curve('''
        right = sum(majority_vote(a[:n]) == t for a, t in zip(answers, targets))
        rows.append({"n": n, "accuracy": right / len(answers), "tokens": sum(map(sum, tokens)) / len(answers)})
    return rows
'''),
        # mean tokens per sample instead of per problem
        "tokens_per_sample": _curve('''
        right = sum(majority_vote(a[:n]) == t for a, t in zip(answers, targets))
        rows.append({"n": n, "accuracy": right / len(answers),
                     "tokens": sum(sum(t[:n]) for t in tokens) / (n * len(answers))})
    return rows
'''),
        # the last n samples of each pool instead of the first n
        "last_n_samples": _curve('''
        right = sum(majority_vote(a[-n:]) == t for a, t in zip(answers, targets))
        rows.append({"n": n, "accuracy": right / len(answers),
                     "tokens": sum(sum(t[-n:]) for t in tokens) / len(answers)})
    return rows
'''),
        # the number of right answers, not the fraction
        "count_not_fraction": _curve('''
        right = sum(majority_vote(a[:n]) == t for a, t in zip(answers, targets))
        rows.append({"n": n, "accuracy": float(right), "tokens": sum(sum(t[:n]) for t in tokens) / len(answers)})
    return rows
'''),
        # any of the first n samples right counts (pass@n, not the vote)
        "pass_at_n_not_vote": _curve('''
        right = sum(t in a[:n] for a, t in zip(answers, targets))
        rows.append({"n": n, "accuracy": right / len(answers), "tokens": sum(sum(t[:n]) for t in tokens) / len(answers)})
    return rows
'''),
        # n checked against the first problem's pool, not the smallest
        "pool_of_first_problem": '''
def vote_curve(answers, tokens, targets, ns):
    if not answers or len(tokens) != len(answers) or len(targets) != len(answers):
        raise ValueError("one entry per problem")
    if any(len(a) == 0 or len(t) != len(a) for a, t in zip(answers, tokens)):
        raise ValueError("samples and token counts")
    for n in ns:
        if not isinstance(n, int) or not 1 <= n <= len(answers[0]):
            raise ValueError("bad n")
    return [{"n": n, "accuracy": sum(majority_vote(a[:n]) == t for a, t in zip(answers, targets)) / len(answers),
             "tokens": sum(sum(t[:n]) for t in tokens) / len(answers)} for n in ns]
''',
        "calls_reference": '''
from aiterms import test_time
def vote_curve(answers, tokens, targets, ns):
    return test_time.vote_curve(answers, tokens, targets, ns)
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
