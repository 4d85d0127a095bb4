"""The grading sandbox (aiterms.grading.sandbox, bubblewrap): what a learner's code can see, write and use.

Each test runs a small program in the sandbox and checks what it could do. Files the tests plant on the host live
in a temporary folder outside the course, under random names.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbtools import ROOT

from aiterms.grading import sandbox

pytestmark = pytest.mark.skipif(bool(sandbox.missing()), reason=f"no sandbox here: {sandbox.missing()}")

PYTHON = [Path(sys.prefix), Path(sys.base_prefix)]


def run(code: str, **kwargs) -> sandbox.Outcome:
    kwargs.setdefault("timeout", 60)
    return sandbox.run([sys.executable, "-c", code], ro=PYTHON + list(kwargs.pop("ro", [])),
                       cwd=kwargs.pop("cwd", Path("/tmp")), **kwargs)


def report(code: str, **kwargs) -> dict:
    done = run(code + "\nimport json, sys\njson.dump(out, sys.stdout)", **kwargs)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)


@pytest.fixture
def planted(tmp_path):
    secret = tmp_path / secrets.token_hex(8) / f"{secrets.token_hex(8)}.txt"
    secret.parent.mkdir()
    secret.write_text(secrets.token_hex(16))
    secret.chmod(0o600)
    return secret


def test_only_the_whitelist_exists(planted):
    out = report(f"""
import os
out = {{"root": sorted(os.listdir("/")), "uid": os.getuid(), "gid": os.getgid(),
       "etc": sorted(os.listdir("/etc")), "proc": len([p for p in os.listdir("/proc") if p.isdigit()]),
       "exists": [p for p in ({str(planted)!r}, {str(planted.parent)!r}, "/home", "/var", "/etc/shadow", "/run",
                              {str(ROOT / "solutions")!r}, {str(ROOT / "lib")!r}) if os.path.exists(p)],
       "repo": sorted(os.listdir({str(ROOT)!r})) if os.path.isdir({str(ROOT)!r}) else [],
       "env": sorted(os.environ)}}""")
    assert set(out["root"]) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr",
                                *{p.parts[1] for p in PYTHON}}
    assert out["uid"] == out["gid"] == sandbox.INSIDE_UID != 0
    assert out["exists"] == []
    # folders above a whitelisted one exist, but hold only the way to it (the repository's .venv, nothing else)
    assert set(out["repo"]) <= {p.relative_to(ROOT).parts[0] for p in PYTHON if ROOT in p.parents}
    assert "shadow" not in out["etc"] and "passwd" in out["etc"]
    assert out["proc"] <= 3  # only the sandbox's own processes
    assert set(out["env"]) - {"PWD"} <= set(sandbox.minimal_env())  # nothing of the grader's environment


def test_the_python_environment_is_read_only_and_the_scratch_folder_writable(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = report(f"""
import sys
out = {{}}
for path in (sys.prefix + "/planted.txt", "/usr/planted.txt", "/etc/planted.txt", "/planted.txt",
             {str(scratch / "mine.txt")!r}, "/tmp/mine.txt"):
    try:
        open(path, "w").write("x")
        out[path] = "written"
    except OSError as e:
        out[path] = type(e).__name__""", rw=[scratch])
    assert [p for p, what in out.items() if what == "written"] == [str(scratch / "mine.txt"), "/tmp/mine.txt"]
    assert not (Path(sys.prefix) / "planted.txt").exists() and not Path("/tmp/mine.txt").exists()


def test_no_network():
    out = report("""
import socket
out = {}
for host in ("1.1.1.1", "8.8.8.8"):
    try:
        socket.create_connection((host, 53), timeout=3)
        out[host] = "connected"
    except OSError as e:
        out[host] = type(e).__name__
out["interfaces"] = [name for _, name in socket.if_nameindex()]""")
    assert out["interfaces"] == ["lo"]
    assert "connected" not in out.values()


def test_a_fork_loop_stops_at_the_process_limit():
    out = report("""
import os, time
children = 0
try:
    while children < 5000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
except OSError:
    pass
out = {"children": children}""", nproc=32)
    assert 0 < out["children"] < 32
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "time.sleep\\(60\\)"], capture_output=True, text=True).stdout.split()
    assert left == [], "the sandbox's processes outlived it"


def test_memory_file_size_tmpfs_and_output_are_limited():
    out = report("""
out = {}
try:
    hog = bytearray(3 * 2**30)
    out["memory"] = "allocated"
except MemoryError:
    out["memory"] = "MemoryError"
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(100):
            f.write(b"x" * 2**20)
    out["tmpfs"] = "written"
