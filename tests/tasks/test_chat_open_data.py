"""assay's own two-turn chat question set (issue 17): src/assay/tasks/builtin/chat_open/data.

The English file has 80 rows, 10 per category; the machine-translated file has 16 of them in
French, Spanish and Chinese. References are required for math, reasoning and coding and
optional elsewhere. The sha256 of both files is pinned in the folder's README.md, so an edit to
the data is deliberate. Every coding reference is a short Python function followed by asserts:
each must compile and run to completion."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[2] / "src" / "assay" / "tasks" / "builtin" / "chat_open"
EN = FOLDER / "data" / "chat_open.jsonl"
MT = FOLDER / "data" / "chat_open_mt.jsonl"
README = FOLDER / "README.md"
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
REFERENCED = {"math", "reasoning", "coding"}
KEYS = {"id", "category", "language", "translation", "turns", "reference"}


def _rows(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(line.strip() for line in lines), f"{path.name}: blank line"
    return [json.loads(line) for line in lines]


EN_ROWS = _rows(EN)
MT_ROWS = _rows(MT)
CODING = [(row["id"], turn, ref) for row in EN_ROWS if row["category"] == "coding"
          for turn, ref in enumerate(row["reference"], 1)]


def _check_row(row: dict) -> None:
    assert set(row) == KEYS, row["id"]
    assert row["category"] in CATEGORIES, row["id"]
    turns = row["turns"]
    assert isinstance(turns, list) and len(turns) == 2, row["id"]
    assert all(isinstance(t, str) and t.strip() for t in turns), row["id"]
    ref = row["reference"]
    if row["category"] in REFERENCED:
        assert ref is not None, f"{row['id']}: a {row['category']} row needs a reference"
    if ref is not None:
        assert isinstance(ref, list) and len(ref) == 2, row["id"]
        assert all(isinstance(r, str) and r.strip() for r in ref), row["id"]


def test_english_rows():
    assert len(EN_ROWS) == 80
    ids = [row["id"] for row in EN_ROWS]
    assert len(set(ids)) == len(ids)
    assert Counter(row["category"] for row in EN_ROWS) == {c: 10 for c in CATEGORIES}
    for row in EN_ROWS:
        _check_row(row)
        assert re.fullmatch(rf"chat_open_{row['category']}_\d\d", row["id"]), row["id"]
        assert (row["language"], row["translation"]) == ("en", "original"), row["id"]


def test_translated_rows():
    assert len(MT_ROWS) == 48
    ids = [row["id"] for row in MT_ROWS]
    assert len(set(ids)) == len(ids)
    english = {row["id"]: row for row in EN_ROWS}
    bases = Counter()
    for row in MT_ROWS:
        _check_row(row)
        m = re.fullmatch(r"(chat_open_[a-z]+_\d\d)_(fr|es|zh)", row["id"])
        assert m, row["id"]
        base, lang = m.groups()
        assert base in english, f"{row['id']}: no English row {base}"
        assert row["category"] == english[base]["category"], row["id"]
        assert (row["language"], row["translation"]) == (lang, "machine"), row["id"]
        # a translation keeps the presence of references; code references are not translated
        assert (row["reference"] is None) == (english[base]["reference"] is None), row["id"]
        if row["category"] == "coding":
            assert row["reference"] == english[base]["reference"], row["id"]
        assert row["turns"] != english[base]["turns"], f"{row['id']}: not translated"
        bases[base] += 1
    # 16 English rows, two per category, each in all three languages
    assert len(bases) == 16 and set(bases.values()) == {3}
    assert Counter(english[b]["category"] for b in bases) == {c: 2 for c in CATEGORIES}


def test_readme_pins_sha256():
    text = README.read_text(encoding="utf-8")
    for path in (EN, MT):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        m = re.search(rf"`{re.escape(path.name)}`[^\n]*?\b([0-9a-f]{{64}})\b", text)
        assert m, f"README.md names no sha256 for {path.name}"
        assert m.group(1) == digest, f"{path.name} changed: its sha256 is now {digest}; update README.md"


@pytest.mark.parametrize("row_id,turn,code", CODING, ids=[f"{i}-turn{t}" for i, t, _ in CODING])
def test_coding_reference_runs(row_id, turn, code):
    compile(code, f"{row_id}-turn{turn}", "exec")
    assert "assert" in code, f"{row_id} turn {turn}: the reference has no assert examples"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{row_id} turn {turn}:\n{done.stderr}"
