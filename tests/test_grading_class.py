"""`make grade` on a hostile class: every kind of submission in the grading design, with its expected score.

One class, graded once by aiterms.grading.grade (the judge + the sandboxed in-kernel run); each test checks one
row of the table in the instructor guide. A second, small class checks zip files, late flags and idempotent regrading.
"""
from __future__ import annotations

import csv
import io
import re
import secrets
import zipfile
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from aiterms.grading import similarity

from nbtools import ROOT, answer_cells, fill, make_course, read, scores

A = "16-beam-search"
SOURCE = ROOT / "solutions" / A / f"{A}.ipynb"
RELEASE = ROOT / "exercises" / A / f"{A}.ipynb"
FULL = {"test_greedy_decode": 2, "test_beam_step": 3, "test_beam_search": 5}
pytestmark = [pytest.mark.slow]

# ------------------------------------------------------------------------------------------------ answers
# Correct, but written differently from the reference: plain Python lists and loops, numpy, float64, helpers.
GREEDY_NUMPY = '''
import numpy as np

def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    out = []
    while len(out) < max_new_tokens:
        scores = np.asarray(next_token_logprobs(model, [list(prompt) + out])[0], dtype=np.float64)
        out.append(int(np.argmax(scores)))
        if out[-1] == eos_token_id:
            return out
    return out
'''
STEP_LOOPS = '''
def beam_step(beam_scores, logprobs, k):
    rows = []
    for b in range(logprobs.shape[0]):
        for v in range(logprobs.shape[1]):
            rows.append((float(beam_scores[b]) + float(logprobs[b, v]), b, v))
    rows.sort(key=lambda r: -r[0])  # stable: ties keep (beam, token) order, like torch.topk here
    rows = rows[:k]
    return (torch.tensor([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows])
'''
SEARCH_HELPERS = '''
def _length_normalised(logprob, length, alpha):
    return float(logprob / length ** alpha)

def _should_stop(best_running, finished, num_beams, length, max_new_tokens, alpha, early_stopping):
    if len(finished) < num_beams:
        return False
    if early_stopping is True:
        return True
    horizon = max_new_tokens if (early_stopping == "never" and alpha > 0) else length
    return not _length_normalised(best_running, horizon, alpha) > finished[-1][1]
'''
SEARCH_USING_HELPERS = '''
def beam_search(model, prompt, num_beams, max_new_tokens, eos_token_id=None, length_penalty=1.0,
                early_stopping=False):
    running = [([], torch.zeros(()))]
    finished = []
    for step in range(1, max_new_tokens + 1):
        logprobs = next_token_logprobs(model, [list(prompt) + toks for toks, _ in running])
        scores = torch.stack([s for _, s in running])
        top, beam, token = beam_step(scores, logprobs, 2 * num_beams)
        beam, token = [int(x) for x in beam], [int(x) for x in token]
        cands = [(running[b][0] + [t], s) for s, b, t in zip(top, beam, token)]
        done = [t == eos_token_id or step == max_new_tokens for t in token]
        finished += [(c[0], _length_normalised(c[1], step, length_penalty))
                     for c, d in list(zip(cands, done))[:num_beams] if d]
        finished = sorted(finished, key=lambda h: -h[1])[:num_beams]
        running = [c for c, d in zip(cands, done) if not d][:num_beams]
        if not running or _should_stop(running[0][1], finished, num_beams, step, max_new_tokens,
                                       length_penalty, early_stopping):
            break
    return finished
'''
WRONG_GREEDY = '''
def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):
    return [0] * max_new_tokens
'''
WRONG_STEP = '''
def beam_step(beam_scores, logprobs, k):
    s, flat = torch.topk(logprobs.reshape(-1), min(k, logprobs.numel()))
    return s, flat // logprobs.shape[1], flat % logprobs.shape[1]
'''


@dataclass
class Planted:
    """What the test plants on the host, outside the course, under random names, for the sandbox to keep out."""
    secret_file: Path = Path("/nonexistent/secret")   # mode 600, the grading user's: no learner may read it
    secret: str = "not-a-secret"
    outside_dir: Path = Path("/nonexistent")            # a learner tries to write a file here
    module: str = "planted_module"                      # planted in the host's /tmp, and written by a learner


KILL_ALL = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n"
EXTRA = "__extra_cells__"  # answers[EXTRA]: code cells a learner added at the end of the notebook


