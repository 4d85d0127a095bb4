"""Two-player board games for search: tic-tac-toe and connect-four, and exact negamax with memoisation.

A game state is immutable: :meth:`play` returns a new state. Players are ``0`` (moves first: ``x``) and ``1``
(``o``). Both games store the board as two bitboards (one int per player), so a state is cheap to copy and to hash,
which keeps random rollouts fast in pure Python.

The interface that :mod:`aiterms.mcts` uses:

* ``state.player``: the player to move (0 or 1); ``state.legal_moves()``: the moves, in increasing order;
* ``state.play(move)``: the next state (``ValueError`` for an illegal move or a finished game);
* ``state.is_terminal()``, ``state.winner`` (0, 1 or ``None`` for a draw or an unfinished game);
* ``state.value(player)``: +1 if ``player`` won, -1 if they lost, 0 for a draw (only for terminal states);
* ``state.key()``: a hashable key of the position (for memoisation).

Negamax (minimax written for zero-sum games, the value always from the point of view of the player to move)::

    V(s) = value(s, player(s))                     if s is terminal
    V(s) = max_{a legal} -V(play(s, a))            otherwise

The optimal moves are the ``a`` reaching that maximum. With a memo (a dict over ``key()``) every position is solved
once: tic-tac-toe has 5,478 reachable positions, so solving it from the empty board takes well under a second.
Connect-four has about 4.5e12, so exact negamax only runs there from positions close to the end.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["TicTacToe", "ConnectFour", "negamax", "best_moves", "GAMES"]


def _popcount(x: int) -> int:
    return bin(x).count("1")


# ------------------------------------------------------------------------------------------------ tic-tac-toe
_TTT_LINES = [sum(1 << i for i in line) for line in
              [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]]
_TTT_LINES_BY_CELL = [[m for m in _TTT_LINES if m >> i & 1] for i in range(9)]
_TTT_FULL = (1 << 9) - 1


class _TwoBoardGame:
    """What both games share: two bitboards (one per player), whose turn it is, the winner, and the game's end."""

    __slots__ = ()

    def is_terminal(self) -> bool:
        return self._over

    def value(self, player: int) -> float:
        """+1 if ``player`` won, -1 if they lost, 0 for a draw or an unfinished game."""
        return 0.0 if self.winner is None else (1.0 if self.winner == player else -1.0)

    def key(self) -> tuple[int, int]:
        return self.boards

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.boards == other.boards

    def __hash__(self) -> int:
        return hash(self.boards)


class TicTacToe(_TwoBoardGame):
    """Tic-tac-toe on a 3x3 board; cells ``0..8`` row by row (0 = top left). ``x`` (player 0) moves first."""

    __slots__ = ("boards", "player", "winner", "_over")
    name = "tic-tac-toe"
    num_moves = 9

    def __init__(self, boards: tuple[int, int] = (0, 0), player: int = 0, winner: int | None = None,
                 over: bool = False):
        self.boards, self.player, self.winner, self._over = boards, player, winner, over

    @classmethod
    def from_string(cls, text: str) -> TicTacToe:
        """A position from 9 characters ``x``, ``o``, ``.`` row by row (spaces, ``|`` and newlines ignored).

        The player to move follows from the counts (``x`` moves first). Raises ValueError for a position that cannot
        arise in play (wrong counts, both players with a line, or a line by the player who did not move last).
        """
        if not isinstance(text, str):
            raise ValueError(f"text must be a str of 9 cells 'x', 'o', '.', got {type(text).__name__}")
        cells = [c for c in text.lower() if c not in " |\n/"]
        if len(cells) != 9 or any(c not in "xo." for c in cells):
            raise ValueError(f"text must have 9 cells 'x', 'o' or '.', got {text!r}")
        x = sum(1 << i for i, c in enumerate(cells) if c == "x")
        o = sum(1 << i for i, c in enumerate(cells) if c == "o")
        nx, no = _popcount(x), _popcount(o)
        if nx - no not in (0, 1):
            raise ValueError(f"text {text!r} has {nx} x and {no} o: x moves first, so x must have as many or one more")
        xwin, owin = any(x & m == m for m in _TTT_LINES), any(o & m == m for m in _TTT_LINES)
        if (xwin and owin) or (xwin and nx == no) or (owin and nx > no):
            raise ValueError(f"text {text!r} cannot arise in play (a line by the wrong player)")
        winner = 0 if xwin else 1 if owin else None
        return cls((x, o), nx - no, winner, winner is not None or (x | o) == _TTT_FULL)

    def legal_moves(self) -> list[int]:
        if self._over:
            return []
        taken = self.boards[0] | self.boards[1]
        return [i for i in range(9) if not taken >> i & 1]

    def play(self, move: int) -> TicTacToe:
        if self._over:
            raise ValueError(f"the game is over, no move can be played:\n{self}")
        if isinstance(move, bool) or not isinstance(move, int) or not 0 <= move < 9:
            raise ValueError(f"move must be a cell 0..8, got {move!r}")
        bit = 1 << move
        if (self.boards[0] | self.boards[1]) & bit:
            raise ValueError(f"move {move} is illegal: the cell is taken")
        p = self.player
        mine = self.boards[p] | bit
        boards = (mine, self.boards[1]) if p == 0 else (self.boards[0], mine)
        won = any(mine & m == m for m in _TTT_LINES_BY_CELL[move])
        full = (boards[0] | boards[1]) == _TTT_FULL
        return TicTacToe(boards, 1 - p, p if won else None, won or full)

    def to_string(self) -> str:
        """The 9 cells as one line of ``x``, ``o``, ``.`` (the inverse of :meth:`from_string`)."""
        x, o = self.boards
        return "".join("x" if x >> i & 1 else "o" if o >> i & 1 else "." for i in range(9))

    def __str__(self) -> str:
        s = self.to_string()
        return "\n".join(s[r * 3:r * 3 + 3] for r in range(3))

    def __repr__(self) -> str:
        return f"TicTacToe.from_string({self.to_string()!r})"


