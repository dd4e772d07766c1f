"""Files written whole or not at all: a reader (or a crash) never sees half a report."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # what write_text_atomic leaves when killed mid-write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from other readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Delete the temporary files that a write killed half-way left in ``folder`` (and its
    subfolders). Only a process holding the run folder's exclusive lock may call this."""
    removed = []
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file() and _TMP.match(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
