"""The run store: every finished response, the instances that asked for it, and how the
models and tasks of a run were built. ``assay score`` reads nothing else."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from assay.errors import StoreError
from assay.requests import Request, Result, canonical_json, result_from_json, result_to_json
from assay.store.db import connect, explain, transaction

STORE_NAME = "store.sqlite"
F = TypeVar("F", bound=Callable[..., Any])


def _guarded(fn: F) -> F:
    """SQLite's errors (a corrupt page, a full disk) become one line naming the store and
    saying what to do; what was committed before stays committed."""

    @functools.wraps(fn)
    def call(self: RunStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreError(explain(self.path, exc)) from None

    return call  # type: ignore[return-value]


class RunStore:
    def __init__(self, run_dir: Path, readonly: bool = False):
        self.path = Path(run_dir) / STORE_NAME
        self.readonly = readonly
        self.db = connect(self.path, readonly=readonly)

    def close(self) -> None:
        self.db.close()

    # -- metadata ----------------------------------------------------------------------------
    @_guarded
    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @_guarded
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    @_guarded
    def put_model(self, label: str, fingerprint: str, info: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO models (label, fingerprint, info) VALUES (?, ?, ?)",
            (label, fingerprint, canonical_json(info)),
        )

    @_guarded
    def models(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self.db.execute("SELECT label, fingerprint, info FROM models ORDER BY rowid").fetchall()
        return [(lbl, fp, json.loads(info)) for lbl, fp, info in rows]

    # -- tasks and instances ---------------------------------------------------------------------
    @_guarded
    def put_task(self, model_label: str, task: str, spec: dict[str, Any], info: dict[str, Any], instances: Sequence[tuple[str, str, dict[str, Any], list[str]]]) -> None:
        """Record a task of a model and its instances (prompt id, doc id, data, request keys)."""
        with transaction(self.db):
            self.db.execute("DELETE FROM instances WHERE model_label = ? AND task = ?", (model_label, task))
            self.db.execute(
                "INSERT OR REPLACE INTO tasks (model_label, task, spec, info) VALUES (?, ?, ?, ?)",
                (model_label, task, canonical_json(spec), canonical_json(info)),
            )
            self.db.executemany(
                "INSERT INTO instances (model_label, task, prompt_id, doc_id, data, req_keys) VALUES (?, ?, ?, ?, ?, ?)",
                [(model_label, task, p, d, canonical_json(data), json.dumps(keys)) for p, d, data, keys in instances],
            )

    @_guarded
    def tasks(self) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        rows = self.db.execute("SELECT model_label, task, spec, info FROM tasks ORDER BY rowid").fetchall()
        return [(m, t, json.loads(s), json.loads(i)) for m, t, s, i in rows]

    @_guarded
    def instances(self, model_label: str, task: str) -> list[tuple[str, str, dict[str, Any], list[str]]]:
        rows = self.db.execute(
            "SELECT prompt_id, doc_id, data, req_keys FROM instances WHERE model_label = ? AND task = ? ORDER BY rowid",
            (model_label, task),
        ).fetchall()
        return [(p, d, json.loads(data), json.loads(keys)) for p, d, data, keys in rows]

    # -- judges ----------------------------------------------------------------------------------
    @_guarded
    def put_judge(self, label: str, fingerprint: str, info: dict[str, Any], items: Sequence[Any]) -> None:
        """Record a judge and its judgement requests (``judge.build.JudgeItem``s), replacing
        what an earlier run asked it."""
        with transaction(self.db):
            self.db.execute("DELETE FROM judgements WHERE judge = ?", (label,))
            self.db.execute("INSERT OR REPLACE INTO judges (label, fingerprint, info) VALUES (?, ?, ?)", (label, fingerprint, canonical_json(info)))
            self.db.executemany(
                "INSERT OR REPLACE INTO judgements (judge, task, prompt_id, doc_id, mode, models, data, req_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(label, i.task, i.prompt_id, i.doc_id, i.mode, json.dumps(list(i.models)), canonical_json(i.data), i.key) for i in items],
            )

    @_guarded
    def judges(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The run's judges; none in a store made before judging existed (opened read-only, unmigrated)."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'judges'").fetchone():
            return []
        rows = self.db.execute("SELECT label, fingerprint, info FROM judges ORDER BY rowid").fetchall()
        return [(lbl, fp, json.loads(info)) for lbl, fp, info in rows]

    @_guarded
    def judgements(self, judge: str) -> list[tuple[str, str, str, str, tuple[str, ...], dict[str, Any], str]]:
        """(task, prompt id, doc id, mode, models, data, request key) of a judge, in the order asked."""
        rows = self.db.execute(
            "SELECT task, prompt_id, doc_id, mode, models, data, req_key FROM judgements WHERE judge = ? ORDER BY rowid", (judge,)
        ).fetchall()
        return [(t, p, d, m, tuple(json.loads(ms)), json.loads(data), k) for t, p, d, m, ms, data, k in rows]

    # -- responses -------------------------------------------------------------------------------
    @_guarded
    def missing(self, model_fp: str, keys: Iterable[str]) -> set[str]:
        keys = set(keys)
        have = set()
        for chunk in _chunks(sorted(keys), 500):
            q = f"SELECT req_key FROM responses WHERE model_fp = ? AND req_key IN ({','.join('?' * len(chunk))})"
            have.update(r[0] for r in self.db.execute(q, (model_fp, *chunk)))
        return keys - have

    @_guarded
    def put_results(self, model_fp: str, items: Sequence[tuple[str, Request, Result]], session: str) -> None:
        """Commit a finished batch: responses and their compute-log rows in one transaction."""
        now = time.time()
        with transaction(self.db):
            for key, req, res in items:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO responses (model_fp, req_key, kind, request, result, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (model_fp, key, req.kind, canonical_json(asdict(req)), result_to_json(res), now),
                )
                if cur.rowcount:
                    self.db.execute(
                        "INSERT INTO compute_log (model_fp, req_key, session, created) VALUES (?, ?, ?, ?)",
                        (model_fp, key, session, now),
                    )

    @_guarded
    def put_cached(self, model_fp: str, rows: Sequence[tuple[str, str, str, str]]) -> int:
        """Copy responses from the shared cache (key, kind, request JSON, result JSON) into the
        run: stored like computed ones, but with no compute-log row (this run computed none of
        them). Returns how many were new to the run."""
        now = time.time()
        n = 0
        with transaction(self.db):
            for key, kind, req, res in rows:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO responses (model_fp, req_key, kind, request, result, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (model_fp, key, kind, req, res, now),
                )
                n += cur.rowcount
        return n

    @_guarded
    def response_rows(self) -> dict[str, list[tuple[str, str, str, str]]]:
        """Every stored response as the shared cache keeps it: model fingerprint -> rows of
        (key, kind, request JSON, result JSON)."""
        out: dict[str, list[tuple[str, str, str, str]]] = {}
        for fp, key, kind, req, res in self.db.execute("SELECT model_fp, req_key, kind, request, result FROM responses"):
            out.setdefault(fp, []).append((key, kind, req, res))
        return out

    @_guarded
    def results(self, model_fp: str, keys: Iterable[str]) -> dict[str, Result]:
        out: dict[str, Result] = {}
        for chunk in _chunks(sorted(set(keys)), 500):
            q = f"SELECT req_key, kind, result FROM responses WHERE model_fp = ? AND req_key IN ({','.join('?' * len(chunk))})"
            for key, kind, payload in self.db.execute(q, (model_fp, *chunk)):
                out[key] = result_from_json(kind, payload)
        return out

    @_guarded
    def compute_counts(self) -> dict[str, int]:
        """How many times each (model, request) was computed and stored: 1 everywhere."""
        rows = self.db.execute("SELECT model_fp || ' ' || req_key, COUNT(*) FROM compute_log GROUP BY 1").fetchall()
        return dict(rows)

    @_guarded
    def forget_registrations(self) -> None:
        """Drop every model's and task's registration (not the responses): a run with other
        settings starts over, and what it does not register again is not part of it."""
        with transaction(self.db):
            self.db.execute("DELETE FROM instances")
            self.db.execute("DELETE FROM tasks")
            self.db.execute("DELETE FROM models")
            self.db.execute("DELETE FROM judgements")
            self.db.execute("DELETE FROM judges")

    @_guarded
    def n_responses_of(self, fingerprints: Iterable[str]) -> int:
        fps = sorted(set(fingerprints))
        if not fps:
            return 0
        q = f"SELECT COUNT(*) FROM responses WHERE model_fp IN ({','.join('?' * len(fps))})"
        return self.db.execute(q, fps).fetchone()[0]

    @_guarded
    def n_responses(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
