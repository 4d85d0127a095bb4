"""Run a learner's code in a whitelist sandbox built with bubblewrap (Debian's ``bubblewrap``, ``bwrap``).

The command sees a new, empty root that holds only what is listed here (no other path of the host exists there):

* ``/usr`` (and the ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` links into it), read-only: the system's programs and
  shared libraries;
* the few files of ``/etc`` that Python, its shared libraries and a Jupyter kernel read (:data:`ETC`), read-only,
  and a ``passwd``/``group`` that name only the sandbox's user;
* the folders given in ``ro`` (the Python environment, the library) read-only, and in ``rw`` (this submission's
  scratch folder) writable, at their own paths or where asked;
* a private tmpfs of ``tmp_mb`` megabytes for ``/tmp`` (also ``HOME`` and the working directory unless ``cwd`` is
  in ``rw``), its own ``/proc`` (only its own processes are visible) and a minimal ``/dev``.

It runs with new user, PID, network (loopback only), IPC, UTS and cgroup namespaces, as uid/gid 1000 inside (never
root there), with no capabilities, in a new session (no terminal to inject keystrokes into), and dies with the
grader. Run as root (as in CI), the sandbox's processes also belong to an unprivileged user of the host
(:data:`HOST_UID`, ``nobody``), so the kernel's per-user process limit applies to them.

:func:`run` runs one command in a new sandbox. :class:`Server` keeps a grading server (:mod:`aiterms.grading.server`)
in one: every run it serves is a fresh process with its own mount, PID and IPC namespaces, tmpfs, library and limits,
forked from a process that has already imported PyTorch and the kernel (much faster than a new sandbox per run).

Limits, set inside the sandbox with util-linux's ``prlimit`` and inherited by everything it starts: address space
(``mem_mb``, per process), CPU seconds (``cpu_s``, per process), processes and threads (``nproc``: a fork loop
stops there), file size (256 MB), open files, no core dumps; the tmpfs is size-limited; what the command prints is
cut at ``max_output`` bytes; a wall-clock ``timeout`` kills the sandbox and every process in it.
"""
from __future__ import annotations

import os
import json
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HOST_UID = 65534                          # nobody: the host user the sandbox runs as when the grader is root
INSIDE_UID = 1000
# /etc files read by the dynamic loader, Python, zmq/the kernel and matplotlib; missing ones are skipped
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts", "mime.types",
       "fonts", "ssl/openssl.cnf")
SYSTEM = ("/usr",)
LINKS = ("/bin", "/lib", "/lib64", "/sbin")
PASSWD = f"sandbox:x:{INSIDE_UID}:{INSIDE_UID}:learner:/tmp:/usr/sbin/nologin\n"
GROUP = f"sandbox:x:{INSIDE_UID}:\n"


@dataclass
class Outcome:
    returncode: int | None     # None: killed at the timeout
    stdout: bytes
    stderr: bytes
    seconds_limit: float
    truncated: bool = False    # it printed more than the output limit: what it printed is cut

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def describe(self) -> str:
        """What happened, in words, for feedback."""
        if self.timed_out:
            return f"ran past the time limit ({self.seconds_limit:g} s) and was stopped"
        if self.truncated:
            return "printed more than the grader reads back, and was stopped"
        if self.returncode < 0:
            sig = signal.Signals(-self.returncode).name
            return {"SIGXCPU": "used up its CPU-time limit", "SIGKILL": "was killed (memory or time limit)",
                    "SIGSEGV": "crashed (segmentation fault)"}.get(sig, f"was killed by {sig}")
        return f"exited with status {self.returncode}"


