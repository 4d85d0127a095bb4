"""Plausible wrong answers to exercise 10 (RLHF), per task.

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


_REWARD_CHECKS = '''
    if (scores.dim() != 1 or logp.dim() != 2 or scores.shape[0] != logp.shape[0]
            or not logp.shape == ref_logp.shape == mask.shape):
        raise ValueError("expected scores (N,) and logp, ref_logp, mask (N, T)")
    if not kl_coef >= 0:
        raise ValueError("kl_coef must be >= 0")
'''


def _rewards(body: str) -> str:
    return '''
def _add_last(rewards, scores, mask):
    for n in range(mask.shape[0]):
        positions = torch.nonzero(mask[n]).flatten()
        if len(positions) > 0:
            rewards[n, positions[-1]] += scores[n]
    return rewards

def token_rewards(scores, logp, ref_logp, mask, kl_coef):''' + _REWARD_CHECKS + body


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
    "token_rewards": {
        # the score on every response token instead of the last one
        "score_everywhere": _rewards('''
    return (-kl_coef * (logp - ref_logp) + scores[:, None]) * mask
'''),
        # the score on the last column, whatever the mask (padding follows the response)
        "score_on_last_column": _rewards('''
    rewards = -kl_coef * (logp - ref_logp) * mask
    rewards[:, -1] += scores
    return rewards
'''),
        # the KL sign flipped: rewards moving away from the reference
        "kl_sign_flipped": _rewards('''
    rewards = kl_coef * (logp - ref_logp) * mask
    return _add_last(rewards, scores, mask)
'''),
        # the KL on every position, the prompt and the padding included
        "kl_not_masked": _rewards('''
    rewards = -kl_coef * (logp - ref_logp)
    return _add_last(rewards, scores, mask)
'''),
        # argmax of the mask: the FIRST response token gets the score (and an empty row gets it at 0)
        "score_on_first_token": _rewards('''
    rewards = -kl_coef * (logp - ref_logp) * mask
    rewards[torch.arange(len(scores)), mask.argmax(dim=1)] += scores
    return rewards
'''),
        # an empty row still gets its score, on position 0
        "empty_row_scored": _rewards('''
    rewards = -kl_coef * (logp - ref_logp) * mask
    last = (mask * torch.arange(1, mask.shape[1] + 1)).argmax(dim=1)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards
'''),
        # no checks: one score broadcasts over every row, a negative kl_coef is accepted
        "no_checks": '''
def token_rewards(scores, logp, ref_logp, mask, kl_coef):
    rewards = -kl_coef * (logp - ref_logp) * mask
    for n in range(mask.shape[0]):
        positions = torch.nonzero(mask[n]).flatten()
        if len(positions) > 0:
            rewards[n, positions[-1]] += scores[n if len(scores) > 1 else 0]
    return rewards
''',
        "calls_reference": '''
import aiterms.ppo_lm
def token_rewards(scores, logp, ref_logp, mask, kl_coef):
    return aiterms.ppo_lm.token_rewards(scores, logp, ref_logp, mask, kl_coef)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
