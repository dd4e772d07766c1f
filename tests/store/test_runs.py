"""Tests for assay.store.db and assay.store.runs (the SQLite run store)."""

from __future__ import annotations

import sqlite3

import pytest

from assay.errors import StoreError
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
    request_key,
)
from assay.store import db as dbmod
from assay.store.db import MIGRATIONS, connect, transaction
from assay.store.runs import STORE_NAME, RunStore


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run")
    yield s
    s.close()


def items():
    reqs = [
        (LoglikelihoodRequest("ctx", " a"), LoglikelihoodResult(-1.5, True, 1)),
        (RollingRequest("text"), RollingResult(-10.25, 3)),
        (GenerateRequest("q", until=("\n",)), GenerateResult("answer", 2, "stop")),
    ]
    return [(request_key(q), q, r) for q, r in reqs]


# --------------------------------------------------------------------------- db / migrations


def test_store_file_and_wal_mode(store, tmp_path):
    assert store.path == tmp_path / "run" / STORE_NAME
    assert store.path.is_file()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # the mode is persistent: a plain connection sees it too
    other = sqlite3.connect(str(store.path))
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_migrations_recorded_once(tmp_path):
    s = RunStore(tmp_path)
    s.close()
    s = RunStore(tmp_path)
    try:
        names = [r[0] for r in s.db.execute("SELECT name FROM _migrations")]
        assert sorted(names) == sorted(n for n, _ in MIGRATIONS)
        assert len(names) == len(set(names)) == len(MIGRATIONS)
    finally:
        s.close()


def test_reopening_does_not_rerun_migrations(tmp_path, monkeypatch):
    calls = []

    def extra(db):
        calls.append(1)
        db.execute("CREATE TABLE extra_table (x INTEGER)")

    monkeypatch.setattr(dbmod, "MIGRATIONS", [*MIGRATIONS, ("999_test_extra", extra)])
    for _ in range(3):
        connect(tmp_path / "s.sqlite").close()
    assert calls == [1]
    con = sqlite3.connect(str(tmp_path / "s.sqlite"))
    try:
        assert con.execute("SELECT COUNT(*) FROM _migrations WHERE name = '999_test_extra'").fetchone()[0] == 1
    finally:
        con.close()


def test_failing_migration_leaves_nothing(tmp_path, monkeypatch):
    def broken(db):
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise sqlite3.OperationalError("boom")

    monkeypatch.setattr(dbmod, "MIGRATIONS", [*MIGRATIONS, ("998_broken", broken)])
    with pytest.raises(StoreError, match="boom"):
        connect(tmp_path / "s.sqlite")
    con = sqlite3.connect(str(tmp_path / "s.sqlite"))
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "half_done" not in tables
        assert "responses" in tables  # the earlier migration did commit
        names = {r[0] for r in con.execute("SELECT name FROM _migrations")}
        assert "998_broken" not in names
    finally:
        con.close()


def test_unknown_migration_raises_store_error(tmp_path):
    s = RunStore(tmp_path)
    s.db.execute("INSERT INTO _migrations (name) VALUES ('500_from_the_future')")
    s.close()
    with pytest.raises(StoreError) as ei:
        RunStore(tmp_path)
    assert "500_from_the_future" in str(ei.value)
    assert "newer" in str(ei.value)


def test_corrupt_store_is_a_store_error(tmp_path):
    (tmp_path / STORE_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="the run store is corrupt .* move it aside"):
        RunStore(tmp_path)


# --------------------------------------------------------------------------- responses


def test_put_results_round_trip(store):
    its = items()
    store.put_results("fp1", its, "session-1")
    got = store.results("fp1", [k for k, _, _ in its])
    assert got == {k: r for k, _, r in its}
    assert {type(v) for v in got.values()} == {LoglikelihoodResult, RollingResult, GenerateResult}
    assert store.n_responses() == 3
    # results are per model fingerprint
    assert store.results("other-fp", [k for k, _, _ in its]) == {}
    # stored request is the request's canonical JSON
    kind, request = store.db.execute(
        "SELECT kind, request FROM responses WHERE req_key = ?", (its[2][0],)
    ).fetchone()
    assert kind == "generate" and '"until":["\\n"]' in request


def test_results_ignores_unknown_keys_and_duplicates(store):
    its = items()
    store.put_results("fp", its[:1], "s")
    got = store.results("fp", [its[0][0], its[0][0], "r1:nope"])
    assert list(got) == [its[0][0]]


def test_put_results_twice_keeps_the_first(store):
    key, req, res = items()[0]
    store.put_results("fp", [(key, req, res)], "s1")
    store.put_results("fp", [(key, req, LoglikelihoodResult(-99.0, False, 1))], "s2")
    assert store.results("fp", [key]) == {key: res}
    assert store.compute_counts() == {f"fp {key}": 1}
    assert store.n_responses() == 1
    sessions = [r[0] for r in store.db.execute("SELECT session FROM compute_log")]
    assert sessions == ["s1"]


def test_same_key_for_two_models_is_two_rows(store):
    key, req, res = items()[0]
    store.put_results("fpA", [(key, req, res)], "s")
    store.put_results("fpB", [(key, req, res)], "s")
    assert store.compute_counts() == {f"fpA {key}": 1, f"fpB {key}": 1}


