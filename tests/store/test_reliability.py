"""A run folder you can trust (issue 13): nothing computed is lost or overwritten, results
always describe what produced them, and every failure of the folder itself (locked, corrupt,
read-only, full) is one line saying what to do.

Most tests use the ``replay`` backend (answers from a file, no model to load) on the
built-in core suite, through the real ``assay`` command; the lock test races two real
llama.cpp runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DATA, run_cli

pytestmark = pytest.mark.usefixtures("data_dir")

ANSWERS = [
    {"task": "core_qa", "id": "qa-001", "answer": "1742"},
    {"task": "core_qa", "id": "qa-002", "answer": "no idea"},
    {"task": "core_qa", "id": "qa-003", "answer": "Paris"},
    {"task": "core_sentiment", "id": "cls-001", "prompt": "ask", "answer": "positive"},
    {"task": "core_sentiment", "id": "cls-002", "prompt": "ask", "answer": "negative"},
]


def _answers(tmp: Path, rows: list[dict] = ANSWERS) -> Path:
    path = tmp / "answers.jsonl"
    path.write_text("".join(json.dumps({**r, "model": "demo"}) + "\n" for r in rows), encoding="utf-8")
    return path


def _replay_run(tmp: Path, out: Path, tasks: str = "core_qa,core_sentiment", *extra: str) -> subprocess.CompletedProcess:
    return run_cli("run", "-m", f"replay:{_answers(tmp)},model=demo", "-t", tasks, "-o", str(out), *extra)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("assay: error:")]
    assert len(err) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in err[0], (n, err[0])
    return err[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".assay.lock"}


@pytest.fixture()
def good_run(tmp_path) -> Path:
    out = tmp_path / "run"
    proc = _replay_run(tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "results.json").is_file() and (out / "report.html").is_file()
    return out


# -- lost or overwritten results --------------------------------------------------------------


def test_score_refuses_an_empty_store_and_keeps_every_file(good_run):
    files = {k: v for k, v in _snapshot(good_run).items() if not k.startswith("store.sqlite")}
    (good_run / "store.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (good_run / f"store.sqlite{suffix}").unlink(missing_ok=True)
    (good_run / "store.sqlite").write_bytes(b"")
    _one_line_error(run_cli("score", str(good_run)), "store.sqlite", "nothing to score")
    after = {k: v for k, v in _snapshot(good_run).items() if not k.startswith("store.sqlite")}
    assert after == files


def test_score_refuses_a_store_without_responses_for_its_models(good_run):
    files = {k: v for k, v in _snapshot(good_run).items() if not k.startswith("store.sqlite")}
    with sqlite3.connect(good_run / "store.sqlite") as db:
        db.execute("DELETE FROM responses")
    _one_line_error(run_cli("score", str(good_run)), "no responses for its models (demo)", "left as it was")
    after = {k: v for k, v in _snapshot(good_run).items() if not k.startswith("store.sqlite")}
    assert after == files


def test_a_rerun_that_fails_early_changes_nothing_stored(tmp_path, good_run):
    before = json.loads((good_run / "results.json").read_text())
    with sqlite3.connect(good_run / "store.sqlite") as db:
        config_before = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
    bad = run_cli("run", "-m", f"replay:{_answers(tmp_path)},model=demo,bogus=1", "-t", "core_qa", "--limit", "2", "-o", str(good_run))
    _one_line_error(bad, "bogus")
    with sqlite3.connect(good_run / "store.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0] == config_before
    assert run_cli("score", str(good_run)).returncode == 0
    after = json.loads((good_run / "results.json").read_text())
    assert after["config"] == before["config"] and after["config"]["limit"] is None
    assert after["results"] == before["results"]


def test_a_failed_run_into_a_new_folder_leaves_no_folder(tmp_path):
    out = tmp_path / "never"
    _one_line_error(run_cli("run", "-m", f"replay:{_answers(tmp_path)},model=demo,bogus=1", "-t", "core_qa", "-o", str(out)), "bogus")
    assert not out.exists()


def test_a_rerun_with_fewer_tasks_reports_only_its_own_tasks(tmp_path, good_run):
    with sqlite3.connect(good_run / "store.sqlite") as db:
        n = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    fewer = _replay_run(tmp_path, good_run, "core_qa")
    assert fewer.returncode == 0, fewer.stderr
    assert "other settings" in fewer.stderr
    doc = json.loads((good_run / "results.json").read_text())
    assert set(doc["results"]["demo"]) == {"core_qa"} and set(doc["tasks"]) == {"core_qa"}
    assert doc["config"]["tasks"] == ["core_qa"]
    # the earlier task's responses are kept: the earlier command computes nothing again
    with sqlite3.connect(good_run / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == n
    again = _replay_run(tmp_path, good_run)
    assert again.returncode == 0 and "0 to compute" in again.stderr, again.stderr
    assert set(json.loads((good_run / "results.json").read_text())["results"]["demo"]) == {"core_qa", "core_sentiment"}


def test_interrupted_write_leftovers_are_removed_at_the_next_run(tmp_path, good_run):
    left = [good_run / ".results.json.k2j4h1x_.tmp", good_run / "samples" / "demo" / ".core_qa.jsonl.abc123.tmp"]
    for p in left:
        p.write_text('{"half": ')
    proc = _replay_run(tmp_path, good_run)
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in left)
    assert all(str(p) in proc.stderr for p in left)
    assert not list(good_run.rglob("*.tmp"))


def test_a_locked_run_folder_is_refused_with_the_holders_pid(tmp_path, good_run):
    from assay.store.lock import run_lock

    before = _snapshot(good_run)
    with run_lock(good_run, exclusive=True, command="run"):
        err = _one_line_error(_replay_run(tmp_path, good_run), "in use by assay run", f"pid {os.getpid()}")
        assert "--output" in err
        _one_line_error(run_cli("score", str(good_run)), "being written by", f"pid {os.getpid()}")
        _one_line_error(run_cli("report", str(good_run)), "being written by")
    assert _snapshot(good_run) == before
    # readers share: a score while a report reads is fine
    with run_lock(good_run, exclusive=False, command="report"):
        assert run_cli("score", str(good_run)).returncode == 0


@pytest.mark.llamacpp
def test_two_runs_into_one_folder_at_once(tmp_path):
    """The reported race: --limit 40 and --limit 10 into one folder. The second is refused
    while the first runs; the first's results are its own."""
    out = tmp_path / "race"
    env = {**os.environ, "ASSAY_DATA_DIR": str(DATA)}
    first_args = ["run", "-m", "smollm2-135m-instruct,n_threads=1", "-t", "xcopa_it", "--prompt", "lmeval", "--limit", "40", "-b", "2", "-o", str(out)]
    first = subprocess.Popen([sys.executable, "-m", "assay.cli", *first_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / ".assay.lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.is_file() and str(first.pid) in lock.read_text() and (out / "store.sqlite").is_file()):
        time.sleep(0.1)
    second = run_cli("run", "-m", "smollm2-135m-instruct,n_threads=1", "-t", "xcopa_it", "--prompt", "lmeval", "--limit", "10", "-o", str(out))
    assert first.poll() is None, "the first run ended before the second started"
    _one_line_error(second, "in use by assay run", f"pid {first.pid}")
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert "80 to compute" in stderr and "computed 80 requests" in stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["limit"] == 40
    assert doc["results"]["smollm2-135m-instruct"]["xcopa_it"]["n_items"] == 40


# -- a store that is damaged, read-only or full --------------------------------------------------


def test_a_store_of_garbage_says_corrupt_and_what_to_do(tmp_path, good_run):
    (good_run / "store.sqlite").write_bytes(os.urandom(8192))
    for suffix in ("-wal", "-shm"):
        (good_run / f"store.sqlite{suffix}").unlink(missing_ok=True)
    for proc in (run_cli("score", str(good_run)), _replay_run(tmp_path, good_run)):
        _one_line_error(proc, "store.sqlite", "corrupt", "move it aside")


def test_a_half_truncated_store_says_corrupt(tmp_path):
    out = tmp_path / "run"
    rows = [{"task": "core_qa", "id": f"qa-{i:03d}", "answer": "x" * 3000} for i in range(1, 41)]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_cli("run", "-m", f"replay:{path}", "-t", "core_qa", "-o", str(out)).returncode == 0
    store = out / "store.sqlite"
    assert not (out / "store.sqlite-wal").exists() or (out / "store.sqlite-wal").stat().st_size == 0
    data = store.read_bytes()
    assert len(data) > 64 * 1024
    store.write_bytes(data[: len(data) // 2])
    _one_line_error(run_cli("score", str(out)), "store.sqlite", "corrupt", "move it aside")


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def _in_mount_namespace(setup: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` in a private mount namespace after the shell commands ``setup``: the
    mounts never reach the rest of the machine."""
    script = f"set -e; {setup}; exec \"$@\""
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "ASSAY_DATA_DIR": str(DATA), "COLUMNS": "200"},
    )


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare(1) for a private read-only mount")
def test_a_read_only_run_folder_scores_into_another_folder(tmp_path, good_run):
    before = _snapshot(good_run)
    ro = f"mount --bind {good_run} {good_run}; mount -o remount,bind,ro {good_run}"
    cli = [sys.executable, "-m", "assay.cli"]
    refused = _in_mount_namespace(ro, [*cli, "score", str(good_run)])
    _one_line_error(refused, "results.json", "-o DIR")
    elsewhere = tmp_path / "scored"
    ok = _in_mount_namespace(ro, [*cli, "score", str(good_run), "-o", str(elsewhere)])
    assert ok.returncode == 0, ok.stderr
    assert _snapshot(good_run) == before
    a, b = (json.loads((d / "results.json").read_text()) for d in (good_run, elsewhere))
    assert a["results"] == b["results"]
    assert (elsewhere / "samples" / "demo" / "core_qa.jsonl").read_bytes() == (good_run / "samples" / "demo" / "core_qa.jsonl").read_bytes()
    assert (elsewhere / "report.html").is_file()


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare(1) for a private tmpfs")
def test_a_full_disk_is_one_line_and_the_same_command_finishes_later(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    rows = [{"task": "core_qa", "id": f"qa-{i:03d}", "answer": "y" * 4000} for i in range(1, 41)]
    answers = tmp_path / "big.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = disk / "run"
    cli = f"{sys.executable} -m assay.cli run -m replay:{answers} -t core_qa -o {out}"
    # 192 KiB: room for the store and the instances, not for 40 answers of 4 KB; then the
    # same disk grows (a tmpfs remount) and the same command runs again
    script = (
        f"mount -t tmpfs -o size=192k tmpfs {disk}; "
        f"if {cli} >/dev/null 2>{tmp_path}/full.err; then echo 0; else echo $?; fi >{tmp_path}/full.rc; "
        f"mount -o remount,size=16m {disk}; "
        f"if {cli} >/dev/null 2>{tmp_path}/roomy.err; then echo 0; else echo $?; fi >{tmp_path}/roomy.rc; "
        f"cp {out}/results.json {tmp_path}/roomy.json"
    )
    done = _in_mount_namespace(script, ["true"])
    assert done.returncode == 0, done.stderr
    full = subprocess.CompletedProcess([], int((tmp_path / "full.rc").read_text()), "", (tmp_path / "full.err").read_text())
    err = _one_line_error(full, "disk is full", "free some space", "run the same command again")
    assert str(out) in err
    assert (tmp_path / "roomy.rc").read_text().strip() == "0", (tmp_path / "roomy.err").read_text()
    clean = run_cli("run", "-m", f"replay:{answers}", "-t", "core_qa", "-o", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    roomy = json.loads((tmp_path / "roomy.json").read_text())
    assert roomy["results"] == json.loads((tmp_path / "clean" / "results.json").read_text())["results"]
    assert roomy["results"]["big.jsonl"]["core_qa"]["n_items"] == 40


# -- other bad input ---------------------------------------------------------------------------


def test_a_results_file_that_is_a_list(good_run):
    (good_run / "results.json").write_text("[]")
    for proc in (run_cli("report", str(good_run)), run_cli("export", "model-index", str(good_run))):
        _one_line_error(proc, "results.json", "not an assay results file", "assay score")


def test_replay_answers_that_match_nothing_exit_non_zero(tmp_path):
    rows = [{"task": "core_qq", "id": "qa-001", "answer": "1742"}, {"task": "core_qa", "id": "nope-9", "answer": "x"}]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    err = _one_line_error(run_cli("run", "-m", f"replay:{path}", "-t", "core_qa", "-o", str(out)), "none of the answers", "core_qq", "nope-9")
    assert "tasks not in this run: core_qq" in err
    assert not out.exists()


def test_replay_answers_that_match_nothing_are_counted_and_listed(tmp_path):
    rows = ANSWERS + [{"task": "core_qq", "id": "qa-001", "answer": "1742"}, {"task": "core_qa", "id": "nope-9", "answer": "x"}]
    proc = run_cli("run", "-m", f"replay:{_answers(tmp_path, rows)},model=demo", "-t", "core_qa,core_sentiment", "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "2 answer(s) of demo match no item of this run" in proc.stderr
    assert "task core_qq id qa-001" in proc.stderr and "task core_qa id nope-9" in proc.stderr
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert doc["results"]["demo"]["core_qa"]["n_items"] == 3


@pytest.mark.llamacpp
def test_sigterm_is_an_interrupt_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "term"
    args = ["run", "-m", "smollm2-135m-instruct,n_threads=1", "-t", "xcopa_it", "--prompt", "lmeval", "--limit", "30", "-b", "1", "-o", str(out)]
    env = {**os.environ, "ASSAY_DATA_DIR": str(DATA)}
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = out / "store.sqlite"
    deadline = time.time() + 300
    n = 0
    while time.time() < deadline and proc.poll() is None and n < 6:
        time.sleep(0.2)
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
                n = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.Error:
            n = 0
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "already stored" in resumed.stderr
    with sqlite3.connect(store) as db:
        counts = {c for (c,) in db.execute("SELECT COUNT(*) FROM compute_log GROUP BY model_fp, req_key")}
    assert counts == {1}
