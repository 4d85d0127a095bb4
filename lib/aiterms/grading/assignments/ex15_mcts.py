"""Hidden checks of exercise 15 (Monte Carlo tree search): select_ucb, backup, choose_move.

Cases are plain data. ``select_ucb``: ``{"values": [...], "visits": [...], "parent_visits": n, "c": c}``, drawn so
that the best UCB score is either an exact tie between identical children (the lowest index must win) or clearly
ahead (no float near-ties). ``backup``: ``{"values": [...], "visits": [...], "leaf_value": v}``. ``choose_move``:
``{"board": "xx.oo....", "simulations": 300, "c": 1.4, "seed": k}`` on tic-tac-toe positions from a pool where the
reference, with a third of that budget, played an optimal move for each of 12 seeds; the move is graded by the
*property* "optimal by exact minimax", not by equality with the reference's move. Invalid inputs must raise
``ValueError`` (the plain value ``"ValueError"``).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

from aiterms import grading
from aiterms.grading.tasks import Task

ASSIGNMENT = "15-mcts"
ERROR = "ValueError"
SIMULATIONS = 300  # the budget of the graded move choices

#: tic-tac-toe positions (x moves first) with 3 to 6 empty cells and at least one losing or drawing mistake,
#: where the reference with 100 simulations chose an optimal move for seeds 0..11
POSITIONS = [
    '.oxx.xoo.', '..x.o.xox', 'o...oxoxx', '..xoxxoo.', 'ox.x..oox', 'xx.o....o', '..x..xoo.', 'o..xxox.o',
    '..x.xo.o.', '...ox..xo', 'xo...x.o.', 'xox...oox', 'x.xoo.x.o', '.xxx.oo.o', 'o.x.x.ox.', 'x.oox.xo.',
    'o.o.x.xox', 'x.oo..oxx', '..oox..x.', 'o.x.o.x..', '.x....ox.', 'oxx.x..o.', '...x.xo.o', '...xx...o',
    '.xxx..o.o', 'ox.o..x..', '.oxoxx..o', 'o..oox.xx', 'oo.....xx', 'xx..o.oxo', 'xx..o.o..', '.xxo.x.oo',
    'xx..ox..o', 'xox.xo..o', 'o.x....xo', '....xox.o', '.x...oo.x', 'xoxo.x.o.', 'x..ox.o..', 'x.oo..xx.',
    'xx.o...o.', 'ox...x.xo', '.xo.ox..x', 'xoxo.o..x', 'ooxx.o..x', 'xo.x..oox', '.xx.oo...', 'x.o.oox.x',
    '.xx.oox.o', '.o.xx.oxo', 'o.xx.x..o', '.xx.oo.ox', 'oox...x..', '.x.xo.oox', 'oxo...xxo', 'o..o...xx',
    'xx..ox.o.', '.xx.x..oo', '.oox.ox.x', '..xo.oxx.', 'oxxx.o..o', '.oox.x..x', 'oxoxx...o', '...oxxx.o',
    '.xoo.xox.', '.ox..oxox', '.ooo.xxx.', 'o..oxo.xx', '.oox.xx.o', '.xx.o..xo', 'oo..x..x.', 'oxo.x.x.o',
    'x.oxx..oo', '....xxoo.', '..o.oxx.x', 'xooox..x.', '..xx..oxo', 'x...xoo..', 'x..o.oxox', '.x..xoxoo',
    'xxo...x.o', 'o.xx.xoo.', 'x.ox...o.', 'ox.o.x.ox', 'x.xo..oxo', 'xx.o..xoo', '...x..oxo', '..ox.oxox',
    'x....oxxo', 'xo.xxoo..', 'x..xoo..x', 'xo.xo....', '.o...xx.o', 'o.ox..x.x', 'xoxoo...x', 'x...oxoxo',
    '..xoo..x.', 'o....xxox', '.ox.o.xxo', '.xox.x..o', 'oxox..ox.', '.xoxx.o.o', 'x...o.xo.', 'o.xoxx.o.',
    '.oxox.o.x', 'xoo.x.x.o', '.oxxox...', 'o.o.xx...', '..xoxx..o', '..x.oox..', 'oxxoox...', '...o.xoxx',
    'o.xxxo.o.', '.x...o.ox', 'o.o..xx.x', '.o.xoxx.o', 'xoxo.o.x.', '..x..ox..', 'xo...ooxx', '.xx.o.o..',
    'oxo.x.o.x', 'oxoox...x', '.x.o..ox.', 'x...oo.x.', '.xox..o..', 'xx..o..xo', 'xox.xoo..', '...xoxox.',
    'xo..xxoo.', '..xxxo..o', '....xoox.', '.xxoo.xo.', 'ox..x.o.x', 'xo.oxx...', 'o.ox.xxo.', '.x..xo.ox',
    '.x.xooox.', '.xo..o.x.', '..o.x.xox', '.xoox.o.x', '..oox.oxx', '.oo.xx.ox', 'xoo..x..x', '.oxxx.oo.',
    'o.ox.xo.x', 'ox...x.o.', 'oxox.....', 'x.x.o..o.', '..x.oo.x.', 'x..xox..o', '.oox.x.x.', '...x.ooxx',
    '..xo.xo..', '.xo.xo.ox', '.x..ox.ox', 'o.x.x.oox', 'xo.x..ox.', 'x..oo..xx', '.oo.xo.xx', '.x..oo.xx',
]


def _calling(fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError:
        return ERROR


def _error_problem(got: Any, expected: Any) -> str | None | bool:
    if expected == ERROR:
        return None if got == ERROR else "should raise ValueError for this input"
    if got == ERROR:
        return "raised ValueError for a valid input"
    return False


# ------------------------------------------------------------------------------------------------ select_ucb
def _ucb(w: float, n: int, parent: int, c: float) -> float:
    return math.inf if n == 0 else w / n + c * math.sqrt(math.log(parent) / n)


def _clear_winner(values: list, visits: list, parent: int, c: float) -> bool:
    """No near-tie at the top between children that are not identical."""
    if 0 in visits:
        return True
    scores = sorted({(w, n): _ucb(w, n, parent, c) for w, n in zip(values, visits)}.values(), reverse=True)
    return len(scores) == 1 or scores[0] - scores[1] > 1e-6 * max(1.0, abs(scores[0]))


def select_ucb_cases(rng: random.Random) -> list[dict]:
    fixed = [
        {"values": [1.0, 3.0], "visits": [2, 4], "parent_visits": 6, "c": 1.4},
        {"values": [0.0, 0.0, 0.0], "visits": [0, 0, 0], "parent_visits": 1, "c": 1.0},
        {"values": [2.0, 0.0, 5.0], "visits": [3, 0, 5], "parent_visits": 8, "c": 1.4},      # unvisited first
        {"values": [2.0, 1.0, 0.0], "visits": [3, 2, 0], "parent_visits": 5, "c": 0.5},      # unvisited last
        {"values": [3.0, 3.0], "visits": [5, 5], "parent_visits": 10, "c": 1.4},             # a tie: index 0
        {"values": [-1.0, 4.0, 4.0], "visits": [4, 6, 6], "parent_visits": 16, "c": 2.0},    # a tie: index 1
        {"values": [9.0, 1.0], "visits": [10, 1], "parent_visits": 11, "c": 2.0},            # exploration wins
        {"values": [9.0, 1.0], "visits": [10, 1], "parent_visits": 11, "c": 0.1},            # exploitation wins
        {"values": [-3.0, -1.0], "visits": [4, 4], "parent_visits": 8, "c": 1.0},            # negative values
        {"values": [1.0], "visits": [1], "parent_visits": 1, "c": 1.4},                     # ln(1) = 0
        {"values": [5.0, 2.0], "visits": [6, 2], "parent_visits": 20, "c": 1.0},            # parent > sum
        {"values": [2.0, -0.5], "visits": [4, 1], "parent_visits": 5, "c": 1.0},            # the square root matters
        {"values": [-0.5, 2.0], "visits": [1, 4], "parent_visits": 5, "c": 1.0},
        {"values": [1.0, 2.0], "visits": [1, 2], "parent_visits": 3, "c": 0.0},             # c = 0: error
        {"values": [1.0, 2.0], "visits": [1, 2], "parent_visits": 3, "c": -1.0},            # error
        {"values": [], "visits": [], "parent_visits": 1, "c": 1.0},                         # error
        {"values": [1.0, 2.0], "visits": [1], "parent_visits": 3, "c": 1.0},                # error
    ]
    cases = list(fixed)
    while len(cases) < len(fixed) + 25:
        k = rng.randint(2, 7)
        visits = [rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 100]) if rng.random() < 0.1 else rng.randint(1, 60)
                  for _ in range(k)]
        values = [round(rng.uniform(-1, 1) * n, rng.choice([0, 2])) for n in visits]
        if rng.random() < 0.3:  # an exact tie between two identical children
            i, j = rng.sample(range(k), 2)
            values[j], visits[j] = values[i], visits[i]
        parent = max(1, sum(visits)) + rng.choice([0, 0, 0, 1, 7])
        c = rng.choice([0.5, 1.0, 1.4, 2.0, round(rng.uniform(0.05, 3.0), 3)])
        if _clear_winner(values, visits, parent, c):
            cases.append({"values": values, "visits": visits, "parent_visits": parent, "c": c})
    return cases


def call_select_ucb(fn: Callable, case: dict) -> Any:
    return _calling(fn, list(case["values"]), list(case["visits"]), case["parent_visits"], case["c"])


def compare_select_ucb(got: Any, expected: Any, case: dict) -> str | None:
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    if isinstance(got, bool) or not isinstance(got, int):
        return f"should return an int (the index of a child), got {type(got).__name__}"
    return None if got == expected else "selected the wrong child"


# ------------------------------------------------------------------------------------------------ backup
def backup_cases(rng: random.Random) -> list[dict]:
    fixed = [
        {"values": [0.0], "visits": [0], "leaf_value": 1.0},
        {"values": [0.0, 0.0], "visits": [0, 0], "leaf_value": 1.0},
        {"values": [2.0, -1.0, 0.0], "visits": [5, 3, 0], "leaf_value": -1.0},
        {"values": [1.5, 0.5, 1.0, 0.0], "visits": [9, 4, 2, 1], "leaf_value": 0.0},
        {"values": [0.0, 0.0, 0.0, 0.0, 0.0], "visits": [4, 3, 2, 1, 0], "leaf_value": 0.25},
        {"values": [], "visits": [], "leaf_value": 1.0},                                   # error
        {"values": [0.0, 1.0], "visits": [1], "leaf_value": 1.0},                          # error
    ]
    cases = list(fixed)
    for _ in range(25):
        k = rng.randint(1, 9)
        visits = sorted((rng.randint(0, 50) for _ in range(k)), reverse=True)
        values = [round(rng.uniform(-1, 1) * n, 3) for n in visits]
        leaf = rng.choice([1.0, -1.0, 0.0, 1.0, -1.0, round(rng.uniform(-1, 1), 3)])
        cases.append({"values": values, "visits": visits, "leaf_value": leaf})
    return cases


def call_backup(fn: Callable, case: dict) -> Any:
    return _calling(fn, list(case["values"]), list(case["visits"]), case["leaf_value"])


def compare_backup(got: Any, expected: Any, case: dict) -> str | None:
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    try:
        got = grading.to_plain(got)
    except TypeError as e:
        return f"could not read the result: {e}"
    if not isinstance(got, list) or len(got) != 2:
        return "should return a pair (values, visits)"
    names = ("values", "visits")
    for name, g, e in zip(names, got, expected):
        if not isinstance(g, list) or len(g) != len(e):
            return f"{name} should be a list of {len(e)} numbers"
        for i, (gi, ei) in enumerate(zip(g, e)):
            if isinstance(gi, bool) or not isinstance(gi, (int, float)) or not grading.close(float(gi), float(ei)):
                return f"{name}[{i}] is wrong (index 0 is the root)"
    return None


# ------------------------------------------------------------------------------------------------ choose_move
def choose_move_cases(rng: random.Random) -> list[dict]:
    cases = [{"board": b, "simulations": SIMULATIONS, "c": 1.4, "seed": rng.randrange(10**6)}
             for b in rng.sample(POSITIONS, 14)]
    cases += [
        {"board": "xxxoo....", "simulations": SIMULATIONS, "c": 1.4, "seed": 0},  # the game is over: error
        {"board": "xoxxoxoxo", "simulations": SIMULATIONS, "c": 1.4, "seed": 0},  # a full board: error
        {"board": rng.choice(POSITIONS), "simulations": 0, "c": 1.4, "seed": 0},  # no budget: error
        {"board": rng.choice(POSITIONS), "simulations": SIMULATIONS, "c": 0.0, "seed": 0},  # error
        {"board": rng.choice(POSITIONS), "simulations": SIMULATIONS, "c": -1.0, "seed": 0},  # error
    ]
    return cases


def call_choose_move(fn: Callable, case: dict) -> Any:
    from aiterms.games import TicTacToe
    return _calling(fn, TicTacToe.from_string(case["board"]), case["simulations"], case["c"], case["seed"])


def compare_choose_move(got: Any, expected: Any, case: dict) -> str | None:
    from aiterms.games import TicTacToe, best_moves
    problem = _error_problem(got, expected)
    if problem is not False:
        return problem
    if isinstance(got, bool) or not isinstance(got, int):
        return f"should return an int (a cell 0..8), got {type(got).__name__}"
    state = TicTacToe.from_string(case["board"])
    if got not in state.legal_moves():
        return f"returned {got}, which is not a legal move"
    return None if got in best_moves(state) else f"cell {got} is a mistake: exact minimax does better"


def describe_board(case: dict) -> str:
    return f"board {case['board']!r}, simulations={case['simulations']}, c={case['c']}"


FORBID = ("aiterms.mcts:select_ucb", "aiterms.mcts:backup", "aiterms.mcts:ucb_score", "aiterms.mcts:search",
          "aiterms.mcts:choose_move", "aiterms.mcts:root_stats", "aiterms.mcts:root_parallel",
          "aiterms.mcts:_select_child", "aiterms.mcts:_best_child", "aiterms.games:negamax",
          "aiterms.games:best_moves", "aiterms.games:_negamax")

TASKS = [
    Task("select_ucb", "test_select_ucb", 2, select_ucb_cases, call_select_ucb, "aiterms.mcts:select_ucb",
         compare=compare_select_ucb, forbid=FORBID),
    Task("backup", "test_backup", 2, backup_cases, call_backup, "aiterms.mcts:backup", compare=compare_backup,
         forbid=FORBID),
    Task("choose_move", "test_choose_move", 4, choose_move_cases, call_choose_move, "aiterms.mcts:choose_move",
         compare=compare_choose_move, describe=describe_board, forbid=FORBID),
]