except OSError as e:
    out["tmpfs"] = e.strerror""", mem_mb=2048, tmp_mb=32)
    assert out == {"memory": "MemoryError", "tmpfs": "No space left on device"}
    done = run("import sys\nfor _ in range(64):\n    sys.stdout.write('x' * 2**20)", max_output=2**20)
    assert len(done.stdout) == 2**20 and done.truncated


def test_the_wall_clock_limit_kills_everything():
    start = time.monotonic()
    done = run("import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nos.fork()\n"
               "while True:\n    pass", timeout=3)
    assert done.timed_out and time.monotonic() - start < 10
    assert "time limit" in done.describe()
    time.sleep(0.5)
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                .splitlines() if "signal.SIG_IGN" in line]


def test_missing_says_what_to_install(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None if tool == "bwrap" else "/usr/bin/" + tool)
    assert "bubblewrap" in sandbox.missing() and "make sysdeps" in sandbox.missing()


# ------------------------------------------------------------------------------------------------ the grading server
# Each grading thread keeps one server in its sandbox; every run (a submission's judge run, its in-kernel run) is a
# process forked from it with its own namespaces. These tests run code as an in-kernel run does (one notebook cell
# at a time) and check that a run reaches neither the server nor any other run.
@pytest.fixture(scope="module")
def fake_library(tmp_path_factory):
    """A stand-in for the judge's stripped library: an `aiterms` package that says so."""
    folder = tmp_path_factory.mktemp("stripped") / "aiterms"
    folder.mkdir()
    (folder / "__init__.py").write_text("MARK = 'stripped'\n")
    return folder


@pytest.fixture(scope="module")
def server(fake_library):
    import aiterms
    shown = PYTHON + [Path(aiterms.__file__).resolve().parent, (fake_library, Path("/grading/fake/aiterms"))]
    with sandbox.Server(shown) as s:
        yield s


def cells(server, *sources: str, timeout: float = 60, limit: float | None = None,
          **kwargs) -> tuple[sandbox.Outcome, list[str]]:
    """Run ``sources`` as notebook cells (at most ``timeout`` s) in one run of ``server`` (killed after ``limit``
    s); returns the outcome and each cell's output."""
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    done = server.run("notebook", {"notebook": nbformat.writes(nb), "cell_timeout": timeout, "seconds": timeout},
                      timeout=limit or timeout + 5, **kwargs)
    if done.returncode != 0 or done.truncated:
        return done, []
    ran = nbformat.reads(done.stdout.decode(), as_version=4)
    return done, ["".join(o.get("text", "") or f"{o.get('ename')}: {o.get('evalue')}" for o in c.outputs)
                  for c in ran.cells]


def test_a_run_sees_only_itself_and_holds_no_capability(server):
    _, (out,) = cells(server, """
import ctypes, json, os
status = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
libc = ctypes.CDLL(None, use_errno=True)
mounted = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
print(json.dumps({"caps": {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
                  "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "mount": mounted,
                  "uid": os.getuid(), "dumpable_parent": os.access(f"/proc/{os.getppid()}/mem", os.R_OK)}))""")
    out = json.loads(out)
    assert out["caps"] == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}
    assert out["mount"] == -1 and out["uid"] == sandbox.INSIDE_UID
    assert max(out["pids"]) < 20, out["pids"]  # the run's own PID namespace: its PID 1 and the kernel
    assert not out["dumpable_parent"]          # the run's PID 1 is not dumpable: its memory is closed to the kernel


def test_nothing_of_a_run_reaches_the_next(server):
    mark = secrets.token_hex(6)
    sleeper = f"import time; time.sleep(300)  # {mark}"
    _, outs = cells(server, f"""
import os, subprocess, sys
for folder in ("/tmp", "/dev/shm"):
    open(os.path.join(folder, {mark!r}), "w").write("left behind")
subprocess.Popen([sys.executable, "-c", {sleeper!r}], start_new_session=True)
print("planted")""")
    assert outs == ["planted\n"]
    time.sleep(0.5)
    on_host = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert mark not in on_host, "a process of the run outlived it"
    _, (out,) = cells(server, f"""
import os
print([f for f in ("/tmp", "/dev/shm") if os.path.exists(os.path.join(f, {mark!r}))],
      [p for p in os.listdir("/proc") if p.isdigit() and {mark!r} in open(f"/proc/{{p}}/cmdline").read()])""")
    assert out == "[] []\n"


def test_a_run_that_overstays_is_killed_and_the_server_goes_on(server):
    start = time.monotonic()
    done, _ = cells(server, "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
                    timeout=100, limit=3)  # the run's own cell limit is not reached: the server kills it
    assert done.timed_out and time.monotonic() - start < 15
    done, outs = cells(server, "print(6 * 7)")
    assert done.returncode == 0 and outs == ["42\n"]


def test_the_library_shown_to_a_run_is_the_one_mounted_even_for_a_new_python(server, fake_library):
    import aiterms
    code = ("import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', 'import aiterms; "
            "print(getattr(aiterms, \"MARK\", \"full\"))'], capture_output=True, text=True).stdout.strip())")
    _, outs = cells(server, "import aiterms\nprint(getattr(aiterms, 'MARK', 'full'))", code,
                    library=(Path("/grading/fake/aiterms"), Path(aiterms.__file__).resolve().parent))
    assert outs == ["stripped\n", "stripped\n"]
    _, outs = cells(server, "import aiterms\nprint(getattr(aiterms, 'MARK', 'full'))", code)
    assert outs == ["full\n", "full\n"]


def test_a_runs_output_is_capped(server):
    done, _ = cells(server, "print('x' * 2**22)", max_output=2**16)
    assert done.truncated and len(done.stdout) == 2**16 and "printed more" in done.describe()
    assert cells(server, "print(1)")[1] == ["1\n"]
