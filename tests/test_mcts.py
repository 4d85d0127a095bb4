"""aiterms.mcts: UCB selection, backup, UCT with rollouts, solver, PUCT, value functions, root parallelisation."""
from __future__ import annotations

import math
import random

import pytest

from aiterms.games import ConnectFour, TicTacToe, best_moves, negamax
from aiterms.mcts import (MCTSConfig, backup, best_of_stats, choose_move, puct_score, root_parallel, root_stats,
                          search, select_ucb, ucb_score)


def test_ucb_by_hand():
    assert ucb_score(1.0, 2, 6, 1.4) == pytest.approx(0.5 + 1.4 * math.sqrt(math.log(6) / 2))
    assert ucb_score(0.0, 0, 6, 1.4) == math.inf
    assert puct_score(0.0, 0, 9, 0.5, 2.0) == pytest.approx(2.0 * 0.5 * 3 / 1)
    assert puct_score(3.0, 4, 16, 0.25, 1.0) == pytest.approx(0.75 + 0.25 * 4 / 5)
    assert select_ucb([1.0, 3.0], [2, 4], 6, 1.4) == 0      # 1.83 > 1.69
    assert select_ucb([1.0, 3.0], [2, 4], 6, 0.1) == 1      # exploitation
    assert select_ucb([2.0, 0.0, 5.0], [3, 0, 5], 8, 1.4) == 1
    assert select_ucb([3.0, 3.0], [5, 5], 10, 1.4) == 0     # ties: lowest index
    assert select_ucb([2.0, -0.5], [4, 1], 5, 1.0) == 0     # sqrt(ln N / n), not ln N / n


def test_select_ucb_matches_the_obvious_argmax():
    rng = random.Random(0)
    for _ in range(300):
        k = rng.randint(1, 6)
        visits = [rng.randint(1, 30) for _ in range(k)]
        values = [rng.uniform(-1, 1) * n for n in visits]
        parent, c = sum(visits) + rng.randint(0, 3), rng.uniform(0.1, 3)
        scores = [ucb_score(w, n, parent, c) for w, n in zip(values, visits)]
        assert select_ucb(values, visits, parent, c) == scores.index(max(scores))


def test_backup_by_hand():
    assert backup([0.0, 0.0, 0.0], [2, 1, 0], 1.0) == ([1.0, -1.0, 1.0], [3, 2, 1])
    assert backup([2.0, -1.0], [5, 3], -1.0) == ([3.0, -2.0], [6, 4])
    assert backup([0.5], [1], 0.25) == ([0.75], [2])
    values, visits = [1.0, 2.0], [3, 4]
    backup(values, visits, 1.0)
    assert values == [1.0, 2.0] and visits == [3, 4]  # the inputs are not changed


