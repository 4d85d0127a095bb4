"""The grading server: one long-lived process in the bubblewrap sandbox that serves one run at a time, each in a
fresh, isolated process.

Starting Python, PyTorch and a Jupyter kernel costs about 2.5 s of CPU each time; the learner's code runs for a
fraction of that. So :class:`aiterms.grading.sandbox.Server` starts ``python -m aiterms.grading.server`` once per
grading thread, in the sandbox of :mod:`aiterms.grading.sandbox` (the whitelist root: read-only everywhere, no
network, not root, the process limits), with one capability kept for this process alone: ``CAP_SYS_ADMIN`` *of the
sandbox's own user namespace* (and ``CAP_SETPCAP``, to drop it), which lets it make namespaces and mounts inside the
sandbox and nothing on the host.
It imports the heavy modules once (:data:`PRELOAD`), then for each request (``judge``: run a submission's tasks with
:mod:`aiterms.grading.worker`; ``notebook``: run a submission in a Jupyter kernel for its feedback):

1. forks a process that makes new mount, PID and IPC namespaces (:func:`_isolate`): the run's first process is
   PID 1 of its own PID namespace, with its own ``/proc`` (it sees none of the server's processes, nor those of an
   earlier run), a fresh size-limited tmpfs on ``/tmp`` (also ``HOME`` and the working directory) and
   ``/dev/shm``, and, for a judge run, the assignment's stripped library mounted read-only over ``aiterms``
   (so even a Python the learner's code starts finds no reference implementation);
2. drops every capability (checked: a run whose process still holds one is refused), sets its resource limits
   (address space, CPU seconds, file size, open files, no core dumps), closes every inherited file descriptor but
   its output pipes, and runs the request;
3. reads what the run prints (capped), and at its wall-clock limit kills the run's PID 1, which takes every process
   of the run with it: nothing a run starts outlives it, and the next run starts from the server's clean copy.

Nothing of a run reaches the server: the run is a copy (fork) of it, in a PID namespace from which the server
cannot be named, and the server is not dumpable. Protocol on stdin/stdout: frames of an 8-byte length and a JSON
body (:func:`read_frame`, :func:`write_frame`); the server says ``{"ready": true}`` once, then answers each request
with a header frame ``{"returncode": int | null (killed at the limit), "seconds": float, "truncated": bool (it
printed more than ``max_output``: it was killed and its output cut)}``, the run's stdout and its stderr.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import struct
import sys
import time

from aiterms.grading import kernel, worker

PRELOAD = ("torch", "numpy", "nbformat", "nbclient", "jupyter_client.manager", "ipykernel.kernelapp",
           "matplotlib", "matplotlib.pyplot")

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = \
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 4, 24, 47, 4


# ------------------------------------------------------------------------------------------------ frames
def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd: int, data: bytes) -> None:
    write_all(fd, struct.pack(">Q", len(data)) + data)


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    """One frame's body, or None at the end of the stream."""
    head = _read_exactly(fd, 8)
    return None if head is None else _read_exactly(fd, struct.unpack(">Q", head)[0])


# ------------------------------------------------------------------------------------------------ isolation
def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _capabilities() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in (line.split(":\t") for line in f)
                if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def _drop_capabilities() -> None:
    """Drop every capability (bounding, ambient, effective, permitted, inheritable); with the sandbox's
    ``no_new_privs`` and a non-zero uid, no later ``execve`` can give one back. Refuses to go on if any is left."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        for cap in range(int(f.read()) + 1):
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap} from the bounding set")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)    # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                    # two 32-bit sets of (effective, permitted, inheritable)
    _check(_libc.capset(header, data), "capset")
    left = {k: v for k, v in _capabilities().items() if v}
    if left:
        raise PermissionError(f"capabilities left after dropping them: {left}")


def _isolate(request: dict) -> None:
    """In the run's PID 1: its own mounts (private tmpfs /tmp and /dev/shm, its /proc, the library), then no
    capabilities and the run's limits."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={request['tmp_mb']}m,mode=1777")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={request['tmp_mb']}m,mode=1777")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    library = request.get("library")
    if library:  # the stripped copy, over the package every Python in the sandbox imports
        _mount(library, request["library_target"], None, MS_BIND | MS_REC)
        _mount(None, request["library_target"], None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _drop_capabilities()
    mem = request["mem_mb"] * 2**20
    cpu = int(request["cpu_s"])
    for limit, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_FSIZE, 256 * 2**20), (resource.RLIMIT_NOFILE, 256)):
        resource.setrlimit(limit, (value, value))
    os.chdir("/tmp")
    os.environ.clear()
    os.environ.update(request["env"])


