"""The judge's worker: runs a learner's answer cells on given cases, in the sandbox, and returns plain data.

Called by the grading server (:mod:`aiterms.grading.server`) in a fresh, isolated run, with one request that it
got *before any learner code runs*: :func:`serve` runs each task's job in a forked child (so a cell that exits,
crashes, loops or eats memory only loses its own job) and returns the replies (the server prints them). Only the
cells a task needs run, never every cell on its own.

Request::

    {"assignment": "16-beam-search", "setup": [trusted source cells], "cells": [learner code cells],
     "timeout": seconds per job, "budget": seconds for all the jobs together,
     "jobs": [{"function": "beam_step", "cells": [1, 2], "definer": 2, "cases": [{...}, ...]}]}

Reply: one entry per job, ``{"status": "ok" | "error" | "timeout" | "crashed" | "budget", "detail": str,
"culprit": index of the cell running when it timed out or crashed (the definer while the function ran, with
"in_function": true), or null,
"results": [{"ok": plain data} | {"error": "TypeName: message"}]}``. A job whose time would start after the budget
is spent, or that the budget cuts short, is answered ``"budget"``. A job that needs a cell which timed out or
crashed in an earlier job is not run again (``"error"``). The worker never judges: the trusted side compares
``results`` with reference outputs it computed itself.
"""
from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any

MAX_REPLY = 8 * 2**20  # bytes read back from one job


def _exec_cells(sources: list[str], namespace: dict, label: str) -> None:
    for i, src in enumerate(sources):
        exec(compile(src, f"<{label} {i}>", "exec"), namespace)


def _run_job(request: dict, job: dict, progress) -> dict:
    """In the forked child: run one job and return its reply entry. ``progress(i)`` is called before cell ``i``
    runs, and ``progress(None)`` before the function is called on the cases."""
    from aiterms import grading

    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": lambda: None}
    _exec_cells(request["setup"], namespace, "setup cell")
    cells = [grading.ipython_to_python(c) for c in request["cells"]]
    task = grading.task(request["assignment"], job["function"])
    for i in job["cells"]:
        progress(i)
        try:
            _exec_cells([cells[i]], namespace, "your cell")
        except BaseException as e:  # noqa: BLE001
            return {"status": "error", "detail": f"a cell it needs raised {type(e).__name__}: {e}"[:300],
                    "results": []}
    function = namespace.get(task.function)
    if not callable(function):
        return {"status": "error", "detail": f"no function named {task.function} is defined", "results": []}
    results = []
    progress(None)
    for case in job["cases"]:
        try:
            results.append({"ok": grading.to_plain(task.call(function, case))})
        except BaseException as e:  # noqa: BLE001
            results.append({"error": f"{type(e).__name__}: {e}"[:300]})
    return {"status": "ok", "detail": "", "results": results}


def _child(request: dict, job: dict, write_fd: int) -> None:
    _dumpable(True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # learner prints must not reach the reply channel
    os.dup2(devnull, 2)
    channel = os.fdopen(write_fd, "wb", buffering=0)

    def progress(cell: int | None) -> None:  # one line per stage: "C<cell>" or "F" (the function runs)
        channel.write(b"F\n" if cell is None else b"C%d\n" % cell)

    try:
        reply = _run_job(request, job, progress)
    except BaseException as e:  # noqa: BLE001
        reply = {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300], "results": []}
    try:
        data = json.dumps(reply, allow_nan=True).encode()
    except (TypeError, ValueError) as e:
        data = json.dumps({"status": "error", "detail": f"unreadable result: {e}"[:300], "results": []}).encode()
    channel.write(b"R" + data + b"\n")
    channel.close()
    os._exit(0)


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        return {"SIGSEGV": "crashed (segmentation fault)", "SIGKILL": "was killed (memory limit)",
                "SIGXCPU": "used up its CPU-time limit"}.get(sig, f"was killed by {sig}")
    return f"ended its process (exit status {os.WEXITSTATUS(status)}, e.g. os._exit)"


def run_job(request: dict, job: dict, timeout: float, budget_cut: bool) -> dict:
    """Run one job in a forked child, for at most ``timeout`` seconds (``budget_cut``: the budget, not the job's
    own limit, set that time)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request, job, write_fd)
    os.close(write_fd)
    deadline, chunks, size = time.monotonic() + timeout, [], 0
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_REPLY:
            break
        chunks.append(chunk)
    os.close(read_fd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    lines = b"".join(chunks).split(b"\n")
    culprit, in_function = None, False
    for line in lines:
        if line.startswith(b"C"):
            culprit = int(line[1:])
        elif line == b"F":
            culprit, in_function = job.get("definer"), True
    if timed_out:
        if budget_cut:
            return {"status": "budget", "detail": "was stopped: the submission's time budget ran out",
                    "culprit": culprit, "in_function": in_function, "results": []}
        return {"status": "timeout", "detail": f"ran past the time limit ({timeout:g} s) and was stopped",
                "culprit": culprit, "in_function": in_function, "results": []}
    try:
        reply = json.loads(next(line[1:] for line in lines if line.startswith(b"R")))
        if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
            raise ValueError
        return {**reply, "culprit": None}
    except (ValueError, StopIteration):
        return {"status": "crashed", "detail": _describe_exit(status), "culprit": culprit,
                "in_function": in_function, "results": []}


def _dumpable(flag: bool) -> None:
    """prctl(PR_SET_DUMPABLE, flag). The worker is not dumpable: no process of the same user (a job's child runs the
    learner's code as the same user, without capabilities) may ptrace it or read or write its memory through /proc.
    Each child is made dumpable again, so the learner's code sees an ordinary /proc/self."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, int(flag), 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 4
        raise OSError(ctypes.get_errno(), f"prctl(PR_SET_DUMPABLE, {int(flag)}) failed")


def serve(request: dict) -> list[dict]:
    """Run every job of ``request`` (in this order, each in a forked child) and return their reply entries."""
    _dumpable(False)
    deadline = time.monotonic() + float(request.get("budget", 1e9))
    import torch  # imported before forking (the grading server already has): each job starts fast
    torch.set_num_threads(1)
    import aiterms.grading  # noqa: F401
    replies, broken = [], {}  # cell -> what it did when a job ran it
    for job in request["jobs"]:
        bad = [broken[i] for i in job["cells"] if i in broken]
        left = deadline - time.monotonic()
        if bad:  # don't wait for the same timeout twice
            replies.append({"status": "error", "detail": f"a cell it needs {bad[0]}", "culprit": None,
                            "results": []})
        elif left < 0.5:
            replies.append({"status": "budget", "detail": "was not run: the submission's time budget was used up",
                            "culprit": None, "results": []})
        else:
            replies.append(run_job(request, job, min(request["timeout"], left), left < request["timeout"]))
            reply = replies[-1]
            if reply["status"] in ("timeout", "crashed") and reply["culprit"] is not None \
                    and not reply.get("in_function"):  # a cell, not the function, did it: other tasks need not wait
                broken[reply["culprit"]] = reply["detail"]
    return replies
