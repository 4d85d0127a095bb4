"""Monte Carlo tree search (MCTS): UCT, an optional solver for proven wins and losses, PUCT with priors, and root
parallelisation across processes.

MCTS grows a search tree one simulation at a time {cite}`kocsis2006bandit` {cite}`browne2012survey`. Each simulation
has four phases:

1. **selection**: from the root, walk down through fully expanded nodes, each time taking the child with the best
   UCT score (UCB applied to trees, Kocsis and Szepesvari 2006)::

       UCT(child) = W / N + c * sqrt(ln(N_parent) / N)          (an unvisited child goes first)

   where ``W`` is the sum of the values backed up through the child and ``N`` its visit count; ``W / N`` exploits,
   the square root explores, and ``c > 0`` weighs the two. Auer et al.'s UCB1 {cite}`auer2002finite` is the case
   ``c = sqrt(2)`` for rewards in [0, 1]; UCT leaves ``c`` as a constant to tune (its values here are in [-1, 1]).
   :func:`select_ucb` is this rule; :func:`search` calls it;
2. **expansion**: add one untried move's child to the tree;
3. **evaluation**: a random **rollout** (play random moves to the end of the game) or a **value function**
   ``evaluate(state)`` (the value for the player to move, in [-1, 1]);
4. **backup** (:func:`backup`): add 1 to ``N`` and the value to ``W`` of every node on the path. Every node stores
   ``W`` from the point of view of the player who made the move into it (the player choosing among the siblings), so
   the value changes sign at every level: two players, zero sum.

The move played at the root is the most visited child. Options:

* ``solver=True`` (MCTS-Solver {cite}`winands2008solver`): a terminal node's value is *proven*; a node with a child proven
  to win for the player choosing there is a proven win for that player, and a node whose children are all proven is
  proven with the best of them. Proven wins are taken at once and proven losses avoided;
* ``prior(state) -> {move: p}`` switches to **PUCT** (AlphaZero {cite}`silver2018alphazero`): every child is created at
  expansion with its prior ``P``, and selection maximises ``Q + c * P * sqrt(N_parent) / (1 + N)`` (``Q = W / N``,
  0 for an unvisited child).

A game state is any object with the interface of :mod:`aiterms.games` (``player``, ``legal_moves()``, ``play(move)``,
``is_terminal()``, ``value(player)``).
"""
from __future__ import annotations

import math
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Callable, Sequence

__all__ = ["MCTSConfig", "Node", "ucb_score", "puct_score", "select_ucb", "backup", "rollout", "search",
           "choose_move", "root_stats", "root_parallel", "best_of_stats"]


@dataclass(frozen=True)
class MCTSConfig:
    """Hyperparameters of one search."""

    simulations: int = 200          # simulations per move (> 0)
    c: float = 1.4                  # exploration constant (> 0); sqrt(2) gives UCB1 for rewards in [0, 1]
    solver: bool = False            # prove wins and losses (MCTS-Solver)
    max_seconds: float | None = None  # stop early when this much wall time is spent (anytime search)

    def __post_init__(self):
        _check_simulations(self.simulations)
        _check_c(self.c)
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds!r}")


def _check_simulations(simulations: Any) -> None:
    if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations <= 0:
        raise ValueError(f"simulations must be a positive int, got {simulations!r}")


def _check_c(c: Any) -> None:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0 or math.isinf(c):
        raise ValueError(f"c (the exploration constant) must be a positive finite number, got {c!r}")


# ------------------------------------------------------------------------------------------------ pure functions
def ucb_score(value_sum: float, visits: int, parent_visits: int, c: float) -> float:
    """The UCT score of a child: ``W / N + c * sqrt(ln(N_parent) / N)``; ``inf`` for an unvisited child (``N = 0``)."""
    if visits == 0:
        return math.inf
    return value_sum / visits + c * math.sqrt(math.log(parent_visits) / visits)


def puct_score(value_sum: float, visits: int, parent_visits: int, prior: float, c: float) -> float:
    """PUCT of a child (AlphaZero): ``Q + c * P * sqrt(N_parent) / (1 + N)`` with ``Q = W / N`` (0 if ``N = 0``)."""
    q = value_sum / visits if visits else 0.0
    return q + c * prior * math.sqrt(parent_visits) / (1 + visits)