def test_missing(store):
    its = items()
    keys = [k for k, _, _ in its]
    assert store.missing("fp", keys) == set(keys)
    store.put_results("fp", its[:2], "s")
    assert store.missing("fp", keys) == {keys[2]}
    assert store.missing("fp", keys[:2]) == set()
    assert store.missing("other", keys[:1]) == {keys[0]}
    assert store.missing("fp", []) == set()


def test_missing_and_results_in_chunks(store):
    reqs = [RollingRequest(f"text {i}") for i in range(1203)]
    its = [(request_key(q), q, RollingResult(-float(i), i)) for i, q in enumerate(reqs)]
    store.put_results("fp", its[:1100], "s")
    keys = [k for k, _, _ in its]
    assert store.missing("fp", keys) == set(keys[1100:])
    got = store.results("fp", keys)
    assert len(got) == 1100
    assert got[keys[1050]] == RollingResult(-1050.0, 1050)


def test_failed_batch_writes_nothing(store):
    its = items()
    bad = [*its[:2], (its[2][0], its[2][1], object())]  # the last result cannot be serialised
    with pytest.raises(TypeError):
        store.put_results("fp", bad, "s")  # type: ignore[arg-type]
    assert store.n_responses() == 0
    assert store.compute_counts() == {}
    store.put_results("fp", its, "s")  # the store is usable afterwards
    assert store.n_responses() == 3


def test_transaction_that_raises_leaves_nothing(store):
    with pytest.raises(RuntimeError, match="stop"):
        with transaction(store.db):
            store.db.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
            store.db.execute(
                "INSERT INTO models (label, fingerprint, info) VALUES ('m', 'fp', '{}')"
            )
            raise RuntimeError("stop")
    assert store.get_meta("a") is None
    assert store.models() == []
    assert not store.db.in_transaction
    with transaction(store.db):
        store.db.execute("INSERT INTO meta (key, value) VALUES ('a', '2')")
    assert store.get_meta("a") == 2


# --------------------------------------------------------------------------- tasks and metadata


def test_put_task_and_instances_round_trip(store):
    spec = {"task": "t", "prompts": [{"id": "p"}], "vars": {"x": "é"}}
    info = {"n_docs": 2, "revision": "abc"}
    inst = [
        ("p", "0", {"query": "Q0", "choices": ["a", "b"], "target": 1}, ["r1:aa", "r1:bb"]),
        ("p", "1", {"query": "Q1", "choices": ["a", "b"], "target": 0}, ["r1:cc"]),
    ]
    store.put_task("model-a", "t", spec, info, inst)
    assert store.tasks() == [("model-a", "t", spec, info)]
    assert store.instances("model-a", "t") == inst
    assert store.instances("model-b", "t") == []


def test_put_task_replaces_the_old_instances(store):
    store.put_task("m", "t", {"v": 1}, {}, [("p", str(i), {}, []) for i in range(5)])
    store.put_task("m", "t", {"v": 2}, {}, [("p", "9", {"new": True}, ["k"])])
    assert store.instances("m", "t") == [("p", "9", {"new": True}, ["k"])]
    assert store.tasks() == [("m", "t", {"v": 2}, {})]


def test_put_task_failure_keeps_the_old_task(store):
    old = [("p", "0", {"a": 1}, ["k"])]
    store.put_task("m", "t", {"v": 1}, {}, old)
    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        # a duplicate (prompt, doc) violates the primary key after the delete has run
        store.put_task("m", "t", {"v": 2}, {}, [("p", "0", {}, []), ("p", "0", {}, [])])
    assert store.instances("m", "t") == old
    assert store.tasks() == [("m", "t", {"v": 1}, {})]


def test_meta_and_models(store):
    assert store.get_meta("absent", "dflt") == "dflt"
    store.set_meta("config", {"limit": 5, "tasks": ["a"]})
    store.set_meta("config", {"limit": 6})
    assert store.get_meta("config") == {"limit": 6}
    store.put_model("small", "fp-1", {"path": "/m.gguf"})
    store.put_model("big", "fp-2", {})
    assert store.models() == [("small", "fp-1", {"path": "/m.gguf"}), ("big", "fp-2", {})]


# --------------------------------------------------------------------------- concurrency


def test_second_connection_sees_committed_rows(tmp_path):
    a = RunStore(tmp_path)
    b = RunStore(tmp_path)
    try:
        its = items()
        assert b.missing("fp", [its[0][0]]) == {its[0][0]}
        a.put_results("fp", its, "s")
        assert b.results("fp", [k for k, _, _ in its]) == {k: r for k, _, r in its}
        assert b.missing("fp", [k for k, _, _ in its]) == set()
        a.put_task("m", "t", {"s": 1}, {}, [("p", "0", {}, ["k"])])
        assert b.instances("m", "t") == [("p", "0", {}, ["k"])]
    finally:
        a.close()
        b.close()


def test_uncommitted_rows_are_invisible_to_another_connection(tmp_path):
    a = RunStore(tmp_path)
    b = RunStore(tmp_path)
    try:
        with transaction(a.db):
            a.set_meta("k", "v")
            assert b.get_meta("k") is None  # WAL: readers see the last commit
        assert b.get_meta("k") == "v"
    finally:
        a.close()
        b.close()


def test_reopen_keeps_everything(tmp_path):
    s = RunStore(tmp_path)
    its = items()
    s.put_results("fp", its, "s")
    s.close()
    s = RunStore(tmp_path)
    try:
        assert s.n_responses() == 3
        assert s.results("fp", [its[1][0]]) == {its[1][0]: its[1][2]}
    finally:
        s.close()
