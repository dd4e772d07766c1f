"""Run untrusted, model-written Python in an isolated child process.

Each program runs as ``python -I -S -B main.py`` (the calling interpreter, resolved through
symlinks, without site-packages) under a small helper, ``sandbox_helper.py`` run as a script. Where the
kernel allows unprivileged user namespaces (``isolation="namespaces"``, the normal case on
Linux, root or not), the program gets:

* **its own user namespace**, without capabilities (``no_new_privs``, empty bounding and
  ambient sets; set-uid bits and file capabilities do not apply). When the caller is root, the
  program is uid/gid 1000 inside and 65534 on the host (the namespace's root, which sets it up,
  is 65533), so ``RLIMIT_NPROC`` binds although we run as root and host files keep their normal
  permission checks. Any other caller may map only its own ids: the program is then uid 0
  inside, still without capabilities, and the caller's ids on the host.
* **its own pid namespace**, with a trusted init (the helper) as pid 1. The host's processes,
  the evaluating one included, are invisible and cannot be signalled (``kill(-1)``,
  ``kill(getppid())`` reach only the sandbox). When the program exits, or on timeout, init dies
  and the kernel kills every process left in the namespace, ``setsid()`` daemons included.
* **its own mount namespace with a minimal, read-only root**: ``/usr``, ``/etc``, the
  ``/bin``/``/lib*`` links and the Python installation are bind-mounted read-only (nosuid,
  nodev); ``/dev`` holds only null, zero, full, random and urandom; ``/proc`` shows only the
  sandbox's processes. Nothing else of the host (home directories, the repository, the host's
  ``/tmp``, sockets under ``/run``) exists in it. ``/tmp`` is a private tmpfs of
  ``max_disk_mb``, the only writable place; the work dir ``/tmp/assay-sbx-*`` (cwd, ``HOME``,
  ``TMPDIR``) lives there and vanishes with the namespace.
* **its own network namespace** (only a loopback interface, down: every connect fails, abstract
  unix sockets are private), and **its own IPC and UTS namespaces**; nested user namespaces are
  refused (``user.max_user_namespaces`` is 0 inside, where ``/proc`` could be mounted).
* **resource limits**: CPU seconds, address space, processes, file size, open files, no core
  dumps; a wall-clock timeout that kills the whole tree; capped stdout/stderr capture.
  Results record why a program failed (``reason``) and how it was isolated (``isolation``).

What is *not* isolated: the program shares the host kernel (a kernel exploit escapes any
namespace; there is no seccomp filter), it can read what the read-only view shows (``/etc``,
``/usr``, the Python installation), it can use CPU time on all cores up to its limits, and memory
is limited per process (``memory_mb`` each, up to ``max_procs`` processes), not per sandbox, since
no cgroup is used. The tmpfs counts against host memory up to ``max_disk_mb``.

Where namespaces cannot be created (``unshare`` refused, e.g. in a container without user
namespaces), ``isolation="auto"`` (the default) falls back to the older containment and says so
in every result's ``isolation`` field ("rlimits only (…why…); uid 65534") and with one
``RuntimeWarning``: rlimits and a throwaway work dir on the host. The program never runs as
root: a root caller's program runs as uid/gid 65534, exec'd through a descriptor of the Python
installation opened before the drop (``PYTHONHOME=/proc/self/fd/N``), so that an interpreter
under a private home still runs; where that is impossible the run is refused (status "error",
with the reason). That is containment for buggy programs, not a security boundary: the program
sees the host file system and network and may write world-writable places such as ``/tmp``.
``isolation="namespaces"`` refuses to run without namespaces (status "error"),
``isolation="rlimits"`` asks for the fallback, ``isolation="off"`` runs the program as the
caller with rlimits only (``--sandbox off``). ASSAY_SANDBOX_NO_NAMESPACES=1 makes the helper
behave as if ``unshare`` were refused (to test the fallback where namespaces exist).

In every mode nothing outlives its sample, its timeout or assay: the helper is a child
subreaper, so orphans (``setsid()`` daemons included) are reparented to it; at the end of a
sample, on its own backstop alarm, and on SIGTERM (sent by the parent at a timeout, and its
parent-death signal, so also when assay is killed by any signal) it SIGKILLs every descendant.
Every process that changes its ids sets its parent-death signal again (the change clears it)
and then checks that its parent is still there.

Nothing here imports third-party packages.
"""

