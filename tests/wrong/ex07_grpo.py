"""Plausible wrong answers to exercise 7 (GRPO), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_CHECKS = '''
    if group_size < 2:
        raise ValueError("group_size must be >= 2")
    if rewards.numel() % group_size:
        raise ValueError("not a whole number of groups")
'''

_AGGREGATE = '''
    per_token = per_token * mask
    if loss_type == "grpo":
        return (per_token.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return per_token.sum() / mask.sum().clamp(min=1.0)
    return per_token.sum() / (logp.shape[0] * (logp.shape[1] if max_len is None else max_len))
'''


def _loss(body: str, aggregate: str = _AGGREGATE) -> str:
    return '''
def grpo_loss(logp, old_logp, advantages, mask, ref_logp=None, clip_eps=0.2, beta=0.0, loss_type="grpo",
              max_len=None):
    adv = advantages[:, None]
''' + body + aggregate


_SURROGATE = '''
    ratio = torch.exp(logp - old_logp)
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
'''
_KL = '''
    if beta > 0:
        d = ref_logp - logp
        per_token = per_token + beta * (torch.exp(d) - d - 1)
'''

WRONG = {
    "group_advantages": {
        # the biased standard deviation (divides by G)
        "biased_std": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):''' + _CHECKS + '''
    groups = rewards.float().view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale_std:
        centred = centred / (groups.std(dim=1, unbiased=False, keepdim=True) + eps)
    return centred.reshape(-1)
''',
        # one mean and std over the whole batch instead of per group
        "batch_normalised": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):''' + _CHECKS + '''
    centred = rewards.float() - rewards.float().mean()
    if scale_std:
        centred = centred / (rewards.float().std() + eps)
    return centred
''',
        # groups read column-wise: view(group_size, -1) interleaves the prompts
        "interleaved_groups": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):''' + _CHECKS + '''
    groups = rewards.float().view(group_size, -1)
    centred = groups - groups.mean(dim=0, keepdim=True)
    if scale_std:
        centred = centred / (groups.std(dim=0, keepdim=True) + eps)
    return centred.reshape(-1)
''',
        # eps forgotten: a group of equal rewards divides 0 by 0
        "no_eps": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):''' + _CHECKS + '''
    groups = rewards.float().view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale_std:
        centred = centred / groups.std(dim=1, keepdim=True)
    return centred.reshape(-1)
''',
        # always divides by the std, ignoring scale_std
        "ignores_scale_std": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):''' + _CHECKS + '''
    groups = rewards.float().view(-1, group_size)
    return ((groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, keepdim=True) + eps)).reshape(-1)
''',
        # no input checks: a batch that is not a whole number of groups is silently truncated
        "no_checks": '''
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):
    n = rewards.numel() // max(group_size, 1) * max(group_size, 1)
    groups = rewards.float()[:n].view(-1, max(group_size, 1))
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale_std:
        centred = centred / (groups.std(dim=1, keepdim=True).nan_to_num(0.0) + eps)
    return centred.reshape(-1)
''',
        "calls_reference": '''
from aiterms.grpo import group_advantages as _reference
def group_advantages(rewards, group_size, scale_std=True, eps=1e-4):
    return _reference(rewards, group_size, scale_std, eps)
''',
    },
    "grpo_loss": {
        # the mask is ignored: prompt and padding positions count
        "no_mask": _loss(_SURROGATE + _KL, '''
    if loss_type == "grpo":
        return per_token.mean(-1).mean()
    if loss_type == "bnpo":
        return per_token.mean()
    return per_token.sum() / (logp.shape[0] * (logp.shape[1] if max_len is None else max_len))
'''),
        # only the clipped term: no pessimistic min with the unclipped one
        "clipped_only": _loss('''
    ratio = torch.exp(logp - old_logp)
    per_token = -ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
''' + _KL),
        # max instead of min: the optimistic bound
        "max_not_min": _loss('''
    ratio = torch.exp(logp - old_logp)
    per_token = -torch.max(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
''' + _KL),
        # the KL estimator with the difference the wrong way round
        "kl_reversed": _loss(_SURROGATE + '''
    if beta > 0:
        d = logp - ref_logp
        per_token = per_token + beta * (torch.exp(d) - d - 1)
'''),
        # every loss type treated as "grpo"
        "ignores_loss_type": _loss(_SURROGATE + _KL, '''
    per_token = per_token * mask
    return (per_token.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
'''),
        # Dr. GRPO divided by the number of response tokens, as if it were bnpo
        "dr_grpo_token_count": _loss(_SURROGATE + _KL, '''
    per_token = per_token * mask
    if loss_type == "grpo":
        return (per_token.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    return per_token.sum() / mask.sum().clamp(min=1.0)
'''),
        # the ratio is detached: the right value, but the gradient of the policy term vanishes
        "detached_ratio": _loss('''
    ratio = torch.exp(logp - old_logp).detach()
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
''' + _KL),
        "calls_reference": '''
import aiterms.grpo
def grpo_loss(logp, old_logp, advantages, mask, ref_logp=None, clip_eps=0.2, beta=0.0, loss_type="grpo",
              max_len=None):
    return aiterms.grpo.grpo_loss(logp, old_logp, advantages, mask, ref_logp, clip_eps, beta, loss_type, max_len)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