def select_ucb(values: Sequence[float], visits: Sequence[int], parent_visits: int, c: float) -> int:
    """The index of the child that UCT selects: the first unvisited child if any, else ``argmax_i UCB_i``.

    ``UCT_i = values[i] / visits[i] + c * sqrt(ln(parent_visits) / visits[i])`` (:func:`ucb_score`; ties: the lowest
    index). :func:`search` selects with this function.

    Args:
        values: ``W_i`` of each child, from the point of view of the player choosing (length K >= 1).
        visits: ``N_i >= 0`` of each child (length K).
        parent_visits: ``N`` of the parent, at least ``sum(visits)`` and at least 1.
        c: the exploration constant, > 0.
    Raises ValueError for empty or mismatched lists, negative visits, ``parent_visits < sum(visits)`` or ``c <= 0``.
    """
    if len(values) == 0 or len(values) != len(visits):
        raise ValueError(f"values and visits must be non-empty lists of the same length, got lengths "
                         f"{len(values)} and {len(visits)}")
    _check_c(c)
    if any(n < 0 for n in visits):
        raise ValueError(f"visits must be >= 0, got {list(visits)}")
    if parent_visits < max(1, sum(visits)):
        raise ValueError(f"parent_visits must be at least max(1, sum(visits)) = {max(1, sum(visits))}, "
                         f"got {parent_visits}")
    best, best_score = 0, -math.inf
    for i, (w, n) in enumerate(zip(values, visits)):
        if n == 0:
            return i
        score = ucb_score(w, n, parent_visits, c)
        if score > best_score:
            best, best_score = i, score
    return best


def backup(values: Sequence[float], visits: Sequence[int], leaf_value: float) -> tuple[list[float], list[int]]:
    """Back a simulation's value up a path (root first, leaf last); returns the new ``(values, visits)``.

    ``values[i]`` is ``W`` of the i-th node from the point of view of the player who moved into it, and
    ``leaf_value`` is the simulation's result from the point of view of the player who moved into the leaf. Players
    alternate along the path, so::

        N_i <- N_i + 1,    W_i <- W_i + (-1) ** (L - 1 - i) * leaf_value      (L = len(values))

    :func:`search` backs every simulation up with this function.

    Raises ValueError for empty or mismatched lists.
    """
    if len(values) == 0 or len(values) != len(visits):
        raise ValueError(f"values and visits must be non-empty lists of the same length, got lengths "
                         f"{len(values)} and {len(visits)}")
    new_values, new_visits = list(values), list(visits)
    v = leaf_value
    for i in reversed(range(len(values))):
        new_values[i] += v
        new_visits[i] += 1
        v = -v
    return new_values, new_visits


def rollout(state, rng: random.Random) -> Any:
    """Play uniformly random legal moves from ``state`` to the end of the game; returns the terminal state."""
    while not state.is_terminal():
        moves = state.legal_moves()
        state = state.play(moves[int(rng.random() * len(moves))])
    return state


# ------------------------------------------------------------------------------------------------ the tree
class Node:
    """A node of the search tree: ``W``, ``N`` from the point of view of the player who moved into it."""

    __slots__ = ("state", "parent", "move", "children", "untried", "N", "W", "P", "proven")

    def __init__(self, state, parent: Node | None = None, move: int | None = None, prior: float = 1.0):
        self.state, self.parent, self.move = state, parent, move
        self.children: list[Node] = []
        self.untried: list[int] = state.legal_moves()
        self.N, self.W, self.P = 0, 0.0, prior
        # proven value for the player who moved into the node (+1 win, 0 draw, -1 loss), None if unknown
        self.proven: float | None = state.value(1 - state.player) if state.is_terminal() else None

    def child_stats(self) -> dict[int, tuple[int, float]]:
        """``{move: (N, W)}`` of the children (W from the point of view of this node's player to move)."""
        return {ch.move: (ch.N, ch.W) for ch in self.children}


def _update_proof(node: Node) -> None:
    """MCTS-Solver: propagate proven values upwards from ``node``'s children."""
    while node is not None and node.proven is None:
        if any(ch.proven == 1.0 for ch in node.children):  # the player to move here can win
            node.proven = -1.0
        elif not node.untried and node.children and all(ch.proven is not None for ch in node.children):
            node.proven = -max(ch.proven for ch in node.children)
        else:
            return
        node = node.parent


def _select_child(node: Node, c: float, puct: bool, solver: bool) -> Node:
    """Selection at ``node``: :func:`select_ucb` (UCT) or the highest :func:`puct_score` over the children, after
    the solver has taken a proven win at once and set proven losses aside."""
    children = node.children
    if solver:
        for ch in children:
            if ch.proven == 1.0:
                return ch
        children = [ch for ch in children if ch.proven != -1.0]
        if not children:
            return node.children[0]  # every child a proven loss: any of them
    if puct:
        scores = [puct_score(ch.W, ch.N, node.N, ch.P, c) for ch in children]
        return children[max(range(len(scores)), key=scores.__getitem__)]  # ties: the first
    return children[select_ucb([ch.W for ch in children], [ch.N for ch in children], node.N, c)]


def _backup_path(leaf: Node, leaf_value: float) -> None:
    """Phase 4: :func:`backup` on the ``W`` and ``N`` of the path from the root to ``leaf``, written back."""
    path = []
    node: Node | None = leaf
    while node is not None:
        path.append(node)
        node = node.parent
    path.reverse()
    values, visits = backup([n.W for n in path], [n.N for n in path], leaf_value)
    for n, w, k in zip(path, values, visits):
        n.W, n.N = w, k