from __future__ import annotations

import builtins
import marshal
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

from assay.scoring.sandbox_helper import _SYSTEM_DIRS

__all__ = ["Limits", "ExecResult", "run_python", "run_many", "sandbox_features",
           "SANDBOX_MODES", "limits_for", "check_sandbox"]

ISOLATION_MODES = ("auto", "namespaces", "rlimits", "off")
# ``--sandbox``: what a user asks for -> Limits.isolation
SANDBOX_MODES = {"strict": "namespaces", "auto": "auto", "off": "off"}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 10.0  # wall clock, setup included; the whole tree is killed
    cpu_s: int = 10  # RLIMIT_CPU (SIGXCPU at cpu_s, SIGKILL one second later)
    memory_mb: int = 1024  # RLIMIT_AS, per process
    max_procs: int = 64  # RLIMIT_NPROC: processes and threads of the sandbox's user
    max_file_mb: int = 16  # RLIMIT_FSIZE
    max_open_files: int = 64  # RLIMIT_NOFILE
    max_output_bytes: int = 65536  # cap on captured stdout and on captured stderr, each
    max_disk_mb: int = 64  # size of the private /tmp (namespaces only)
    # "auto", "namespaces" (required), "rlimits" (no namespaces) or "off" (unsandboxed)
    isolation: str = "auto"

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(
                f"Limits.isolation: expected one of {', '.join(ISOLATION_MODES)}, "
                f"got {self.isolation!r}"
            )


@dataclass(frozen=True)
class ExecResult:
    """What happened to one program.

    ``status``: "ok" (exit 0), "failed" (non-zero exit), "timeout" (wall clock; everything the
    program started was killed), "killed" (died of a signal, e.g. a limit), "error" (the sandbox
    could not start the program). ``returncode`` is None for "timeout" and "error", negative
    (minus the signal number) for "killed". ``isolation`` is "namespaces" or
    "rlimits only (why)"; ``cpu_s`` the program's CPU seconds (with its reaped children) when
    known; ``output_truncated`` whether stdout or stderr went over ``max_output_bytes``.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    reason: str
    isolation: str = ""
    cpu_s: float | None = None
    output_truncated: bool = False


# --------------------------------------------------------------------------------------------
# Parent side

_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_helper.py")
_PROGRAM_ENV = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"}
_FALLBACK_WARNED = False


def _ro_paths(interpreter: str) -> list[str]:
    """The Python installation's folders that the read-only system dirs do not cover."""
    covered = tuple(os.path.realpath("/" + d) + "/" for d in _SYSTEM_DIRS)
    out: list[str] = []
    for p in (sys.base_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.dirname(interpreter))):
        p = os.path.realpath(p)
        if p != "/" and not (p + "/").startswith(covered) and p not in out:
            out.append(p)
    return out


