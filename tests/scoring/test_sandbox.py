"""The sandbox against real hostile programs: each one is contained, recorded as a failed
sample with its reason, and the run goes on.

Every hostile program runs with ``isolation="namespaces"``, so that it is refused (status
"error") rather than run with rlimits only where namespaces are unavailable; the tests skip
there. Processes that would survive are looked for on the host by a unique token in their
command line.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from assay.scoring.code import check_many
from assay.scoring.sandbox import Limits, run_many, run_python, sandbox_features

ROOT = Path(__file__).resolve().parents[2]

# Small limits: a hostile program must be contained without hurting a shared machine.
HOSTILE = Limits(timeout_s=2.0, cpu_s=2, memory_mb=256, max_procs=8, isolation="namespaces")


@pytest.fixture(scope="module", autouse=True)
def namespaces():
    if not sandbox_features()["namespaces"]:
        r = run_python("pass")
        pytest.skip(f"no namespace isolation here: {r.isolation or r.reason}")


def _token() -> str:
    return "assay-test-" + uuid.uuid4().hex[:12]


def _host_procs(token: str) -> list[int]:
    """Live (not zombie) host processes whose command line contains ``token``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if token.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(name))
    return found


def _gone(token: str, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while _host_procs(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _reexec_with(token: str) -> str:
    """Program prologue: restart under a command line that carries ``token``."""
    return ("import os, sys\n"
            f"if {token!r} not in sys.argv:\n"
            f"    os.execv(sys.executable, [sys.executable, '-I', '-S', 'main.py', {token!r}])\n")


# --------------------------------------------------------------------------------------------
# the good case


def test_normal_program_works():
    r = run_python("import sys\nprint(sum(range(10)))\nprint('warn', file=sys.stderr)\n"
                   "print(input()[::-1])", stdin="olleh", limits=HOSTILE)
    assert (r.status, r.returncode, r.reason) == ("ok", 0, "ok")
    assert (r.stdout, r.stderr) == ("45\nhello\n", "warn\n")
    assert r.isolation == "namespaces" and not r.output_truncated
    assert r.cpu_s is not None and 0 <= r.cpu_s < 2


def test_program_runs_unprivileged_in_its_own_namespaces():
    src = ("import os\n"
           "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
           "print(os.getpid(), os.getppid(), os.getuid(), os.getgid())\n"
           "print(*(status[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs')))\n"
           "print(sorted(os.listdir('/')))\n"
           "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n")
    r = run_python(src, limits=HOSTILE)
    assert r.status == "ok", r
    ids, caps, top, procs = r.stdout.splitlines()
    assert ids == "2 1 1000 1000"  # pid 2 under our init, uid/gid 1000
    assert caps == "0000000000000000 0000000000000000 0000000000000000 1"
    assert "work" not in top and "home" not in top and "root" in top  # root: only the Python
    assert procs == "['1', '2']"  # the host's processes are not there


# --------------------------------------------------------------------------------------------
# one hostile program per limit


def test_fork_bomb_is_contained():
    token = _token()
    src = _reexec_with(token) + (
        "blocked = False\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError as e:\n"
        "        if not blocked:\n"
        "            blocked = True\n"
        "            n = sum(p.isdigit() for p in os.listdir('/proc'))\n"
        "            print(f'{e.strerror} with {n} processes', flush=True)\n"
    )
    t0 = time.monotonic()
    r = run_python(src, limits=HOSTILE)
    assert r.status == "timeout" and r.reason == "timeout after 2.0s", r
    assert time.monotonic() - t0 < 6
    lines = r.stdout.splitlines()
    assert lines and all(x.startswith("Resource temporarily unavailable with") for x in lines)
    # at most max_procs processes of the program, plus the sandbox's init
    assert max(int(x.split()[-2]) for x in lines) <= HOSTILE.max_procs + 1
    assert _gone(token), "fork bomb processes outlived the run"


def test_infinite_loop_times_out_and_is_killed():
    token = _token()
    t0 = time.monotonic()
    r = run_python(_reexec_with(token) + "print('spinning', flush=True)\nwhile True:\n    pass\n",
                   limits=Limits(timeout_s=1.0, isolation="namespaces"))
    assert time.monotonic() - t0 < 4
    assert (r.status, r.returncode, r.reason) == ("timeout", None, "timeout after 1.0s")
    assert r.stdout == "spinning\n"
    assert _gone(token)


def test_ten_gigabyte_allocation_fails_with_memory_reason():
    r = run_python("b = bytearray(10 * 1024**3)\nprint('allocated')", limits=HOSTILE)
    assert (r.status, r.returncode) == ("failed", 1), r
    assert "allocated" not in r.stdout
    assert r.reason == "exit 1: MemoryError (memory limit of 256 MB)"


def test_write_outside_the_sandbox_is_denied(tmp_path):
    token = _token()
    # the checkout, /etc, the host's /tmp, and a home directory that is never under /tmp
    targets = [ROOT / f"{token}.txt", Path("/etc") / f"{token}.txt", tmp_path / f"{token}.txt", Path("/root") / f"{token}.txt"]
    src = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('pwned')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('denied', path, e.strerror)\n"
        f"open({str(targets[1])!r}, 'w').write('pwned')\n"
    )
    try:
        r = run_python(src, limits=HOSTILE)
        lines = r.stdout.splitlines()
        # a checkout under /tmp (as a CI clone may be) lands in the sandbox's private /tmp
        in_tmp = ROOT.resolve().is_relative_to("/tmp")
        assert lines[0] == (f"wrote {targets[0]}" if in_tmp else f"denied {targets[0]} Read-only file system")
        assert lines[1] == f"denied {targets[1]} Read-only file system"
        assert lines[2] == f"wrote {targets[2]}"  # into the sandbox's private /tmp only
        assert lines[3] == f"denied {targets[3]} Read-only file system"
        assert r.status == "failed", r
        assert r.reason.startswith("exit 1: OSError: [Errno 30] Read-only file system")
        assert r.reason.endswith("(write outside the sandbox's /tmp denied)")
        for t in targets:
            assert not t.exists(), f"{t} was written from inside the sandbox"
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


def test_no_network_and_no_host_sockets(tmp_path):
    abstract = "\0" + _token()
    path = str(tmp_path / "s.sock")
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix, \
            socket.socket(socket.AF_UNIX) as abst:
        tcp.bind(("127.0.0.1", 0))
        unix.bind(path)
        abst.bind(abstract)
        for s in (tcp, unix, abst):
            s.listen(4)
        port = tcp.getsockname()[1]
        src = (
            "import socket\n"
            "def attempt(name, family, addr):\n"
            "    try:\n"
            "        with socket.socket(family) as s:\n"
            "            s.settimeout(1)\n"
            "            s.connect(addr)\n"
            "        print(name, 'connected')\n"
            "    except OSError as e:\n"
            "        print(name, type(e).__name__)\n"
            f"attempt('unix', socket.AF_UNIX, {path!r})\n"
            f"attempt('abstract', socket.AF_UNIX, {abstract!r})\n"
            "attempt('internet', socket.AF_INET, ('1.1.1.1', 53))\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        )
        r = run_python(src, limits=HOSTILE)
        ready, _, _ = select.select([tcp, unix, abst], [], [], 0.3)
    assert ready == [], "a connection from the sandbox reached the host"
    assert r.stdout.splitlines() == ["unix FileNotFoundError", "abstract ConnectionRefusedError",
                                     "internet OSError"]
    assert r.status == "failed", r
    assert r.reason == ("exit 1: OSError: [Errno 101] Network is unreachable "
                        "(no network in the sandbox)")


def test_signalling_the_parent_reaches_nothing_outside():
    sibling = subprocess.Popen(["sleep", "30"])
    try:
        src = (
            "import os, signal\n"
            "def kill(name, pid):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        print(name, 'sent')\n"
            "    except OSError as e:\n"
            "        print(name, type(e).__name__)\n"
            "kill('parent', os.getppid())\n"
            "kill('init', 1)\n"
            "kill('everyone', -1)\n"
            f"kill('test', {os.getpid()})\n"
            f"kill('sibling', {sibling.pid})\n"
            "print('alive', flush=True)\n"
            "os.kill(0, signal.SIGKILL)  # its own process group: itself\n"
        )
        r = run_python(src, limits=HOSTILE)
        assert r.stdout.splitlines() == [
            "parent PermissionError",  # the sandbox's init, owned by its root
            "init PermissionError",
            "everyone ProcessLookupError",  # nobody else in the pid namespace
            "test ProcessLookupError",  # host pids do not exist in there
            "sibling ProcessLookupError",
            "alive",
        ]
        assert (r.status, r.returncode, r.reason) == ("killed", -9, "killed by SIGKILL")
        time.sleep(0.1)
        assert sibling.poll() is None, "the sibling process was killed"
    finally:
        sibling.kill()
        sibling.wait()


def _daemon_program(token: str, marker: Path) -> str:
    code = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w').write('x')"
    return (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        null = os.open('/dev/null', os.O_RDWR)\n"
        "        for fd in (0, 1, 2):\n"
        "            os.dup2(null, fd)\n"
        f"        argv = [sys.executable, '-I', '-S', '-c', {code!r}, {token!r}]\n"
        "        os.execv(sys.executable, argv)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "print('daemon started', flush=True)\n"
        "while True:\n"
        "    pass\n"
    )


def check_daemon_dies_at_the_timeout(folder: Path, isolation: str) -> None:
    """A setsid() daemon started by a looping program is gone at the program's timeout and
    never wakes up to write its marker (shared with the rlimits fallback's tests)."""
    token, marker = _token(), folder / "marker"
    t0 = time.monotonic()
    r = run_python(_daemon_program(token, marker), limits=Limits(timeout_s=1.0, isolation=isolation))
    assert r.status == "timeout" and r.stdout == "daemon started\n", r
    assert _gone(token, within_s=0.5), "the setsid() daemon survived the timeout"
    time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))  # past the daemon's wake-up
    assert not marker.exists()


