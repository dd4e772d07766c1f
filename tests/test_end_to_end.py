"""The whole pipeline through the real `assay` command, with the embedded SmolLM2 (llama.cpp)
on slices of real data and of the built-in core suite."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import kill_assay_when, run_cli

pytestmark = [pytest.mark.llamacpp, pytest.mark.usefixtures("data_dir")]

TASKS = "xcopa_it,copa,core_sentiment,core_topic_choice,core_qa,core_code,core_ner"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("run") / "r"
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", TASKS, "--limit", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_run_writes_results_samples_and_leaderboard(small_run):
    out, proc = small_run
    doc = json.loads((out / "results.json").read_text())
    label = "smollm2-135m-instruct"
    assert set(doc["results"][label]) == set(TASKS.split(","))
    model = doc["models"][label]
    assert model["backend"] == "llamacpp" and len(model["fingerprint"]) == 24
    assert model["args"]["sha256"] and "llama_cpp_python" in doc["environment"]
    for task, res in doc["results"][label].items():
        info = doc["tasks"][task]
        assert info["hash"] and info["dataset"]["revision"], task
        assert all(p["hash"] for p in info["prompts"].values())
        assert info["chat_format"][label], task
        primary = res["metrics"][res["primary"]]
        assert 0.0 <= primary["value"] <= 1.0, (task, primary)
        assert primary["stderr"] is not None, task
        assert res["n_items"] >= 4 and res["n_incomplete"] == 0
    # XCOPA is plain text (multiple choice); generation tasks use SmolLM2's chat template
    assert doc["tasks"]["xcopa_it"]["chat_format"][label]["lmeval"]["name"] == "none"
    assert doc["tasks"]["core_qa"]["chat_format"][label]["passage"]["name"] == "model"
    xcopa = doc["groups"][label]["xcopa"]
    acc = xcopa["metrics"]["acc"]
    assert xcopa["primary"] == "acc" and acc["n_tasks"] == 1 and acc["by_language"] == {"it": doc["results"][label]["xcopa_it"]["metrics"]["acc"]["value"]}
    # per-sample files: prompt, raw response, extracted answer, target, verdict
    rows = [json.loads(line) for line in (out / "samples" / label / "core_qa.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert r["prompt"].startswith("<|im_start|>") and "Question:" in r["prompt"]
        assert isinstance(r["response"], str) and r["verdict"] in ("correct", "partial", "wrong")
        assert isinstance(r["target"], list) and r["extracted"] is not None
    code = [json.loads(line) for line in (out / "samples" / label / "core_code.jsonl").read_text().splitlines()]
    assert all("exec" in r for r in code)
    assert "assay leaderboard" in proc.stdout and "xcopa_it" in proc.stdout


def test_rerun_computes_nothing_and_score_reproduces(small_run):
    out, _ = small_run
    before = json.loads((out / "results.json").read_text())
    proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", TASKS, "--limit", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "0 to compute" in proc.stderr
    proc = run_cli("score", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "scoring with the task definitions stored when the run was made" in proc.stderr
    after = json.loads((out / "results.json").read_text())
    assert after["results"] == before["results"]


def test_default_run_folder_is_stable(tmp_path):
    # the same command twice resumes in the same folder (no --output)
    args = ("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_it", "--limit", "2", "--prompt", "lmeval")
    first = run_cli(*args, cwd=tmp_path)
    second = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and "4 already stored, 0 to compute" in second.stderr


def _count(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_midway_then_resume_computes_each_request_once(tmp_path):
    args = ["run", "-m", "smollm2-135m-instruct", "-t", "xcopa_it,xcopa_id", "--limit", "30", "-b", "1", "--prompt", "lmeval"]
    killed = tmp_path / "killed"
    store = killed / "store.sqlite"
    kill_assay_when([*args, "-o", str(killed)], lambda: _count(store) >= 25, poll=0.2)
    n_before = _count(store)
    assert 25 <= n_before < 120
    assert not (killed / "results.json").exists()

    resumed = run_cli(*args, "-o", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n_before} already stored, {120 - n_before} to compute" in resumed.stderr

    with sqlite3.connect(store) as db:
        per_key = db.execute("SELECT COUNT(*) FROM compute_log GROUP BY model_fp, req_key").fetchall()
        sessions = db.execute("SELECT COUNT(DISTINCT session) FROM compute_log").fetchone()[0]
    assert len(per_key) == 120 and {c for (c,) in per_key} == {1}
    assert sessions == 2

    clean = run_cli(*args, "-o", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    a = json.loads((killed / "results.json").read_text())["results"]
    b = json.loads((tmp_path / "clean" / "results.json").read_text())["results"]
    assert a == b


def test_batch_size_does_not_change_llamacpp_scores(tmp_path):
    outs = {}
    for bs in ("1", "16"):
        proc = run_cli("run", "-m", "smollm2-135m-instruct", "-t", "xcopa_zh", "--limit", "20", "-b", bs, "-o", str(tmp_path / bs))
        assert proc.returncode == 0, proc.stderr
        outs[bs] = [json.loads(line) for line in (tmp_path / bs / "samples" / "smollm2-135m-instruct" / "xcopa_zh.jsonl").read_text().splitlines()]
    for a, b in zip(outs["1"], outs["16"], strict=True):
        assert a["extracted"] == b["extracted"]
        assert max(abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"])) < 1e-4