def _killpg(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_helper(proc: subprocess.Popen, pgid: int) -> None:
    """End a sandbox: SIGTERM makes the helper kill every process below it (its subreaper
    tree, escaped ``setsid()`` daemons included; with namespaces, the sandbox's init and so
    the whole pid namespace) and exit; SIGKILL of its group is the backstop."""
    if proc.returncode is not None:
        return
    if not _has_exited(proc.pid):
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.monotonic() + 5.0
        while not _has_exited(proc.pid) and time.monotonic() < end:
            time.sleep(0.002)
    _killpg(pgid)  # before reaping the helper, so that its pgid cannot have been reused
    proc.wait()


def _has_exited(pid: int) -> bool:
    """True once ``pid`` has exited, without reaping it (its pid and pgid stay reserved)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None and info.si_pid != 0


def _rmtree(path: str) -> None:
    """Remove the work dir even if the program made parts of it read-only."""

    def onerror(func, p, _exc):
        try:
            parent = os.path.dirname(p)
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_EXC_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Warning", "Iteration", "Failure")


def _looks_like_exception(line: str) -> bool:
    m = _EXC_LINE.match(line)
    if not m:
        return False
    name = m.group(1).rsplit(".", 1)[-1]
    if name.endswith(_EXC_SUFFIXES):
        return True
    obj = getattr(builtins, name, None)
    return isinstance(obj, type) and issubclass(obj, BaseException)


def exception_line(stderr: str) -> str:
    """The last line of ``stderr`` that looks like ``SomeError: message`` ('' if none)."""
    for line in reversed(stderr.splitlines()):
        line = line.rstrip()
        if line and not line[0].isspace() and _looks_like_exception(line):
            return line
    return ""


def _trim(s: str, n: int = 200) -> str:
    s = s.strip()
    return s if len(s) <= n else s[: n - 1] + "…"


_SIGNAL_HINTS = {
    "SIGXCPU": "CPU time limit",
    "SIGXFSZ": "file size limit",
    "SIGSEGV": "segmentation fault, possibly out of memory",
    "SIGABRT": "aborted",
}


def _signal_reason(signum: int, cpu: float | None, limits: Limits) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    hint = _SIGNAL_HINTS.get(name)
    if name in ("SIGKILL", "SIGXCPU") and cpu is not None and cpu >= limits.cpu_s - 0.05:
        hint = f"CPU time limit of {limits.cpu_s}s"
    elif name == "SIGKILL" and cpu is None:
        hint = "memory or CPU limit"
    return f"killed by {name}" + (f" ({hint})" if hint else "")


def _limit_hint(line: str, limits: Limits) -> str:
    """Which sandbox rule a program's last exception most likely ran into ('' if none)."""
    if line.startswith("MemoryError") or "Cannot allocate memory" in line:
        return f"memory limit of {limits.memory_mb} MB"
    if "Read-only file system" in line:
        return "write outside the sandbox's /tmp denied"
    if "Permission denied" in line or "Operation not permitted" in line:
        return "not permitted in the sandbox"
    if "Network is unreachable" in line or "Temporary failure in name resolution" in line:
        return "no network in the sandbox"
    if "Resource temporarily unavailable" in line:
        return f"process limit of {limits.max_procs}"
    if "Too many open files" in line:
        return f"open files limit of {limits.max_open_files}"
    if "File too large" in line:
        return f"file size limit of {limits.max_file_mb} MB"
    if "No space left on device" in line:
        return f"/tmp limit of {limits.max_disk_mb} MB"
    return ""


def _failure_reason(returncode: int, stderr: str, limits: Limits) -> str:
    line = exception_line(stderr)
    if not line:
        rest = [x.strip() for x in stderr.splitlines() if x.strip()]
        line = rest[-1] if rest else ""
    hint = _limit_hint(line, limits)
    hint = f" ({hint})" if hint else ""
    base = f"exit {returncode}: {line}" if line else f"exit {returncode}"
    return _trim(base, 200 - len(hint)) + hint


def run_python(source: str, *, stdin: str = "", limits: Limits = Limits(),
               stop: threading.Event | None = None) -> ExecResult:
    """Run ``source`` as a Python program under ``limits``; never raises for program errors.
    Setting ``stop`` ends the program at once (status "error", "stopped")."""
    workdir = tempfile.mkdtemp(prefix="assay-sbx-")
    start = time.monotonic()
    try:
        return _run_in(workdir, source, stdin, limits, stop)
    except Exception as exc:  # noqa: BLE001 - the sandbox itself failed
        return ExecResult(
            "error", None, "", "", time.monotonic() - start,
            _trim(f"sandbox could not start: {type(exc).__name__}: {exc}"),
        )
    finally:
        _rmtree(workdir)


def _config(workdir: str, source: str, limits: Limits) -> dict:
    interpreter = os.path.realpath(sys.executable) if sys.executable else ""
    if not interpreter:
        raise RuntimeError("no Python interpreter (sys.executable is empty)")
    return {
        "source": source,
        "root": workdir,
        "sandbox_workdir": "/tmp/" + os.path.basename(workdir),
        "interpreter": interpreter,
        "ro_paths": _ro_paths(interpreter),
        "env": _PROGRAM_ENV,
        "prefix": os.path.realpath(sys.base_prefix),
        "exec_prefix": os.path.realpath(sys.base_exec_prefix),
        "isolation": limits.isolation,
        # for tests and for checking the fallback: behave as if unshare() were refused
        "no_namespaces": ("ASSAY_SANDBOX_NO_NAMESPACES is set"
                          if os.environ.get("ASSAY_SANDBOX_NO_NAMESPACES") else ""),
        "limits": asdict(limits),
        "parent_pid": os.getpid(),
    }


def _run_in(workdir: str, source: str, stdin: str, limits: Limits,
            stop: threading.Event | None = None) -> ExecResult:
    if not sys.executable:
        raise RuntimeError("no Python interpreter (sys.executable is empty)")
    cfg = _config(workdir, source, limits)
    status_r, status_w = os.pipe()
    try:
        with tempfile.TemporaryFile() as cfg_file, tempfile.TemporaryFile() as stdin_file:
            cfg_file.write(marshal.dumps(cfg))
            cfg_file.seek(0)
            stdin_file.write(stdin.encode("utf-8"))
            stdin_file.seek(0)
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", _HELPER, str(cfg_file.fileno()),
                 str(status_w)],
                stdin=stdin_file if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd="/",
                env=_PROGRAM_ENV,
                start_new_session=True,
                pass_fds=(cfg_file.fileno(), status_w),
                close_fds=True,
            )
    finally:
        os.close(status_w)
    start = time.monotonic()
    pgid = proc.pid  # start_new_session: the helper leads its own session and group
    try:
        bufs, truncated, timed_out = _supervise(proc, pgid, status_r, limits, stop)
    finally:
        # Whatever happened: nothing the program started survives, the helper is reaped.
        _stop_helper(proc, pgid)
        for pipe in (proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass
        os.close(status_r)
    duration = time.monotonic() - start
    out, err, status = bufs
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    info = _parse_status(status)
    isolation = info.get("isolation", "")
    cpu = info.get("cpu")
    if "error" not in info:
        _warn_fallback(isolation)

    def result(status: str, rc: int | None, reason: str) -> ExecResult:
        return ExecResult(status, rc, stdout, stderr, duration, reason, isolation, cpu,
                          truncated)

    if stop is not None and stop.is_set():
        return result("error", None, "stopped: the evaluation was interrupted")
    if timed_out:
        return result("timeout", None, f"timeout after {limits.timeout_s}s")
    if "error" in info:
        return result("error", None, _trim(f"sandbox could not start the program: "
                                           f"{info['error']}"))
    if "exit" not in info:
        line = [x for x in stderr.splitlines() if x.strip()][-1:] or [""]
        return result("error", None, _trim(
            f"sandbox helper ended ({proc.returncode}) without a report: {line[0]}"))
    rc = os.waitstatus_to_exitcode(int(info["exit"]))
    if rc == 0:
        return result("ok", 0, "ok")
    if rc < 0:
        return result("killed", rc, _signal_reason(-rc, cpu, limits))
    return result("failed", rc, _failure_reason(rc, stderr, limits))


def _parse_status(raw: bytes) -> dict:
    info: dict = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.partition("\t")
        if key in ("exit", "cpu"):
            try:
                value = float(value) if key == "cpu" else int(value)
            except ValueError:
                continue
        info.setdefault(key, value)  # the first error or exit counts
    return info


def _warn_fallback(isolation: str) -> None:
    global _FALLBACK_WARNED
    if isolation.startswith("rlimits only (namespaces") and not _FALLBACK_WARNED:
        _FALLBACK_WARNED = True
        warnings.warn(f"assay sandbox: {isolation}; model-written code runs without file "
                      "system, network or pid isolation", RuntimeWarning, stacklevel=3)


def _supervise(
    proc: subprocess.Popen, pgid: int, status_fd: int, limits: Limits,
    stop: threading.Event | None = None,
) -> tuple[tuple[bytes, bytes, bytes], bool, bool]:
    """Stream the pipes (storing at most the cap) until the program is done or time is up.

    Returns (stdout, stderr, status lines), whether output was truncated, whether it timed out.
    """
    cap = max(0, int(limits.max_output_bytes))
    fds = [proc.stdout.fileno(), proc.stderr.fileno(), status_fd]
    caps = {fds[0]: cap, fds[1]: cap, fds[2]: 1 << 16}
    bufs = {fd: bytearray() for fd in fds}
    over = {fd: False for fd in fds}
    sel = selectors.DefaultSelector()
    for fd in fds:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)

    def drain(fd: int) -> bool:
        """Read what is there; False at end of file."""
        buf = bufs[fd]
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            room = caps[fd] - len(buf)
            if len(chunk) > room:
                over[fd] = True
            if room > 0:
                buf += chunk[:room]
            # beyond the cap: keep reading (so the writer never blocks) but store nothing

    deadline = time.monotonic() + max(0.0, float(limits.timeout_s))
    exited = False
    grace_end = 0.0
    timed_out = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if not exited and _has_exited(proc.pid):
                exited = True
                # The leader is a zombie until reaped, so its pgid cannot have been reused:
                # kill background children that would otherwise keep the pipes open.
                _killpg(pgid)
                grace_end = now + 1.0
            if exited:
                if now >= grace_end:
                    break
                wait = grace_end - now
            else:
                if now >= deadline or (stop is not None and stop.is_set()):
                    timed_out = True
                    break
                wait = deadline - now
            for key, _ in sel.select(timeout=min(wait, 0.05)):
                if not drain(key.fd):
                    sel.unregister(key.fd)
        if not timed_out and not exited:
            # All pipes closed but the helper still runs.
            while not _has_exited(proc.pid):
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                time.sleep(0.01)
        if timed_out:
            _stop_helper(proc, pgid)
            # Pick up what was written just before the kill.
            end = time.monotonic() + 0.5
            while sel.get_map() and time.monotonic() < end:
                for key, _ in sel.select(timeout=0.05):
                    if not drain(key.fd):
                        sel.unregister(key.fd)
    finally:
        sel.close()
    truncated = over[fds[0]] or over[fds[1]]
    return (bytes(bufs[fds[0]]), bytes(bufs[fds[1]]), bytes(bufs[fds[2]])), truncated, timed_out


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Who runs a batch of programs when no worker count is asked for: None, this machine's
# threads; a run on Ray sets its own (``programs_run_by``), so code checks fan out as Ray tasks.
Job = tuple[str, str, Limits]  # (program, stdin, limits)
Runner = Callable[[Sequence[Job]], list[ExecResult]]
_RUNNER: list[Runner] = []