def test_daemon_does_not_outlive_the_timeout(tmp_path):
    check_daemon_dies_at_the_timeout(tmp_path, "namespaces")


def test_ctypes_calls_are_contained():
    src = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def call(name, *args):\n"
        "    ret = getattr(libc, name)(*args)\n"
        "    print(name, ret, ctypes.get_errno(), flush=True)\n"
        "call('setuid', 0)\n"
        "call('kill', 1, 9)\n"
        "call('unshare', 0x10000000)  # a nested user namespace\n"
        "call('mount', b'none', b'/usr', b'tmpfs', 0, None)\n"
        "ctypes.string_at(0)  # read address 0\n"
    )
    r = run_python(src, limits=HOSTILE)
    assert r.stdout.splitlines() == [
        "setuid -1 1",  # EPERM
        "kill -1 1",
        "unshare -1 28",  # ENOSPC: user.max_user_namespaces is 0 inside
        "mount -1 1",
    ]
    assert (r.status, r.returncode) == ("killed", -11), r
    assert r.reason.startswith("killed by SIGSEGV")


# --------------------------------------------------------------------------------------------
# output, fallback and the run going on


def test_output_is_capped():
    r = run_python("import sys\nsys.stdout.write('x' * 1_000_000)\nprint('done', file=sys.stderr)",
                   limits=Limits(max_output_bytes=1000, isolation="namespaces"))
    assert (r.status, r.stdout, r.stderr) == ("ok", "x" * 1000, "done\n")
    assert r.output_truncated


