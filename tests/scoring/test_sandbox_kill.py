"""The sandbox when assay itself dies, and the ``--sandbox`` setting of a real run.

A replayed code task (no model) whose answers start programs that never end, one of them a
``setsid()`` daemon; ``assay run`` is killed while they run. No sandboxed process may outlive
it, with namespaces and in the rlimits fallback (forced with ASSAY_SANDBOX_NO_NAMESPACES,
which makes the helper behave as if ``unshare()`` were refused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from assay.scoring.sandbox import sandbox_features
from conftest import DATA, run_cli

from test_sandbox import _gone, _host_procs


@pytest.fixture(scope="module", autouse=True)
def namespaces():
    if not sandbox_features()["namespaces"]:
        pytest.skip("no namespace isolation here")


def _forever(token: str) -> str:
    """An answer to core_code whose program execs into a sleeper and leaves a setsid()
    daemon behind, both with ``token`` in their command line."""
    sleeper = "import time\nwhile True: time.sleep(0.05)"
    return (
        "```python\n"
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv(sys.executable, [sys.executable, '-S', '-c', {sleeper!r}, {token + '-daemon'!r}])\n"
        f"os.execv(sys.executable, [sys.executable, '-S', '-c', {sleeper!r}, {token!r}])\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "```"
    )


def _answers(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"task": "core_code", "id": i, "answer": a}) + "\n"
                            for i, a in rows), encoding="utf-8")
    return path


def _env(fallback: bool) -> dict[str, str]:
    env = {**os.environ, "ASSAY_DATA_DIR": str(DATA), "COLUMNS": "200"}
    env.pop("ASSAY_SANDBOX_NO_NAMESPACES", None)
    if fallback:
        env["ASSAY_SANDBOX_NO_NAMESPACES"] = "1"
    return env


@pytest.mark.parametrize("fallback", [False, True], ids=["namespaces", "rlimits-fallback"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_no_sandboxed_program_outlives_a_killed_assay(tmp_path, data_dir, sig, fallback):
    token = "assay-test-" + uuid.uuid4().hex[:12]
    answers = _answers(tmp_path / "a.jsonl", [("code-001", _forever(token)),
                                              ("code-002", _forever(token))])
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay.cli", "run", "-m", f"replay:{answers}", "-t", "core_code",
         "-o", str(tmp_path / "run")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(fallback))
    try:
        deadline = time.monotonic() + 60
        # both programs and at least one daemon run (the sandbox's own timeout is 10 s)
        while len(_host_procs(token)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the programs never started"
            time.sleep(0.05)
        running = _host_procs(token)
        proc.send_signal(sig)
        # killed, or (SIGINT, a SIGTERM handler) ended at once as interrupted (128 + signal):
        # not after the running programs' 10 s timeout
        assert proc.wait(timeout=5) in (-sig, 128 + sig)
        assert _gone(token, within_s=2.0), (
            f"sandboxed processes outlived assay: {_host_procs(token)} (of {running})")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
        for pid in _host_procs(token):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # gone with another (the sandbox's init)
                pass


def _never_ending(token: str) -> str:
    return f"```python\nimport time\nwhile True:\n    time.sleep(1)  # {token}\n```"


def test_sandbox_is_recorded_per_run_and_per_sample_and_in_the_report(tmp_path, data_dir):
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    answers = _answers(tmp_path / "a.jsonl", [("code-001", good)])
    run = tmp_path / "run"
    p = run_cli("run", "-m", f"replay:{answers}", "-t", "core_code", "-o", str(run),
                "--sandbox", "strict")
    assert p.returncode == 0, p.stderr
    doc = json.loads((run / "results.json").read_text())
    assert doc["sandbox"] == {"mode": "strict", "isolation": ["namespaces"]}
    assert doc["results"]["a.jsonl"]["core_code"]["sandbox"] == {
        "mode": "strict", "isolation": ["namespaces"]}
    (sample,) = map(json.loads, (run / "samples" / "a.jsonl" / "core_code.jsonl").open())
    assert (sample["exec"], sample["sandbox"]) == ("passed", "namespaces")
    html = (run / "report.html").read_text()
    md = (run / "report.md").read_text()
    assert "code sandbox" in html and "strict: namespaces" in html
    assert "strict: namespaces" in md

    # re-scored in the fallback: the run's record says what was used, and why
    env = _env(fallback=True)
    p = subprocess.run([sys.executable, "-m", "assay.cli", "score", str(run), "--sandbox", "auto"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads((run / "results.json").read_text())
    used = ("rlimits only (namespaces unavailable: ASSAY_SANDBOX_NO_NAMESPACES is set); "
            "uid 65534")
    assert doc["sandbox"] == {"mode": "auto", "isolation": [used]}
    (sample,) = map(json.loads, (run / "samples" / "a.jsonl" / "core_code.jsonl").open())
    assert (sample["exec"], sample["sandbox"]) == ("passed", used)
    assert f"auto: {used}" in (run / "report.md").read_text()

    p = run_cli("score", str(run), "--sandbox", "off")
    assert p.returncode == 0, p.stderr
    doc = json.loads((run / "results.json").read_text())
    assert doc["sandbox"]["mode"] == "off"
    assert doc["sandbox"]["isolation"][0].startswith("off (unsandboxed, as requested")


def test_strict_refuses_without_namespaces_before_any_model_loads(tmp_path, data_dir):
    answers = _answers(tmp_path / "a.jsonl", [("code-001", "```python\nprint(1)\n```")])
    for cmd in (["run", "-m", f"replay:{answers}", "-t", "core_code", "-o", str(tmp_path / "r")],):
        p = subprocess.run([sys.executable, "-m", "assay.cli", *cmd, "--sandbox", "strict"],
                           capture_output=True, text=True, env=_env(fallback=True), timeout=120)
        assert p.returncode == 2, p.stderr
        assert p.stderr.strip().splitlines() == [
            "assay: error: --sandbox strict: kernel namespaces are unavailable here "
            "(ASSAY_SANDBOX_NO_NAMESPACES is set); use --sandbox auto for the rlimits fallback"]
        assert not (tmp_path / "r").exists()
