"""Plausible wrong answers to exercise 3 (supervised training data), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

WRONG = {
    "normalise_key": {
        "no_commute": '''
def normalise_key(problem):
    return (problem.op, problem.a, problem.b)
''',
        "commutes_minus": '''
def normalise_key(problem):
    return (problem.op, min(problem.a, problem.b), max(problem.a, problem.b))
''',
        "larger_first": '''
def normalise_key(problem):
    if problem.op == "+":
        return ("+", max(problem.a, problem.b), min(problem.a, problem.b))
    return ("-", problem.a, problem.b)
''',
        "string_key": '''
def normalise_key(problem):
    a, b = (min(problem.a, problem.b), max(problem.a, problem.b)) if problem.op == "+" else (problem.a, problem.b)
    return f"{a}{problem.op}{b}"
''',
        "op_last": '''
def normalise_key(problem):
    if problem.op == "+":
        return (min(problem.a, problem.b), max(problem.a, problem.b), "+")
    return (problem.a, problem.b, "-")
''',
        "calls_reference": '''
from aiterms.supervised_data import normalise_key as _key
def normalise_key(problem):
    return _key(problem)
''',
    },
    "deduplicate": {
        "keeps_last": '''
def deduplicate(problems):
    last = {}
    for p in problems:
        last[normalise_key(p)] = p
    kept = list(last.values())
    return kept, len(problems) - len(kept)
''',
        "raw_problem": '''
def deduplicate(problems):
    seen, kept = set(), []
    for p in problems:
        if (p.a, p.b, p.op) not in seen:
            seen.add((p.a, p.b, p.op))
            kept.append(p)
    return kept, len(problems) - len(kept)
''',
        "sorted_output": '''
def deduplicate(problems):
    first = {}
    for p in problems:
        first.setdefault(normalise_key(p), p)
    kept = [first[key] for key in sorted(first)]
    return kept, len(problems) - len(kept)
''',
        "counts_kept": '''
def deduplicate(problems):
    seen, kept = set(), []
    for p in problems:
        if normalise_key(p) not in seen:
            seen.add(normalise_key(p))
            kept.append(p)
    return kept, len(kept)
''',
        "unique_only": '''
def deduplicate(problems):
    counts = {}
    for p in problems:
        counts[normalise_key(p)] = counts.get(normalise_key(p), 0) + 1
    kept = [p for p in problems if counts[normalise_key(p)] == 1]
    return kept, len(problems) - len(kept)
''',
        "rewrites_problems": '''
def deduplicate(problems):
    seen, kept = set(), []
    for p in problems:
        op, a, b = normalise_key(p)
        if (op, a, b) not in seen:
            seen.add((op, a, b))
            kept.append(Problem(a, b, op))
    return kept, len(problems) - len(kept)
''',
        "calls_reference": '''
import aiterms.supervised_data
def deduplicate(problems):
    return aiterms.supervised_data.deduplicate(problems)
''',
    },
    "split": {
        "splits_problems": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    problems = list(problems)
    random.Random(seed).shuffle(problems)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(problems) if j == len(fractions) - 1 else round(len(problems) * total)
        parts.append(problems[start:end])
        start = end
    return tuple(parts)
''',
        "ignores_fractions": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    groups = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    cut = round(0.9 * len(keys))
    return ([p for k in keys[:cut] for p in groups[k]], [p for k in keys[cut:] for p in groups[k]])
''',
        "no_shuffle": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    groups = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = list(groups)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(keys) if j == len(fractions) - 1 else round(len(keys) * total)
        parts.append([p for k in keys[start:end] for p in groups[k]])
        start = end
    return tuple(parts)
''',
        "unseeded_shuffle": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    groups = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = sorted(groups)
    random.shuffle(keys)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(keys) if j == len(fractions) - 1 else round(len(keys) * total)
        parts.append([p for k in keys[start:end] for p in groups[k]])
        start = end
    return tuple(parts)
''',
        "seed_ignored": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    groups = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = sorted(groups)
    random.Random(0).shuffle(keys)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(keys) if j == len(fractions) - 1 else round(len(keys) * total)
        parts.append([p for k in keys[start:end] for p in groups[k]])
        start = end
    return tuple(parts)
''',
        "one_problem_per_key": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    first = {}
    for p in problems:
        first.setdefault(normalise_key(p), p)
    keys = sorted(first)
    random.Random(seed).shuffle(keys)
    parts, start, total = [], 0, 0.0
    for j, f in enumerate(fractions):
        total += f
        end = len(keys) if j == len(fractions) - 1 else round(len(keys) * total)
        parts.append([first[k] for k in keys[start:end]])
        start = end
    return tuple(parts)
''',
        "floor_loses_the_rest": '''
def split(problems, fractions=(0.9, 0.1), seed=0):
    groups = {}
    for p in problems:
        groups.setdefault(normalise_key(p), []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    parts, start = [], 0
    for f in fractions:
        end = start + int(len(keys) * f)
        parts.append([p for k in keys[start:end] for p in groups[k]])
        start = end
    return tuple(parts)
''',
        "calls_reference": '''
from aiterms import supervised_data as sd
def split(problems, fractions=(0.9, 0.1), seed=0):
    return sd.split(problems, fractions, seed)
''',
    },
    "to_pairs": {
        "prompt_without_equals": '''
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    return [(f"{p.a}{p.op}{p.b}", str(p.answer) if fmt == "direct" else cot_response(p)) for p in problems]
''',
        "equals_in_response": '''
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    return [(f"{p.a}{p.op}{p.b}", "=" + (str(p.answer) if fmt == "direct" else cot_response(p))) for p in problems]
''',
        "normalised_prompt": '''
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    pairs = []
    for p in problems:
        op, a, b = normalise_key(p)
        pairs.append((f"{a}{op}{b}=", str(p.answer) if fmt == "direct" else cot_response(p)))
    return pairs
''',
        "cot_ignored": '''
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    return [(f"{p.a}{p.op}{p.b}=", str(p.answer)) for p in problems]
''',
        "spaces_in_prompt": '''
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    return [(f"{p.a} {p.op} {p.b} =", str(p.answer) if fmt == "direct" else cot_response(p)) for p in problems]
''',
        "no_value_error": '''
def to_pairs(problems, fmt="direct"):
    return [(f"{p.a}{p.op}{p.b}=", str(p.answer) if fmt == "direct" else cot_response(p)) for p in problems]
''',
        "calls_reference": '''
from aiterms.arithmetic import prompt, response
def to_pairs(problems, fmt="direct"):
    if fmt not in ("direct", "cot"):
        raise ValueError(fmt)
    return [(prompt(p), response(p, fmt)) for p in problems]
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