# ------------------------------------------------------------------------------------------------ the runs
# Trusted code, imported by the server before any run mounts its library: a run calls these, and only what they
# import afterwards (the learner's `aiterms`) comes from the library the run is shown.
RUNS = {"judge": lambda request: json.dumps(worker.serve(request["judge"])).encode(),
        "notebook": lambda request: kernel.run_notebook(request["notebook"], request["cell_timeout"],
                                                        request["seconds"])}


def _pid1(request: dict, out_w: int, err_w: int) -> None:
    """The run's first process (PID 1 of its namespace). Never returns."""
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        run = RUNS[request["kind"]]
        _isolate(request)
        for name in [m for m in sys.modules if m == "aiterms" or m.startswith("aiterms.")]:
            del sys.modules[name]  # the server's copies: the run imports the library it is shown
        write_all(1, run(request))
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(2, f"run failed: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
        code = 70
    os._exit(code)


def serve(request: dict) -> tuple[dict, bytes, bytes]:
    """Run one request in a fresh, isolated process; returns (header, stdout, stderr)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid_r, pid_w = os.pipe()
    start = time.monotonic()
    first = os.fork()
    if first == 0:  # makes the namespaces; its child is the run's PID 1
        try:
            os.close(out_r), os.close(err_r), os.close(pid_r)
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
            pid1 = os.fork()
            if pid1 == 0:
                _pid1(request, out_w, err_w)
            os.write(pid_w, b"%d\n" % pid1)
            _, status = os.waitpid(pid1, 0)
            os.write(pid_w, b"%d\n" % status)
        finally:
            os._exit(0)
    for fd in (out_w, err_w, pid_w):
        os.close(fd)
    deadline = start + float(request["timeout"])
    limits = {out_r: int(request["max_output"]), err_r: 2**16}
    kept: dict[int, list[bytes]] = {out_r: [], err_r: []}
    sizes = {out_r: 0, err_r: 0}
    open_fds, timed_out, pid_text = [out_r, err_r, pid_r], False, b""
    while out_r in open_fds or err_r in open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(open_fds, [], [], left)
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                open_fds.remove(fd)
            elif fd == pid_r:
                pid_text += chunk
            elif sizes[fd] < limits[fd]:
                kept[fd].append(chunk[:limits[fd] - sizes[fd]])
                sizes[fd] += len(kept[fd][-1])
        if sizes[out_r] >= limits[out_r]:
            break
    truncated = sizes[out_r] >= limits[out_r]
    if timed_out or truncated:
        while b"\n" not in pid_text:  # the run's PID 1 is known as soon as it exists
            chunk = os.read(pid_r, 64)
            if not chunk:
                break
            pid_text += chunk
        try:
            os.kill(int(pid_text.split(b"\n")[0]), signal.SIGKILL)  # its PID namespace dies with it
        except (ValueError, ProcessLookupError):
            pass
    rest = pid_r in open_fds and _read_all(pid_r) or b""
    os.waitpid(first, 0)
    for fd in (out_r, err_r, pid_r):
        os.close(fd)
    lines = (pid_text + rest).split(b"\n")
    status = int(lines[1]) if len(lines) > 2 and lines[1] else None
    code = None if timed_out or status is None else (
        -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    header = {"returncode": code, "seconds": time.monotonic() - start, "truncated": truncated}
    return header, b"".join(kept[out_r]), b"".join(kept[err_r])


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def main() -> None:
    if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    import importlib
    for name in PRELOAD:  # imported once: every run is a fork of this process
        importlib.import_module(name)
    import torch
    torch.set_num_threads(1)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    write_frame(stdout, json.dumps({"ready": True}).encode())
    while (frame := read_frame(stdin)) is not None:
        header, out, err = serve(json.loads(frame))
        write_frame(stdout, json.dumps(header).encode())
        write_frame(stdout, out)
        write_frame(stdout, err)


if __name__ == "__main__":
    main()