@pytest.mark.parametrize("call, match", [
    (lambda: select_ucb([], [], 1, 1.0), "same length"), (lambda: select_ucb([1.0], [1, 2], 3, 1.0), "same length"),
    (lambda: select_ucb([1.0], [1], 1, 0.0), "c"), (lambda: select_ucb([1.0], [1], 1, -2), "c"),
    (lambda: select_ucb([1.0], [-1], 1, 1.0), "visits"), (lambda: select_ucb([1.0, 1.0], [2, 2], 3, 1.0), "parent"),
    (lambda: backup([], [], 1.0), "same length"), (lambda: backup([0.0], [0, 0], 1.0), "same length"),
    (lambda: MCTSConfig(simulations=0), "simulations"), (lambda: MCTSConfig(simulations=2.5), "simulations"),
    (lambda: MCTSConfig(c=0), "c"), (lambda: MCTSConfig(c=-1.0), "c"), (lambda: MCTSConfig(max_seconds=0), "max_seconds"),
    (lambda: choose_move(TicTacToe(), 0), "simulations"), (lambda: choose_move(TicTacToe(), 10, c=0.0), "c"),
    (lambda: choose_move(TicTacToe.from_string("xxxoo...."), 10), "over"),
    (lambda: search(TicTacToe(), {"simulations": 3}), "config"),
    (lambda: best_of_stats([]), "stats"), (lambda: root_parallel(TicTacToe(), MCTSConfig(), []), "seeds"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def slow_uct(state, simulations, c, seed):
    """The oracle: the same algorithm written with the pure functions and explicit paths (same random draws)."""
    rng = random.Random(seed)
    nodes = [{"state": state, "children": [], "untried": state.legal_moves(), "W": 0.0, "N": 0, "move": None}]
    for _ in range(simulations):
        path = [0]
        while not nodes[path[-1]]["untried"] and nodes[path[-1]]["children"]:
            kids = nodes[path[-1]]["children"]
            i = select_ucb([nodes[k]["W"] for k in kids], [nodes[k]["N"] for k in kids], nodes[path[-1]]["N"], c)
            path.append(kids[i])
        leaf = nodes[path[-1]]
        if leaf["untried"]:
            m = leaf["untried"].pop(int(rng.random() * len(leaf["untried"])))
            s = leaf["state"].play(m)
            nodes.append({"state": s, "children": [], "untried": s.legal_moves(), "W": 0.0, "N": 0, "move": m})
            leaf["children"].append(len(nodes) - 1)
            path.append(len(nodes) - 1)
        s = nodes[path[-1]]["state"]
        mover = 1 - s.player
        while not s.is_terminal():
            moves = s.legal_moves()
            s = s.play(moves[int(rng.random() * len(moves))])
        values, visits = backup([nodes[k]["W"] for k in path], [nodes[k]["N"] for k in path], s.value(mover))
        for k, w, n in zip(path, values, visits):
            nodes[k]["W"], nodes[k]["N"] = w, n
    return {nodes[k]["move"]: (nodes[k]["N"], nodes[k]["W"]) for k in nodes[0]["children"]}


@pytest.mark.parametrize("state", [TicTacToe(), TicTacToe.from_string("x...o...."), ConnectFour.from_moves([3, 3])])
def test_search_matches_the_slow_oracle(state):
    root = search(state, MCTSConfig(simulations=300, c=1.4), seed=5)
    got = root.child_stats()
    expected = slow_uct(state, 300, 1.4, 5)
    assert got.keys() == expected.keys()
    for m in got:
        assert got[m][0] == expected[m][0] and got[m][1] == pytest.approx(expected[m][1])
    assert root.N == 300 == sum(n for n, _ in got.values())


def test_search_is_built_from_the_taught_functions(monkeypatch):
    """search() selects with select_ucb / puct_score and backs up with backup (what the exercise teaches is what
    runs): counted calls, and a changed select_ucb changes the tree."""
    import aiterms.mcts as mcts
    calls = {"select_ucb": 0, "backup": 0, "puct_score": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    for name in calls:
        monkeypatch.setattr(mcts, name, counting(name, getattr(mcts, name)))
    state = TicTacToe.from_string("x...o....")
    search(state, MCTSConfig(simulations=200), seed=0)
    assert calls["backup"] == 200 and calls["select_ucb"] > 100 and calls["puct_score"] == 0
    uniform = lambda s: {m: 1 / len(s.legal_moves()) for m in s.legal_moves()}  # noqa: E731
    search(state, MCTSConfig(simulations=50), seed=0, prior=uniform)
    assert calls["puct_score"] > 50 and calls["backup"] == 250
    before = search(state, MCTSConfig(simulations=200), seed=0).child_stats()
    monkeypatch.setattr(mcts, "select_ucb", lambda values, visits, parent_visits, c: len(values) - 1)
    assert search(state, MCTSConfig(simulations=200), seed=0).child_stats() != before


def test_same_seed_same_tree_and_other_seeds_differ():
    a = search(TicTacToe(), MCTSConfig(simulations=200), seed=1).child_stats()
    assert a == search(TicTacToe(), MCTSConfig(simulations=200), seed=1).child_stats()
    assert a != search(TicTacToe(), MCTSConfig(simulations=200), seed=2).child_stats()


def minimax_move(state, memo):
    return best_moves(state, memo)[0]


@pytest.mark.parametrize("solver", [False, True])
def test_never_loses_against_minimax_at_tic_tac_toe(solver):
    memo = {}
    for seed in range(3):
        for mcts_player in (0, 1):
            s = TicTacToe()
            while not s.is_terminal():
                if s.player == mcts_player:
                    move = choose_move(s, 1000, 1.4, seed=100 * seed + len(s.legal_moves()), solver=solver)
                else:
                    move = minimax_move(s, memo)
                s = s.play(move)
            assert s.value(mcts_player) == 0.0, f"MCTS (player {mcts_player}) lost:\n{s}"


def test_plays_the_winning_move_in_every_solvable_position():
    seen, stack = {}, [TicTacToe()]
    while stack:
        s = stack.pop()
        if s.key() not in seen:
            seen[s.key()] = s
            stack.extend(s.play(m) for m in s.legal_moves())
    memo = {}
    winnable = [s for s in seen.values() if not s.is_terminal() and negamax(s, memo) == 1.0]
    sample = random.Random(0).sample(winnable, 60)
    for i, s in enumerate(sample):
        assert choose_move(s, 400, 1.4, seed=i, solver=True) in best_moves(s, memo), s.to_string()


def test_solver_proves_wins_and_stops():
    s = TicTacToe.from_string("xx.oo....")
    root = search(s, MCTSConfig(simulations=1000, solver=True))
    assert root.proven == -1.0  # from the point of view of o, who "moved into" the root: lost
    assert root.N < 1000 and choose_move(s, 1000, solver=True) == 2


def test_beats_a_random_player_at_connect_four():
    for game in range(6):
        mcts_player, rng = game % 2, random.Random(game)
        s = ConnectFour()
        while not s.is_terminal():
            if s.player == mcts_player:
                move = choose_move(s, 200, 1.4, seed=game * 100 + s.moves_played)
            else:
                move = rng.choice(s.legal_moves())
            s = s.play(move)
        assert s.winner == mcts_player, f"game {game}: MCTS did not win\n{s}"


def test_value_function_and_priors():
    memo = {}
    s = TicTacToe.from_string("x...o...x")  # o must play an edge
    exact = lambda state: negamax(state, memo)  # noqa: E731 - a perfect value function
    root = search(s, MCTSConfig(simulations=40), seed=0, evaluate=exact)
    best = max(root.children, key=lambda ch: ch.N).move
    assert best in best_moves(s, memo)
    # PUCT: a prior on the one winning move finds it with a handful of simulations; uniform priors still work
    w = TicTacToe.from_string("xx.oo....")
    onehot = lambda state: {m: (1.0 if m == 2 else 0.0) for m in state.legal_moves()}  # noqa: E731
    root = search(w, MCTSConfig(simulations=5), prior=onehot)
    assert {ch.move: ch.N for ch in root.children}[2] == 5
    uniform = lambda state: {m: 1 / len(state.legal_moves()) for m in state.legal_moves()}  # noqa: E731
    root = search(w, MCTSConfig(simulations=300), prior=uniform, seed=1)
    assert max(root.children, key=lambda ch: ch.N).move == 2


def test_time_limit_stops_early():
    root = search(ConnectFour(), MCTSConfig(simulations=10**7, max_seconds=0.05))
    assert 0 < root.N < 10**7


def test_root_parallel_merges_visit_counts():
    s, config = ConnectFour.from_moves([3, 3, 2]), MCTSConfig(simulations=150)
    move, stats = root_parallel(s, config, seeds=[1, 2])
    assert stats == [root_stats(s, config, 1), root_stats(s, config, 2)]  # same seeds, same trees
    total = {m: stats[0][m][0] + stats[1][m][0] for m in stats[0]}
    assert move == max(sorted(total), key=total.get)
    assert best_of_stats([{0: (3, 0.0), 1: (5, 1.0)}, {0: (4, 0.0), 1: (1, 0.0)}]) == 0  # 7 > 6