# ------------------------------------------------------------------------------------------------ connect-four
_C4_ROWS, _C4_COLS = 6, 7
_C4_H = _C4_ROWS + 1                          # one spare bit on top of every column (keeps the shifts apart)
_C4_TOP = [(1 << (c * _C4_H + _C4_ROWS)) for c in range(_C4_COLS)]


def _c4_won(b: int) -> bool:
    for shift in (1, _C4_H, _C4_H - 1, _C4_H + 1):  # vertical, horizontal, the two diagonals
        m = b & (b >> shift)
        if m & (m >> (2 * shift)):
            return True
    return False


class ConnectFour(_TwoBoardGame):
    """Connect-four, 6 rows x 7 columns; a move is a column ``0..6`` and the disc falls to its lowest free cell."""

    __slots__ = ("boards", "heights", "player", "winner", "_over", "moves_played")
    name = "connect-four"
    num_moves = 7

    def __init__(self, boards: tuple[int, int] = (0, 0), heights: tuple[int, ...] = (0,) * 7, player: int = 0,
                 winner: int | None = None, over: bool = False, moves_played: int = 0):
        self.boards, self.heights, self.player, self.winner = boards, heights, player, winner
        self._over, self.moves_played = over, moves_played

    @classmethod
    def from_moves(cls, moves: Iterable[int]) -> ConnectFour:
        """The position after playing ``moves`` (columns) from the empty board."""
        state = cls()
        for m in moves:
            state = state.play(m)
        return state

    def legal_moves(self) -> list[int]:
        if self._over:
            return []
        return [c for c in range(_C4_COLS) if self.heights[c] < _C4_ROWS]

    def play(self, move: int) -> ConnectFour:
        if self._over:
            raise ValueError(f"the game is over, no move can be played:\n{self}")
        if isinstance(move, bool) or not isinstance(move, int) or not 0 <= move < _C4_COLS:
            raise ValueError(f"move must be a column 0..6, got {move!r}")
        h = self.heights[move]
        if h >= _C4_ROWS:
            raise ValueError(f"move {move} is illegal: the column is full")
        p = self.player
        mine = self.boards[p] | (1 << (move * _C4_H + h))
        boards = (mine, self.boards[1]) if p == 0 else (self.boards[0], mine)
        heights = self.heights[:move] + (h + 1,) + self.heights[move + 1:]
        won = _c4_won(mine)
        n = self.moves_played + 1
        return ConnectFour(boards, heights, 1 - p, p if won else None, won or n == _C4_ROWS * _C4_COLS, n)

    def __str__(self) -> str:
        rows = []
        for r in reversed(range(_C4_ROWS)):
            rows.append("".join("x" if self.boards[0] >> (c * _C4_H + r) & 1 else
                                "o" if self.boards[1] >> (c * _C4_H + r) & 1 else "." for c in range(_C4_COLS)))
        return "\n".join(rows + ["0123456"])


GAMES = {"tic-tac-toe": TicTacToe, "connect-four": ConnectFour}


# ------------------------------------------------------------------------------------------------ negamax
def negamax(state, memo: dict | None = None) -> float:
    """The exact game value of ``state`` for the player to move: +1 win, 0 draw, -1 loss with perfect play.

    ``V(s) = max_a -V(play(s, a))``, terminal states scored by ``state.value(player)``. ``memo`` (a dict, filled in
    place) maps ``state.key()`` to values; pass the same dict to reuse work across calls. Exact, so only feasible
    where the game tree below ``state`` is small (any tic-tac-toe position; connect-four near the end).
    """
    if memo is None:
        memo = {}
    return _negamax(state, memo)


def _negamax(state, memo: dict) -> float:
    key = state.key()
    v = memo.get(key)
    if v is not None:
        return v
    if state.is_terminal():
        v = state.value(state.player)
    else:
        v = -2.0
        for move in state.legal_moves():
            child = -_negamax(state.play(move), memo)
            if child > v:
                v = child
                if v == 1.0:  # cannot do better than a win
                    break
    v = v + 0.0  # -0.0 -> 0.0
    memo[key] = v
    return v


def best_moves(state, memo: dict | None = None) -> list[int]:
    """The optimal moves of ``state`` by exact negamax: every legal ``a`` with ``-V(play(s, a)) = V(s)``.

    Raises ValueError if the game is over.
    """
    if state.is_terminal():
        raise ValueError("the game is over: there is no move to choose")
    if memo is None:
        memo = {}
    values = {m: -_negamax(state.play(m), memo) for m in state.legal_moves()}
    best = max(values.values())
    return [m for m, v in values.items() if v == best]
