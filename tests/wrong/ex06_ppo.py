"""Plausible wrong answers to exercise 6 (PPO), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""


def _gae(later: str = "next_value if t == T - 1 else values[t + 1]", live: str = "1.0 - dones[t]",
         delta: str = "rewards[t] + gamma * live * later_value - values[t]",
         step: str = "delta + gamma * lam * live * last", result: str = "advantages") -> str:
    return f'''
def gae(rewards, values, dones, next_value, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(T)):
        later_value = {later}
        live = {live}
        delta = {delta}
        last = {step}
        advantages[t] = last
    return {result}
'''


def _loss(body: str) -> str:
    return f'''
def clipped_surrogate_loss(logp, logp_old, advantages, clip_eps=0.2):
{body}
'''


WRONG = {
    "gae": {
        # episode ends ignored: advantages leak across episodes
        "ignores_dones": _gae(live="1.0"),
        # CleanRL's other convention (dones[t] marks s_t as a reset) used with this function's dones
        "dones_shifted": _gae(live="1.0 - (dones[t + 1] if t + 1 < T else torch.zeros_like(next_value))"),
        # the value after an episode end is dropped, but the recursion still carries A_{t+1} across it
        "recursion_not_masked": _gae(step="delta + gamma * lam * last"),
        # the recursion stops at episode ends, but delta still bootstraps from the next episode's first value
        "delta_not_masked": _gae(delta="rewards[t] + gamma * later_value - values[t]"),
        # lambda forgotten: A_t = delta_t + gamma A_{t+1} (Monte Carlo-like)
        "no_lambda": _gae(step="delta + gamma * live * last"),
        # no bootstrap: the value after the rollout is taken as 0
        "no_bootstrap": _gae(later="torch.zeros_like(next_value) if t == T - 1 else values[t + 1]"),
        # the critic's targets (returns = A + V) instead of the advantages
        "returns_not_advantages": _gae(result="advantages + values"),
        # the loop runs forwards in time, so A_{t+1} is not known yet (it is 0, or stale)
        "forward_in_time": _gae().replace("reversed(range(T))", "range(T)"),
        "calls_reference": '''
from aiterms.ppo import gae as _gae
def gae(rewards, values, dones, next_value, gamma=0.99, lam=0.95):
    return _gae(rewards, values, dones, next_value, gamma, lam)
''',
    },
    "clipped_surrogate_loss": {
        # only the clipped term: no pessimistic min, so large bad moves are clipped too
        "no_min": _loss('''    ratio = torch.exp(logp - logp_old)
    return -(torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages).mean()'''),
        # max instead of min: an optimistic bound
        "max_not_min": _loss('''    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return -torch.max(ratio * advantages, clipped * advantages).mean()'''),
        # no clipping at all: the plain surrogate
        "no_clip": _loss('''    ratio = torch.exp(logp - logp_old)
    return -(ratio * advantages).mean()'''),
        # the ratio upside down: pi_old / pi
        "ratio_inverted": _loss('''    ratio = torch.exp(logp_old - logp)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return -torch.min(ratio * advantages, clipped * advantages).mean()'''),
        # log-probabilities divided instead of exponentiated difference
        "ratio_of_logs": _loss('''    ratio = logp / logp_old
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return -torch.min(ratio * advantages, clipped * advantages).mean()'''),
        # the objective instead of the loss: gradient descent would make good actions less likely
        "objective_not_loss": _loss('''    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return torch.min(ratio * advantages, clipped * advantages).mean()'''),
        # a sum over the batch instead of the mean
        "sum_not_mean": _loss('''    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return -torch.min(ratio * advantages, clipped * advantages).sum()'''),
        # the clip range around 0 instead of around 1
        "clip_around_zero": _loss('''    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, -clip_eps, clip_eps)
    return -torch.min(ratio * advantages, clipped * advantages).mean()'''),
        "calls_reference": '''
import aiterms.ppo
def clipped_surrogate_loss(logp, logp_old, advantages, clip_eps=0.2):
    return aiterms.ppo.clipped_surrogate_loss(logp, logp_old, advantages, clip_eps)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
