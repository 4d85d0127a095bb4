"""Plausible wrong answers to exercise 15 (Monte Carlo tree search), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_CHECKS = '''
    if len(values) == 0 or len(values) != len(visits):
        raise ValueError("bad lists")
'''


def _ucb(score: str, unvisited: str = "        if n == 0:\n            return i\n", compare: str = ">") -> str:
    return f'''
def select_ucb(values, visits, parent_visits, c):{_CHECKS}    if not c > 0:
        raise ValueError("c")
    best, best_score = 0, -math.inf
    for i, (w, n) in enumerate(zip(values, visits)):
{unvisited}        score = {score}
        if score {compare} best_score:
            best, best_score = i, score
    return best
'''


def _backup(body: str) -> str:
    return f'''
def backup(values, visits, leaf_value):{_CHECKS}    new_values, new_visits = list(values), list(visits)
{body}    return new_values, new_visits
'''


# A whole UCT search with holes to fill: {select}, {value} (the leaf's result), {final} (the move returned).
_SEARCH = '''
def choose_move(state, simulations, c=1.4, seed=0):
    if state.is_terminal():
        raise ValueError("the game is over")
    if simulations <= 0 or not c > 0:
        raise ValueError("simulations and c must be positive")
    rng = random.Random(seed)

    class Node:
        def __init__(self, state, parent=None, move=None):
            self.state, self.parent, self.move = state, parent, move
            self.children, self.untried = [], state.legal_moves()
            self.N, self.W = 0, 0.0

    root = Node(state)
    for _ in range({budget}):
        node = root
        while not node.untried and node.children:
            node = {select}
        if not node.state.is_terminal():
            move = node.untried.pop(rng.randrange(len(node.untried)))
            node.children.append(Node(node.state.play(move), node, move))
            node = node.children[-1]
        final = node.state
        while not final.is_terminal():
            final = final.play(rng.choice(final.legal_moves()))
        v = {value}
        while node is not None:
            node.N += 1
            node.W += v
            v = {flip}
            node = node.parent
    return {final}
'''
_SELECT = "node.children[select_ucb([ch.W for ch in node.children], [ch.N for ch in node.children], node.N, c)]"
_GOOD = dict(budget="simulations", select=_SELECT, value="final.value(1 - node.state.player)", flip="-v",
             final="max(root.children, key=lambda ch: ch.N).move")


def _search(**holes: str) -> str:
    return _SEARCH.format(**{**_GOOD, **holes})


WRONG = {
    "select_ucb": {
        # no exploration term: always the best mean so far
        "greedy": _ucb("w / n"),
        # ln forgotten: sqrt(N / N_i) explores far too much
        "no_log": _ucb("w / n + c * math.sqrt(parent_visits / n)"),
        # the square root forgotten
        "no_sqrt": _ucb("w / n + c * math.log(parent_visits) / n"),
        # unvisited children skipped instead of chosen first
        "skips_unvisited": _ucb("w / n + c * math.sqrt(math.log(parent_visits) / n)",
                                unvisited="        if n == 0:\n            continue\n"),
        # ties go to the last index
        "last_on_tie": _ucb("w / n + c * math.sqrt(math.log(parent_visits) / n)", compare=">="),
        # total value instead of the mean
        "sum_not_mean": _ucb("w + c * math.sqrt(math.log(parent_visits) / n)"),
        "calls_reference": '''
from aiterms import mcts
def select_ucb(values, visits, parent_visits, c):
    return mcts.select_ucb(values, visits, parent_visits, c)
''',
    },
    "backup": {
        # the same value added everywhere: no player's point of view
        "no_sign_flip": _backup("    for i in range(len(values)):\n        new_values[i] += leaf_value\n"
                                "        new_visits[i] += 1\n"),
        # flips starting from the root: right only for paths of odd length
        "flip_from_root": _backup("    v = leaf_value\n    for i in range(len(values)):\n        new_values[i] += v\n"
                                  "        new_visits[i] += 1\n        v = -v\n"),
        # the root's visit is not counted
        "root_not_counted": _backup("    v = leaf_value\n    for i in reversed(range(1, len(values))):\n"
                                    "        new_values[i] += v\n        new_visits[i] += 1\n        v = -v\n"),
        # only the leaf is updated
        "leaf_only": _backup("    new_values[-1] += leaf_value\n    new_visits[-1] += 1\n"),
        # a loss backed up as 0 (values in [0, 1] mixed with a sign flip)
        "loss_as_zero": _backup("    v = leaf_value\n    for i in reversed(range(len(values))):\n"
                                "        new_values[i] += max(v, 0.0)\n        new_visits[i] += 1\n        v = -v\n"),
        "calls_reference": '''
from aiterms import mcts
def backup(values, visits, leaf_value):
    return mcts.backup(values, visits, leaf_value)
''',
    },
    "choose_move": {
        # the value is never negated on the way up: every node scores the leaf's mover's result
        "no_sign_flip": _search(flip="v"),
        # the result taken from the point of view of the player to move at the leaf, not the one who moved into it
        "wrong_point_of_view": _search(value="final.value(node.state.player)"),
        # the move with the fewest visits
        "least_visited": _search(final="min(root.children, key=lambda ch: ch.N).move"),
        # a single simulation, whatever the budget
        "budget_ignored": _search(budget="1", final="root.children[0].move"),
        # selection by the lowest score (argmin of the negated values)
        "minimises": _search(select="node.children[select_ucb([-ch.W for ch in node.children], "
                                    "[ch.N for ch in node.children], node.N, c)]"),
        "calls_reference": '''
from aiterms import mcts
def choose_move(state, simulations, c=1.4, seed=0):
    return mcts.choose_move(state, simulations, c, seed)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
