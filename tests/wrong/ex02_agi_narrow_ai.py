"""Plausible wrong answers to exercise 2 (AGI and narrow AI), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

WRONG = {
    "cross_returns": {
        # every episode starts from the same state: seed instead of seed + e
        "same_seed_every_episode": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(policies), len(envs)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=seed)
                done = False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    total += reward
                    done = terminated or truncated
            R[i, j] = total / episodes
    return R
''',
        # the reward of the step that ends the episode is dropped
        "last_reward_dropped": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(policies), len(envs)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=seed + e)
                while True:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    if terminated or truncated:
                        break
                    total += reward
            R[i, j] = total / episodes
    return R
''',
        # the sum over the episodes, not the mean
        "sum_not_mean": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(policies), len(envs)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            for e in range(episodes):
                obs, _ = env.reset(seed=seed + e)
                done = False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    R[i, j] += reward
                    done = terminated or truncated
    return R
''',
        # rows are tasks and columns policies
        "transposed": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(envs), len(policies)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=seed + e)
                done = False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    total += reward
                    done = terminated or truncated
            R[j, i] = total / episodes
    return R
''',
        # the policy always sees the first observation of the episode
        "stale_observation": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(policies), len(envs)))
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=seed + e)
                done = False
                while not done:
                    _, reward, terminated, truncated, _ = env.step(policy(obs))
                    total += reward
                    done = terminated or truncated
            R[i, j] = total / episodes
    return R
''',
        # one seed sequence runs on across policies and tasks: the policies do not meet the same start states
        "seeds_not_paired": '''
def cross_returns(policies, envs, episodes=10, seed=0):
    R = np.zeros((len(policies), len(envs)))
    s = seed
    for i, policy in enumerate(policies):
        for j, env in enumerate(envs):
            total = 0.0
            for e in range(episodes):
                obs, _ = env.reset(seed=s)
                s += 1
                done = False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(policy(obs))
                    total += reward
                    done = terminated or truncated
            R[i, j] = total / episodes
    return R
''',
        "calls_reference": '''
from aiterms.transfer import cross_returns as _cross_returns
def cross_returns(policies, envs, episodes=10, seed=0):
    return _cross_returns(policies, envs, episodes, seed)
''',
    },
    "transfer_matrix": {
        # every row divided by its own policy's advantage over random (row i's diagonal) instead of column j's
        "row_scale": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    K = len(r)
    T = np.full((K, K), np.nan)
    for i in range(K):
        for j in range(K):
            if R[j, j] > r[j]:
                T[i, j] = (R[i, j] - r[j]) / (R[i, i] - r[i])
    return T
''',
        # no random baseline: the return as a fraction of the own policy's return
        "ratio_to_own": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    T = R / np.diag(R)[None, :]
    T[:, np.diag(R) <= r] = np.nan
    return T
''',
        # only a zero scale is caught: an own policy worse than random gives a column with flipped signs
        "negative_scale_kept": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    scale = np.diag(R) - r
    T = np.full(R.shape, np.nan)
    for j in range(len(r)):
        if scale[j] != 0:
            T[:, j] = (R[:, j] - r[j]) / scale[j]
    return T
''',
        # clipped to [0, 1]: "worse than random" and "better than the own policy" disappear
        "clipped": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    scale = np.diag(R) - r
    T = np.full(R.shape, np.nan)
    for j in range(len(r)):
        if scale[j] > 0:
            T[:, j] = np.clip((R[:, j] - r[j]) / scale[j], 0.0, 1.0)
    return T
''',
        # one random return for every task (their mean)
        "mean_random": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    base = r.mean()
    T = (R - base) / (np.diag(R) - base)[None, :]
    T[:, np.diag(R) <= r] = np.nan
    return T
''',
        # rows scaled instead of columns: the policy's own scale used for every task
        "transposed": '''
def transfer_matrix(returns, random_returns):
    R = np.asarray(returns, dtype=float)
    r = np.asarray(random_returns, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or r.shape != (R.shape[0],):
        raise ValueError("bad shapes")
    scale = np.diag(R) - r
    T = (R - r[:, None]) / scale[:, None]
    T[scale <= 0, :] = np.nan
    return T
''',
        "calls_reference": '''
import aiterms.transfer
def transfer_matrix(returns, random_returns):
    return aiterms.transfer.transfer_matrix(returns, random_returns)
''',
    },
    "generalisation_gap": {
        # the mean over the whole row, the own task included
        "diagonal_in_mean": '''
def generalisation_gap(matrix):
    T = np.asarray(matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError("bad shape")
    return np.array([T[i, i] - np.nanmean(T[i]) for i in range(len(T))])
''',
        # the column: how well the other policies do on task i, not how policy i does elsewhere
        "column_not_row": '''
def generalisation_gap(matrix):
    T = np.asarray(matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError("bad shape")
    K = len(T)
    gap = np.full(K, np.nan)
    for i in range(K):
        others = [T[j, i] for j in range(K) if j != i and not math.isnan(T[j, i])]
        if others:
            gap[i] = T[i, i] - sum(others) / len(others)
    return gap
''',
        # a plain mean: one nan anywhere in the row makes the gap nan
        "nan_propagates": '''
def generalisation_gap(matrix):
    T = np.asarray(matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError("bad shape")
    K = len(T)
    return np.array([T[i, i] - np.mean([T[i, j] for j in range(K) if j != i]) for i in range(K)])
''',
        # nan counted as 0 instead of left out
        "nan_as_zero": '''
def generalisation_gap(matrix):
    T = np.asarray(matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError("bad shape")
    K = len(T)
    off = np.nan_to_num(T)
    return np.array([T[i, i] - np.mean([off[i, j] for j in range(K) if j != i]) for i in range(K)])
''',
        # the worst other task instead of the mean
        "worst_case": '''
def generalisation_gap(matrix):
    T = np.asarray(matrix, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError("bad shape")
    K = len(T)
    gap = np.full(K, np.nan)
    for i in range(K):
        others = [T[i, j] for j in range(K) if j != i and not math.isnan(T[i, j])]
        if others:
            gap[i] = T[i, i] - min(others)
    return gap
''',
        "calls_reference": '''
from aiterms import transfer
def generalisation_gap(matrix):
    return transfer.generalisation_gap(matrix)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
