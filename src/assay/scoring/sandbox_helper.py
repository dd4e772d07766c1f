"""The helper of ``sandbox.py``: the process tree that isolates one program.

A separate script, so that its start-up (paid for every program) imports nothing but a few
standard-library modules; ``sandbox.py`` is the parent side and explains what a program gets.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import signal
import stat
import sys
import time

# --------------------------------------------------------------------------------------------
# Run as ``python -I -S -B sandbox_helper.py CONFIG_FD STATUS_FD``.
#
# It imports only what it needs (the standard library's smallest modules), since its
# start-up time is paid for every program.
#
#   H  helper, host namespaces, leader of the run's process group, child subreaper; writes the
#      id maps; on SIGTERM (also its parent-death signal) and at the end, kills every descendant
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
_PR_SET_CHILD_SUBREAPER = 36
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
    # First of all: whatever ends this helper early (the evaluating process dying, its
    # SIGTERM at a timeout, our own alarm) kills every process it started, escaped ones too.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _die)
    with os.fdopen(cfg_fd, "rb") as f:
        cfg = marshal.loads(f.read())
    os.set_inheritable(status_fd, False)
    libc = _libc()
    # Orphans of the program (setsid() daemons included) are reparented to this helper, so
    # that _kill_descendants finds them; they cannot leave its tree.
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # Die with the evaluating process: a catchable signal, so that the tree dies too.
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != cfg["parent_pid"]:
        return 1
    # A backstop for the parent's own timeout (a stopped or wedged parent).
    signal.setitimer(signal.ITIMER_REAL, float(cfg["limits"]["timeout_s"]) + 2.0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    mode = cfg["isolation"]
    if mode == "off":
        note = f"off (unsandboxed, as requested; uid {os.geteuid()}, rlimits and timeout only)"
    elif mode == "rlimits":
        note = "rlimits only (isolation='rlimits' requested)"
    else:
        try:
            if cfg.get("no_namespaces"):
                raise _NoNamespaces(cfg["no_namespaces"])
            _run_namespaced(cfg, status_fd, libc)
            return 0
        except _NoNamespaces as exc:
            if mode == "namespaces":
                _report(status_fd, error=f"namespaces unavailable: {exc}")
                return 0
            note = f"rlimits only (namespaces unavailable: {exc})"
    cfg["drop_to"] = None
    if os.geteuid() == 0 and mode != "off":
        # Never run generated code as root: drop to an unprivileged id, or refuse.
        why = _cannot_drop_root(cfg)
        if why:
            _report(status_fd, isolation=note,
                    error=f"refused to run the program as root without namespaces: {why}")
            return 0
        cfg["drop_to"] = _HOST_ID_AS_ROOT
        note += f"; uid {_HOST_ID_AS_ROOT}"
    _report(status_fd, isolation=note)
    _run_plain(cfg, status_fd, libc)
    return 0


def _die(signum, _frame) -> None:
    _kill_descendants()
    os._exit(128 + signum)


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> live (not zombie) child pids, from /proc."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in (b"Z", b"X"):
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def _kill_descendants() -> None:
    """SIGKILL every process below this one until none is left (this helper is a subreaper,
    so the orphans of killed processes come back to it and are found by the next round)."""
    me = os.getpid()
    for _ in range(200):
        kids = _children_map()
        todo, found = [me], []
        while todo:
            for pid in kids.get(todo.pop(), ()):
                found.append(pid)
                todo.append(pid)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:  # reap what died (our children, and orphans reparented to us)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except (ChildProcessError, InterruptedError):
                break
        if not found:
            return
        time.sleep(0.002)


def _cannot_drop_root(cfg: dict) -> str:
    """Why the fallback cannot run the program as uid 65534 ('' when it can)."""
    if not _id_mapped(_HOST_ID_AS_ROOT):
        return f"uid {_HOST_ID_AS_ROOT} does not exist in this user namespace"
    interp, prefix = cfg["interpreter"], cfg["prefix"]
    if _others_can_run(interp):
        return ""
    rel = os.path.relpath(interp, prefix)
    if rel.startswith("..") or cfg["exec_prefix"] != prefix:
        return f"uid {_HOST_ID_AS_ROOT} cannot execute {interp}"
    # Reached through a descriptor opened as root, the interpreter needs only its own
    # installation to be readable by others (not the folders above it, e.g. /root).
    path = prefix
    for part in [""] + rel.split("/")[:-1]:
        path = os.path.join(path, part) if part else path
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return f"uid {_HOST_ID_AS_ROOT} cannot search {path}"
    mode = os.stat(interp).st_mode
    if not (mode & stat.S_IXOTH and mode & stat.S_IROTH):
        return f"uid {_HOST_ID_AS_ROOT} cannot execute {interp}"
    return ""


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
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):  # the helper's, not ours
        signal.signal(sig, signal.SIG_DFL)
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
    helper = os.getppid()
    os.setresgid(0, 0, 0)  # the namespace's root: files it creates need a mapped owner
    os.setresuid(0, 0, 0)
    # A change of ids clears the parent-death signal: set it again, then make sure the
    # helper did not die in between.
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != helper:
        return
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
        interp = cfg["interpreter"]
        flags = ["-I", "-S", "-B"]
        env = dict(cfg["env"], HOME=workdir, TMPDIR=workdir)
        keep = {0, 1, 2, status_fd, keep_fd}
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
        elif cfg["drop_to"] is not None:
            uid = cfg["drop_to"]
            os.chown(workdir, uid, uid)
            if not _others_can_run(interp):
                # Open the installation while still root and exec through the descriptor:
                # the folders above it (say /root/.pyenv) need not be searchable by uid.
                prefix_fd = os.open(cfg["prefix"], os.O_PATH | os.O_DIRECTORY)
                os.set_inheritable(prefix_fd, True)
                keep.add(prefix_fd)
                home = f"/proc/self/fd/{prefix_fd}"
                interp = f"{home}/{os.path.relpath(interp, cfg['prefix'])}"
                flags = ["-s", "-P", "-S", "-B"] if sys.version_info >= (3, 11) else \
                    ["-s", "-S", "-B"]  # -I would ignore PYTHONHOME; the env is ours anyway
                env["PYTHONHOME"] = home
            parent = os.getppid()
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.geteuid() == 0 or os.getuid() == 0:
                raise OSError("still root after setresuid")
            # The id change cleared the parent-death signal: set it again, then check that
            # the helper is still there.
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(70)
        _ok(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as f:
            f.write(cfg["source"])
        os.chdir(workdir)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for name, value in _rlimits(cfg["limits"]):
            _set_rlimit(name, value)
        _close_fds_except(keep)  # status_fd and keep_fd close on exec
        os.execve(interp, [interp, *flags, "main.py"], env)
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
    """The fallback: rlimits, uid 65534 when root, and at the end every descendant of this
    helper killed (a subreaper: setsid() daemons included); no namespaces."""
    pid = os.fork()
    if pid == 0:
        try:
            _start_program(cfg, status_fd, libc, status_fd, namespaced=False)
        finally:
            os._exit(70)
    _wait_and_report(pid, status_fd)
    _kill_descendants()


if __name__ == "__main__":
    sys.exit(_helper_main(sys.argv[1:]))
