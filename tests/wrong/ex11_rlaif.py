"""Plausible wrong answers to exercise 11 (RLAIF), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_LENGTHS = '''
    n = len(prompts)
    if len(a) != n or len(b) != n:
        raise ValueError("prompts, a and b must have the same length")
'''
_CHECK = '''
    def probabilities(p):
        p = torch.as_tensor(p, dtype=torch.float64)
        if p.dim() != 1 or p.shape[0] != n or (p < 0).any() or (p > 1).any():
            raise ValueError("the judge must return one probability per pair")
        return p
'''


def _judge(body: str) -> str:
    return "\ndef judge_both_orders(judge, prompts, a, b):" + body


_AGREE = '''
    p = torch.as_tensor(p_a_better, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    if p.dim() != 1 or p.shape != y.shape or p.numel() == 0:
        raise ValueError("one probability and one label per pair, at least one pair")
    if (p < 0).any() or (p > 1).any() or not ((y == 0) | (y == 1)).all():
        raise ValueError("probabilities in [0, 1], labels 0 or 1")
'''


def _agree(body: str) -> str:
    return "\ndef agreement_rate(p_a_better, labels):" + body


WRONG = {
    "judge_both_orders": {
        # the swapped verdict is averaged as it is: it is about b, not a
        "not_flipped": _judge(_LENGTHS + _CHECK + '''
    return (probabilities(judge(prompts, a, b)) + probabilities(judge(prompts, b, a))) / 2
'''),
        # one order only: the position bias stays
        "one_order": _judge(_LENGTHS + _CHECK + '''
    return probabilities(judge(prompts, a, b))
'''),
        # the combination is the probability that b is better
        "flipped_wrong_one": _judge(_LENGTHS + _CHECK + '''
    return (1 - probabilities(judge(prompts, a, b)) + probabilities(judge(prompts, b, a))) / 2
'''),
        # the swapped call passes the answers in the same order again
        "not_swapped": _judge(_LENGTHS + _CHECK + '''
    return (probabilities(judge(prompts, a, b)) + 1 - probabilities(judge(prompts, a, b))) / 2
'''),
        # no check of the judge's outputs: logits slip through as if they were probabilities
        "no_range_check": _judge(_LENGTHS + '''
    p_ab = torch.as_tensor(judge(prompts, a, b), dtype=torch.float64)
    p_ba = torch.as_tensor(judge(prompts, b, a), dtype=torch.float64)
    return (p_ab + 1 - p_ba) / 2
'''),
        "calls_reference": '''
import aiterms.ai_judge
def judge_both_orders(judge, prompts, a, b):
    return aiterms.ai_judge.judge_both_orders(judge, prompts, a, b)
''',
    },
    "agreement_rate": {
        # p = 0.5 read as a vote for a
        "tie_is_a": _agree(_AGREE + '''
    return float(((p >= 0.5).double() == y).double().mean())
'''),
        # p = 0.5 read as a vote for b: an abstention counts as a miss when the label is 1
        "tie_is_b": _agree(_AGREE + '''
    return float(((p > 0.5).double() == y).double().mean())
'''),
        # rounding: torch.round(0.5) = 0 (round half to even), the same bug as tie_is_b, plus 1.0 stays 1
        "rounds_half_to_even": _agree(_AGREE + '''
    return float((torch.round(p) == y).double().mean())
'''),
        # no check of the inputs: probabilities outside [0, 1] and labels like 2 are accepted
        "no_validation": _agree('''
    p = torch.as_tensor(p_a_better, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    if p.shape != y.shape or p.numel() == 0:
        raise ValueError("one probability and one label per pair")
    verdict = (p > 0.5).double() + 0.5 * (p == 0.5).double()
    return float((1 - (verdict - y).abs()).mean())
'''),
        # the mean probability given to the labelled answer, not the fraction of verdicts that agree
        "soft_agreement": _agree(_AGREE + '''
    return float(torch.where(y == 1, p, 1 - p).mean())
'''),
        "calls_reference": '''
import aiterms.ai_judge
def agreement_rate(p_a_better, labels):
    return aiterms.ai_judge.agreement_rate(p_a_better, labels)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
