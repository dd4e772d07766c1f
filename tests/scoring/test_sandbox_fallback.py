"""The rlimits fallback (no namespaces) against the same hostile programs as test_sandbox.py.

``isolation="rlimits"`` forces the fallback even where namespaces exist. What it promises: the
program never runs as root (uid 65534 when the caller is root), it cannot signal the helper or
assay, every process it starts dies at the end of its sample or at the timeout (``setsid()``
daemons included), and the limits hold. What it does not: the host's file system is visible
and world-writable places (``/tmp``) and the network stay reachable; ``--sandbox strict``
exists for that.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from assay.scoring import sandbox_helper
from assay.scoring.sandbox import Limits, run_python
from test_sandbox import _daemon_program, _gone, _reexec_with, _token, check_daemon_dies_at_the_timeout

ROOT = Path(__file__).resolve().parents[2]
FALLBACK = Limits(timeout_s=2.0, cpu_s=2, memory_mb=256, max_procs=8, isolation="rlimits")
AS_ROOT = os.geteuid() == 0
UNPRIVILEGED = 65534 if AS_ROOT else os.getuid()


@pytest.fixture
def shared_dir():
    """A folder the program's uid may write in, for markers it would leave."""
    d = tempfile.mkdtemp(prefix="assay-test-")
    os.chmod(d, 0o1777)
    yield Path(d)
    for p in Path(d).iterdir():
        p.unlink()
    os.rmdir(d)


def test_fallback_never_runs_the_program_as_root():
    src = ("import os\n"
           "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
           "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
           "print(status['CapEff'].strip(), status['NoNewPrivs'].strip())\n")
    r = run_python(src, limits=FALLBACK)
    assert r.status == "ok", r
    assert r.isolation == ("rlimits only (isolation='rlimits' requested)"
                           + (f"; uid {UNPRIVILEGED}" if AS_ROOT else ""))
    ids, caps = r.stdout.splitlines()
    assert ids == f"{UNPRIVILEGED} {UNPRIVILEGED} {UNPRIVILEGED} []" if AS_ROOT else True
    assert caps == "0000000000000000 1"


def test_fallback_fork_bomb_is_contained():
    token = _token()
    src = _reexec_with(token) + (
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError as e:\n"
        "        print(e.strerror, flush=True)\n"
        "        break\n"
        "import time\n"
        "time.sleep(60)\n"
    )
    t0 = time.monotonic()
    r = run_python(src, limits=FALLBACK)
    assert r.status == "timeout", r
    assert time.monotonic() - t0 < 8
    assert "Resource temporarily unavailable" in r.stdout
    assert _gone(token), "fork bomb processes outlived the run"


def test_fallback_loop_times_out_and_memory_is_limited():
    token = _token()
    r = run_python(_reexec_with(token) + "while True:\n    pass\n",
                   limits=Limits(timeout_s=1.0, isolation="rlimits"))
    assert (r.status, r.reason) == ("timeout", "timeout after 1.0s")
    assert _gone(token)
    r = run_python("b = bytearray(10 * 1024**3)\nprint('allocated')", limits=FALLBACK)
    assert r.reason == "exit 1: MemoryError (memory limit of 256 MB)", r


@pytest.mark.skipif(not AS_ROOT, reason="the program runs as the caller, who owns these")
def test_fallback_cannot_write_root_owned_places(shared_dir):
    token = _token()
    targets = [ROOT / f"{token}.txt", Path("/etc") / f"{token}.txt",
               Path("/root") / f"{token}.txt", shared_dir / f"{token}.txt"]
    src = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('pwned')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('denied', path, e.strerror)\n"
    )
    try:
        r = run_python(src, limits=FALLBACK)
        assert r.stdout.splitlines() == [
            f"denied {targets[0]} Permission denied",
            f"denied {targets[1]} Permission denied",
            f"denied {targets[2]} Permission denied",
            f"wrote {targets[3]}",  # world-writable places stay writable: not a boundary
        ], r
        assert targets[3].stat().st_uid == UNPRIVILEGED
        for t in targets[:3]:
            assert not t.exists()
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