@contextmanager
def programs_run_by(runner: Runner) -> Iterator[None]:
    """Within this block, batches of programs (``run_many`` without ``workers``) go to
    ``runner``, which returns their results in job order."""
    _RUNNER.append(runner)
    try:
        yield
    finally:
        _RUNNER.pop()


def run_job(source: str, stdin: str, limits: Limits) -> ExecResult:
    """One program in its sandbox (what a remote runner calls on its worker)."""
    return run_python(source, stdin=stdin, limits=limits)


def _run_jobs(
    jobs: Sequence[tuple[str, str, Limits]], workers: int | None = None
) -> list[ExecResult]:
    """Run jobs, ``workers`` sandboxes (processes) at a time; results in job order.

    Each worker thread only supervises its sandbox's pipes; the programs run as separate
    processes, so they use as many cores as there are workers.
    """
    if not jobs:
        return []
    if workers is None and _RUNNER:
        return _RUNNER[-1](jobs)
    n = max(1, min(workers or default_workers(), len(jobs)))
    if n == 1:
        return [run_python(src, stdin=sin, limits=lim) for src, sin, lim in jobs]
    from concurrent.futures import ThreadPoolExecutor

    # On Ctrl-C (or SIGTERM raised as an exception) in the calling thread, the running
    # sandboxes are ended at once rather than at their timeout, and no new one starts.
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="assay-sbx")
    try:
        return list(pool.map(lambda j: run_python(j[0], stdin=j[1], limits=j[2], stop=stop),
                             jobs))
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_many(
    sources: list[str],
    *,
    limits: Limits = Limits(),
    workers: int | None = None,
    stdins: list[str] | None = None,
) -> list[ExecResult]:
    """Run several programs in parallel, each in its own sandbox; results in input order.

    ``workers`` defaults to the number of usable cores. A program that fails, hangs or
    misbehaves is recorded in its result; the others run on.
    """
    if stdins is not None and len(stdins) != len(sources):
        raise ValueError(f"{len(stdins)} stdins for {len(sources)} sources")
    ins = stdins if stdins is not None else [""] * len(sources)
    return _run_jobs([(s, i, limits) for s, i in zip(sources, ins)], workers)


