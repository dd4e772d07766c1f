"""SQLite in WAL mode, with append-only migrations.

Each migration runs in one transaction together with the row that records it, so a crash
never leaves a half-migrated store. ``synchronous=NORMAL`` in WAL mode keeps every committed
transaction across a killed process (SIGKILL, Ctrl-C); only a power cut can lose the last ones.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from assay.errors import StoreError

MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []
# migrations that only add tables a reader finds absent and treats as empty: a store without
# them still opens read-only (a run folder made before judging scores as it is)
READABLE_WITHOUT = {"002_judgements"}


def migration(name: str) -> Callable[[Callable[[sqlite3.Connection], None]], Callable[[sqlite3.Connection], None]]:
    def register(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("001_initial")
def _initial(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE models (
            label TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, info TEXT NOT NULL);
        CREATE TABLE responses (
            model_fp TEXT NOT NULL, req_key TEXT NOT NULL, kind TEXT NOT NULL,
            request TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (model_fp, req_key)) WITHOUT ROWID;
        CREATE TABLE compute_log (
            id INTEGER PRIMARY KEY, model_fp TEXT NOT NULL, req_key TEXT NOT NULL,
            session TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE tasks (
            model_label TEXT NOT NULL, task TEXT NOT NULL, spec TEXT NOT NULL, info TEXT NOT NULL,
            PRIMARY KEY (model_label, task));
        CREATE TABLE instances (
            model_label TEXT NOT NULL, task TEXT NOT NULL, prompt_id TEXT NOT NULL,
            doc_id TEXT NOT NULL, data TEXT NOT NULL, req_keys TEXT NOT NULL,
            PRIMARY KEY (model_label, task, prompt_id, doc_id));
        """,
    )


@migration("002_judgements")
def _judgements(db: sqlite3.Connection) -> None:
    # judges of the run (``--judge``) and what each was asked: one row per judge request
    _script(
        db,
        """
        CREATE TABLE judges (label TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, info TEXT NOT NULL);
        CREATE TABLE judgements (
            judge TEXT NOT NULL, task TEXT NOT NULL, prompt_id TEXT NOT NULL, doc_id TEXT NOT NULL,
            mode TEXT NOT NULL, models TEXT NOT NULL, data TEXT NOT NULL, req_key TEXT NOT NULL,
            PRIMARY KEY (judge, task, prompt_id, doc_id, mode, models));
        """,
    )


def _script(db: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT first; run statement by statement inside the migration's txn
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


def explain(path: Path, exc: BaseException) -> str:
    """What went wrong with a store, and what to do about it, in one line."""
    msg = str(exc)
    low = msg.lower()
    if "disk is full" in low or "no space" in low:
        return f"{path}: the disk is full ({msg}); free some space and run the same command again (every response committed so far is kept)"
    if "not a database" in low or "malformed" in low or "file is encrypted" in low:
        return (
            f"{path}: the run store is corrupt ({msg}); move it aside (mv {path} {path}.corrupt) and run the same command again "
            "to recompute its responses, or restore it from a copy"
        )
    if "readonly" in low or "read-only" in low:
        return f"{path}: the run store is read-only ({msg}); score it into another folder (assay score RUN_DIR -o DIR)"
    if "unable to open" in low:
        return f"{path}: cannot open the run store ({msg}); check that the folder exists and is readable"
    if "locked" in low or "busy" in low:
        return f"{path}: the run store is locked by another process ({msg}); wait for it and run the command again"
    return f"{path}: the run store failed: {msg}"


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Read a store without writing: ``mode=ro``; on a read-only disk where SQLite cannot make
    the WAL's shared-memory file, and no WAL holds uncheckpointed pages (a run that ended
    cleanly), as an immutable file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=30000")
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        wal = path.with_name(path.name + "-wal")
        if "unable to open" not in str(exc) or os.access(path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
            raise
        db.close()
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open (and for writing, create or migrate) a store; ``readonly`` never writes a byte,
    so a run folder on a read-only disk can still be scored."""
    try:
        if readonly:
            if not path.is_file():
                raise StoreError(f"{path.parent}: not a run folder (no {path.name})")
            db = _open_readonly(path)
            try:
                check_version(db)
            except StoreError as exc:
                db.close()
                raise StoreError(f"{path}: {exc}") from None
            return db
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(explain(path, exc)) from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the run store: {exc.strerror or exc}") from None
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    else:
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def check_version(db: sqlite3.Connection) -> None:
    """A store opened read-only must already be at this assay's schema."""
    try:
        done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise StoreError("the file holds no assay run (an empty store, or another program's database); nothing to score") from None
        raise
    known = {n for n, _ in MIGRATIONS}
    if done - known:
        raise StoreError(f"this store was written by a newer assay (migrations {', '.join(sorted(done - known))})")
    if known - done - READABLE_WITHOUT:
        raise StoreError(f"this store was written by an older assay; score it once where it is writable to upgrade it (migrations {', '.join(sorted(known - done))})")


def migrate(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY)")
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    known = {n for n, _ in MIGRATIONS}
    if done - known:
        raise StoreError(f"this store was written by a newer assay (migrations {', '.join(sorted(done - known))})")
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with transaction(db):
            fn(db)
            db.execute("INSERT INTO _migrations (name) VALUES (?)", (name,))