def test_rlimits_fallback_is_recorded():
    r = run_python("print('hi')", limits=Limits(isolation="rlimits"))
    assert (r.status, r.stdout) == ("ok", "hi\n")
    assert r.isolation.startswith("rlimits only (isolation='rlimits' requested)")
    with pytest.raises(ValueError, match="isolation"):
        Limits(isolation="none")


@pytest.mark.skipif(not Path("/usr/bin/unshare").exists(), reason="needs util-linux unshare")
def test_falls_back_with_a_reason_where_namespaces_are_refused():
    # a user namespace whose own limit on nested user namespaces is 0: unshare() fails there;
    # only its root is mapped, so the fallback has no unprivileged uid to run the program as
    code = ("from assay.scoring.sandbox import run_python, Limits\n"
            "import warnings; warnings.simplefilter('ignore')\n"
            "print(repr(run_python('print(1)')))\n"
            "print(repr(run_python('print(1)', limits=Limits(isolation='namespaces'))))\n"
            "print(repr(run_python('print(1)', limits=Limits(isolation='off'))))\n")
    p = subprocess.run(
        ["/usr/bin/unshare", "--user", "--map-root-user", "sh", "-c",
         'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c "$1"', sys.executable,
         code], capture_output=True, text=True, timeout=60)
    if p.returncode != 0 and "unshare" in p.stderr:
        pytest.skip(f"cannot make a user namespace to test in: {p.stderr.strip()}")
    auto, required, off = p.stdout.splitlines()
    assert "status='error'" in auto and "stdout=''" in auto  # never as root: refused
    assert ("refused to run the program as root without namespaces: uid 65534 does not exist "
            "in this user namespace") in auto
    assert "isolation='rlimits only (namespaces unavailable: unshare: No space left" in auto
    assert "status='ok'" in off and "stdout='1\\n'" in off  # knowingly unsandboxed
    assert "isolation='off (unsandboxed, as requested; uid 0" in off
    assert "status='error'" in required
    assert "namespaces unavailable: unshare: No space left on device" in required


