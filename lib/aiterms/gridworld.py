"""A small gridworld as a real ``gymnasium.Env``: the agent walks from a start cell to a goal, around holes.

``GridWorld()`` with no arguments is the course's standard 5x5 world (other chapters build it that way)::

    S . . . .        S start (0, 0), G goal (4, 4): reward +1, episode ends
    . H . H .        H hole: reward -1, episode ends
    . . . . .        every other step: reward ``step_reward`` (0 by default)
    . H . . H        the episode is truncated after ``max_steps`` steps
    . . . . G

Actions (``Discrete(4)``): 0 up, 1 right, 2 down, 3 left; a move into the border leaves the agent where it is. With
``slip > 0`` the world is stochastic: with probability ``slip`` the action is replaced by a uniformly random one
(drawn from the env's seeded ``np_random``). Observations (``Box``, float32): ``obs="onehot"`` (default) a one-hot
vector of the agent's cell, shape ``(rows * cols,)``; ``obs="coords"`` its ``(row, col)`` scaled to [0, 1], shape
``(2,)``. :meth:`GridWorld.transitions` gives the exact model, for :func:`value_iteration`
(the Bellman optimality update, Sutton & Barto 2018, section 4.4).

The env is registered as ``"aiterms/GridWorld-v0"``, so ``gymnasium.make_vec("aiterms/GridWorld-v0", num_envs=8)``
works once ``aiterms.gridworld`` is imported.
"""
from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

ACTIONS = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  # up, right, down, left as (d_row, d_col)
ARROWS = "↑→↓←"
DEFAULT_HOLES = ((1, 1), (1, 3), (3, 1), (3, 4))


