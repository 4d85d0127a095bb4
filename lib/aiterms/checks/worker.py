"""The judge's worker: runs a learner's answer cells on given cases, in the sandbox, and returns plain data.

Started by ``tools/judge.py`` as ``python -m aiterms.checks.worker`` inside the sandbox. It reads one JSON request
on stdin *before any learner code runs*, then runs each job in a forked child (so a cell that exits, crashes, loops
or eats memory only loses its own job), and prints one JSON reply on stdout.

Request::

    {"assignment": "14-beam-search", "setup": [trusted source cells], "cells": [learner code cells],
     "timeout": seconds per job,
     "jobs": [{"kind": "cell", "cell": 2},                                   # does this cell run on its own?
              {"kind": "task", "function": "beam_step", "cells": [1, 2], "cases": [{...}, ...]}]}

Reply: one entry per job, ``{"status": "ok" | "error" | "timeout" | "crashed", "detail": str,
"results": [{"ok": plain data} | {"error": "TypeName: message"}]}``. The worker never judges: the trusted side
compares ``results`` with reference outputs it computed itself.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import Any

MAX_REPLY = 8 * 2**20  # bytes read back from one job


def _exec_cells(sources: list[str], namespace: dict, label: str) -> None:
    for i, src in enumerate(sources):
        exec(compile(src, f"<{label} {i}>", "exec"), namespace)


def _run_job(request: dict, job: dict) -> dict:
    """In the forked child: run one job and return its reply entry."""
    from aiterms import checks, grading

    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": lambda: None}
    _exec_cells(request["setup"], namespace, "setup cell")
    cells = [checks.ipython_to_python(c) for c in request["cells"]]
    if job["kind"] == "cell":
        try:
            _exec_cells([cells[job["cell"]]], namespace, "your cell")
        except BaseException as e:  # noqa: BLE001 - whatever the cell raises is its outcome
            return {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300], "results": []}
        return {"status": "ok", "detail": "", "results": []}

    task = checks.task(request["assignment"], job["function"])
    for i in job["cells"]:
        try:
            _exec_cells([cells[i]], namespace, "your cell")
        except BaseException as e:  # noqa: BLE001
            return {"status": "error", "detail": f"a cell it needs raised {type(e).__name__}: {e}"[:300],
                    "results": []}
    function = namespace.get(task.function)
    if not callable(function):
        return {"status": "error", "detail": f"no function named {task.function} is defined", "results": []}
    results = []
    for case in job["cases"]:
        try:
            results.append({"ok": grading.to_plain(task.call(function, case))})
        except BaseException as e:  # noqa: BLE001
            results.append({"error": f"{type(e).__name__}: {e}"[:300]})
    return {"status": "ok", "detail": "", "results": results}


def _child(request: dict, job: dict, write_fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # learner prints must not reach the reply channel
    os.dup2(devnull, 2)
    try:
        reply = _run_job(request, job)
    except BaseException as e:  # noqa: BLE001
        reply = {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300], "results": []}
    try:
        data = json.dumps(reply, allow_nan=True).encode()
    except (TypeError, ValueError) as e:
        data = json.dumps({"status": "error", "detail": f"unreadable result: {e}"[:300], "results": []}).encode()
    with os.fdopen(write_fd, "wb") as f:
        f.write(data)
    os._exit(0)


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        return {"SIGSEGV": "crashed (segmentation fault)", "SIGKILL": "was killed (memory limit)",
                "SIGXCPU": "used up its CPU-time limit"}.get(sig, f"was killed by {sig}")
    return f"ended its process (exit status {os.WEXITSTATUS(status)}, e.g. os._exit)"


def run_job(request: dict, job: dict) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request, job, write_fd)
    os.close(write_fd)
    deadline, chunks, size = time.monotonic() + request["timeout"], [], 0
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
    if timed_out:
        return {"status": "timeout", "detail": f"ran past the time limit ({request['timeout']:g} s) and was stopped",
                "results": []}
    try:
        reply = json.loads(b"".join(chunks))
        if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
            raise ValueError
        return reply
    except ValueError:
        return {"status": "crashed", "detail": _describe_exit(status), "results": []}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    import torch  # imported once, before forking: each job starts fast
    torch.set_num_threads(1)
    import aiterms.checks  # noqa: F401
    replies, broken = [], {}  # cell -> what it did when run on its own
    for job in request["jobs"]:
        bad = [broken[i] for i in job.get("cells", []) if i in broken]
        if job["kind"] == "task" and bad:  # don't wait for the same timeout twice
            replies.append({"status": "error", "detail": f"a cell it needs {bad[0]}", "results": []})
            continue
        replies.append(run_job(request, job))
        if job["kind"] == "cell" and replies[-1]["status"] in ("timeout", "crashed"):
            broken[job["cell"]] = replies[-1]["detail"]
    sys.stdout.write(json.dumps(replies))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
