"""MCTS over the reasoning steps of the tiny arithmetic model, with a step verifier as the value, next to sampling.

A state is the response written so far, a string of whole steps (``"7+5+0=12|4+8+1=13|"``); an action is the model's
next step, the text up to and including the next ``|`` (or the final answer segment ``=132`` and end of sequence).
One player, so nothing changes sign. One simulation:

1. **selection**: from the root, follow the live child with the best UCB1 score
   ``W / N + c * sqrt(ln(N_parent) / N)`` as long as there is one;
2. **expansion**: at a node without a live child, sample ``width`` next steps from the model at temperature
   ``temperature`` in one batch (duplicates merged); a prefix expanded ``max_expansions`` times without a right step
   is abandoned;
3. **evaluation**: the **verifier** scores each new prefix: 0 as soon as any step is wrong (the prefix is pruned),
   else the share of the columns done right (a process reward); a complete and verified response ends the search;
4. **backup**: ``N += 1``, ``W += value`` on the path.

The search stops as soon as a verified full response is found, or when the budget of generated tokens is spent.

The verifier (:func:`verifier`) checks each column's step from the two numbers in the prompt (the school method: the
step for column ``i`` is fixed by the prompt's digits and the carry) and the final answer against the steps. It is a
rule-based process reward model {cite}`lightman2023verify`: exact here, which language in general never allows.
Baseline: **sampling**, i.e. draw complete responses one after the other and keep the first the verifier accepts
(best-of-N with the same verifier), with the same token budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aiterms.arithmetic import Problem, extract_answer, prompt, split_response, verify_steps
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, generate_batch

__all__ = ["StepSearchConfig", "verifier", "next_steps", "step_mcts", "sample_until_verified"]


@dataclass(frozen=True)
class StepSearchConfig:
    """Hyperparameters of MCTS over reasoning steps."""

    token_budget: int = 600       # generated tokens (model forward passes per sequence) at most
    c: float = 1.0                # exploration constant (> 0)
    width: int = 4                # next steps sampled per expansion
    temperature: float = 1.5      # sampling temperature of expansions
    max_expansions: int = 4       # expansions of one prefix before it is abandoned

    def __post_init__(self):
        if isinstance(self.token_budget, bool) or not isinstance(self.token_budget, int) or self.token_budget <= 0:
            raise ValueError(f"token_budget must be a positive int, got {self.token_budget!r}")
        if not self.c > 0:
            raise ValueError(f"c must be > 0, got {self.c!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width <= 0:
            raise ValueError(f"width must be a positive int, got {self.width!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if isinstance(self.max_expansions, bool) or not isinstance(self.max_expansions, int) \
                or self.max_expansions <= 0:
            raise ValueError(f"max_expansions must be a positive int, got {self.max_expansions!r}")


def verifier(problem: Problem, response: str) -> tuple[bool, bool]:
    """``(all steps so far right, complete and right)`` for a partial or complete step-by-step response.

    A step is right if it is exactly the school-method step for its column (:func:`aiterms.arithmetic.verify_steps`);
    a response is complete when it has an answer segment, and right when it also has every column and that answer.
    """
    if response.endswith("|"):  # a prefix of whole steps
        response = response[:-1]
    steps, answer = split_response(response) if response else ([], None)
    n = len(steps)
    if n > problem.num_steps:
        return False, False
    checks = verify_steps(problem, response)[:n] if n else []
    ok = all(checks)
    complete = answer is not None
    return ok, bool(ok and complete and n == problem.num_steps and extract_answer(response) == problem.answer)


def next_steps(model: GPT, problem: Problem, prefix: str, k: int, temperature: float,
               generator: torch.Generator | None) -> tuple[list[str], int]:
    """``k`` continuations of ``prefix``, each cut after one step (up to and including ``|``) or at the end.

    ``temperature = 0``: greedy, and then the *whole* rest of the response (a rollout). Returns
    ``(texts, tokens generated)``; a text that ends the response ends with nothing after its answer segment.
    """
    ids = TOKENIZER.encode_prompt(prompt(problem)) + TOKENIZER.encode(prefix)
    room = model.config.block_size - len(ids) + 1
    if room <= 0:
        return [""] * k, 0
    max_new = room if temperature == 0 else min(room, 12)
    out = generate_batch(model, [ids] * k, max_new, eos_id=TOKENIZER.eos_id, temperature=temperature,
                         generator=generator)
    texts, tokens = [], 0
    for row in out:
        text = TOKENIZER.decode(row)
        if temperature > 0 and "|" in text:
            text = text[:text.index("|") + 1]
        tokens += len(row)  # every generated token counts, also those after the cut
        texts.append(text)
    return texts, tokens


class _Node:
    __slots__ = ("text", "parent", "children", "N", "W", "dead", "expansions")

    def __init__(self, text: str, parent: _Node | None):
        self.text, self.parent, self.children = text, parent, {}
        self.N, self.W, self.dead, self.expansions = 0, 0.0, False, 0


def step_mcts(model: GPT, problem: Problem, config: StepSearchConfig = StepSearchConfig(), seed: int = 0
              ) -> dict:
    """MCTS over reasoning steps (see the module docstring). Returns ``{"response", "correct", "tokens",
    "expansions"}``: the first verified response (or the deepest verified prefix), whether it is right, the tokens
    generated and the number of expansions (batches of ``width`` sampled steps).
    """
    generator = torch.Generator().manual_seed(seed)
    root = _Node("", None)
    tokens, expansions, best = 0, 0, ""
    while tokens < config.token_budget and not root.dead:
        # 1. selection: UCB1 among the children that are still alive
        node = root
        while True:
            live = [ch for ch in node.children.values() if not ch.dead]
            if not live:
                break
            log_n = math.log(max(node.N, 1))
            node = max(live, key=lambda ch: ch.W / ch.N + config.c * math.sqrt(log_n / ch.N) if ch.N else math.inf)
        if node.expansions >= config.max_expansions:  # tried often enough: give up on this prefix
            node.dead, value, child = True, 0.0, node
        else:
            # 2. expansion: `width` next steps sampled in one batch
            steps, used = next_steps(model, problem, node.text, config.width, config.temperature, generator)
            tokens += used
            expansions += 1
            node.expansions += 1
            value, child = 0.0, node
            for step in dict.fromkeys(steps):
                if step in node.children:
                    continue
                text = node.text + step
                ch = node.children[step] = _Node(text, node)
                # 3. evaluation by the verifier: 0 for a wrong step, else the share of the columns done right
                ok, right = verifier(problem, text)
                if right:
                    return {"response": text, "correct": True, "tokens": tokens, "expansions": expansions}
                if not ok or "|" not in step:
                    ch.dead = True
                    continue
                v = text.count("|") / (problem.num_steps + 1)
                if len(text) > len(best):
                    best = text
                if v >= value:
                    value, child = v, ch
        # 4. backup (one player: no change of sign)
        while child is not None:
            child.N += 1
            child.W += value
            child = child.parent
    return {"response": best, "correct": False, "tokens": tokens, "expansions": expansions}


def sample_until_verified(model: GPT, problem: Problem, token_budget: int, temperature: float = 1.0, seed: int = 0,
                          batch: int = 4) -> dict:
    """The baseline: sample whole responses (``batch`` at a time) until the verifier accepts one or the token budget
    is spent. Returns ``{"response", "correct", "tokens", "samples"}``."""
    generator = torch.Generator().manual_seed(seed)
    ids = TOKENIZER.encode_prompt(prompt(problem))
    room = model.config.block_size - len(ids) + 1
    tokens = samples = 0
    first = ""
    while tokens < token_budget:
        out = generate_batch(model, [ids] * batch, room, eos_id=TOKENIZER.eos_id, temperature=temperature,
                             generator=generator)
        for row in out:
            text = TOKENIZER.decode(row)
            tokens += len(row)
            samples += 1
            first = first or text
            if verifier(problem, text)[1]:
                return {"response": text, "correct": True, "tokens": tokens, "samples": samples}
            if tokens >= token_budget:
                break
    return {"response": first, "correct": False, "tokens": tokens, "samples": samples}
