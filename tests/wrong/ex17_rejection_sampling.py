"""Plausible wrong answers to exercise 17 (rejection sampling), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_CHECKS = '''
    p_x, q_x, u = (np.asarray(a, dtype=float) for a in (p_x, q_x, u))
    if p_x.shape != q_x.shape or u.shape != p_x.shape:
        raise ValueError("shapes")
    if not M > 0:
        raise ValueError("M")
    if np.any(p_x < 0) or np.any(q_x < 0):
        raise ValueError("negative")
    if np.any((u < 0) | (u >= 1)):
        raise ValueError("u")
'''
_BOUND = '''
    if np.any(p_x > (1 + 1e-9) * M * q_x):
        raise ValueError("M does not bound p/q")
'''


def _accept(body: str) -> str:
    return "\ndef accept_reject(p_x, q_x, u, M):" + body


_RFT_HEAD = '''
def rft_dataset(problems, responses, fmt="cot", max_per_prompt=4):
    if max_per_prompt < 1:
        raise ValueError("max_per_prompt")
    if len(problems) != len(responses):
        raise ValueError("lengths")
    counts = {"responses": 0, "wrong": 0, "malformed": 0, "duplicates": 0, "over_cap": 0, "kept": 0}
    kept, pairs = {}, []
'''
_RFT_TAIL = '''
    counts["prompts_with_data"] = sum(1 for v in kept.values() if v)
    return pairs, counts
'''


def _rft(loop: str, tail: str = _RFT_TAIL) -> str:
    return _RFT_HEAD + loop + tail


_LOOP = '''
    for problem, answers in zip(problems, responses):
        text = prompt(problem)
        seen = kept.setdefault(text, [])
        for response in answers:
            counts["responses"] += 1
            if extract_answer(response) != problem.answer:
                counts["wrong"] += 1
            elif not is_well_formed(response, fmt):
                counts["malformed"] += 1
            elif response in seen:
                counts["duplicates"] += 1
            elif len(seen) >= max_per_prompt:
                counts["over_cap"] += 1
            else:
                seen.append(response)
                pairs.append((text, response))
                counts["kept"] += 1
'''

WRONG = {
    "accept_reject": {
        # u <= ratio: accepts ties, and a proposal with p = 0 when u = 0
        "accepts_ties": _accept(_CHECKS + _BOUND + '''
    return u * M * q_x <= p_x
'''),
        # M forgotten: u < p / q
        "forgets_M": _accept(_CHECKS + _BOUND + '''
    return u * q_x < p_x
'''),
        # no bound check: returns decisions for samples that would not follow p
        "no_bound_check": _accept(_CHECKS + '''
    return u * M * q_x < p_x
'''),
        # the rule the wrong way round: keeps what it should throw away
        "inverted": _accept(_CHECKS + _BOUND + '''
    return u * M * q_x > p_x
'''),
        # u is not checked
        "no_u_check": _accept('''
    p_x, q_x, u = (np.asarray(a, dtype=float) for a in (p_x, q_x, u))
    if p_x.shape != q_x.shape or u.shape != p_x.shape:
        raise ValueError("shapes")
    if not M > 0:
        raise ValueError("M")
    if np.any(p_x < 0) or np.any(q_x < 0):
        raise ValueError("negative")
''' + _BOUND + '''
    return u * M * q_x < p_x
'''),
        # the bound checked only where q > 0 (a proposal with q = 0 < p slips through)
        "bound_only_where_q_positive": _accept(_CHECKS + '''
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q_x > 0, p_x / (M * np.where(q_x > 0, q_x, 1.0)), 0.0)
    if np.any(ratio > 1 + 1e-9):
        raise ValueError("M does not bound p/q")
    return u < ratio
'''),
        "calls_reference": '''
from aiterms.rejection_sampling import accept_reject as _reference
def accept_reject(p_x, q_x, u, M):
    return _reference(p_x, q_x, u, M)
''',
    },
    "rft_dataset": {
        # no deduplication: the same right answer is kept several times
        "no_dedupe": _rft(_LOOP.replace('''            elif response in seen:
                counts["duplicates"] += 1
''', "")),
        # the format is not checked: "132" is kept as a step-by-step answer
        "no_format_check": _rft(_LOOP.replace('''            elif not is_well_formed(response, fmt):
                counts["malformed"] += 1
''', "")),
        # the cap is off by one
        "cap_off_by_one": _rft(_LOOP.replace("len(seen) >= max_per_prompt", "len(seen) > max_per_prompt")),
        # duplicates and the cap per entry of problems, not per prompt text
        "per_entry_not_per_prompt": _rft(_LOOP.replace("seen = kept.setdefault(text, [])",
                                                       "seen = []\n        kept[len(kept)] = seen")),
        # duplicates looked for among all responses seen, before the verifier: a malformed repeat counts as a duplicate
        "dedupe_first": _rft('''
    for problem, answers in zip(problems, responses):
        text = prompt(problem)
        seen = kept.setdefault(text, [])
        every = kept.setdefault("all:" + text, [])
        for response in answers:
            counts["responses"] += 1
            if response in every:
                counts["duplicates"] += 1
                continue
            every.append(response)
            if extract_answer(response) != problem.answer:
                counts["wrong"] += 1
            elif not is_well_formed(response, fmt):
                counts["malformed"] += 1
            elif len(seen) >= max_per_prompt:
                counts["over_cap"] += 1
            else:
                seen.append(response)
                pairs.append((text, response))
                counts["kept"] += 1
''', '''
    counts["prompts_with_data"] = sum(1 for k, v in kept.items() if v and not k.startswith("all:"))
    return pairs, counts
'''),
        # prompts_with_data counts the problems that had data, repeated problems twice
        "prompts_counted_per_entry": _rft(_LOOP + '''
    counts["prompts_with_data"] = sum(1 for problem in problems if kept[prompt(problem)])
    return pairs, counts
''', ""),
        "calls_reference": '''
import aiterms.rejection_sampling
def rft_dataset(problems, responses, fmt="cot", max_per_prompt=4):
    return aiterms.rejection_sampling.rft_dataset(problems, responses, fmt, max_per_prompt)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
