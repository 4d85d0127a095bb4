"""aiterms.games: tic-tac-toe, connect-four and exact negamax."""
from __future__ import annotations

import itertools

import pytest

from aiterms.games import ConnectFour, TicTacToe, best_moves, negamax


def reachable(state, seen):
    if state.key() in seen:
        return
    seen[state.key()] = state
    for m in state.legal_moves():
        reachable(state.play(m), seen)


def plain_minimax(state) -> float:
    """The obvious oracle: no memo, no pruning, the value for the player to move."""
    if state.is_terminal():
        return state.value(state.player)
    return max(-plain_minimax(state.play(m)) for m in state.legal_moves())


def test_tic_tac_toe_rules_by_hand():
    s = TicTacToe.from_string("xx." "oo." "...")
    assert s.player == 0 and s.legal_moves() == [2, 5, 6, 7, 8]
    won = s.play(2)
    assert won.is_terminal() and won.winner == 0 and won.value(0) == 1 and won.value(1) == -1
    assert won.legal_moves() == [] and won.to_string() == "xxxoo...."
    draw = TicTacToe.from_string("xoxxooox.").play(8)
    assert draw.is_terminal() and draw.winner is None and draw.value(0) == 0
    diag = TicTacToe.from_string("x.o" ".xo" "...").play(8)
    assert diag.winner == 0
    assert repr(s) == "TicTacToe.from_string('xx.oo....')" and str(s) == "xx.\noo.\n..."


def test_tic_tac_toe_has_5478_positions_and_is_a_draw():
    seen = {}
    reachable(TicTacToe(), seen)
    assert len(seen) == 5478  # the known number of legal tic-tac-toe positions
    assert sum(s.is_terminal() for s in seen.values()) == 958
    memo = {}
    assert negamax(TicTacToe(), memo) == 0.0
    assert best_moves(TicTacToe(), memo) == list(range(9))  # every first move draws with perfect play


def test_negamax_matches_plain_minimax():
    seen = {}
    reachable(TicTacToe(), seen)
    states = [s for s in seen.values() if not s.is_terminal() and len(s.legal_moves()) <= 5]
    memo = {}
    for s in states[::4]:
        assert negamax(s, memo) == plain_minimax(s)
        assert best_moves(s, memo) == [m for m in s.legal_moves() if -plain_minimax(s.play(m)) == plain_minimax(s)]


def test_best_moves_win_and_block():
    assert best_moves(TicTacToe.from_string("xx.oo....")) == [2]          # win now
    assert best_moves(TicTacToe.from_string("xx..o....")) == [2]          # o must block
    assert best_moves(TicTacToe.from_string("x...o...x")) == [1, 3, 5, 7]  # a corner loses to a fork


def test_connect_four_lines():
    assert ConnectFour.from_moves([0, 1, 0, 1, 0, 1, 0]).winner == 0          # vertical
    assert ConnectFour.from_moves([0, 0, 1, 1, 2, 2, 3]).winner == 0          # horizontal
    assert ConnectFour.from_moves([0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3]).winner == 0  # diagonal /
    assert ConnectFour.from_moves([3, 2, 2, 1, 1, 0, 1, 0, 0, 6, 0]).winner == 0  # diagonal \
    assert ConnectFour.from_moves([6, 0, 6, 1, 6, 2, 5, 3]).winner == 1       # o wins along the bottom
    # no wrap-around: three at the top of column 0 and one at the bottom of column 1 is not a line
    s = ConnectFour.from_moves([0, 1, 0, 2, 0, 3])
    assert s.winner is None and not s.is_terminal()
    s = ConnectFour.from_moves([0, 0, 0, 0, 0, 0])  # column 0 full, colours alternating: no line
    assert s.winner is None and s.legal_moves() == [1, 2, 3, 4, 5, 6]


def test_connect_four_full_board_is_a_draw_and_negamax_near_the_end():
    # columns filled in an order that never makes four in a row
    order = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
             4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]
    s = ConnectFour()
    for i, m in enumerate(order):
        assert not s.is_terminal(), f"the game ended early at move {i}"
        if len(order) - i == 8:
            assert negamax(s) == plain_minimax(s)
        s = s.play(m)
    assert s.is_terminal() and s.winner is None and s.legal_moves() == []


@pytest.mark.parametrize("game, bad", [(TicTacToe(), 9), (TicTacToe(), -1), (TicTacToe(), True), (TicTacToe(), "3"),
                                       (ConnectFour(), 7), (ConnectFour(), 2.0)])
def test_bad_moves(game, bad):
    with pytest.raises(ValueError, match="move"):
        game.play(bad)


def test_taken_cells_full_columns_and_finished_games():
    with pytest.raises(ValueError, match="taken"):
        TicTacToe().play(4).play(4)
    full = ConnectFour.from_moves([0] * 6)
    with pytest.raises(ValueError, match="full"):
        full.play(0)
    over = TicTacToe.from_string("xxxoo....")
    with pytest.raises(ValueError, match="over"):
        over.play(5)
    with pytest.raises(ValueError, match="over"):
        best_moves(over)
    with pytest.raises(ValueError, match="over"):
        ConnectFour.from_moves([0, 1, 0, 1, 0, 1, 0]).play(3)


@pytest.mark.parametrize("text", ["xx", "xxx......", "ooo.xx.xx", "xxxooo...", "xxxoo.o..", "abc......", 3])
def test_impossible_positions(text):
    with pytest.raises(ValueError, match="text"):
        TicTacToe.from_string(text)


def test_states_are_immutable_and_hashable():
    s = TicTacToe()
    t = s.play(4)
    assert s.legal_moves() == list(range(9)) and s != t
    assert len({TicTacToe().play(0).play(4), TicTacToe().play(0).play(4)}) == 1
    assert all(TicTacToe.from_string(p.to_string()) == p for p in
               [TicTacToe().play(a).play(b) for a, b in itertools.permutations(range(9), 2)])
