"""Plausible wrong answers to exercise 16, per task (grade_id of the answer cell -> name -> source).

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py). Every exercise has such a module, tests/wrong/ex<NN_topic>.py, with ``wrong_answers``.
"""

WRONG = {
    "greedy_decode": {
        "no_stop_at_eos": '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    generated = []
    for _ in range(max_new_tokens):
        logprobs = next_token_logprobs(model, [list(prompt) + generated])[0]
        generated.append(int(torch.argmax(logprobs)))
    return generated
''',
        "eos_dropped": '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    generated = []
    for _ in range(max_new_tokens):
        token = int(torch.argmax(next_token_logprobs(model, [list(prompt) + generated])[0]))
        if token == eos_token_id:
            break
        generated.append(token)
    return generated
''',
        "prompt_included": '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    seq = list(prompt)
    for _ in range(max_new_tokens):
        token = int(torch.argmax(next_token_logprobs(model, [seq])[0]))
        seq.append(token)
        if token == eos_token_id:
            break
    return seq
''',
        "context_not_extended": '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    generated = []
    for _ in range(max_new_tokens):
        token = int(torch.argmax(next_token_logprobs(model, [list(prompt)])[0]))
        generated.append(token)
        if token == eos_token_id:
            break
    return generated
''',
        "one_token_short": '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    generated = []
    for _ in range(max(1, max_new_tokens - 1)):
        token = int(torch.argmax(next_token_logprobs(model, [list(prompt) + generated])[0]))
        generated.append(token)
        if token == eos_token_id:
            break
    return generated
''',
        "calls_reference": '''
from aiterms.decoding import greedy_decode as _greedy
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    return _greedy(model, prompt, max_new_tokens, eos_token_id)
''',
    },
    "beam_step": {
        "top_k_per_beam": '''
def beam_step(beam_scores, logprobs, k):
    num_beams, vocab_size = logprobs.shape
    per_beam = max(1, -(-k // num_beams))  # each beam contributes its own best ceil(k / B)
    top = torch.topk(logprobs, min(per_beam, vocab_size), dim=-1)
    total = beam_scores[:, None] + top.values
    beams = torch.arange(num_beams)[:, None].expand_as(total)
    order = torch.argsort(total.reshape(-1), descending=True)[:k]
    return total.reshape(-1)[order], beams.reshape(-1)[order], top.indices.reshape(-1)[order]
''',
        "beam_scores_ignored": '''
def beam_step(beam_scores, logprobs, k):
    num_beams, vocab_size = logprobs.shape
    scores, flat = torch.topk(logprobs.reshape(-1), min(k, num_beams * vocab_size))
    return scores, flat // vocab_size, flat % vocab_size
''',
        "wrong_divisor": '''
def beam_step(beam_scores, logprobs, k):
    num_beams, vocab_size = logprobs.shape
    scores, flat = torch.topk((beam_scores[:, None] + logprobs).reshape(-1), min(k, num_beams * vocab_size))
    return scores, flat % num_beams, flat // num_beams
''',
        "worst_first": '''
def beam_step(beam_scores, logprobs, k):
    num_beams, vocab_size = logprobs.shape
    total = (beam_scores[:, None] + logprobs).reshape(-1)
    scores, flat = torch.topk(total, min(k, num_beams * vocab_size))
    scores, flat = scores.flip(0), flat.flip(0)
    return scores, flat // vocab_size, flat % vocab_size
''',
        "scores_multiplied": '''
def beam_step(beam_scores, logprobs, k):
    num_beams, vocab_size = logprobs.shape
    total = (beam_scores[:, None] * logprobs).reshape(-1)
    scores, flat = torch.topk(total, min(k, num_beams * vocab_size))
    return scores, flat // vocab_size, flat % vocab_size
''',
        "calls_reference": '''
import aiterms.beam_search
def beam_step(beam_scores, logprobs, k):
    return aiterms.beam_search.beam_step(beam_scores, logprobs, k)
''',
    },
    "beam_search": {
        "calls_reference": '''
import aiterms.beam_search as _r
def beam_search(model, prompt, num_beams, max_new_tokens, eos_token_id=None, length_penalty=1.0,
                early_stopping=False):
    return [tuple(h) for h in _r.beam_search(model, prompt, num_beams, max_new_tokens, eos_token_id,
                                             length_penalty, early_stopping)]
''',
    },
}

# Task 3 variants are edits of the reference solution: (old line, new line) replacements.
BEAM_SEARCH_EDITS = {
    "no_length_penalty": [("float(cand_scores[rank] / length ** length_penalty)", "float(cand_scores[rank])")],
    "prompt_in_length": [("length = step + 1", "length = len(prompt) + step + 1"),
                         ("length == max_new_tokens", "length - len(prompt) == max_new_tokens")],
    "eos_not_counted": [("float(cand_scores[rank] / length ** length_penalty)",
                         "float(cand_scores[rank] / max(1, length - (candidates[rank][-1] == eos_token_id)) "
                         "** length_penalty)")],
    "top_k_per_beam": [("cand_scores, cand_beam, cand_token = beam_step(scores, logprobs, 2 * num_beams)",
                        "_top = torch.topk(logprobs, 2, dim=-1); _tot = (scores[:, None] + _top.values).reshape(-1); "
                        "_o = torch.argsort(_tot, descending=True)[:2 * num_beams]; cand_scores = _tot[_o]; "
                        "cand_beam = torch.arange(len(beams)).repeat_interleave(2)[_o]; "
                        "cand_token = _top.indices.reshape(-1)[_o]")],
    "finished_dropped": [("        if not alive:\n            break", "        if not alive:\n            break\n"
                          "        finished = [] if length < max_new_tokens else finished")],
    "k_candidates_only": [("beam_step(scores, logprobs, 2 * num_beams)", "beam_step(scores, logprobs, num_beams)")],
    "no_early_stopping": [("        if len(finished) == num_beams:\n", "        if False:\n")],
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    out = {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
    for name, edits in BEAM_SEARCH_EDITS.items():
        src = solution["beam_search"]
        for old, new in edits:
            if old not in src:
                raise AssertionError(f"edit {name!r} no longer applies to the solution: {old!r}")
            src = src.replace(old, new)
        out[f"beam_search-{name}"] = ("beam_search", src)
    return out