def hostile(solution: dict[str, str], course, inbox, planted: Planted = Planted()) -> dict[str, tuple[dict, dict]]:
    """student -> (answer cells to use, expected points per test cell)."""
    g, s, b = solution["greedy_decode"], solution["beam_step"], solution["beam_search"]
    zero_g, zero_s, zero_b = ({**FULL, k: 0} for k in FULL)
    return {
        # correct answers that also try to reach the host: each must find nothing, so keeps full points
        "reads-a-file-of-the-grader": ({"greedy_decode": f"from IPython.display import HTML, display\ntry:\n"
                                        f"    leaked = open({str(planted.secret_file)!r}).read()\n"
                                        f"except OSError as e:\n    leaked = repr(e)\n"
                                        f"print(leaked)\ndisplay(HTML('<b>' + leaked + '</b>'))\n" + g}, FULL),
        "writes-outside": ({"greedy_decode": f"import os\nfor path in ({str(planted.outside_dir / 'dropped.txt')!r}, "
                            f"'/tmp/{planted.module}.py', {str(course / 'dropped.txt')!r}):\n    try:\n"
                            f"        with open(path, 'w') as f:\n            f.write('greedy_decode = None')\n"
                            f"    except OSError:\n        pass\n" + g}, FULL),
        "imports-a-planted-module": ({"greedy_decode": g + f"\nimport sys\nsys.path[:0] = ['/tmp', '']\ntry:\n"
                                      f"    from {planted.module} import greedy_decode\nexcept ImportError:\n"
                                      f"    pass\n"}, FULL),
        "scripts-in-outputs": ({"greedy_decode": "from IPython.display import HTML, Markdown, Javascript, display\n"
                                "display(HTML('<script>window.planted_script_1 = 1</script><p>a table:</p>"
                                "<table><tr><td>kept cell</td></tr></table>'))\n"
                                "display(HTML('<img src=x onerror=\"window.planted_script_2 = 1\">'))\n"
                                "display(Markdown('<iframe src=\"https://example.com/planted_script_3\"></iframe>'))\n"
                                "display(Javascript('window.planted_script_4 = 1'))\n" + g,
                                EXTRA: ["#\n"], "markdown": "<script>window.planted_script_5 = 1</script>"}, FULL),
        # a job's process is the worker's child, as the same user: it must not reach the worker's memory
        "opens-the-workers-memory": ({"greedy_decode": g + "\nimport os\ntry:\n"
                                       "    open(f'/proc/{os.getppid()}/mem', 'rb').close()\n"
                                       "    greedy_decode = None\nexcept OSError:\n"
                                       "    assert os.listdir('/proc/self/fd')  # its own /proc still works\n"}, FULL),
        # each run is PID 1 of its own PID namespace, forked from the grading server: killing every process it may
        # (kill -1) reaches only the run's own, and no namespace, mount or capability is left to it
        "kills-every-process-it-can": ({"greedy_decode": KILL_ALL + g, EXTRA: [KILL_ALL]}, FULL),
        "makes-namespaces-and-mounts": ({"greedy_decode": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                                         "assert libc.unshare(0x00020000) != 0 and libc.unshare(0x10000000) != 0\n"
                                         "assert libc.mount(b'tmpfs', b'/usr', b'tmpfs', 0, None) != 0\n"
                                         "assert libc.umount2(b'/tmp', 2) != 0\n" + g}, FULL),
        "fork-loop": ({"greedy_decode": g, EXTRA: ["import os, sys\nchildren = 0\ntry:\n    while children < 10000:\n"
                                                   "        if os.fork() == 0:\n            os.execv(sys.executable, "
                                                   "[sys.executable, '-c', 'import time; time.sleep(120)', "
                                                   f"'{planted.module}'])\n"
                                                   "        children += 1\n"
                                                   "except OSError:\n    pass\nprint('forked', children)"]}, FULL),
        # the library's reference implementations pasted in, with their helpers and imports: the judge cannot tell
        # (full points), the similarity report flags it (tested below)
        "pastes-the-reference": ({"greedy_decode": similarity.reference_code(A), "beam_step": "#",
                                  "beam_search": "#"}, FULL),
        "correct": ({}, FULL),
        "correct-written-differently": ({"greedy_decode": GREEDY_NUMPY, "beam_step": STEP_LOOPS,
                                         "beam_search": SEARCH_HELPERS + SEARCH_USING_HELPERS}, FULL),
        "wrong-greedy": ({"greedy_decode": WRONG_GREEDY}, zero_g),
        "loop-in-function": ({"greedy_decode": "def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):"
                                               "\n    while True:\n        pass"}, zero_g),
        "loop-at-top-level": ({"beam_step": s + "\nwhile True:\n    pass"},
                              {**FULL, "test_beam_step": 0, "test_beam_search": 0}),
        "os-exit": ({"greedy_decode": "import os\nos._exit(1)\n" + g}, zero_g),
        "sys-exit": ({"beam_search": b + "\nimport sys\nsys.exit('bye')"}, zero_b),
        "segfault": ({"beam_step": "import ctypes\nctypes.string_at(0)\n" + s},
                     {**FULL, "test_beam_step": 0, "test_beam_search": 0}),
        "ignores-sigint-while-looping": ({"greedy_decode": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                          "def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):\n"
                                          "    while True:\n        pass"}, zero_g),
        # (bytes(n) is calloc'ed, not written: it reaches the address-space limit at once, however busy the machine)
        "unbounded-memory": ({"beam_search": b + "\nhog = []\nwhile True:\n    hog.append(bytes(10**9))"}, zero_b),
        "patches-assertions": ({"greedy_decode": "import numpy, torch, builtins\n"
                                "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                                "torch.testing.assert_close = lambda *a, **k: None\n" + WRONG_GREEDY}, zero_g),
        "patches-grading-api": ({"beam_step": "import aiterms.grading, aiterms.grading.tasks\n"
                                 "aiterms.grading.check_cases = lambda *a, **k: print('all passed')\n"
                                 "aiterms.grading.tasks.check_task = lambda *a, **k: print('all passed')\n"
                                 "aiterms.grading.compare_values = lambda *a, **k: None\n" + WRONG_STEP},
                                {**FULL, "test_beam_step": 0, "test_beam_search": 0}),
        "patches-builtins-and-import": ({"greedy_decode": "import builtins\n_real_import = builtins.__import__\n"
                                         "builtins.isinstance = lambda *a: True\n"
                                         "builtins.__import__ = lambda name, *a, **k: _real_import(name, *a, **k)\n"
                                         + WRONG_GREEDY}, zero_g),
        "eq-always-true": ({"beam_search": "class Anything(list):\n    def __eq__(self, other):\n        return True\n"
                            "def beam_search(model, prompt, num_beams, max_new_tokens, eos_token_id=None, "
                            "length_penalty=1.0, early_stopping=False):\n    return Anything()"}, zero_b),
        "calls-reference": ({"beam_step": "from aiterms.beam_search import beam_step as _ref\n"
                             "def beam_step(beam_scores, logprobs, k):\n    return _ref(beam_scores, logprobs, k)"},
                            {**FULL, "test_beam_step": 0, "test_beam_search": 0}),
        "hard-codes-visible-answers": ({
            "greedy_decode": "def greedy_decode(model, prompt, max_new_tokens, eos_token_id=None):\n"
                             "    if max_new_tokens == 5: return [0, 0, 0, 0, 0]\n"
                             "    return lm.encode('store for milk <eos>')[:max_new_tokens]"}, zero_g),
        "reads-solutions": ({"greedy_decode": f"import json\ntry:\n"
                             f"    nb = json.load(open({str(ROOT / 'solutions' / A / f'{A}.ipynb')!r}))\n"
                             f"    exec(''.join(c['source']).replace('### BEGIN SOLUTION', '') for c in nb['cells'] "
                             f"if 'def greedy_decode' in ''.join(c['source']))\n"
                             f"except Exception:\n" + "\n".join("    " + line for line in WRONG_GREEDY.strip().splitlines())},
                            zero_g),
        "reads-other-students-and-gradebook": ({"beam_search": f"import glob, json\n"
                                                f"found = glob.glob({str(inbox)!r} + '/*/*/*.ipynb') + "
                                                f"glob.glob({str(course)!r} + '/**/*', recursive=True)\n"
                                                f"assert not found, found\n" + b}, FULL),  # sees nothing
        "reads-environment": ({"greedy_decode": "import os\nassert 'GRADER_SECRET' not in os.environ\n" + g},
                              FULL),  # the grader's environment is not passed on
        "writes-gradebook": ({"greedy_decode": f"import sqlite3\ntry:\n"
                              f"    con = sqlite3.connect({str(course / 'gradebook.db')!r})\n"
                              f"    con.execute('UPDATE grade SET auto_score = 100')\n    con.commit()\n"
                              f"except Exception:\n    pass\n" + WRONG_GREEDY}, zero_g),
    }


def edited(release: nbformat.NotebookNode, solution: dict, how: str) -> nbformat.NotebookNode:
    """Correct answers, with the test cells tampered with."""
    nb = fill(release, solution)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    if how == "edits":
        for c in tests:
            c.source = "print('visible tests passed - more tests run at grading')"
    elif how == "deletes":
        nb.cells = [c for c in nb.cells if c not in tests]
    elif how == "reorders":
        nb.cells = tests + [c for c in nb.cells if c not in tests]
    elif how == "strips-metadata":
        for c in nb.cells:
            c.metadata = {}
    return nb


def submission(release, solution: dict, answers: dict) -> nbformat.NotebookNode:
    """The release notebook with answers filled in, and a learner's extra cells (code, or one Markdown) at the end."""
    answers = dict(answers)
    extra, markdown = answers.pop(EXTRA, []), answers.pop("markdown", None)
    nb = fill(release, {**solution, **answers})
    nb.cells += [nbformat.v4.new_code_cell(src) for src in extra]
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    return nb


def leftover_processes(marker: str) -> list[str]:
    """Processes on the host whose command line holds ``marker`` (the fork loop's children sleep 120 s with it)."""
    import subprocess
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-the-course") / secrets.token_hex(8)
    outside.mkdir()
    plant = Planted(outside / f"secret-{secrets.token_hex(8)}.txt", f"planted-secret-{secrets.token_hex(16)}",
                    outside, f"planted_{secrets.token_hex(8)}")
    plant.secret_file.write_text(plant.secret)
    plant.secret_file.chmod(0o600)
    module = Path("/tmp") / f"{plant.module}.py"  # where the old sandbox's worker would have imported it from
    module.write_text("greedy_decode = None\n")
    yield plant
    module.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, planted):
    from aiterms.grading.grade import grade
    tmp = tmp_path_factory.mktemp("hostile")
    course, inbox = make_course(tmp), tmp / "inbox"
    release, solution = read(RELEASE), answer_cells(read(SOURCE))
    expected = {}
    for student, (answers, points) in hostile(solution, course, inbox, planted).items():
        write(inbox / student / A / f"{A}.ipynb", submission(release, solution, answers))
        expected[student] = points
    for how in ("edits", "deletes", "reorders", "strips-metadata"):
        write(inbox / f"{how}-test-cells" / A / f"{A}.ipynb", edited(release, solution, how))
        expected[f"{how}-test-cells"] = FULL
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GRADER_SECRET", "a token the learner must not see")
    try:
        table = grade(inbox, course, jobs=2, job_timeout=8)
    finally:
        monkeypatch.undo()
    return course, scores(course, A), expected, table


def everything_written(course) -> str:
    """Every file the grading run wrote for the instructor and the learners, as text."""
    parts = []
    for path in sorted(course.rglob("*")):
        if path.is_file() and "solutions" not in path.parts:
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_no_submission_read_a_file_of_the_host(graded, planted):
    course = graded[0]
    assert planted.secret not in everything_written(course)  # feedback, autograded, gradebook.db, grades.csv
    html = (course / "feedback" / "reads-a-file-of-the-grader" / A / f"{A}.html").read_text()
    assert "No such file or directory" in html  # the path does not exist in the sandbox at all


def test_no_submission_wrote_on_the_host_or_left_a_process(graded, planted):
    course = graded[0]
    assert list(planted.outside_dir.iterdir()) == [planted.secret_file]
    assert not (course / "dropped.txt").exists()
    assert (Path("/tmp") / f"{planted.module}.py").read_text() == "greedy_decode = None\n"  # only the test's own
    assert not leftover_processes(planted.module)
    html = (course / "feedback" / "fork-loop" / A / f"{A}.html").read_text()
    forked = int(re.search(r"forked (\d+)", html).group(1))
    assert forked < 64  # the process limit (threads of the kernel count too)


class ActiveContent(HTMLParser):
    """What in an HTML page could run or load something: script text, event-handler attributes, frames, objects."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        if tag in ("iframe", "frame", "object", "embed"):
            self.found.append(f"<{tag}>")
        self.found += [f"{tag} {name}=" for name, _ in attrs if name.lower().startswith("on")]

    def handle_data(self, data):
        if self._in_script and "planted_script" in data:
            self.found.append(f"script: {data[:60]}")

    def handle_endtag(self, tag):
        self._in_script = False


def test_no_script_survives_in_feedback(graded):
    course = graded[0]
    for student in STUDENTS:
        parser = ActiveContent()
        parser.feed((course / "feedback" / student / A / f"{A}.html").read_text())
        assert not parser.found, f"{student}'s feedback keeps active content: {parser.found}"
        nb = nbformat.read(course / "autograded" / student / A / f"{A}.ipynb", as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                assert not set(data) - {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg",
                                        "text/latex", "application/json"}, f"{student}: {set(data)}"
                for key in ("text/html", "text/markdown"):
                    for bad in ("<script", "onerror", "<iframe"):
                        assert bad not in data.get(key, ""), f"{student}'s autograded output keeps {bad}"
            if cell.cell_type == "markdown":
                assert "<script" not in cell.source, f"{student}'s Markdown keeps a script"
    html = (course / "feedback" / "scripts-in-outputs" / A / f"{A}.html").read_text()
    assert "kept cell" in html and "<table>" in html  # tables and text still show


def write(path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


STUDENTS = sorted(list(hostile({"greedy_decode": "", "beam_step": "", "beam_search": ""}, ROOT, ROOT, Planted())) +
                  [f"{how}-test-cells" for how in ("edits", "deletes", "reorders", "strips-metadata")])


@pytest.mark.parametrize("student", STUDENTS)
def test_each_kind_of_submission_gets_its_expected_score(graded, student):
    _, got, expected, _ = graded
    assert got[student] == expected[student]


def test_every_learner_has_feedback_and_a_csv_row(graded):
    course, got, expected, table = graded
    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert set(rows) == set(expected)
    for student, points in expected.items():
        assert float(rows[student]["score"]) == sum(points.values())
        html = unescape((course / "feedback" / student / A / f"{A}.html").read_text())
        assert "Graded by the course" in html
        for secret in ("BEGIN HIDDEN TESTS", f'check_task("{A}"'):
            assert secret not in html, f"{student}'s feedback shows hidden-test source ({secret})"
    assert "errored" in table and "beam_search" in table


def test_the_similarity_report_flags_the_pasted_reference_and_not_independent_work(graded):
    course, _, _, table = graded
    rows = list(csv.DictReader((course / "similarity.csv").open()))
    flagged = {(r["student"], r["matched_with"]) for r in rows if r["flagged"] == "yes"}
    assert ("pastes-the-reference", similarity.REFERENCE) in flagged
    assert not [pair for pair in flagged if "correct-written-differently" in pair]
    assert f"pastes-the-reference ~ {similarity.REFERENCE}" in table
    html = (course / "similarity" / f"{A}.html").read_text()
    assert "pastes-the-reference.py" in html and "<script" not in html  # learners' code is escaped there


def test_feedback_says_what_happened(graded):
    course = graded[0]
    read_html = lambda s: (course / "feedback" / s / A / f"{A}.html").read_text()  # noqa: E731
    assert "exit status 1" in read_html("os-exit")
    assert "segmentation fault" in read_html("segfault")
    assert "time limit" in read_html("loop-in-function")
    assert "MemoryError" in read_html("unbounded-memory")
    assert "reference implementation" in read_html("calls-reference")
    assert "hidden case" in read_html("hard-codes-visible-answers")
    assert "visible tests passed - more tests run at grading" in read_html("correct")
    # the flagged cell is replaced, and the rest of the notebook still runs: task 2's visible tests pass
    assert "not run at grading" in read_html("os-exit") and "could not be run" not in read_html("os-exit")
    assert "visible tests passed - more tests run at grading" in read_html("os-exit")
    assert "all tests passed" not in read_html("correct").lower()


def test_no_submission_reached_the_gradebook(graded):
    course, got, _, _ = graded
    assert max(p for student in got.values() for p in student.values()) <= max(FULL.values())


# ------------------------------------------------------------------------------------------------ zips, late, regrading
def test_zips_late_flags_and_idempotent_regrading(tmp_path):
    from aiterms.grading.grade import grade
    course, inbox = make_course(tmp_path), tmp_path / "inbox"
    release, solution = read(RELEASE), answer_cells(read(SOURCE))
    write(inbox / "on-time" / A / f"{A}.ipynb", fill(release, solution))
    (inbox / "on-time" / A / "timestamp.txt").write_text("2026-11-30 12:00:00.000000 UTC")
    write(inbox / "late" / A / f"{A}.ipynb", fill(release, {**solution, "greedy_decode": WRONG_GREEDY}))
    (inbox / "late" / A / "timestamp.txt").write_text("2026-12-02 18:00:00.000000 UTC")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{A}/{A}.ipynb", nbformat.writes(fill(release, solution)))
        z.writestr("../../escape.ipynb", "{}")  # a path that tries to leave the folder: ignored, with a warning
        z.writestr(f"/etc/{A}/notes.txt", "odd member")  # not a notebook: skipped, with a warning
        z.writestr("__MACOSX/._x.ipynb", "")                 # an archiver's leftovers: skipped silently
    (inbox / "zipped.zip").write_bytes(buffer.getvalue())
    with zipfile.ZipFile(inbox / "empty.zip", "w") as z:
        z.writestr("readme.md", "no notebook here")
    (inbox / "notes.txt").write_text("not a submission")          # bad input: a warning and a row, not a crash
    (inbox / "broken.zip").write_bytes(b"not a zip file")

    table = grade(inbox, course, duedate="2026-12-01 17:00:00 UTC")
    first = (course / "grades.csv").read_text()
    assert scores(course, A) == {"on-time": FULL, "late": {**FULL, "test_greedy_decode": 0}, "zipped": FULL}
    assert "late: late (25.0 h)" in table
    assert not (tmp_path / "escape.ipynb").exists()
    notes = [r["note"] for r in csv.DictReader((course / "grading-log.csv").open()) if not r["student"]]
    assert any("notes.txt" in n for n in notes) and any("broken.zip" in n and "zip" in n for n in notes), notes
    assert any("zipped.zip:../../escape.ipynb: not a notebook of a known assignment" in n for n in notes), notes
    assert any(f"zipped.zip:/etc/{A}/notes.txt" in n for n in notes) and not any("MACOSX" in n for n in notes)
    assert any("empty.zip: no notebook of a known assignment in it" in n for n in notes), notes

    grade(inbox, course)  # regrade: same grades, same rows
    assert (course / "grades.csv").read_text() == first


# ------------------------------------------------------------------------------------------------ the time budget
def test_a_submission_costs_at_most_its_budget(tmp_path):
    """Forty looping cells no task needs cost nothing in the judge and end the in-kernel run at the budget; slow
    cells that the tasks need use the budget up, and the tasks not reached get 0 with a message saying so."""
    import time
    from aiterms.grading.grade import grade
    course, inbox = make_course(tmp_path), tmp_path / "inbox"
    release, solution = read(RELEASE), answer_cells(read(SOURCE))
    write(inbox / "many-loops" / A / f"{A}.ipynb",
          submission(release, solution, {EXTRA: ["while True:\n    pass"] * 40}))
    # 5 s per answer cell: beam_search needs two of them, more than the budget leaves it (or than its time limit)
    slow = {k: "__import__('time').sleep(5)\n" + v for k, v in solution.items()}
    write(inbox / "slow-cells" / A / f"{A}.ipynb", submission(release, solution, slow))
    budget = 20
    start = time.monotonic()
    grade(inbox, course, jobs=2, job_timeout=9, budget=budget)
    assert time.monotonic() - start < 120
    log = {r["student"]: r for r in csv.DictReader((course / "grading-log.csv").open())}
    for student in ("many-loops", "slow-cells"):
        assert float(log[student]["seconds"]) <= budget + 5, log[student]
        assert log[student]["budget_used_up"] == "yes"
    got = scores(course, A)
    assert got["many-loops"] == FULL
    assert got["slow-cells"] == {**FULL, "test_beam_search": 0}
    html = (course / "feedback" / "slow-cells" / A / f"{A}.html").read_text()
    assert "used up its time budget" in html
