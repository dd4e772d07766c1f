"""A response cache shared by every run on a machine (or a cluster's shared disk).

Responses are content-addressed: a model fingerprint (which changes whenever the numbers could)
and a request key (a hash of the exact request, sampling seed and sample index included). So a
response computed by one run answers the same request in any other run, and each run consults
the cache before it asks the model. A run folder still keeps its own copy of every response it
used (``store.sqlite``): it stays self-contained and re-scorable with the cache gone.

The cache is one SQLite file in WAL mode (default ``~/.cache/assay/responses.sqlite``, or
``$XDG_CACHE_HOME/assay/``; ``$ASSAY_CACHE`` or ``--cache PATH`` elsewhere, ``off`` for none).
Several runs read and write it at once: each write is one short ``INSERT OR IGNORE`` transaction
of a finished batch, and SQLite serialises writers. A cache that cannot be opened or written
(a read-only disk, a full disk, a corrupt file) never stops a run: the run says so once and
goes on without it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assay.errors import StoreError

CACHE_ENV = "ASSAY_CACHE"
OFF = ("off", "none", "0", "false", "no")
Row = tuple[str, str, str, str]  # request key, kind, request JSON, result JSON


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assay" / "responses.sqlite"


def resolve_cache(setting: str | Path | None = "auto") -> Path | None:
    """The cache file a run uses: ``auto`` = ``$ASSAY_CACHE`` if set, else the default path;
    ``off`` (or ``$ASSAY_CACHE=off``) = none; anything else is a path."""
    text = str(setting) if setting is not None else "off"
    if text == "auto":
        text = os.environ.get(CACHE_ENV, "") or str(default_cache_path())
    if text.strip().lower() in OFF:
        return None
    return Path(text).expanduser()


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class ResponseCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS responses (model_fp TEXT NOT NULL, req_key TEXT NOT NULL, kind TEXT NOT NULL, "
                "request TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (model_fp, req_key))"
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"response cache {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def get(self, model_fp: str, keys: Iterable[str]) -> list[Row]:
        """The cached rows of ``keys`` (those the cache has)."""
        out: list[Row] = []
        try:
            for chunk in _chunks(sorted(set(keys)), 500):
                q = f"SELECT req_key, kind, request, result FROM responses WHERE model_fp = ? AND req_key IN ({','.join('?' * len(chunk))})"
                out.extend(self.db.execute(q, (model_fp, *chunk)))
        except sqlite3.Error as exc:
            raise StoreError(f"response cache {self.path}: {exc}") from None
        return out

    def put(self, model_fp: str, rows: Sequence[Row]) -> int:
        """Add a finished batch (rows already there are kept as they are); how many were new."""
        if not rows:
            return 0
        now = time.time()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                cur = self.db.executemany(
                    "INSERT OR IGNORE INTO responses (model_fp, req_key, kind, request, result, created) VALUES (?, ?, ?, ?, ?, ?)",
                    [(model_fp, k, kind, req, res, now) for k, kind, req, res in rows],
                )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"response cache {self.path}: {exc}") from None
        return int(cur.rowcount)

    def info(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT model_fp, COUNT(*), MIN(created), MAX(created) FROM responses GROUP BY model_fp ORDER BY 2 DESC").fetchall()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path), "bytes": size, "responses": sum(r[1] for r in rows),
            "models": [{"fingerprint": fp, "responses": n, "oldest": lo, "newest": hi} for fp, n, lo, hi in rows],
        }

    def prune(self, older_than_days: float | None = None, model: str | None = None) -> int:
        """Remove responses older than ``older_than_days`` and/or of models whose fingerprint
        starts with ``model``; both None removes everything. Returns how many were removed."""
        where, args = [], []
        if older_than_days is not None:
            where.append("created < ?")
            args.append(time.time() - older_than_days * 86400)
        if model is not None:
            where.append("substr(model_fp, 1, ?) = ?")
            args += [len(model), model]
        sql = "DELETE FROM responses" + (" WHERE " + " AND ".join(where) if where else "")
        n = self.db.execute(sql, args).rowcount
        self.db.execute("VACUUM")
        return int(n)
