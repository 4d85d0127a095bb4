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

Limits, set inside the sandbox with util-linux's ``prlimit`` and inherited by everything it starts: address space
(``mem_mb``, per process), CPU seconds (``cpu_s``, per process), processes and threads (``nproc``: a fork loop
stops there), file size (256 MB), open files, no core dumps; the tmpfs is size-limited; what the command prints is
cut at ``max_output`` bytes; a wall-clock ``timeout`` kills the sandbox and every process in it.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
               passwd_fd: int, group_fd: int) -> list[str]:
    """The bubblewrap command line (without the command): the whitelist described in the module docstring."""
    args = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID), "--hostname", "sandbox",
            "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
            "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
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
    return args + ["--remount-ro", "/", "--chdir", str(cwd)]  # the new root itself: no files of one's own there


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
    passwd_r, passwd_w = os.pipe()
    group_r, group_w = os.pipe()
    os.write(passwd_w, PASSWD.encode())
    os.write(group_w, GROUP.encode())
    os.close(passwd_w)
    os.close(group_w)
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
        return Outcome(code, b"".join(out), b"".join(err), timeout)
    finally:
        os.close(passwd_r)
        os.close(group_r)
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