# --------------------------------------------------------------------------------------------
# --sandbox strict|auto|off


def limits_for(mode: str, limits: Limits = Limits()) -> Limits:
    """``limits`` with the isolation that ``--sandbox mode`` asks for."""
    if mode not in SANDBOX_MODES:
        raise ValueError(f"sandbox mode: expected one of {', '.join(SANDBOX_MODES)}, got {mode!r}")
    return replace(limits, isolation=SANDBOX_MODES[mode])


_CHECKED: dict[str, str] = {}


def check_sandbox(mode: str) -> str:
    """Run one trivial program as ``--sandbox mode`` would; the isolation it got, or
    ``RuntimeError`` with a one-line reason where that mode refuses to run programs here."""
    if mode not in _CHECKED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = run_python("print('ok')", limits=limits_for(mode, Limits(timeout_s=30.0)))
        if (r.status, r.stdout) != ("ok", "ok\n"):
            why = r.reason.removeprefix("sandbox could not start the program: ")
            if mode == "strict" and "namespaces unavailable: " in why:
                why = ("kernel namespaces are unavailable here ("
                       + why.split("namespaces unavailable: ", 1)[1]
                       + "); use --sandbox auto for the rlimits fallback")
            raise RuntimeError(f"--sandbox {mode}: {why}")
        _CHECKED[mode] = r.isolation
    return _CHECKED[mode]