@pytest.mark.skipif(not AS_ROOT, reason="the program runs as the caller, who may signal itself")
def test_fallback_cannot_signal_the_helper_assay_or_root_processes():
    sibling = subprocess.Popen(["sleep", "30"])
    try:
        src = (
            "import os, signal\n"
            "def kill(name, pid):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        print(name, 'sent', flush=True)\n"
            "    except OSError as e:\n"
            "        print(name, type(e).__name__, flush=True)\n"
            "kill('helper', os.getppid())\n"
            f"kill('test', {os.getpid()})\n"
            f"kill('sibling', {sibling.pid})\n"
            "kill('group', 0)\n"
        )
        r = run_python(src, limits=FALLBACK)
        assert r.stdout.splitlines() == ["helper PermissionError", "test PermissionError",
                                         "sibling PermissionError"], r
        # kill(0): the program's group holds the root helper, so only the program dies
        assert (r.status, r.reason) == ("killed", "killed by SIGKILL"), r
        assert sibling.poll() is None
    finally:
        sibling.kill()
        sibling.wait()


def test_fallback_kills_a_setsid_daemon_at_the_timeout(shared_dir):
    check_daemon_dies_at_the_timeout(shared_dir, "rlimits")


def test_fallback_kills_a_setsid_daemon_when_the_program_ends(shared_dir):
    token, marker = _token(), shared_dir / "marker"
    src = _daemon_program(token, marker).replace("while True:\n    pass\n", "")
    t0 = time.monotonic()
    r = run_python(src, limits=Limits(timeout_s=5.0, isolation="rlimits"))
    assert (r.status, r.stdout) == ("ok", "daemon started\n"), r
    assert time.monotonic() - t0 < 3
    assert _gone(token, within_s=0.5), "the setsid() daemon outlived its sample"
    time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
    assert not marker.exists()


def test_fallback_ctypes_cannot_regain_root():
    src = ("import ctypes\n"
           "libc = ctypes.CDLL(None, use_errno=True)\n"
           "print(libc.setuid(0), ctypes.get_errno(), flush=True)\n"
           "print(libc.kill(1, 9), ctypes.get_errno(), flush=True)\n")
    r = run_python(src, limits=FALLBACK)
    assert r.stdout.splitlines() == ["-1 1", "-1 1"], r  # EPERM twice


def test_fallback_network_is_not_isolated():
    """The honest control: without a network namespace a connection reaches the host."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\n",
                       limits=FALLBACK)
        srv.settimeout(2)
        conn, _ = srv.accept()
        conn.close()
    assert r.status == "ok", r


def test_fallback_refuses_when_the_interpreter_is_out_of_reach(tmp_path):
    """Where uid 65534 cannot execute the interpreter even through a descriptor of its
    installation, the fallback says why instead of running the program as root."""
    prefix = tmp_path / "python"
    (prefix / "bin").mkdir(parents=True)
    interp = prefix / "bin" / "python3"
    interp.write_bytes(b"")
    interp.chmod(0o755)
    prefix.chmod(0o700)
    tmp_path.chmod(0o700)
    cfg = {"interpreter": str(interp), "prefix": str(prefix), "exec_prefix": str(prefix)}
    assert sandbox_helper._cannot_drop_root(cfg) == f"uid 65534 cannot search {prefix}"
    prefix.chmod(0o755)
    (prefix / "bin").chmod(0o700)
    assert sandbox_helper._cannot_drop_root(cfg) == f"uid 65534 cannot search {prefix / 'bin'}"
    (prefix / "bin").chmod(0o755)
    assert sandbox_helper._cannot_drop_root(cfg) == ""  # through the descriptor of prefix
    cfg["exec_prefix"] = str(tmp_path)
    assert sandbox_helper._cannot_drop_root(cfg) == f"uid 65534 cannot execute {interp}"
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
