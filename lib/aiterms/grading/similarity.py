"""The similarity report at grading: whose code is the library's reference, or another learner's.

Graded functions exist in ``aiterms`` with the same names and signatures, and the judge only stops a submission
from *calling* them. So, for each assignment, :func:`report` compares every learner's code cells with

* the library's reference implementation of each graded function, with the module-level helpers it uses and its
  imports (:func:`reference_code`), and
* every other learner's code cells,

using `copydetect <https://github.com/blingenf/copydetect>`_: it tokenises the code with Pygments, replaces
identifiers and drops comments (so renaming variables or rewriting comments changes nothing), fingerprints it by
winnowing (Schleimer et al., 2003: hashes of k-token runs, so reordering whole functions changes little either), and
scores a pair by the share of a file's fingerprinted tokens found in the other. The release's own starter code
(signatures, docstrings) is boilerplate and never counts.

It writes ``similarity/<assignment>.html`` (copydetect's side-by-side view of every pair above the threshold, the
learners' code HTML-escaped, made self-contained: no stylesheet or script from a CDN) and ``similarity.csv``
(assignment, student, matched_with, score, flagged), and returns the flagged pairs for the summary. It never changes
points: the instructor decides.
"""
from __future__ import annotations

import ast
import csv
import importlib
import json
import re
import tempfile
from pathlib import Path

from aiterms import grading
from aiterms.grading.course import ROOT

THRESHOLD = 0.5      # a pair is flagged when this share of one side's code is found in the other
REFERENCE = "aiterms (the library's reference)"
SHOWN = 12           # flagged pairs named in the summary (the reference's first, then by score); all are in the CSV


def _helpers(tree: ast.Module, start: str) -> list[ast.stmt]:
    """The module-level definitions ``start`` needs (itself, the functions, classes and constants it uses, and so
    on), in source order, after the module's imports."""
    defined: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defined[name.id] = node
    needed, todo = set(), [start]
    while todo:
        node = defined.get(todo.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return imports + [n for n in tree.body if id(n) in needed]


def reference_code(assignment: str) -> str:
    """The library's code for the graded functions of ``assignment``: each with its helpers and imports."""
    parts: list[str] = []
    for name in grading.forbidden(assignment):
        module, _, function = name.partition(":")
        source = Path(importlib.import_module(module).__file__).read_text()
        for node in _helpers(ast.parse(source), function):
            segment = ast.get_source_segment(source, node, padded=True)
            if segment and segment not in parts:
                parts.append(segment)
    return "\n\n".join(parts) + "\n"


def learner_code(notebook: Path, assignment: str) -> str:
    """Every code cell the learner wrote (answer cells and cells they added), as Python; '' if unreadable."""
    from aiterms.grading.judge import learner_cells
    try:
        nb = json.loads(notebook.read_text())
        source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
        release = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
        cells = learner_cells(nb, source, release)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return "\n\n".join(grading.ipython_to_python(src) for _, src in cells) + "\n"


def _starter_code(assignment: str) -> str:
    release = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    return "\n\n".join("".join(c["source"]) for c in release["cells"] if c["cell_type"] == "code"
                       and c.get("metadata", {}).get("nbgrader", {}).get("solution")) + "\n"


def _self_contained(html: str) -> str:
    """copydetect's report without its CDN stylesheet and script (the matched code then shows without clicking)."""
    return re.sub(r'<(link|script)[^>]*cdn\.jsdelivr\.net[^>]*>(\s*</script>)?', "", html)


def compare(assignment: str, code: dict[str, str], out_html: Path,
            threshold: float = THRESHOLD) -> list[tuple[str, str, float]]:
    """Compare the learners' ``code`` (student -> source) with the reference and with each other; write the HTML
    report; return every (student, matched_with, score) pair, the reference's first."""
    from copydetect import CopyDetector
    with tempfile.TemporaryDirectory(prefix="aiterms-similarity-") as tmp:
        tmp = Path(tmp)
        folders = {kind: tmp / kind for kind in ("learners", "reference", "starter")}
        for folder in folders.values():
            folder.mkdir()
        for student, source in code.items():
            (folders["learners"] / f"{student}.py").write_text(source)
        (folders["reference"] / "aiterms.py").write_text(reference_code(assignment))
        (folders["starter"] / "starter.py").write_text(_starter_code(assignment))
        out_html.parent.mkdir(parents=True, exist_ok=True)
        detector = CopyDetector(test_dirs=[str(folders["learners"])],
                                ref_dirs=[str(folders["learners"]), str(folders["reference"])],
                                boilerplate_dirs=[str(folders["starter"])], extensions=["py"],
                                display_t=threshold, autoopen=False, silent=True, out_file=str(out_html))
        detector.run()

        def name(path: str) -> str:
            return REFERENCE if Path(path).parent == folders["reference"] else Path(path).stem

        pairs: dict[tuple[str, str], float] = {}
        if len(detector.similarity_matrix):
            for i, test in enumerate(detector.test_files):
                for j, ref in enumerate(detector.ref_files):
                    share = float(detector.similarity_matrix[i, j, 0])
                    if share < 0:  # not compared (the same file)
                        continue
                    a, b = name(test), name(ref)
                    key = (a, b) if b == REFERENCE else tuple(sorted((a, b)))
                    pairs[key] = max(pairs.get(key, 0.0), share)  # between learners: the larger share
            html = detector.generate_html_report(output_mode="return")
            out_html.write_text(_self_contained(html).replace(str(folders["reference"]) + "/aiterms.py", REFERENCE)
                                .replace(str(folders["learners"]) + "/", "").replace(str(tmp) + "/", ""))
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (p[1] != REFERENCE, -p[2], p[0], p[1]))


def report(course: Path, submissions: dict[str, dict[str, list[Path]]], threshold: float = THRESHOLD) -> list[str]:
    """For each assignment (``submissions``: assignment -> student -> notebooks), compare and write
    ``similarity/<assignment>.html`` and ``similarity.csv``; returns one summary line per assignment."""
    lines, rows = [], []
    for assignment, by_student in sorted(submissions.items()):
        code = {student: c for student, paths in sorted(by_student.items())
                if (c := "\n".join(learner_code(p, assignment) for p in paths)).strip()}
        out_html = course / "similarity" / f"{assignment}.html"
        pairs = compare(assignment, code, out_html, threshold) if code else []
        rows += [(assignment, a, b, f"{s:.2f}", "yes" if s >= threshold else "no") for a, b, s in pairs]
        flagged = [f"{a} ~ {b} {s:.2f}" for a, b, s in pairs if s >= threshold]
        shown = ", ".join(flagged[:SHOWN]) + (f" and {len(flagged) - SHOWN} more pairs (similarity.csv)"
                                              if len(flagged) > SHOWN else "")
        lines.append(f"similar code in {assignment} (score >= {threshold:g}, see {out_html.relative_to(course)}): "
                     f"{shown or 'none'}")
    with open(course / "similarity.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["assignment", "student", "matched_with", "score", "flagged"])
        out.writerows(rows)
    return lines
