"""Run a command where a learner's code cannot reach instructor files, with time and memory limits.

It uses Linux namespaces through util-linux's `unshare` (no root needed where unprivileged user namespaces are
allowed): a user namespace (we are "root" only inside it), a mount namespace, a PID namespace with its own /proc
(other processes, and their working directories, are invisible) and a network namespace (loopback only).
Inside it:

* every folder in ``hide`` (the repository, the course, the submissions, the other scratch folders) is covered
  with an empty tmpfs, so `solutions/`, `gradebook.db`, other learners' work and the grading salt are not there;
* the folders the command needs are bound back at their own paths: ``ro`` read-only (the Python environment, the
  library) and ``rw`` writable (this submission's scratch folder);
* resource limits: address space (``mem_mb``), CPU seconds, file size, no core dumps;
* a wall-clock ``timeout`` kills the namespace's first process, and with it every process in the namespace
  (a cell that ignores SIGINT, forks or loops is stopped all the same).
"""
from __future__ import annotations

import os
import resource
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Outcome:
    returncode: int | None     # None: killed at the timeout
    stdout: bytes
    stderr: bytes
    seconds_limit: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def describe(self) -> str:
        """What happened, in words, for feedback."""
        if self.timed_out:
            return f"ran past the time limit ({self.seconds_limit:g} s) and was stopped"
        if self.returncode < 0:
            sig = signal.Signals(-self.returncode).name
            return {"SIGXCPU": "used up its CPU-time limit", "SIGKILL": "was killed (memory or time limit)",
                    "SIGSEGV": "crashed (segmentation fault)"}.get(sig, f"was killed by {sig}")
        return f"exited with status {self.returncode}"


def minimal_env(**extra: str) -> dict[str, str]:
    """The only environment a sandboxed command gets: no variable of the grader's (tokens, passwords, paths)."""
    import sys
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "LANG": "C.UTF-8", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    env.update(extra)
    return env


def available() -> bool:
    """Can this machine make the namespaces? (Checked once per run by tools/grade.py.)"""
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--net",
                               "--mount-proc", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


Bind = tuple[Path, Path]  # (what, where): `what` appears at `where` inside the sandbox


def _binds(paths) -> list[Bind]:
    out = []
    for p in paths:
        src, dst = p if isinstance(p, tuple) else (p, p)
        out.append((Path(src).resolve(), Path(dst).resolve()))
    return out


def _script(hide: list[Path], ro: list[Bind], rw: list[Bind], stage: Path, cwd: Path, argv: list[str]) -> str:
    q = shlex.quote
    keep = [(b, True) for b in ro] + [(b, False) for b in rw]
    lines = ["set -e", f"mount -t tmpfs -o size=1m tmpfs {q(str(stage))}"]
    for i, ((source, _), _) in enumerate(keep):  # park what we keep before covering its parents
        lines += [f"mkdir {q(f'{stage}/{i}')}", f"mount --rbind {q(str(source))} {q(f'{stage}/{i}')}"]
    for path in hide:
        lines.append(f"mount -t tmpfs -o size=64m,mode=755 tmpfs {q(str(path))}")
    for i, ((_, path), readonly) in enumerate(keep):
        lines += [f"mkdir -p {q(str(path))}", f"mount --rbind {q(f'{stage}/{i}')} {q(str(path))}"]
        if readonly:
            lines.append(f"mount -o remount,bind,ro {q(str(path))}")
    lines += [f"umount -l {q(str(stage))}", "ip link set lo up 2>/dev/null || true", f"cd {q(str(cwd))}",
              "exec " + " ".join(q(a) for a in argv)]
    return "\n".join(lines)


def run(argv: list[str], *, hide: list[Path], ro: list = (), rw: list = (), cwd: Path,
        timeout: float, mem_mb: int = 2048, cpu_s: int | None = None, env: dict | None = None,
        stdin: bytes = b"", max_output: int = 16 * 2**20) -> Outcome:
    """Run ``argv`` in the sandbox. ``ro``/``rw``: folders kept (read-only / writable), each a path or a
    ``(source, destination)`` pair; ``cwd`` must be inside one of them or outside every hidden folder.
    ``env``: the whole environment (default :func:`minimal_env`); nothing of the caller's is passed on."""
    env = env if env is not None else minimal_env()
    hide = sorted({Path(p).resolve() for p in hide if Path(p).exists()}, key=lambda p: len(p.parts))
    hide = [p for p in hide if not any(q != p and q in p.parents for q in hide)]  # covered by a parent already
    ro, rw = _binds(ro), _binds(rw)
    cpu_s = cpu_s or int(timeout) + 5

    def limits() -> None:  # in the child, before exec: inherited by everything it starts
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb * 2**20, mem_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 2))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2**20, 256 * 2**20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    with tempfile.TemporaryDirectory(prefix="aiterms-stage-") as stage, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        script = _script(hide, ro, rw, Path(stage), Path(cwd), argv)
        proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "--pid", "--fork",
             "--kill-child", "--mount-proc", "--net", "sh", "-c", script],
            stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, preexec_fn=limits, start_new_session=True)
        try:
            proc.communicate(stdin, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        out.seek(0)
        err.seek(0)
        return Outcome(code, out.read(max_output), err.read(max_output), timeout)
