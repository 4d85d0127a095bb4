"""The feedback run: a submission executed in a Jupyter kernel, inside a run of the grading server.

nbclient drives the kernel as usual (one cell at a time, outputs collected, errors kept); the only difference is how
the kernel starts. :class:`ForkedKernelManager` is jupyter_client's ``AsyncKernelManager`` with its documented hook,
``_async_launch_kernel``, overridden: instead of a new Python that imports PyTorch and IPython again, the kernel is a
process forked from the run *before* any event loop or ZeroMQ context exists, which waits for its connection file
and then starts ``ipykernel`` (:func:`_kernel`). It runs in the run's namespaces, with its limits, like everything
the learner's code starts.
"""
from __future__ import annotations

import os
import signal
import time

import nbformat
from jupyter_client.manager import AsyncKernelManager


class ForkedProcess:
    """The part of ``subprocess.Popen`` that jupyter_client's provisioner uses, for a forked kernel."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _kernel(go_r: int) -> None:
    """The forked kernel: wait for the command line, then become an IPython kernel. Never returns."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the run's output pipe is not the kernel's: it talks through ZeroMQ only
        os.dup2(devnull, fd)
    argv = []
    try:
        data = b""
        while chunk := os.read(go_r, 65536):
            data += chunk
        argv = data.decode().split("\0")[:-1]
    finally:
        os.closerange(3, 1024)
    if not argv:
        os._exit(0)
    os.setpgid(0, 0)
    import ctypes
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: an ordinary process for the learner's code
    from ipykernel.kernelapp import IPKernelApp
    try:
        IPKernelApp.launch_instance(argv=argv)
    finally:
        os._exit(0)


class ForkedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel is the pre-forked process given at construction."""

    def __init__(self, pid: int, go_w: int, **kwargs):
        super().__init__(**kwargs)
        self._forked_pid, self._go_w = pid, go_w

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        args = kernel_cmd[kernel_cmd.index("-f"):]  # after "python -m ipykernel_launcher"
        os.write(self._go_w, b"".join(a.encode() + b"\0" for a in args))
        os.close(self._go_w)
        provisioner = self.provisioner
        provisioner.process = ForkedProcess(self._forked_pid)
        provisioner.pid, provisioner.pgid = self._forked_pid, self._forked_pid
        self._reconcile_connection_info(provisioner.connection_info)


def run_notebook(nb_json: str, cell_timeout: float, seconds: float) -> bytes:
    """Execute a notebook cell by cell for at most ``seconds`` (each cell at most ``cell_timeout``); returns the
    notebook with its outputs, always: a cell that fails, a kernel that dies or a budget that runs out leaves the
    outputs so far, and ``metadata.grading_problem`` says what stopped the run."""
    from nbclient import NotebookClient

    nb = nbformat.reads(nb_json, as_version=4)
    deadline = time.monotonic() + seconds
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        _kernel(go_r)
    os.close(go_r)
    km = ForkedKernelManager(pid, go_w, kernel_name="python3")
    client = NotebookClient(nb, km=km, timeout=int(cell_timeout), interrupt_on_timeout=True, allow_errors=True,
                            record_timing=False, startup_timeout=30)
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                left = deadline - time.monotonic()
                if left < 1:
                    nb.metadata["grading_problem"] = "the time budget ran out before the last cells"
                    break
                client.timeout = max(1, int(min(cell_timeout, left)))
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    except Exception as e:  # noqa: BLE001
        nb.metadata["grading_problem"] = f"the kernel stopped ({type(e).__name__})"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return nbformat.writes(nb).encode()