def search(state, config: MCTSConfig = MCTSConfig(), seed: int = 0, *,
           evaluate: Callable[[Any], float] | None = None,
           prior: Callable[[Any], dict[int, float]] | None = None, progress: bool = False) -> Node:
    """Run MCTS from ``state``; returns the root :class:`Node` (its children hold the statistics).

    Args:
        state: a game state (see :mod:`aiterms.games`) that is not terminal.
        config: simulations, exploration constant ``c``, solver, optional wall-time limit.
        seed: seeds the random rollouts and the order of expansion (same seed, same tree).
        evaluate: ``evaluate(state) -> value in [-1, 1]`` for the player to move, used instead of a rollout.
        prior: ``prior(state) -> {move: probability}``: PUCT with these priors instead of UCT's score.
    Raises ValueError if the game is over.
    """
    if not isinstance(config, MCTSConfig):
        raise ValueError(f"config must be an MCTSConfig, got {type(config).__name__}")
    if state.is_terminal():
        raise ValueError("the game is over: there is no move to search for")
    rng = random.Random(seed)
    c, solver, puct = config.c, config.solver, prior is not None
    root = Node(state)
    deadline = None if config.max_seconds is None else time.perf_counter() + config.max_seconds
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.simulations, desc="MCTS")
    for sim in range(config.simulations):
        if deadline is not None and sim % 16 == 0 and time.perf_counter() > deadline and sim > 0:
            break
        if solver and root.proven is not None:
            break
        node = root
        # 1. selection
        while not node.untried and node.children:
            node = _select_child(node, c, puct, solver)
        # 2. expansion
        if node.untried and node.proven is None:
            if puct:
                p = prior(node.state)
                node.children = [Node(node.state.play(m), node, m, float(p.get(m, 0.0))) for m in node.untried]
                node.untried = []
                node = _select_child(node, c, puct, solver)
            else:
                m = node.untried.pop(int(rng.random() * len(node.untried)))
                child = Node(node.state.play(m), node, m)
                node.children.append(child)
                node = child
        # 3. evaluation, from the point of view of the player who moved into `node`
        s = node.state
        if s.is_terminal():
            v = s.value(1 - s.player)
        elif evaluate is not None:
            v = -float(evaluate(s))
        else:
            v = rollout(s, rng).value(1 - s.player)
        if solver and node.proven is not None:
            _update_proof(node.parent)
        # 4. backup
        _backup_path(node, v)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return root


def _best_child(root: Node) -> Node:
    if any(ch.proven == 1.0 for ch in root.children):
        return next(ch for ch in root.children if ch.proven == 1.0)
    candidates = [ch for ch in root.children if ch.proven != -1.0] or root.children
    return max(candidates, key=lambda ch: (ch.N, -ch.move))  # most visits, ties: the lowest move


def choose_move(state, simulations: int, c: float = 1.4, seed: int = 0, solver: bool = False) -> int:
    """The move UCT with random rollouts plays from ``state``: the most visited root child (ties: lowest move).

    Raises ValueError for a finished game, ``simulations <= 0`` or ``c <= 0``.
    """
    root = search(state, MCTSConfig(simulations=simulations, c=c, solver=solver), seed)
    return _best_child(root).move


# ------------------------------------------------------------------------------------------------ root parallelisation
def root_stats(state, config: MCTSConfig, seed: int) -> dict[int, tuple[int, float]]:
    """One independent search (one worker of root parallelisation): ``{move: (N, W)}`` of the root's children."""
    return search(state, config, seed).child_stats()


def best_of_stats(stats: Sequence[dict[int, tuple[int, float]]]) -> int:
    """Merge the root statistics of several searches (sum ``N`` per move) and return the most visited move."""
    if not stats:
        raise ValueError("stats must hold at least one search's root statistics")
    total: dict[int, int] = {}
    for s in stats:
        for move, (n, _) in s.items():
            total[move] = total.get(move, 0) + n
    return max(sorted(total), key=lambda m: total[m])


def root_parallel(state, config: MCTSConfig, seeds: Sequence[int], pool: ProcessPoolExecutor | None = None
                  ) -> tuple[int, list[dict[int, tuple[int, float]]]]:
    """Root parallelisation {cite}`chaslot2008parallel`: one independent search per seed, in parallel processes, then
    the root visit counts are summed and the most visited move is played.

    Args:
        seeds: one seed per search (different seeds: different trees).
        pool: a ``ProcessPoolExecutor`` to reuse (starting processes costs time); default: a new one with one worker
            per seed.
    Returns:
        ``(move, [root statistics of each search])``.
    """
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one seed")
    own = pool is None
    if own:
        pool = ProcessPoolExecutor(max_workers=len(seeds), mp_context=get_context("fork"))
    try:
        stats = list(pool.map(root_stats, [state] * len(seeds), [config] * len(seeds), list(seeds)))
    finally:
        if own:
            pool.shutdown()
    return best_of_stats(stats), stats
