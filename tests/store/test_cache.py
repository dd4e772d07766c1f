"""The response cache shared by runs (issue 15): a response computed by one run is not
computed again by another; the run folder keeps its own copy; several runs share the cache at
once; a broken cache never stops a run; `assay cache info|prune` show and trim it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

from assay.results import read_results
from assay.store.cache import ResponseCache
from assay.store.runs import RunStore

SMOL = "smollm2-135m-instruct"


def _computed(run_dir) -> int:
    store = RunStore(run_dir, readonly=True)
    try:
        return sum(store.compute_counts().values())
    finally:
        store.close()


def _values(run_dir, model: str) -> dict[str, float]:
    return {t: r.metrics[r.primary].value for t, r in read_results(run_dir).results[model].items()}


def test_a_second_run_takes_what_the_first_computed(tmp_path):
    cache = tmp_path / "cache.sqlite"
    a = run_cli("run", "-m", "mock:m,seed=2", "-t", "core_sentiment_choice", "--limit", "5", "-o", str(tmp_path / "a"), "--cache", str(cache))
    assert a.returncode == 0, a.stderr
    n_a = _computed(tmp_path / "a")
    assert n_a == 10 and "to compute" in a.stderr
    both = run_cli("run", "-m", "mock:m,seed=2", "-t", "core_sentiment_choice,core_topic_choice", "--limit", "5",
                   "-o", str(tmp_path / "ab"), "--cache", str(cache))
    assert both.returncode == 0, both.stderr
    assert f"{n_a} from the response cache" in both.stderr
    # the second run computed only core_topic_choice's requests, and holds all of them
    store = RunStore(tmp_path / "ab", readonly=True)
    try:
        computed = {fp_key.split(" ")[1] for fp_key in store.compute_counts()}
        sentiment = {k for row in store.instances("m", "core_sentiment_choice") for k in row[3]}
        topic = {k for row in store.instances("m", "core_topic_choice") for k in row[3]}
        fp = store.models()[0][1]
        stored = set(store.results(fp, sentiment | topic))
    finally:
        store.close()
    assert computed == topic and len(sentiment) == n_a and stored == sentiment | topic
    assert _values(tmp_path / "ab", "m")["core_sentiment_choice"] == _values(tmp_path / "a", "m")["core_sentiment_choice"]
    # the folder is self-contained: with the cache gone it still re-scores
    cache.unlink()
    assert run_cli("score", str(tmp_path / "ab")).returncode == 0
    # --no-cache computes everything and writes no cache
    off = run_cli("run", "-m", "mock:m,seed=2", "-t", "core_sentiment_choice", "--limit", "5", "-o", str(tmp_path / "off"), "--no-cache")
    assert off.returncode == 0 and _computed(tmp_path / "off") == 10 and not cache.exists()


def test_sampled_requests_are_cached_by_seed_and_sample(tmp_path):
    """Generation with temperature: each sample is its own cached response."""
    cache = tmp_path / "c.sqlite"
    task = tmp_path / "t.yaml"
    task.write_text(
        "task: sampled\noutput_type: generate\n"
        "dataset: {local: {path: 'builtin:core/data/qa.jsonl'}, id_field: id}\ntarget: answers\n"
        "prompts: [{id: p, template: 'Q: {{ question }}\\nA:'}]\nmetrics: [f1]\n"
        "generation: {n: 3, temperature: 0.8, seed: 7, max_tokens: 8}\n"
    )
    for out in ("one", "two"):
        proc = run_cli("run", "-m", "mock:m", "-t", str(task), "--limit", "4", "-o", str(tmp_path / out), "--cache", str(cache))
        assert proc.returncode == 0, proc.stderr
    assert _computed(tmp_path / "one") == 12 and _computed(tmp_path / "two") == 0
    one = (tmp_path / "one" / "samples" / "m" / "sampled.jsonl").read_text()
    assert one == (tmp_path / "two" / "samples" / "m" / "sampled.jsonl").read_text()
    assert len({tuple(json.loads(line)["response"]) for line in one.splitlines()}) > 1


@pytest.mark.llamacpp
def test_two_real_runs_share_one_cache_at_once(tmp_path):
    """Two processes with the embedded model write the same cache at the same time: both
    finish, and their scores equal a run without any cache."""
    pytest.importorskip("llama_cpp")
    cache = tmp_path / "shared.sqlite"
    cmd = lambda out, task: [sys.executable, "-m", "assay.cli", "run", "-m", SMOL, "-t", task, "--limit", "8", "-o", str(tmp_path / out), "--cache", str(cache), "-q"]  # noqa: E731
    procs = [subprocess.Popen(cmd(o, t), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for o, t in (("x", "core_sentiment_choice,core_topic_choice"), ("y", "core_topic_choice,core_sentiment_choice"))]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
    ref = run_cli("run", "-m", SMOL, "-t", "core_sentiment_choice,core_topic_choice", "--limit", "8", "-o", str(tmp_path / "ref"), "--no-cache")
    assert ref.returncode == 0, ref.stderr
    want = _values(tmp_path / "ref", SMOL)
    assert _values(tmp_path / "x", SMOL) == want and _values(tmp_path / "y", SMOL) == want
    db = sqlite3.connect(cache)
    n = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    db.close()
    assert n == _computed(tmp_path / "ref")  # each response cached once, whoever computed it
    # a third run computes nothing
    third = run_cli("run", "-m", SMOL, "-t", "core_topic_choice", "--limit", "8", "-o", str(tmp_path / "z"), "--cache", str(cache))
    assert third.returncode == 0 and "0 to compute" in third.stderr and _computed(tmp_path / "z") == 0


def test_a_broken_cache_never_stops_a_run(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"not a database at all, " * 200)
    proc = run_cli("run", "-m", "mock:m", "-t", "core_sentiment_choice", "--limit", "3", "-o", str(tmp_path / "r"), "--cache", str(bad))
    assert proc.returncode == 0, proc.stderr
    assert "without the shared response cache" in proc.stderr and "Traceback" not in proc.stderr
    assert _computed(tmp_path / "r") == 6
    assert bad.read_bytes().startswith(b"not a database")  # left as it was


def test_cache_info_and_prune(tmp_path):
    cache = tmp_path / "c.sqlite"
    for seed in (1, 2):
        assert run_cli("run", "-m", f"mock:m{seed},seed={seed}", "-t", "core_sentiment_choice", "--limit", "3",
                       "-o", str(tmp_path / f"r{seed}"), "--cache", str(cache)).returncode == 0
    info = run_cli("cache", "info", "--cache", str(cache))
    assert info.returncode == 0 and "12 responses of 2 model(s)" in info.stdout
    c = ResponseCache(cache)
    fp = c.info()["models"][0]["fingerprint"]
    c.close()
    assert run_cli("cache", "prune", "--cache", str(cache), "--model", fp[:10]).returncode == 0
    assert "6 responses of 1 model(s)" in run_cli("cache", "info", "--cache", str(cache)).stdout
    assert run_cli("cache", "prune", "--cache", str(cache), "--older-than", "1").returncode == 0  # nothing that old
    assert "6 responses" in run_cli("cache", "info", "--cache", str(cache)).stdout
    nothing = run_cli("cache", "prune", "--cache", str(cache))
    assert nothing.returncode == 2 and "--older-than DAYS, --model FINGERPRINT or --all" in nothing.stderr
    assert run_cli("cache", "prune", "--cache", str(cache), "--all").returncode == 0
    assert "0 responses" in run_cli("cache", "info", "--cache", str(cache)).stdout


def test_import_a_run_folder_made_without_the_cache(tmp_path):
    """Responses of a folder made before the cache existed (or with --no-cache) join it."""
    cache = tmp_path / "c.sqlite"
    old = run_cli("run", "-m", "mock:m", "-t", "core_sentiment_choice", "--limit", "4", "-o", str(tmp_path / "old"), "--no-cache")
    assert old.returncode == 0 and not cache.exists()
    imp = run_cli("cache", "import", str(tmp_path / "old"), "--cache", str(cache))
    assert imp.returncode == 0, imp.stderr
    assert "8 responses, 8 new" in imp.stderr
    again = run_cli("cache", "import", str(tmp_path / "old"), "--cache", str(cache))
    assert "8 responses, 0 new" in again.stderr
    new = run_cli("run", "-m", "mock:m", "-t", "core_sentiment_choice", "--limit", "4", "-o", str(tmp_path / "new"), "--cache", str(cache))
    assert new.returncode == 0 and "8 from the response cache" in new.stderr and _computed(tmp_path / "new") == 0
    assert _values(tmp_path / "new", "m") == _values(tmp_path / "old", "m")
    bad = run_cli("cache", "import", str(tmp_path), "--cache", str(cache))
    assert bad.returncode == 2 and "not a run folder" in bad.stderr