# --------------------------------------------------------------------------------------------
# Feature probe

_FEATURES: dict[str, bool] | None = None
_FEATURES_LOCK = threading.Lock()

_PROBE = (
    "import os\n"
    "for ns in ('net', 'user', 'pid', 'mnt'):\n"
    "    try:\n"
    "        print(ns, os.readlink('/proc/self/ns/' + ns))\n"
    "    except OSError:\n"
    "        print(ns, '?')\n"
    "print('uid', os.getuid())\n"
    "print('rootro', int(bool(os.statvfs('/').f_flag & os.ST_RDONLY)))\n"
)


def _own_ns(ns: str) -> str:
    try:
        return os.readlink(f"/proc/self/ns/{ns}")
    except OSError:
        return "?"


def sandbox_features() -> dict[str, bool]:
    """Which isolation features work on this machine (probed once, then cached).

    Keys: ``namespaces`` (programs run with ``isolation="namespaces"``), ``network_isolated``,
    ``user_namespace``, ``pid_namespace``, ``filesystem_isolated`` (read-only root, private
    /tmp), ``rlimits``, ``nproc_limit_enforced`` (False when the program would run as host
    root, which RLIMIT_NPROC does not bind), ``process_group_kill``.
    """
    global _FEATURES
    with _FEATURES_LOCK:
        if _FEATURES is None:
            res = run_python(_PROBE, limits=Limits(timeout_s=20.0))
            seen = dict(
                line.split(" ", 1) for line in res.stdout.splitlines() if " " in line
            )
            ok = res.status == "ok"

            def differs(ns: str) -> bool:
                inner, outer = seen.get(ns, "?"), _own_ns(ns)
                return ok and "?" not in (inner, outer) and inner != outer

            namespaced = ok and res.isolation == "namespaces"
            _FEATURES = {
                "namespaces": namespaced,
                "network_isolated": differs("net"),
                "user_namespace": differs("user"),
                "pid_namespace": differs("pid"),
                "filesystem_isolated": namespaced and differs("mnt")
                and seen.get("rootro") == "1",
                "rlimits": ok,
                "nproc_limit_enforced": ok and (namespaced or seen.get("uid") != "0"),
                "process_group_kill": hasattr(os, "killpg"),
            }
        return dict(_FEATURES)
