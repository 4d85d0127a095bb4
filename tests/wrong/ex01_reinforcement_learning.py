"""Plausible wrong answers to exercise 1 (reinforcement learning), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

WRONG = {
    "discounted_returns": {
        # episode ends ignored: returns flow back from the next episode
        "dones_ignored": '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
''',
        # off by one: the end of step t+1 cuts step t (done read one step late)
        "done_off_by_one": '''
def discounted_returns(rewards, dones, gamma):
    keep = 1.0 - dones.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in reversed(range(len(rewards))):
        nxt = keep[t + 1] if t + 1 < len(rewards) else torch.ones_like(keep[t])
        running = rewards[t] + gamma * nxt * running
        returns[t] = running
    return returns
''',
        # the reward of the current step discounted too: G_t = gamma * (r_t + G_{t+1})
        "reward_discounted": '''
def discounted_returns(rewards, dones, gamma):
    keep = 1.0 - dones.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in reversed(range(len(rewards))):
        running = gamma * (rewards[t] + keep[t] * running)
        returns[t] = running
    return returns
''',
        # forwards in time: discounted sum of the rewards so far, not of those to come
        "forwards": '''
def discounted_returns(rewards, dones, gamma):
    keep = 1.0 - dones.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in range(len(rewards)):
        running = rewards[t] + gamma * running
        returns[t] = running
        running = running * keep[t]
    return returns
''',
        # an episode end also wipes that step's own reward
        "done_zeroes_reward": '''
def discounted_returns(rewards, dones, gamma):
    keep = 1.0 - dones.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in reversed(range(len(rewards))):
        running = keep[t] * (rewards[t] + gamma * running)
        returns[t] = running
    return returns
''',
        # reads a (T, N) rollout as (N, T): walks the last axis as time
        "last_axis_is_time": '''
def discounted_returns(rewards, dones, gamma):
    keep = 1.0 - dones.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * keep[..., t] * running
        returns[..., t] = running
    return returns
''',
        # every env's end cuts all envs (dones summed over the envs)
        "envs_mixed": '''
def discounted_returns(rewards, dones, gamma):
    d = dones.float()
    if d.dim() == 2:
        d = d.max(dim=1, keepdim=True).values.expand_as(d)
    keep = 1.0 - d
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros_like(returns[0])
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * keep[t] * running
        returns[t] = running
    return returns
''',
        "calls_reference": '''
from aiterms.reinforce import discounted_returns as _reference
def discounted_returns(rewards, dones, gamma):
    return _reference(rewards, dones, gamma)
''',
    },
    "epsilon_greedy": {
        # explores only among the other arms
        "explores_other_arms": '''
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    best = int(np.argmax(q))
    if rng.random() < epsilon and len(q) > 1:
        a = int(rng.integers(len(q) - 1))
        return a if a < best else a + 1
    return best
''',
        # ties go to the last index
        "last_of_ties": '''
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    if rng.random() < epsilon:
        return int(rng.integers(len(q)))
    return int(len(q) - 1 - np.argmax(q[::-1]))
''',
        # draws the random arm on every call, before deciding
        "draws_arm_first": '''
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    random_arm = int(rng.integers(len(q)))
    if rng.random() < epsilon:
        return random_arm
    return int(np.argmax(q))
''',
        # explores with probability 1 - epsilon
        "inverted": '''
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    if rng.random() > epsilon:
        return int(rng.integers(len(q)))
    return int(np.argmax(q))
''',
        # ignores the generator it was given
        "global_random": '''
import random as _random
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    if _random.random() < epsilon:
        return _random.randrange(len(q))
    return int(np.argmax(q))
''',
        # the worst arm instead of the best
        "argmin": '''
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    if rng.random() < epsilon:
        return int(rng.integers(len(q)))
    return int(np.argmin(q))
''',
        "calls_reference": '''
import aiterms.bandits
def epsilon_greedy(q_values, epsilon, rng):
    return aiterms.bandits.epsilon_greedy(q_values, epsilon, rng)
''',
    },
    "reinforce_loss": {
        # the sign: minimising it makes good actions less likely
        "sign_flipped": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns - baseline
    return (advantages.detach() * logp).mean()
''',
        # the advantage is not detached: the policy loss also trains the baseline (the wrong way)
        "baseline_not_detached": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns - baseline
    return -(advantages * logp).mean()
''',
        # a sum instead of a mean
        "sum_not_mean": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns - baseline
    return -(advantages.detach() * logp).sum()
''',
        # the baseline is ignored
        "baseline_ignored": '''
def reinforce_loss(logp, returns, baseline=None):
    return -(returns.detach() * logp).mean()
''',
        # the baseline is added instead of subtracted
        "baseline_added": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns + baseline
    return -(advantages.detach() * logp).mean()
''',
        # a mean over time, then a sum over the envs
        "mean_over_time_only": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns - baseline
    return -(advantages.detach() * logp).mean(dim=0).sum()
''',
        # the loss of the probabilities, not of the log-probabilities
        "probabilities": '''
def reinforce_loss(logp, returns, baseline=None):
    advantages = returns if baseline is None else returns - baseline
    return -(advantages.detach() * logp.exp()).mean()
''',
        "calls_reference": '''
from aiterms import reinforce
def reinforce_loss(logp, returns, baseline=None):
    return reinforce.reinforce_loss(logp, returns, baseline)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
