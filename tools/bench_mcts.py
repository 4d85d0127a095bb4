"""Benchmark: aiterms.mcts against OpenSpiel's Python MCTSBot at equal simulations per move.

Both searches use UCT with one uniformly random rollout per leaf, the same exploration constant and the same number of
simulations per move; each side's solver is off (OpenSpiel's MCTSBot defaults to ``solve=True``; we pass
``solve=False`` for a like-for-like comparison, and also report our solver against theirs). They play each other,
alternating who moves first, and each side's simulations per second are measured on the moves it played.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mcts.py            # the table
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mcts.py --quick    # fewer games

Needs ``open_spiel`` (a benchmark-only dependency: ``.venv/bin/pip install open_spiel``).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from aiterms.games import ConnectFour, TicTacToe
from aiterms.mcts import MCTSConfig, _best_child, search

C = 1.4


def play_match(game: str, simulations: int, games: int, solver: bool = False, seed: int = 0) -> dict:
    import pyspiel
    from open_spiel.python.algorithms import mcts as os_mcts

    os_game = pyspiel.load_game({"tic-tac-toe": "tic_tac_toe", "connect-four": "connect_four"}[game])
    ours_cls = {"tic-tac-toe": TicTacToe, "connect-four": ConnectFour}[game]
    score = {"win": 0, "draw": 0, "loss": 0}
    time_ours = time_theirs = 0.0
    sims_ours = sims_theirs = 0
    for g in range(games):
        rs = np.random.RandomState(seed + g)
        bot = os_mcts.MCTSBot(os_game, C, simulations, os_mcts.RandomRolloutEvaluator(1, rs), solve=solver,
                              random_state=rs)
        ours_player = g % 2
        state, os_state = ours_cls(), os_game.new_initial_state()
        move_no = 0
        while not state.is_terminal():
            if state.player == ours_player:
                t = time.perf_counter()
                root = search(state, MCTSConfig(simulations=simulations, c=C, solver=solver),
                              seed=1000 * (seed + g) + move_no)
                move = _best_child(root).move
                time_ours += time.perf_counter() - t
                sims_ours += simulations
            else:
                t = time.perf_counter()
                move = bot.step(os_state)
                time_theirs += time.perf_counter() - t
                sims_theirs += simulations
            state = state.play(move)
            os_state.apply_action(move)
            move_no += 1
        assert os_state.is_terminal()
        v = state.value(ours_player)
        score["win" if v > 0 else "loss" if v < 0 else "draw"] += 1
    return {"score": score, "sims_per_s_ours": sims_ours / time_ours, "sims_per_s_theirs": sims_theirs / time_theirs,
            "seconds": time_ours + time_theirs}


def rows(quick: bool = False) -> list[dict]:
    try:
        import open_spiel  # noqa: F401
    except ImportError as e:
        raise ImportError("the MCTS benchmark needs OpenSpiel: .venv/bin/pip install open_spiel") from e
    from importlib.metadata import version
    ov = version("open_spiel")
    plan = [("tic-tac-toe", 200, 10 if quick else 40, False), ("connect-four", 200, 4 if quick else 20, False),
            ("connect-four", 1000, 2 if quick else 8, False), ("connect-four", 200, 4 if quick else 20, True)]
    out = []
    for game, sims, games, solver in plan:
        r = play_match(game, sims, games, solver)
        s = r["score"]
        out.append({"what": f"MCTS {game}, {sims} sims/move{', solver' if solver else ''}: aiterms vs OpenSpiel {ov}",
                    "seconds": round(r["seconds"], 2),
                    "games": str(games),
                    "aiterms W/D/L": f"{s['win']}/{s['draw']}/{s['loss']}",
                    "aiterms score": f"{(s['win'] + 0.5 * s['draw']) / games:.2f}",
                    "sims/s aiterms": f"{r['sims_per_s_ours']:.0f}",
                    "sims/s OpenSpiel": f"{r['sims_per_s_theirs']:.0f}"})
    return out


if __name__ == "__main__":
    import torch
    torch.set_num_threads(1)
    table = rows(quick="--quick" in sys.argv)
    keys = list(table[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in table:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