def minimal_env(**extra: str) -> dict[str, str]:
    """The only environment a sandboxed command gets: no variable of the grader's (tokens, passwords, paths)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.mpl"}
    env.update(extra)
    return env


def missing() -> str:
    """Why the sandbox cannot run here, in words ('' when it can): checked once per grading run."""
    for tool in ("bwrap", "prlimit") + (("unshare", "setpriv") if os.geteuid() == 0 else ()):
        if shutil.which(tool) is None:
            package = {"bwrap": "bubblewrap", "prlimit": "util-linux", "unshare": "util-linux",
                       "setpriv": "util-linux"}[tool]
            return (f"`{tool}` was not found: install Debian's {package} package (`make sysdeps` does, as root)")
    try:
        done = run(["/bin/true"], cwd=Path("/tmp"), timeout=30)
    except OSError as e:
        return f"bubblewrap could not start: {e}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        return ("bubblewrap could not make its namespaces on this machine (unprivileged user namespaces may be "
                f"disabled: sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces): "
                f"{why[-1] if why else 'exit ' + str(done.returncode)}")
    return ""


def available() -> bool:
    return not missing()


Bind = tuple[Path, Path]  # (what, where): `what` appears at `where` inside the sandbox


def _binds(paths) -> list[Bind]:
    out = []
    for p in paths:
        src, dst = p if isinstance(p, tuple) else (p, p)
        out.append((Path(src).resolve(), Path(dst)))
    return out


def bwrap_args(ro: list[Bind], rw: list[Bind], cwd: Path, env: dict[str, str], tmp_mb: int,
               passwd_fd: int, group_fd: int, caps: tuple[str, ...] = ()) -> list[str]:
    """The bubblewrap command line (without the command): the whitelist described in the module docstring.
    ``caps``: capabilities the command keeps, in the sandbox's own user namespace only (the grading server's
    ``CAP_SYS_ADMIN``)."""
    args = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID),
            "--hostname", "sandbox", "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for cap in caps:
        args += ["--cap-add", cap]
    args += ["--clearenv", "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
    for path in SYSTEM:
        args += ["--ro-bind", path, path]
    for link in LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
    for name in ETC:
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--perms", "0444", "--ro-bind-data", str(passwd_fd), "/etc/passwd",
             "--perms", "0444", "--ro-bind-data", str(group_fd), "/etc/group"]
    for source, where in ro:
        args += ["--ro-bind", str(source), str(where)]
    for source, where in rw:
        args += ["--bind", str(source), str(where)]
    for key, value in env.items():
        args += ["--setenv", key, value]
    # the new root itself and /dev: no files of one's own there
    return args + ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", str(cwd)]


def _as_root(args: list[str], binds: list[Bind], stage: Path) -> list[str]:
    """Run as root: bind every source at a path the unprivileged host user can reach (a source may sit under a
    folder only root can enter, e.g. Python in /root/.pyenv), in a private mount namespace, then drop to that user
    before bubblewrap starts. Returns the new command line."""
    q = shlex.quote
    stage.chmod(0o755)
    lines, staged = ["set -e"], {}
    for i, (source, _) in enumerate(binds):
        target = stage / str(i)
        if source.is_dir():
            target.mkdir()
        else:
            target.touch()
        lines.append(f"mount --bind {q(str(source))} {q(str(target))}")
        staged[str(source)] = str(target)
    out, i = [], 0
    while i < len(args):  # --ro-bind SRC DEST / --bind SRC DEST: swap SRC for its staged path
        out.append(args[i])
        if args[i] in ("--ro-bind", "--bind") and args[i + 1] in staged:
            out += [staged[args[i + 1]], args[i + 2]]
            i += 3
            continue
        i += 1
    lines.append(f"exec setpriv --reuid={HOST_UID} --regid={HOST_UID} --clear-groups --inh-caps=-all "
                 + " ".join(q(a) for a in out))
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(lines)]


def _identity_fds() -> tuple[int, int]:
    """Two pipes to read the sandbox's /etc/passwd and /etc/group from (bubblewrap's --ro-bind-data)."""
    fds = []
    for text in (PASSWD, GROUP):
        read, write = os.pipe()
        os.write(write, text.encode())
        os.close(write)
        fds.append(read)
    return fds[0], fds[1]


def _drain(pipe, sink: list[bytes], limit: int) -> None:
    """Read a pipe to its end, keeping at most ``limit`` bytes (the rest is read and dropped)."""
    kept = 0
    while chunk := pipe.read(65536):
        if kept < limit:
            sink.append(chunk[:limit - kept])
            kept += len(sink[-1])


def run(argv: list[str], *, ro: list = (), rw: list = (), cwd: Path, timeout: float, mem_mb: int = 2048,
        cpu_s: int | None = None, nproc: int = 64, tmp_mb: int = 256, env: dict | None = None,
        stdin: bytes = b"", max_output: int = 16 * 2**20) -> Outcome:
    """Run ``argv`` in the sandbox. ``ro``/``rw``: folders (or files) shown read-only / writable, each a path or a
    ``(source, destination)`` pair; ``cwd`` must exist inside (in ``rw``, or ``/tmp``). ``env``: the whole
    environment (default :func:`minimal_env`); nothing of the caller's is passed on."""
    env = env if env is not None else minimal_env()
    ro, rw = _binds(ro), _binds(rw)
    cpu_s = cpu_s or int(timeout) + 5
    limits = ["prlimit", f"--as={mem_mb * 2**20}", f"--cpu={cpu_s}:{cpu_s + 2}", f"--nproc={nproc}",
              f"--fsize={256 * 2**20}", "--nofile=256", "--core=0", "--"]
    root = os.geteuid() == 0
    passwd_r, group_r = _identity_fds()
    stage = Path(tempfile.mkdtemp(prefix="aiterms-stage-")) if root else None
    try:
        args = bwrap_args(ro, rw, Path(cwd), env, tmp_mb, passwd_r, group_r) + limits + list(argv)
        if root:
            for source, _ in rw:  # the unprivileged host user writes there
                for folder, dirs, files in os.walk(source):
                    os.chown(folder, HOST_UID, HOST_UID)
                    for f in files:
                        os.chown(os.path.join(folder, f), HOST_UID, HOST_UID)
            args = _as_root(args, ro + rw, stage)
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
                                pass_fds=(passwd_r, group_r), start_new_session=True)
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [threading.Thread(target=_drain, args=(proc.stdout, out, max_output), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err, 2**20), daemon=True)]
        for t in readers:
            t.start()
        try:
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # bubblewrap's monitor; its PID namespace dies with it
            proc.wait()
            code = None
        for t in readers:
            t.join(timeout=5)
        stdout = b"".join(out)
        return Outcome(code, stdout, b"".join(err), timeout, len(stdout) >= max_output)
    finally:
        os.close(passwd_r)
        os.close(group_r)
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ the grading server
def _read_frame(fd: int, deadline: float) -> bytes | None:
    """One frame of :mod:`aiterms.grading.server`'s protocol, or None if the stream ended or the deadline passed."""
    data, want, body = b"", 8, False
    while True:
        while len(data) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, min(want - len(data), 1 << 20))
            if not chunk:
                return None
            data += chunk
        if body:
            return data
        data, want, body = b"", struct.unpack(">Q", data)[0], True
        if want == 0:
            return b""