class GridWorld(gym.Env):
    """A rows x cols grid with a start, a goal and holes (see the module docstring for the defaults)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, rows: int = 5, cols: int = 5, start: Sequence[int] = (0, 0), goal: Sequence[int] | None = None,
                 holes: Sequence[Sequence[int]] = DEFAULT_HOLES, slip: float = 0.0, step_reward: float = 0.0,
                 goal_reward: float = 1.0, hole_reward: float = -1.0, max_steps: int = 50, obs: str = "onehot",
                 render_mode: str | None = None):
        if rows < 1 or cols < 1 or rows * cols < 2:
            raise ValueError(f"rows and cols must make at least 2 cells, got {rows}x{cols}")
        goal = (rows - 1, cols - 1) if goal is None else goal
        self.start, self.goal = (int(start[0]), int(start[1])), (int(goal[0]), int(goal[1]))
        self.holes = frozenset((int(r), int(c)) for r, c in holes)
        for name, cell in [("start", self.start), ("goal", self.goal), *[("holes", h) for h in self.holes]]:
            if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
                raise ValueError(f"{name} must be a cell of the {rows}x{cols} grid, got {cell}")
        if self.start == self.goal or self.start in self.holes or self.goal in self.holes:
            raise ValueError("start, goal and holes must be different cells")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if obs not in ("onehot", "coords"):
            raise ValueError(f"obs must be 'onehot' or 'coords', got {obs!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.rows, self.cols, self.slip, self.max_steps, self.obs_mode = rows, cols, slip, max_steps, obs
        self.step_reward, self.goal_reward, self.hole_reward = step_reward, goal_reward, hole_reward
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(4)
        shape = (rows * cols,) if obs == "onehot" else (2,)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape, dtype=np.float32)
        self.pos, self.steps = self.start, 0

    # -------------------------------------------------------------------------------------------- the model
    @property
    def num_states(self) -> int:
        return self.rows * self.cols

    def state(self, cell: Sequence[int]) -> int:
        """Index of a cell, ``row * cols + col``."""
        return int(cell[0]) * self.cols + int(cell[1])

    def cell(self, state: int) -> tuple[int, int]:
        return divmod(int(state), self.cols)

    def is_terminal(self, cell: Sequence[int]) -> bool:
        return tuple(cell) == self.goal or tuple(cell) in self.holes

    def move(self, cell: Sequence[int], action: int) -> tuple[int, int]:
        """The cell reached from ``cell`` by ``action`` without slipping (the border blocks)."""
        dr, dc = ACTIONS[int(action)]
        return min(max(cell[0] + dr, 0), self.rows - 1), min(max(cell[1] + dc, 0), self.cols - 1)

    def reward(self, cell: Sequence[int]) -> float:
        """The reward for arriving in ``cell``."""
        cell = tuple(cell)
        return self.goal_reward if cell == self.goal else self.hole_reward if cell in self.holes else self.step_reward

    def transitions(self, state: int, action: int) -> list[tuple[float, int, float, bool]]:
        """``[(probability, next_state, reward, terminated), ...]`` of one (state, action): the exact dynamics."""
        out: dict[int, list] = {}
        probs = [(1.0 - self.slip + self.slip / 4 if a == action else self.slip / 4) for a in range(4)]
        for a, p in enumerate(probs):
            if p == 0:
                continue
            nxt = self.move(self.cell(state), a)
            s = self.state(nxt)
            if s in out:
                out[s][0] += p
            else:
                out[s] = [p, s, self.reward(nxt), self.is_terminal(nxt)]
        return [tuple(v) for v in out.values()]

    def observe(self, cell: Sequence[int]) -> np.ndarray:
        if self.obs_mode == "onehot":
            x = np.zeros(self.num_states, dtype=np.float32)
            x[self.state(cell)] = 1.0
            return x
        return np.array([cell[0] / max(self.rows - 1, 1), cell[1] / max(self.cols - 1, 1)], dtype=np.float32)

    # -------------------------------------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos, self.steps = self.start, 0
        return self.observe(self.pos), {"cell": self.pos}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move (0 up, 1 right, 2 down, 3 left; with probability ``slip`` a random direction instead).

        Returns gymnasium's ``(observation, reward, terminated, truncated, info)``: ``terminated`` at the goal or in a
        hole, ``truncated`` after ``max_steps`` moves, ``info["cell"]`` the new ``(row, column)``.
        """
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be in 0..3, got {action}")
        if self.slip > 0 and self.np_random.random() < self.slip:
            action = int(self.np_random.integers(4))
        self.pos = self.move(self.pos, action)
        self.steps += 1
        terminated = self.is_terminal(self.pos)
        truncated = not terminated and self.steps >= self.max_steps
        return self.observe(self.pos), float(self.reward(self.pos)), terminated, truncated, {"cell": self.pos}

    def render(self) -> str:
        """The grid as text (A agent, S start, G goal, H hole)."""
        return self.draw()

    def draw(self, marks: dict[tuple[int, int], str] | None = None) -> str:
        """The grid as text, with optional per-cell marks (e.g. policy arrows) on the free cells."""
        lines = []
        for r in range(self.rows):
            row = []
            for c in range(self.cols):
                cell = (r, c)
                ch = "G" if cell == self.goal else "H" if cell in self.holes else (marks or {}).get(cell, ".")
                if cell == self.pos and marks is None:
                    ch = "A"
                row.append(ch)
            lines.append(" ".join(row))
        return "\n".join(lines)


def value_iteration(env: GridWorld, gamma: float = 0.9, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Optimal state values and a greedy policy by value iteration: ``V(s) <- max_a sum_s' p (r + gamma V(s'))``
    (0 after a terminal transition). Returns ``values: (rows * cols,)`` and ``policy: (rows * cols,)`` (an action per
    state; ties: the lowest action). Sutton & Barto 2018, section 4.4. Ignores ``max_steps``.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    n = env.num_states
    model = [[env.transitions(s, a) for a in range(4)] for s in range(n)]
    values = np.zeros(n)
    while True:
        q = np.array([[sum(p * (r + (0.0 if done else gamma * values[s2])) for p, s2, r, done in model[s][a])
                       for a in range(4)] for s in range(n)])
        for s in range(n):
            if env.is_terminal(env.cell(s)):
                q[s] = 0.0
        new = q.max(axis=1)
        if np.abs(new - values).max() < tol:
            return new, q.argmax(axis=1)
        values = new


def policy_arrows(env: GridWorld, policy: Sequence[int]) -> str:
    """A policy (an action per state) drawn as arrows on the grid."""
    return env.draw({env.cell(s): ARROWS[int(a)] for s, a in enumerate(policy) if not env.is_terminal(env.cell(s))})


if "aiterms/GridWorld-v0" not in gym.registry:
    gym.register("aiterms/GridWorld-v0", entry_point="aiterms.gridworld:GridWorld")
