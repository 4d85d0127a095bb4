"""Plausible wrong answers to exercise 7 (RLHF), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_CHECKS = '''
    if r_chosen.dim() != 1 or r_chosen.shape != r_rejected.shape:
        raise ValueError("r_chosen and r_rejected must be 1-D and of the same length")
    if r_chosen.numel() == 0:
        raise ValueError("no pairs")
'''
_MARGIN = '''
    if margin is not None:
        if margin.shape != diff.shape:
            raise ValueError("margin must have one entry per pair")
        diff = diff - margin
'''


def _loss(body: str) -> str:
    return "\ndef bradley_terry_loss(r_chosen, r_rejected, margin=None):" + body


def _accuracy(body: str) -> str:
    return "\ndef pairwise_accuracy(r_chosen, r_rejected):" + body


WRONG = {
    "bradley_terry_loss": {
        # log(sigmoid(d)): the same formula, but it underflows to -inf for large negative differences
        "naive_log_sigmoid": _loss(_CHECKS + '''
    diff = r_chosen - r_rejected''' + _MARGIN + '''
    return -torch.log(torch.sigmoid(diff)).mean()
'''),
        # the difference the wrong way round: rewards the rejected answer
        "swapped_sign": _loss(_CHECKS + '''
    diff = r_rejected - r_chosen''' + _MARGIN + '''
    return -F.logsigmoid(diff).mean()
'''),
        # the sum over pairs instead of the mean
        "sum_not_mean": _loss(_CHECKS + '''
    diff = r_chosen - r_rejected''' + _MARGIN + '''
    return -F.logsigmoid(diff).sum()
'''),
        # the margin is added instead of subtracted
        "margin_added": _loss(_CHECKS + '''
    diff = r_chosen - r_rejected
    if margin is not None:
        if margin.shape != diff.shape:
            raise ValueError("margin must have one entry per pair")
        diff = diff + margin
    return -F.logsigmoid(diff).mean()
'''),
        # the margin is ignored
        "ignores_margin": _loss(_CHECKS + '''
    return -F.logsigmoid(r_chosen - r_rejected).mean()
'''),
        # no length check: one reward broadcasts against many
        "no_length_check": _loss('''
    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff).mean()
'''),
        "calls_reference": '''
import aiterms.reward_model
def bradley_terry_loss(r_chosen, r_rejected, margin=None):
    return aiterms.reward_model.bradley_terry_loss(r_chosen, r_rejected, margin)
''',
    },
    "pairwise_accuracy": {
        # a tie counts as a miss
        "ties_are_misses": _accuracy(_CHECKS + '''
    return (r_chosen > r_rejected).float().mean().item()
'''),
        # a tie counts as a win
        "ties_are_wins": _accuracy(_CHECKS + '''
    return (r_chosen >= r_rejected).float().mean().item()
'''),
        # the number of wins, not the fraction
        "count_not_fraction": _accuracy(_CHECKS + '''
    wins = (r_chosen > r_rejected).float() + 0.5 * (r_chosen == r_rejected).float()
    return wins.sum().item()
'''),
        # zip stops at the shorter list instead of refusing pairs of different lengths
        "no_length_check": _accuracy('''
    pairs = list(zip(r_chosen.tolist(), r_rejected.tolist()))
    if not pairs:
        raise ValueError("no pairs")
    return sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in pairs) / len(pairs)
'''),
        "calls_reference": '''
import aiterms.reward_model
def pairwise_accuracy(r_chosen, r_rejected):
    return aiterms.reward_model.pairwise_accuracy(r_chosen, r_rejected)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
