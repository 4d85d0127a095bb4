"""A shared gradebook in PostgreSQL: a throwaway server (Debian's postgresql, `make sysdeps`) in a temporary folder
on a free port, run as an unprivileged user when the tests run as root (PostgreSQL refuses root). Two graders, each
with their own course folder and the course's salt, grade different assignments at the same time into the same
gradebook; every score equals the SQLite run's. Skipped, with the reason, where no server can be started here."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from aiterms.grading import sandbox
from nbtools import ROOT, answer_cells, fill, make_course, read

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(sandbox.missing()), reason=f"no sandbox here: {sandbox.missing()}")]

ASSIGNMENTS = ("16-beam-search", "17-rejection-sampling")
UNPRIVILEGED = 65534  # nobody


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups", *argv]


@pytest.fixture(scope="module")
def postgres():
    """A running PostgreSQL server; yields a function giving the URL of a new, empty database."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed here (`make sysdeps` installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="aiterms-postgres-"))
    folder.chmod(0o755)
    data = folder / "data"
    if os.geteuid() == 0:
        os.chown(folder, UNPRIVILEGED, UNPRIVILEGED)
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(folder)}
    run = (lambda *argv: subprocess.run(_as_server_user([str(bin_dir / argv[0]), *argv[1:]]), env=env, cwd=folder,
                                        capture_output=True, text=True))
    done = run("initdb", "-D", str(data), "-U", "grader", "--auth=trust", "--no-sync")
    if done.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL's initdb could not run here: {done.stderr.strip()[-300:]}")
    done = run("pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
               f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off", "start")
    if done.returncode:
        log = (folder / "log").read_text() if (folder / "log").exists() else done.stderr
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server could not start here: {log.strip()[-300:]}")
    names = iter(range(1000))

    def database() -> str:
        name = f"gradebook{next(names)}"
        made = run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", name)
        assert made.returncode == 0, made.stderr
        return f"postgresql://grader@127.0.0.1:{port}/{name}"

    yield database
    run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
    shutil.rmtree(folder, ignore_errors=True)


def course_with(tmp: Path, url: str | None) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    course = make_course(tmp)
    if url:
        with open(course / "nbgrader_config.py", "a") as f:
            f.write(f"\nc.CourseDirectory.db_url = {url!r}\n")
    return course


def inbox_for(folder: Path, assignments) -> Path:
    """Two learners per assignment: the solution, and the release as handed out (nothing done)."""
    for a in assignments:
        release, solution = read(ROOT / "exercises" / a / f"{a}.ipynb"), read(ROOT / "solutions" / a / f"{a}.ipynb")
        for student, nb in (("ada", fill(release, answer_cells(solution))), ("bo", release)):
            path = folder / student / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
    return folder


def all_scores(url: str) -> dict[tuple[str, str, str], float]:
    from nbgrader.api import Gradebook
    with Gradebook(url) as gb:
        return {(s.student.id, a.name, g.name): g.score for a in gb.assignments for s in a.submissions
                for nb in s.notebooks for g in nb.grades}


def grade_command(inbox: Path, course: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aiterms.grading", str(inbox), "--course", str(course),
                           "--jobs", "1", "--points-only"], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})


def test_two_graders_at_once_into_one_postgresql_gradebook_match_sqlite(tmp_path, postgres):
    url = postgres()
    # the SQLite run: one course, both assignments
    sqlite_course = course_with(tmp_path / "sqlite", None)
    done = grade_command(inbox_for(tmp_path / "inbox-all", ASSIGNMENTS), sqlite_course)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = all_scores(f"sqlite:///{sqlite_course / 'gradebook.db'}")
    assert len(expected) > 4 and any(v > 0 for v in expected.values()) and any(v == 0 for v in expected.values())

    # two graders, two course folders (the same salt), one assignment each, at the same time, one gradebook
    courses = [course_with(tmp_path / f"grader{i}", url) for i in range(2)]
    inboxes = [inbox_for(tmp_path / f"inbox{i}", [a]) for i, a in enumerate(ASSIGNMENTS)]
    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(grade_command, inboxes, courses))
    for done in runs:
        assert done.returncode == 0, done.stderr[-3000:]
        assert "postgresql://grader@127.0.0.1" in done.stdout
    print(f"two graders at once: {time.monotonic() - start:.1f} s")
    assert all_scores(url) == expected

    # grading again changes nothing
    done = grade_command(inboxes[0], courses[0])
    assert done.returncode == 0, done.stderr[-3000:]
    assert all_scores(url) == expected


def test_an_unreachable_gradebook_stops_grading_with_a_message_and_writes_nothing(tmp_path):
    port = _free_port()  # nothing listens there
    course = course_with(tmp_path, f"postgresql://grader:hunter2@127.0.0.1:{port}/gradebook")
    done = grade_command(inbox_for(tmp_path / "inbox", ASSIGNMENTS[:1]), course)
    assert done.returncode != 0
    assert f"the gradebook postgresql://grader:***@127.0.0.1:{port}/gradebook cannot be reached" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert not (course / "submitted").exists() and not (course / "feedback").exists()


def test_one_writer_at_a_time_in_a_shared_gradebook(postgres):
    """gradebook_writer serialises writers across processes: two graders that start on an empty PostgreSQL
    gradebook at the same moment would both create nbgrader's tables (a unique-constraint error seen in CI)."""
    import threading

    from aiterms.grading.grade import gradebook_writer
    url = postgres()
    events = []

    def second():
        with gradebook_writer(url):
            events.append("second in")

    with gradebook_writer(url):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(1.0)
        events.append("first out")
    other.join(30)
    assert events == ["first out", "second in"], f"the second writer did not wait for the first: {events}"
    with gradebook_writer("sqlite:///unused.db"):  # SQLite: nothing to lock, nothing opened
        pass
