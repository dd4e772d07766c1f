"""`assay run --judge MODEL`: judge requests are stored like any others, verdicts are parsed
and counted, pairwise verdicts become win rates and Bradley–Terry strengths, and a judge's
position bias is measured. The judge is the mock model's deterministic judge (`judge=`):
`longer` prefers the longer answer and passes an answer that holds the reference, `first`
always prefers the first answer shown, `garbage` never gives a verdict."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import kill_assay_when, run_cli

TASK = """\
task: opinions
output_type: generate
dataset:
  local: {path: q.jsonl}
target: "''"
judge: {mode: pairwise}
prompts:
  - id: p
    template: "{{ q }}"
metrics: [exact_match]
"""
# three models whose answers differ only in length: 9, 5 and 1 words
MODELS = ["mock:long,answer=one two three four five six seven eight nine", "mock:mid,answer=one two three four five", "mock:short,answer=one"]


def _task(tmp_path: Path, n: int = 12) -> Path:
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"q": f"Question number {i}: what do you think?"}) + "\n" for i in range(n)))
    (tmp_path / "opinions.yaml").write_text(TASK)
    return tmp_path / "opinions.yaml"


def _run(tmp_path: Path, judge: str, *extra: str, out: str = "run") -> dict:
    args = ["run", *[a for m in MODELS for a in ("-m", m)], "-t", str(_task(tmp_path)), "-o", str(tmp_path / out), "--no-cache", "--judge", judge, *extra]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / out / "results.json").read_text())


def test_a_planted_preference_is_recovered_and_an_unbiased_judge_is_not_flagged(tmp_path):
    doc = _run(tmp_path, "mock:judge,judge=longer")
    r = doc["judges"]["judge"]["ratings"]["all"]
    assert r["n_judged"] == 3 * 12 and r["n_unparseable"] == 0 and r["n_missing"] == 0
    bt = r["bradley_terry"]
    assert sorted(bt, key=lambda m: bt[m]["rank"]) == ["long", "mid", "short"]
    assert bt["long"]["low"] > bt["mid"]["high"] and bt["mid"]["low"] > bt["short"]["high"]
    pairs = {(p["a"], p["b"]): p for p in r["pairs"]}
    assert pairs[("long", "mid")]["wins"] == 12 and pairs[("long", "mid")]["win_rate"] == 1.0
    assert pairs[("mid", "short")]["losses"] == 0
    assert r["position_bias"]["flagged"] is False
    # every sample shows its judgements, both orders' replies kept
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples" / "short" / "opinions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(len(row["judgements"]) == 2 for row in rows)
    j = rows[0]["judgements"][0]
    assert j["judge"] == "judge" and j["mode"] == "pairwise" and j["verdict"] == 0.0 and len(j["replies"]) == 2
    assert j["template"]["name"] == "pairwise-v1" and len(j["template"]["hash"]) == 12


def test_a_judge_that_always_prefers_the_first_answer_is_flagged(tmp_path):
    doc = _run(tmp_path, "mock:judge,judge=first")
    r = doc["judges"]["judge"]["ratings"]["all"]
    bias = r["position_bias"]
    assert bias["flagged"] is True and bias["p_value"] < 0.01
    # every pair's two orders disagree: all ties, and no model ranks above another by much
    assert all(p["ties"] == p["n"] for p in r["pairs"])


def test_unparseable_judgements_are_counted_not_dropped(tmp_path):
    doc = _run(tmp_path, "mock:judge,judge=garbage")
    r = doc["judges"]["judge"]["ratings"]["all"]
    assert r["n_unparseable"] == 2 * 3 * 12 and r["n_judged"] == 0 and r["pairs"] == []


def test_judge_verdicts_on_extractive_qa_agree_with_exact_match(tmp_path):
    """The core suite's extractive QA answered by replay (every other answer exactly right,
    the rest wrong): a pass/fail judge shown the reference agrees with the automatic verdict
    on every item, and the agreement is reported."""
    from assay.tasks.registry import BUILTIN

    rows = [json.loads(line) for line in (BUILTIN / "core/data/qa.jsonl").read_text().splitlines()[:10]]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "core_qa", "id": r["id"], "answer": r["answers"][0] if i % 2 == 0 else "I do not know"}) + "\n"
                               for i, r in enumerate(rows)))
    proc = run_cli("run", "-m", f"replay:{answers}", "-t", "core_qa", "--limit", "10", "-o", str(tmp_path / "run"), "--no-cache",
                   "--judge", "mock:judge,judge=longer", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (res,) = [by_task["core_qa"] for by_task in json.loads((tmp_path / "run" / "results.json").read_text())["results"].values()]
    judged = res["judged"]["judge"]
    assert judged["scale"] == "pass/fail" and judged["n"] == 10 and judged["value"] == 0.5
    assert res["metrics"]["exact_match"]["value"] == 0.5
    assert judged["agreement"] == {"metric": res["primary"], "n": 10, "agree": 1.0, "kappa": 1.0}


def _judged_rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            fp = db.execute("SELECT fingerprint FROM judges").fetchone()
            return 0 if fp is None else db.execute("SELECT COUNT(*) FROM responses WHERE model_fp = ?", fp).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_kill_during_judging_then_a_rerun_judges_nothing_twice(tmp_path):
    args = ["run", *[a for m in MODELS for a in ("-m", m)], "-t", str(_task(tmp_path)), "-o", str(tmp_path / "run"), "--no-cache", "-b", "1",
            "--judge", "mock:judge,judge=longer,latency=0.3"]
    store = tmp_path / "run" / "store.sqlite"
    kill_assay_when(args, lambda: _judged_rows(store) >= 5, cwd=tmp_path, timeout=120)
    before = _judged_rows(store)
    assert 5 <= before < 72
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"judging: 72 requests: {before} already stored, 0 from the response cache, {72 - before} to compute" in resumed.stderr
    with sqlite3.connect(store) as db:
        fp = db.execute("SELECT fingerprint FROM judges").fetchone()[0]
        counts = db.execute("SELECT COUNT(*) FROM compute_log WHERE model_fp = ? GROUP BY req_key", (fp,)).fetchall()
    assert len(counts) == 72 and {c for (c,) in counts} == {1}
    clean = _run(tmp_path, "mock:judge,judge=longer", out="clean")
    resumed_doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert resumed_doc["judges"]["judge"]["ratings"] == clean["judges"]["judge"]["ratings"]