def test_run_many_goes_on_past_hostile_programs():
    programs = {
        "good0": "print('good 0')",
        "loop": "while True:\n    pass",
        "memory": "b = bytearray(10 * 1024**3)",
        "good1": "print('good 1')",
        "segfault": "import ctypes\nctypes.string_at(0)",
        "etc": "open('/etc/passwd', 'a').write('x')",
        "bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                "        pass",
        "good2": "print('good 2')",
    }
    t0 = time.monotonic()
    res = dict(zip(programs, run_many(list(programs.values()), workers=2,
                                      limits=Limits(timeout_s=1.5, cpu_s=2, memory_mb=256,
                                                    max_procs=8, isolation="namespaces"))))
    assert time.monotonic() - t0 < 20
    for i in range(3):
        assert (res[f"good{i}"].status, res[f"good{i}"].stdout) == ("ok", f"good {i}\n")
    assert (res["loop"].status, res["loop"].reason) == ("timeout", "timeout after 1.5s")
    assert res["memory"].reason == "exit 1: MemoryError (memory limit of 256 MB)"
    assert res["segfault"].reason.startswith("killed by SIGSEGV")
    assert res["etc"].reason == ("exit 1: PermissionError: [Errno 13] Permission denied: "
                                 "'/etc/passwd' (not permitted in the sandbox)")
    assert res["bomb"].status == "timeout"


def test_check_many_records_hostile_answers_as_failures():
    test = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    answers = {
        "good": "```python\ndef add(a, b):\n    return a + b\n```",
        "writes_etc": "```python\ndef add(a, b):\n    open('/etc/assay-pwned', 'w').write('x')\n"
                      "    return a + b\n```",
        "kills_parent": "```python\nimport os, signal\n\ndef add(a, b):\n"
                        "    os.kill(os.getppid(), signal.SIGKILL)\n    return a + b\n```",
        "hangs": "```python\ndef add(a, b):\n    while True:\n        pass\n```",
    }
    jobs = [("function", dict(answer=a, test=test, entry_point="add")) for a in answers.values()]
    verdicts = dict(zip(answers, check_many(
        jobs, limits=Limits(timeout_s=1.5, isolation="namespaces"), workers=2)))
    assert verdicts["good"].passed and verdicts["good"].reason == "passed"
    v = verdicts["writes_etc"]
    assert (v.passed, v.status) == (False, "failed")
    assert "Read-only file system" in v.reason and "denied" in v.reason
    assert not Path("/etc/assay-pwned").exists()
    v = verdicts["kills_parent"]
    assert (v.passed, v.status) == (False, "failed")
    assert v.reason == ("exit 1: PermissionError: [Errno 1] Operation not permitted "
                        "(not permitted in the sandbox)")
    v = verdicts["hangs"]
    assert (v.passed, v.status, v.reason) == (False, "timeout", "timeout after 1.5s")
