"""Multi-turn tasks (`turns:`): each later user turn is sent after the model's own stored
answer to the one before, a killed run resumes mid-conversation without asking anything
twice, and the built-in chat_open conversations are judged whole."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import kill_assay_when, run_cli

from assay.tasks.registry import BUILTIN


def _requests(store, fp=None) -> list[dict]:
    with sqlite3.connect(store) as db:
        q = "SELECT request FROM responses" + (" WHERE model_fp = ?" if fp else "")
        return [json.loads(r) for (r,) in db.execute(q, (fp,) if fp else ())]


def _rows(n: int) -> list[dict]:
    return [json.loads(line) for line in (BUILTIN / "chat_open/data/chat_open.jsonl").read_text().splitlines()[:n]]


def test_the_second_turn_follows_the_models_own_first_answer(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:b", "-t", "chat_open", "--limit", "4", "-o", str(out), "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "turn 2: 4 requests: 0 already stored, 0 from the response cache, 4 to compute" in proc.stderr
    samples = [json.loads(line) for line in (out / "samples" / "b" / "chat_open.jsonl").read_text().splitlines()]
    contexts = {r["context"] for r in _requests(out / "store.sqlite")}
    assert len(samples) == 4 and len(contexts) == 8
    for row, sample in zip(_rows(4), samples):
        (t1, a1), (t2, a2) = [(c["user"], c["assistant"]) for c in sample["conversation"]]
        assert [t1, t2] == row["turns"]
        assert f"{t1} {a1}\n\n{t2}" in contexts  # plain text: turn, delimiter, the model's answer, separator, next turn
        assert sample["response"] == a2  # the last answer is what metrics score
    res = json.loads((out / "results.json").read_text())["results"]["b"]["chat_open"]
    assert res["n_docs"] == 4 and res["metrics"]["words"]["value"] == pytest.approx(sum(len(s["response"].split()) for s in samples) / 4)


def _count(store) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_kill_mid_conversation_resumes_without_asking_twice(tmp_path):
    args = ["run", "-m", "mock:b,latency=0.25", "-t", "chat_open", "--limit", "6", "-b", "1", "--no-cache", "-o", str(tmp_path / "run")]
    store = tmp_path / "run" / "store.sqlite"
    kill_assay_when(args, lambda: _count(store) >= 8, cwd=tmp_path, timeout=120, poll=0.05)
    before = _count(store)
    assert 8 <= before < 12  # every first turn and some second ones
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "6 requests: 6 already stored, 0 to compute" in resumed.stderr
    assert f"turn 2: 6 requests: {before - 6} already stored, 0 from the response cache, {12 - before} to compute" in resumed.stderr
    with sqlite3.connect(store) as db:
        counts = db.execute("SELECT COUNT(*) FROM compute_log GROUP BY req_key").fetchall()
    assert len(counts) == 12 and {c for (c,) in counts} == {1}
    clean = run_cli(*args[:-1], str(tmp_path / "clean"), cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    a, b = (json.loads((tmp_path / d / "results.json").read_text())["results"] for d in ("run", "clean"))
    assert a == b


def test_chat_open_conversations_are_judged_whole_and_compared(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:a,answer=a long answer with many words in it", "-m", "mock:b,answer=short", "-t", "chat_open", "--limit", "5",
                   "-o", str(out), "--no-cache", "--judge", "mock:judge,judge=longer", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    # the mock judge rates 1 + words / 2 (at most 10) over the transcript of the model's answers,
    # "Turn 1 (assistant): short\n\nTurn 2 (assistant): short" for b: 8 words
    for model, rating in (("a", 10.0), ("b", 5.0)):
        judged = doc["results"][model]["chat_open"]["judged"]["judge"]
        assert judged["scale"] == "1-10" and judged["n"] == 5 and judged["value"] == rating
    r = doc["judges"]["judge"]["ratings"]["all"]
    assert [(p["a"], p["b"], p["wins"]) for p in r["pairs"]] == [("a", "b", 5)]
    sample = json.loads((out / "samples" / "a" / "chat_open.jsonl").read_text().splitlines()[2])
    with sqlite3.connect(out / "store.sqlite") as db:
        judged_prompt = db.execute("SELECT data FROM judgements WHERE mode = 'single' AND models = '[\"a\"]' AND doc_id = ?", (sample["doc_id"],)).fetchone()[0]
    prompt = json.loads(judged_prompt)["prompt"]
    assert "Turn 2 (user): " + sample["conversation"][1]["user"] in prompt and "Turn 1 (assistant): a long answer" in prompt
    ref = _rows(5)[2]["reference"]  # a reasoning row: the reference is shown to the judge
    assert (ref is None) == ("### Reference answer" not in prompt)
