"""Plausible wrong answers to exercise 14 (process reward models), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_AGG_CHECKS = '''
    if method not in ("min", "prod", "last"):
        raise ValueError("unknown method")
    scores = [float(s) for s in step_scores]
    if not scores:
        raise ValueError("no scores")
    if not all(0.0 <= s <= 1.0 for s in scores):
        raise ValueError("not probabilities")
'''

_VOTE_CHECKS = '''
    if len(answers) != len(scores):
        raise ValueError("different lengths")
    if not all(0.0 <= s <= 1.0 for s in scores):
        raise ValueError("not probabilities")
'''


def _agg(body: str, checks: str = _AGG_CHECKS) -> str:
    return "\nimport math\ndef aggregate_step_scores(step_scores, method=\"min\"):" + checks + body


def _best(body: str, checks: str = _VOTE_CHECKS) -> str:
    return "\ndef best_of_n(answers, scores):" + checks + body


def _vote(body: str, checks: str = _VOTE_CHECKS) -> str:
    return "\ndef weighted_majority_vote(answers, scores):" + checks + body


_AGG_RIGHT = '''
    if method == "min":
        return min(scores)
    if method == "prod":
        return math.prod(scores)
    return scores[-1]
'''

_BEST_RIGHT = '''
    best, best_score = None, -1.0
    for a, s in zip(answers, scores):
        if a is not None and s > best_score:
            best, best_score = a, s
    return best
'''

_TOTALS = '''
    totals = {}
    for a, s in zip(answers, scores):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + s
'''

_MC_CHECK = '''
def mc_labels(outcomes, final_correct, hard=False):
    def check(x):
        if isinstance(x, bool) or (isinstance(x, int) and x in (0, 1)):
            return bool(x)
        raise ValueError("not an outcome")
'''


def _mc(body: str) -> str:
    return _MC_CHECK + body


WRONG = {
    "aggregate_step_scores": {
        # the mean of the scores instead of their product
        "prod_is_mean": _agg('''
    if method == "min":
        return min(scores)
    if method == "prod":
        return sum(scores) / len(scores)
    return scores[-1]
'''),
        # the sum of log-probabilities, left in log space
        "prod_in_log_space": _agg('''
    if method == "min":
        return min(scores)
    if method == "prod":
        return sum(math.log(s) if s > 0 else -math.inf for s in scores)
    return scores[-1]
'''),
        # "last" reads the first step
        "last_is_first": _agg('''
    if method == "min":
        return min(scores)
    if method == "prod":
        return math.prod(scores)
    return scores[0]
'''),
        # min and max confused
        "min_is_max": _agg('''
    if method == "min":
        return max(scores)
    if method == "prod":
        return math.prod(scores)
    return scores[-1]
'''),
        # no checks: scores outside [0, 1] go through, an unknown method falls through to "last"
        "no_checks": _agg('''
    scores = list(step_scores)
    if not scores:
        raise ValueError("no scores")
''' + _AGG_RIGHT, checks=""),
        # an empty list gives 0 instead of an error
        "empty_is_zero": _agg('''
    if method not in ("min", "prod", "last"):
        raise ValueError("unknown method")
    scores = [float(s) for s in step_scores]
    if any(s < 0 or s > 1 for s in scores):
        raise ValueError("not probabilities")
    if not scores:
        return 0.0
''' + _AGG_RIGHT, checks=""),
        "calls_reference": '''
from aiterms.prm import aggregate_step_scores as _reference
def aggregate_step_scores(step_scores, method="min"):
    return _reference(step_scores, method)
''',
    },
    "best_of_n": {
        # ">=": ties go to the last of the tied responses
        "ties_to_last": _best('''
    best, best_score = None, -1.0
    for a, s in zip(answers, scores):
        if a is not None and s >= best_score:
            best, best_score = a, s
    return best
'''),
        # responses without an answer are not skipped
        "keeps_none": _best('''
    if not answers:
        return None
    return answers[max(range(len(scores)), key=lambda i: (scores[i], -i))]
'''),
        # the lowest score
        "argmin": _best('''
    best, best_score = None, 2.0
    for a, s in zip(answers, scores):
        if a is not None and s < best_score:
            best, best_score = a, s
    return best
'''),
        # zip silently drops the extra items of the longer list
        "no_length_check": _best('''
    if not all(0.0 <= s <= 1.0 for s in scores):
        raise ValueError("not probabilities")
''' + _BEST_RIGHT, checks=""),
        # scores are never checked
        "no_range_check": _best('''
    if len(answers) != len(scores):
        raise ValueError("different lengths")
''' + _BEST_RIGHT, checks=""),
        # only the scores of responses with an answer are checked
        "checks_only_answered": _best('''
    if len(answers) != len(scores):
        raise ValueError("different lengths")
    if not all(0.0 <= s <= 1.0 for a, s in zip(answers, scores) if a is not None):
        raise ValueError("not probabilities")
''' + _BEST_RIGHT, checks=""),
        "calls_reference": '''
import aiterms.prm
def best_of_n(answers, scores):
    return aiterms.prm.best_of_n(answers, scores)
''',
    },
    "weighted_majority_vote": {
        # every response counts once: the plain majority vote
        "unweighted": _vote('''
    counts = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in counts if counts[a] == top)
'''),
        # the answer of the single best response (that is best-of-N, not a vote)
        "max_not_sum": _vote('''
    best = {}
    for a, s in zip(answers, scores):
        if a is not None:
            best[a] = max(best.get(a, 0.0), s)
    if not best:
        return None
    top = max(best.values())
    return next(a for a in best if best[a] == top)
'''),
        # the mean score per answer: one lucky response outweighs many good ones
        "mean_not_sum": _vote(_TOTALS + '''
    if not totals:
        return None
    mean = {a: totals[a] / sum(1 for b in answers if b == a) for a in totals}
    top = max(mean.values())
    return next(a for a in mean if mean[a] == top)
'''),
        # ties go to the answer that appears last (a stable sort, then the last item)
        "ties_to_last": _vote(_TOTALS + '''
    if not totals:
        return None
    return sorted(totals.items(), key=lambda kv: kv[1])[-1][0]
'''),
        # None counts as an answer
        "none_votes": _vote('''
    totals = {}
    for a, s in zip(answers, scores):
        totals[a] = totals.get(a, 0.0) + s
    if not totals:
        return None
    top = max(totals.values())
    return next(a for a in totals if totals[a] == top)
'''),
        # ties go to the smallest answer
        "ties_to_smallest": _vote(_TOTALS + '''
    if not totals:
        return None
    return min(totals, key=lambda a: (-totals[a], a))
'''),
        # no input checks
        "no_checks": _vote(_TOTALS + '''
    if not totals:
        return None
    top = max(totals.values())
    return next(a for a in totals if totals[a] == top)
''', checks=""),
        "calls_reference": '''
from aiterms import prm
def weighted_majority_vote(answers, scores):
    return prm.weighted_majority_vote(answers, scores)
''',
    },
    "mc_labels": {
        # hard labels only when all rollouts succeed (all instead of any)
        "hard_means_all": _mc('''
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(0.0 if not right else float(all(right)) if hard else sum(right) / len(right))
    return labels + [float(check(final_correct))]
'''),
        # soft labels as a majority: 1 if at least half succeed
        "soft_is_majority": _mc('''
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(0.0 if not right else float(any(right)) if hard else float(sum(right) >= len(right) / 2))
    return labels + [float(check(final_correct))]
'''),
        # the answer segment's label forgotten: K - 1 labels
        "no_final_label": _mc('''
    check(final_correct)
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(0.0 if not right else float(any(right)) if hard else sum(right) / len(right))
    return labels
'''),
        # the count of successes, not the fraction
        "count_not_fraction": _mc('''
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(0.0 if not right else float(any(right)) if hard else float(sum(right)))
    return labels + [float(check(final_correct))]
'''),
        # a prefix without rollouts divides by zero
        "empty_divides_by_zero": _mc('''
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(float(any(right)) if hard else sum(right) / len(right))
    return labels + [float(check(final_correct))]
'''),
        # the last label is the last prefix's label again, not the response's own outcome
        "final_from_rollouts": _mc('''
    check(final_correct)
    labels = []
    for rollouts in outcomes:
        right = [check(x) for x in rollouts]
        labels.append(0.0 if not right else float(any(right)) if hard else sum(right) / len(right))
    return labels + [labels[-1] if labels else float(final_correct)]
'''),
        # no check of the outcomes: 0.5 or "yes" is accepted
        "no_checks": '''
def mc_labels(outcomes, final_correct, hard=False):
    labels = []
    for rollouts in outcomes:
        right = [bool(x) for x in rollouts]
        labels.append(0.0 if not right else float(any(right)) if hard else sum(right) / len(right))
    return labels + [float(bool(final_correct))]
''',
        "calls_reference": '''
import aiterms.prm
def mc_labels(outcomes, final_correct, hard=False):
    return aiterms.prm.mc_labels(outcomes, final_correct, hard)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
