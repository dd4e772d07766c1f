"""Run untrusted, model-written Python in an isolated child process.

Each program runs as ``python -I -S -B main.py`` (the calling interpreter, resolved through
symlinks, without site-packages) under a small helper, this file run as a script. Where the
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
in every result's ``isolation`` field ("rlimits only (…why…)") and with one ``RuntimeWarning``:
rlimits, a process group killed as a whole, a throwaway work dir on the host, and, when the
caller is root, uid/gid 65534. That is containment for buggy programs, not a security boundary:
the program sees the host file system and network and a ``setsid()`` grandchild escapes the
group kill. ``isolation="namespaces"`` refuses to run without namespaces (status "error"),
``isolation="rlimits"`` asks for the fallback.

Nothing here imports third-party packages.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import signal
import stat
import sys

__all__ = ["Limits", "ExecResult", "run_python", "run_many", "sandbox_features"]

# --------------------------------------------------------------------------------------------
# Helper side: this file run as ``python -I -S -B sandbox.py CONFIG_FD STATUS_FD``.
#
# It imports only what it needs (the parent side's imports come after the guard below), since
# its start-up time is paid for every program.
#
#   H  helper, host namespaces, leader of the run's process group; writes the id maps
#   └─ C  unshares user/mount/pid/net/ipc/uts namespaces, waits for init
#      └─ I  pid 1 of the new pid namespace: builds the read-only root, reports the exit
#         └─ P  drops to uid 1000 without capabilities, sets rlimits, execs the program
#
# CONFIG_FD holds the run's settings (``marshal``); status lines ``key<TAB>value`` go to
# STATUS_FD: ``isolation``, ``exit`` (a wait status) with ``cpu`` (seconds), ``error``. A
# private pipe tells H that C unshared ("U"), that namespaces are not available ("N why"), or,
# by its end of file, that the program was exec'd. Without namespaces, H starts P itself.

_SANDBOX_ID = 1000  # the program's uid and gid inside the user namespace (caller is root)
_HOST_ID_AS_ROOT = 65534  # its uid and gid on the host when the caller is root
_HOST_ID_INIT = 65533  # the host ids of the namespace's root (init) when the caller is root

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME = 32, 1024, 2048
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_MS_RELATIME, _MS_STRICTATIME = 1 << 21, 1 << 24
_MNT_DETACH = 2

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# Top-level names of a Debian/Ubuntu/Fedora root that programs need (links are recreated).
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
              "stderr": "/proc/self/fd/2", "shm": "/tmp"}


class _NoNamespaces(Exception):
    """Namespaces are unavailable here; "auto" falls back to rlimits only."""


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _why(exc: OSError) -> str:
    """An OSError in words, without the ``[Errno N]`` prefix."""
    text = exc.strerror or str(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def _mount(libc, src: str | None, dst: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _ok(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def _write_file(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _report(fd: int, **kv) -> None:
    """One ``key<TAB>value`` line per item (newlines in values become spaces)."""
    text = "".join(f"{k}\t{' '.join(str(v).splitlines())}\n" for k, v in kv.items())
    try:
        os.write(fd, text.encode("utf-8", errors="replace"))
    except OSError:
        pass


def _helper_main(argv: list[str]) -> int:
    cfg_fd, status_fd = int(argv[0]), int(argv[1])
    with os.fdopen(cfg_fd, "rb") as f:
        cfg = marshal.loads(f.read())
    os.set_inheritable(status_fd, False)
    libc = _libc()
    # Die with the evaluating process (pid 1 of the sandbox does likewise with its parent).
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != cfg["parent_pid"]:
        return 1
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    mode = cfg["isolation"]
    if mode == "rlimits":
        note = "rlimits only (isolation='rlimits' requested)"
    else:
        try:
            _run_namespaced(cfg, status_fd, libc)
            return 0
        except _NoNamespaces as exc:
            if mode == "namespaces":
                _report(status_fd, error=f"namespaces unavailable: {exc}")
                return 0
            note = f"rlimits only (namespaces unavailable: {exc})"
    if os.geteuid() == 0:
        cfg["drop_root"] = _id_mapped(_HOST_ID_AS_ROOT) and _others_can_run(cfg["interpreter"])
        if not cfg["drop_root"]:
            note += (f"; the program runs as root (uid {_HOST_ID_AS_ROOT} cannot execute "
                     f"{cfg['interpreter']})")
    _report(status_fd, isolation=note)
    _run_plain(cfg, status_fd, libc)
    return 0


def _read_line(fd: int) -> bytes:
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        out += chunk
    return out


def _run_namespaced(cfg: dict, status_fd: int, libc) -> None:
    cfg["ns_program_id"] = _SANDBOX_ID if os.geteuid() == 0 else 0
    sync_r, sync_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(sync_r)
            os.close(go_w)
            _stage_unshare(cfg, status_fd, libc, sync_w, go_r)
        finally:
            os._exit(70)
    os.close(sync_w)
    os.close(go_r)
    try:
        first = _read_line(sync_r)
        if first == b"U\n":
            try:
                _write_id_maps(pid)
            except OSError as exc:
                os.close(go_w)
                go_w = -1
                os.waitpid(pid, 0)
                raise _NoNamespaces(f"cannot write the id maps: {_why(exc)}") from None
            os.write(go_w, b"g")
            os.close(go_w)
            go_w = -1
            rest = b""
            while chunk := os.read(sync_r, 4096):
                rest += chunk
            if rest.startswith(b"N"):
                os.waitpid(pid, 0)
                raise _NoNamespaces(rest[1:].decode(errors="replace").strip())
            _report(status_fd, isolation="namespaces")
        else:
            os.waitpid(pid, 0)
            why = first[1:].decode(errors="replace").strip() if first else "no answer"
            raise _NoNamespaces(why)
    finally:
        os.close(sync_r)
        if go_w >= 0:
            os.close(go_w)
    os.waitpid(pid, 0)


def _write_id_maps(pid: int) -> None:
    """Root maps the namespace's root and the program's user to two unprivileged host ids;
    anyone else may map only their own ids (to the namespace's root), without setgroups."""
    if os.geteuid() == 0:
        lines = f"0 {_HOST_ID_INIT} 1\n{_SANDBOX_ID} {_HOST_ID_AS_ROOT} 1\n"
        uid_map = gid_map = lines
    else:
        _write_file(f"/proc/{pid}/setgroups", "deny")
        uid_map, gid_map = f"0 {os.geteuid()} 1\n", f"0 {os.getegid()} 1\n"
    _write_file(f"/proc/{pid}/uid_map", uid_map)
    _write_file(f"/proc/{pid}/gid_map", gid_map)


def _stage_unshare(cfg: dict, status_fd: int, libc, sync_w: int, go_r: int) -> None:
    """C: create the namespaces, wait for the id maps, start init."""
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    flags = (_CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWIPC
             | _CLONE_NEWUTS)
    try:
        _ok(libc.unshare(flags), "unshare")
    except OSError as exc:
        os.write(sync_w, f"N{_why(exc)}\n".encode())
        return
    os.write(sync_w, b"U\n")
    if os.read(go_r, 1) != b"g":
        return
    os.close(go_r)
    try:  # still the caller's host ids: open what will be bound, folders like /root included
        sources = _open_sources(cfg)
    except OSError as exc:
        os.write(sync_w, f"Nfile system setup failed: {_why(exc)}\n".encode())
        return
    os.setresgid(0, 0, 0)  # the namespace's root: files it creates need a mapped owner
    os.setresuid(0, 0, 0)
    cfg["sources"] = sources
    pid = os.fork()
    if pid == 0:
        try:
            _stage_init(cfg, status_fd, libc, sync_w)
        finally:
            os._exit(70)
    os.close(sync_w)
    os.waitpid(pid, 0)
    os._exit(0)


def _stage_init(cfg: dict, status_fd: int, libc, sync_w: int) -> None:
    """I, pid 1: build the root, start the program, report how it ended, then die (and with
    it every process left in the namespace)."""
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        _build_root(cfg, libc)
    except OSError as exc:
        os.write(sync_w, f"Nfile system setup failed: {_why(exc)}\n".encode())
        return
    pid = os.fork()
    if pid == 0:
        try:
            _start_program(cfg, status_fd, libc, sync_w, namespaced=True)
        finally:
            os._exit(70)
    os.close(sync_w)
    _wait_and_report(pid, status_fd)
    os._exit(0)


def _wait_and_report(pid: int, status_fd: int) -> None:
    while True:
        try:
            wpid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if wpid == pid:
            _report(status_fd, exit=status, cpu=round(usage.ru_utime + usage.ru_stime, 3))
            return


def _mount_flags(path: str) -> int:
    """Flags that a read-only remount of ``path`` must keep (locked in a user namespace)."""
    f = os.statvfs(path).f_flag
    flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    if f & os.ST_NOEXEC:
        flags |= _MS_NOEXEC
    if f & os.ST_NOATIME:
        flags |= _MS_NOATIME
    if f & os.ST_NODIRATIME:
        flags |= _MS_NODIRATIME
    if f & os.ST_RELATIME:
        flags |= _MS_RELATIME
    elif not f & os.ST_NOATIME:
        flags |= _MS_STRICTATIME
    return flags


def _unescape_mountinfo(s: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space)."""
    parts = s.split("\\")
    out = parts[0]
    for part in parts[1:]:
        code = part[:3]
        if len(code) == 3 and all(c in "01234567" for c in code):
            out += chr(int(code, 8)) + part[3:]
        else:
            out += "\\" + part
    return out


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        points = [_unescape_mountinfo(line.split()[4]) for line in f if line.strip()]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def _bind_ro(libc, root: str, src: str, fd: int) -> None:
    dst = root + src
    os.makedirs(dst, exist_ok=True)
    _mount(libc, f"/proc/self/fd/{fd}", dst, None, _MS_BIND | _MS_REC)
    for point in _mounts_under(dst):  # submounts too: a read-only remount is per mount
        _mount(libc, None, point, None, _MS_REMOUNT | _MS_BIND | _mount_flags(point))


def _pivot_root(libc, root: str) -> None:
    os.chdir(root)
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is not None:
        _ok(libc.syscall(nr, b".", b"."), "pivot_root")
        _ok(libc.umount2(b".", _MNT_DETACH), "umount old root")
    else:  # the initramfs way: move the new root over / and chroot into it
        _mount(libc, root, "/", None, 8192)  # MS_MOVE
        os.chroot(".")
    os.chdir("/")


def _open_sources(cfg: dict) -> dict:
    """O_PATH descriptors of the folders and devices to bind (path -> fd) and the top-level
    links to recreate (path -> target). Opened with the caller's ids, before the switch to
    the namespace's root, which may not search folders such as /root on the host."""
    binds: dict[str, int] = {}
    links: dict[str, str] = {}
    for src in ["/" + name for name in _SYSTEM_DIRS] + list(cfg["ro_paths"]):
        if os.path.islink(src) and src.count("/") == 1:
            links[src] = os.readlink(src)
        elif os.path.isdir(src):
            binds[src] = os.open(src, os.O_PATH | os.O_DIRECTORY)
    for name in _DEVICES:
        binds[f"/dev/{name}"] = os.open(f"/dev/{name}", os.O_PATH)
    return {"binds": binds, "links": links}


def _build_root(cfg: dict, libc) -> None:
    root = cfg["root"]  # an empty host directory, used as the mount point
    binds, links = cfg["sources"]["binds"], cfg["sources"]["links"]
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for src, target in links.items():
        os.symlink(target, root + src)
    for src, fd in binds.items():
        if src.startswith("/dev/"):
            continue
        _bind_ro(libc, root, src, fd)
    os.mkdir(root + "/dev", 0o755)
    for name in _DEVICES:
        dst = f"{root}/dev/{name}"
        os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(libc, f"/proc/self/fd/{binds['/dev/' + name]}", dst, None, _MS_BIND)
    for fd in binds.values():
        os.close(fd)
    for name, target in _DEV_LINKS.items():
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(root + "/tmp", 0o755)
    size = max(1, int(cfg["limits"]["max_disk_mb"]))
    _mount(libc, "tmpfs", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={size}m,nr_inodes=16384,mode=0700,uid={cfg['ns_program_id']},"
           f"gid={cfg['ns_program_id']}")
    os.mkdir(root + "/proc", 0o555)
    try:  # only this namespace's processes; without it there is simply no /proc
        _mount(libc, "proc", root + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        proc_ok = True
    except OSError:
        proc_ok = False
    _pivot_root(libc, root)
    _mount(libc, None, "/", None, _MS_REMOUNT | _MS_BIND | _mount_flags("/"))
    if proc_ok:
        try:  # no nested user namespaces (and so no new mounts) for the program
            _write_file("/proc/sys/user/max_user_namespaces", "0")
        except OSError:
            pass
    try:
        libc.sethostname(b"sandbox", 7)
    except (AttributeError, OSError):
        pass


def _start_program(cfg: dict, status_fd: int, libc, keep_fd: int, *, namespaced: bool) -> None:
    """P: drop privileges, write main.py, set the limits, exec. Reports failures itself."""
    try:
        workdir = cfg["sandbox_workdir"] if namespaced else cfg["root"]
        if namespaced:
            os.setsid()  # kill(0, ...) reaches only the program's own group
            for cap in range(64):  # empty the bounding set (stops at the first unknown cap)
                if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    break
            libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
            uid = cfg["ns_program_id"]
            if uid:  # else the caller is not root: only its own id is mapped (as 0)
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            os.mkdir(workdir, 0o700)
        elif os.geteuid() == 0 and cfg["drop_root"]:
            os.chown(workdir, _HOST_ID_AS_ROOT, _HOST_ID_AS_ROOT)
            os.setgroups([])
            os.setresgid(_HOST_ID_AS_ROOT, _HOST_ID_AS_ROOT, _HOST_ID_AS_ROOT)
            os.setresuid(_HOST_ID_AS_ROOT, _HOST_ID_AS_ROOT, _HOST_ID_AS_ROOT)
        _ok(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as f:
            f.write(cfg["source"])
        os.chdir(workdir)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for name, value in _rlimits(cfg["limits"]):
            _set_rlimit(name, value)
        _close_fds_except({0, 1, 2, status_fd, keep_fd})  # those two close on exec
        interp = cfg["interpreter"]
        env = dict(cfg["env"], HOME=workdir, TMPDIR=workdir)
        os.execve(interp, [interp, "-I", "-S", "-B", "main.py"], env)
    except BaseException as exc:  # noqa: BLE001 - reported, never raised past the fork
        _report(status_fd, error=f"{type(exc).__name__}: {exc}")
        os._exit(70)


def _close_fds_except(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _rlimits(lim: dict) -> list[tuple[str, tuple[int, int]]]:
    mb = 1024 * 1024
    cpu = max(1, int(lim["cpu_s"]))
    return [
        ("RLIMIT_AS", (lim["memory_mb"] * mb,) * 2),
        ("RLIMIT_NPROC", (lim["max_procs"],) * 2),
        ("RLIMIT_FSIZE", (lim["max_file_mb"] * mb,) * 2),
        ("RLIMIT_NOFILE", (lim["max_open_files"],) * 2),
        ("RLIMIT_CORE", (0, 0)),
        ("RLIMIT_CPU", (cpu, cpu + 1)),  # SIGXCPU, then SIGKILL one second later
    ]


def _set_rlimit(name: str, value: tuple[int, int]) -> None:
    res = getattr(resource, name, None)
    if res is None:
        return
    _soft, hard = resource.getrlimit(res)
    soft_new, hard_new = (max(0, int(v)) for v in value)
    if hard != resource.RLIM_INFINITY:
        soft_new, hard_new = min(soft_new, hard), min(hard_new, hard)
    resource.setrlimit(res, (soft_new, hard_new))


def _id_mapped(uid: int) -> bool:
    """Whether ``uid`` exists in our user namespace (always, outside containers)."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            ranges = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except (OSError, ValueError):
        return True
    return any(inner <= uid < inner + count for inner, _outer, count in ranges)


def _others_can_run(path: str) -> bool:
    """Whether an unrelated uid can execute ``path`` (every folder on the way searchable)."""
    parts = os.path.realpath(path).split("/")
    for i in range(2, len(parts)):
        if not os.stat("/".join(parts[:i])).st_mode & stat.S_IXOTH:
            return False
    mode = os.stat(path).st_mode
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def _run_plain(cfg: dict, status_fd: int, libc) -> None:
    """The fallback: rlimits, the process group, uid 65534 when root; no namespaces."""
    pid = os.fork()
    if pid == 0:
        try:
            _start_program(cfg, status_fd, libc, status_fd, namespaced=False)
        finally:
            os._exit(70)
    _wait_and_report(pid, status_fd)


if __name__ == "__main__":  # the helper: stops here, before the parent side's imports
    sys.exit(_helper_main(sys.argv[1:]))

import builtins  # noqa: E402
import re  # noqa: E402
import selectors  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

ISOLATION_MODES = ("auto", "namespaces", "rlimits")


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
    isolation: str = "auto"  # "auto", "namespaces" (required) or "rlimits" (no namespaces)

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

_HELPER = os.path.abspath(__file__)
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


def run_python(source: str, *, stdin: str = "", limits: Limits = Limits()) -> ExecResult:
    """Run ``source`` as a Python program under ``limits``; never raises for program errors."""
    workdir = tempfile.mkdtemp(prefix="assay-sbx-")
    start = time.monotonic()
    try:
        return _run_in(workdir, source, stdin, limits)
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
        "isolation": limits.isolation,
        "limits": asdict(limits),
        "parent_pid": os.getpid(),
    }


def _run_in(workdir: str, source: str, stdin: str, limits: Limits) -> ExecResult:
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
        bufs, truncated, timed_out = _supervise(proc, pgid, status_r, limits)
    finally:
        # Whatever happened: no member of the group survives, the helper is reaped. Killing
        # the helper's group kills the sandbox's init, and with it the whole pid namespace.
        _killpg(pgid)
        proc.wait()
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
    _warn_fallback(isolation)

    def result(status: str, rc: int | None, reason: str) -> ExecResult:
        return ExecResult(status, rc, stdout, stderr, duration, reason, isolation, cpu,
                          truncated)

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
    proc: subprocess.Popen, pgid: int, status_fd: int, limits: Limits
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
                if now >= deadline:
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
            _killpg(pgid)
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


def _run_jobs(
    jobs: Sequence[tuple[str, str, Limits]], workers: int | None = None
) -> list[ExecResult]:
    """Run jobs, ``workers`` sandboxes (processes) at a time; results in job order.

    Each worker thread only supervises its sandbox's pipes; the programs run as separate
    processes, so they use as many cores as there are workers.
    """
    if not jobs:
        return []
    n = max(1, min(workers or default_workers(), len(jobs)))
    if n == 1:
        return [run_python(src, stdin=sin, limits=lim) for src, sin, lim in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="assay-sbx") as pool:
        return list(pool.map(lambda j: run_python(j[0], stdin=j[1], limits=j[2]), jobs))


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
