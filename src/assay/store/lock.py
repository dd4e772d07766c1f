"""One writer per run folder: ``assay run`` holds an exclusive lock on the folder for the
whole run; ``assay score`` and ``assay report`` hold a shared one while they read.

The lock is ``flock(2)`` on ``RUN_DIR/.assay.lock``: the kernel releases it when its holder
exits, however it exits (SIGKILL included), so a crash never leaves a folder locked. A second
process does not wait: it stops at once with one line naming the holder, so two runs can
never interleave their writes or report each other's numbers as their own.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assay.errors import StoreError

LOCK_NAME = ".assay.lock"


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it (pid, command, since when)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return "another assay process"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"assay {info.get('command', '?')} (pid {pid}, since {since})"


@contextmanager
def run_lock(run_dir: Path, exclusive: bool, command: str) -> Iterator[None]:
    """Hold the run folder's lock for the duration of the block (``exclusive`` for a run).

    A folder that cannot hold a lock file (read-only, or a run folder copied somewhere
    without write access) is read without one: nothing can be writing to it through assay.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    try:
        if exclusive:
            run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if os.access(run_dir, os.W_OK) else os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield  # a read-only folder that never held a run's lock file
        return
    except OSError as exc:
        if exclusive:
            raise StoreError(f"{run_dir}: cannot lock the run folder for writing ({exc.strerror}); choose another --output") from None
        yield
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(path)
            if exclusive:
                raise StoreError(f"{run_dir} is in use by {who}; wait for it to finish, or write this run to another folder (--output)") from None
            raise StoreError(f"{run_dir} is being written by {who}; wait for it to finish, then run this command again") from None
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time(), "argv": sys.argv[1:]}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