class Server:
    """A grading server (:mod:`aiterms.grading.server`) in the sandbox: started once, it serves one run at a time,
    each in a fresh process with its own mount, PID and IPC namespaces, tmpfs and limits, forked from a process
    that has already imported PyTorch and the kernel. ``ro``: what the sandbox shows, read-only (as in :func:`run`).
    Not thread-safe: one server per grading thread. A server that stops answering is killed, and the next
    :meth:`run` starts a new one."""

    def __init__(self, ro: list, *, mem_mb: int = 2048, nproc: int = 64, tmp_mb: int = 256,
                 start_timeout: float = 120.0):
        self.ro, self.mem_mb, self.nproc, self.tmp_mb = _binds(ro), mem_mb, nproc, tmp_mb
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.stage: Path | None = None
        self.stderr: list[bytes] = []
        self.starts = 0

    def start(self) -> None:
        env = minimal_env()
        limits = ["prlimit", f"--as={(self.mem_mb + 1024) * 2**20}", f"--nproc={self.nproc}",
                  "--nofile=256", "--core=0", "--"]
        passwd_r, group_r = _identity_fds()
        try:
            args = bwrap_args(self.ro, [], Path("/tmp"), env, self.tmp_mb, passwd_r, group_r,
                              caps=("CAP_SYS_ADMIN", "CAP_SETPCAP"))
            args += limits + [sys.executable, "-m", "aiterms.grading.server"]
            if os.geteuid() == 0:
                self.stage = Path(tempfile.mkdtemp(prefix="aiterms-stage-"))
                args = _as_root(args, self.ro, self.stage)
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
                                         pass_fds=(passwd_r, group_r), start_new_session=True)
        finally:
            os.close(passwd_r)
            os.close(group_r)
        self.starts += 1
        self.stderr = []
        threading.Thread(target=_drain, args=(self.proc.stderr, self.stderr, 2**16), daemon=True).start()
        ready = _read_frame(self.proc.stdout.fileno(), time.monotonic() + self.start_timeout)
        if ready is None:
            self.close()
            why = b"".join(self.stderr).decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"the grading server did not start: {why[-1] if why else 'no message'}")

    def run(self, kind: str, payload: dict, *, timeout: float, library: tuple[Path, Path] | None = None,
            mem_mb: int | None = None, cpu_s: int | None = None, tmp_mb: int | None = None,
            env: dict | None = None, max_output: int = 16 * 2**20) -> Outcome:
        """Run one request (``kind``: ``judge`` or ``notebook``, see :mod:`aiterms.grading.server`) for at most
        ``timeout`` seconds. ``library``: (a folder the sandbox shows, the package folder it is mounted over) for
        this run only."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.start()
        request = {"kind": kind, **payload, "timeout": timeout, "max_output": max_output,
                   "mem_mb": mem_mb or self.mem_mb, "cpu_s": cpu_s or int(timeout) + 5,
                   "tmp_mb": tmp_mb or self.tmp_mb, "env": env if env is not None else minimal_env()}
        if library is not None:
            request["library"], request["library_target"] = str(library[0]), str(library[1])
        data = json.dumps(request).encode()
        try:
            self.proc.stdin.write(struct.pack(">Q", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return Outcome(-signal.SIGKILL, b"", b"the grading server stopped", timeout)
        deadline = time.monotonic() + timeout + 30  # the server itself enforces `timeout`; this is a last guard
        frames = []
        for _ in range(3):
            frame = _read_frame(self.proc.stdout.fileno(), deadline)
            if frame is None:
                self.close()  # a server that does not answer is not trusted again
                return Outcome(None, b"", b"the grading server did not answer", timeout)
            frames.append(frame)
        header = json.loads(frames[0])
        return Outcome(header["returncode"], frames[1], frames[2], timeout, bool(header.get("truncated")))

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                pipe.close()
            self.proc = None
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
