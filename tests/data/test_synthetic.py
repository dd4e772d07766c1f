"""Tests for assay.data.synthetic: determinism, pictures that match their text, schema, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("PIL", reason="Pillow is not installed (pip install 'assay[vision]')")
from PIL import Image  # noqa: E402

from assay.data.synthetic import (  # noqa: E402
    BACKGROUNDS,
    PALETTE,
    color_names,
    shape_names,
    write_shapes,
)
from assay.errors import ConfigError  # noqa: E402

JSONL = ("vqa", "captions", "classify", "match")
SHAPE_RE = "|".join(shape_names())
WORD_TO_SIZE = {"big": "large", "large": "large", "small": "small", "little": "small",
                "tiny": "small"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    write_shapes(out, n=30, n_support=12, seed=0)
    return out


def all_rows(root: Path, kind: str) -> list[dict]:
    return read_jsonl(root / f"{kind}.jsonl") + read_jsonl(root / f"{kind}_support.jsonl")


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---------------------------------------------------------------- helpers that read pictures


def pixel_guess(img: Image.Image, s: dict) -> str:
    """Which shape the pixels of ``s``'s box look like, measured independently of the drawer."""
    x, y, r, rgb = s["x"], s["y"], s["r"], PALETTE[s["color"]]
    box = [(i, j) for i in range(x - r, x + r + 1) for j in range(y - r, y + r + 1)]
    filled = {p for p in box if img.getpixel(p) == rgb}
    if (round(x - 0.8 * r), round(y - 0.8 * r)) in filled:
        return "square"
    if not any((i, round(y + 0.65 * r)) in filled for i in range(x - r, x + r + 1)):
        return "triangle"  # nothing below the base; a star's lower arms reach 0.8 r
    frac = len(filled) / len(box)
    return "circle" if frac >= 0.65 else "cross" if frac >= 0.4 else "star"


def check_picture(root: Path, image: str, shapes: list[dict], background: str) -> None:
    img = Image.open(root / image)
    assert img.mode == "RGB" and img.size == (96, 96)
    assert img.getpixel((0, 0)) == BACKGROUNDS[background]
    for s in shapes:
        assert img.getpixel((s["x"], s["y"])) == PALETTE[s["color"]], (image, s)
        assert pixel_guess(img, s) == s["shape"], (image, s)
    if len(shapes) == 2:
        left, right = shapes
        assert left["x"] + left["r"] < right["x"] - right["r"], image  # left, and no overlap


def true_answer(q: dict, shapes: list[dict]) -> str:
    """The answer to a structured query, computed here rather than by the module."""
    by_shape = {s["shape"]: s for s in shapes}
    side = {"left": shapes[0], "right": shapes[-1]}
    t = q["type"]
    if t in ("color_of", "size_of"):
        return by_shape[q["shape"]]["color" if t == "color_of" else "size"]
    if t == "shape":
        return shapes[0]["shape"]
    if t in ("shape_at", "color_at"):
        return side[q["side"]]["shape" if t == "shape_at" else "color"]
    if t == "count":
        return str(len(shapes))
    if t == "count_color":
        return str(sum(s["color"] == q["color"] for s in shapes))
    if t == "exists":
        return "yes" if q["shape"] in by_shape else "no"
    assert t == "is_color", t
    return "yes" if by_shape[q["shape"]]["color"] == q["color"] else "no"


def describes(caption: str, shapes: list[dict]) -> bool:
    """True when every '<colour|size> <shape>' phrase in ``caption`` holds of ``shapes``."""
    phrases = re.findall(rf"(\w+) ({SHAPE_RE})\b", caption)
    assert phrases, caption

    def holds(adj: str, shape: str, s: dict) -> bool:
        attr = WORD_TO_SIZE.get(adj, adj)
        return s["shape"] == shape and attr in (s["color"], s["size"])

    if " to the left of " in caption:
        return len(phrases) == 2 and all(holds(a, sh, s) for (a, sh), s in zip(phrases, shapes))
    return all(any(holds(a, sh, s) for s in shapes) for a, sh in phrases)


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_shapes(a, n=10, n_support=6, seed=3)
    write_shapes(b, n=10, n_support=6, seed=3)
    write_shapes(c, n=10, n_support=6, seed=4)
    fa, fb, fc = file_bytes(a), file_bytes(b), file_bytes(c)
    assert len([k for k in fa if k.endswith(".png")]) == (10 + 10 + 20) + (6 + 6 + 12)
    assert fa == fb
    assert set(fa) == set(fc)
    assert all(fa[f"{k}.jsonl"] != fc[f"{k}.jsonl"] for k in JSONL)
    assert fa["images/test_0001.png"] != fc["images/test_0001.png"]


def test_png_has_no_metadata(shapes_dir: Path) -> None:
    data = (shapes_dir / "images" / "test_0001.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunks.append(data[pos + 4:pos + 8])
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}  # no tIME, tEXt or other metadata


def test_return_value_names_every_file(tmp_path: Path) -> None:
    paths = write_shapes(tmp_path, n=2, n_support=1)
    expected = set(JSONL) | {f"{k}_support" for k in JSONL} | {"images"}
    assert set(paths) == expected
    assert paths["vqa"] == tmp_path / "vqa.jsonl"
    assert paths["match_support"] == tmp_path / "match_support.jsonl"
    assert all(p.exists() for p in paths.values())
    assert len(read_jsonl(paths["captions"])) == 2
    assert len(read_jsonl(paths["classify_support"])) == 1


def test_names() -> None:
    assert shape_names() == ["circle", "square", "triangle", "star", "cross"]
    assert color_names() == ["red", "green", "blue", "yellow", "purple", "orange"]
    assert len(set(PALETTE.values())) == 6
    assert not set(PALETTE.values()) & set(BACKGROUNDS.values())


# ---------------------------------------------------------------- pictures match text


def test_scene_pictures_match_truth(shapes_dir: Path) -> None:
    rows = all_rows(shapes_dir, "captions") + all_rows(shapes_dir, "classify")
    for row in rows:
        check_picture(shapes_dir, row["image"], row["shapes"], row["background"])
    counts = Counter(len(r["shapes"]) for r in all_rows(shapes_dir, "captions"))
    assert counts[1] > 0 and counts[2] > 0 and set(counts) == {1, 2}


def test_match_pictures_match_truth(shapes_dir: Path) -> None:
    for row in all_rows(shapes_dir, "match"):
        for image, shapes in zip(row["images"], row["shapes"]):
            check_picture(shapes_dir, image, shapes, row["background"])


def normalise(answer: str) -> str:
    """An annotator's answer reduced to a canonical value (the paraphrases the set uses)."""
    a = answer.lower().rstrip(".")
    a = re.sub(r"^(the |an |a |it is )", "", a)
    a = re.sub(r" one$", "", a)
    words = {"zero": "0", "one": "1", "two": "2", "three": "3", "yeah": "yes", "nope": "no",
             "big": "large", "little": "small"}
    return words.get(a, a)


VALUES = set(color_names()) | set(shape_names()) | {"yes", "no", "small", "large", "0", "1", "2",
                                                       "3"}


def test_vqa_majority_is_the_truth(shapes_dir: Path) -> None:
    rows = all_rows(shapes_dir, "vqa")
    disagreed = 0
    for row in rows:
        truth = true_answer(row["query"], row["shapes"])
        votes = Counter(a.lower() for a in row["answers"]).most_common()
        assert votes[0][0] == truth, row
        assert len(votes) == 1 or votes[0][1] > votes[1][1], row  # a strict majority
        assert row["answer"] == truth
        values = [normalise(a) for a in row["answers"]]
        assert set(values) <= VALUES, row  # every answer is a plausible surface form
        n_wrong = sum(v != truth for v in values)
        assert n_wrong <= 3 and len(set(values) - {truth}) <= 1, row
        disagreed += n_wrong > 0
    assert 0 < disagreed < len(rows) / 2


def test_vqa_questions_name_their_query(shapes_dir: Path) -> None:
    types = Counter()
    for row in all_rows(shapes_dir, "vqa"):
        q = row["query"]
        types[row["answer_type"]] += 1
        for field in ("shape", "color", "side"):
            if field in q:
                assert q[field] in row["question"], row
        expected_type = {"count": "number", "count_color": "number", "exists": "yes/no",
                         "is_color": "yes/no"}.get(q["type"], "other")
        assert row["answer_type"] == expected_type
        if expected_type == "number":
            assert row["answer"].isdigit()
    assert set(types) == {"yes/no", "number", "other"}


def test_number_answers_use_digits_and_words(shapes_dir: Path) -> None:
    answers = [a for r in all_rows(shapes_dir, "vqa") if r["answer_type"] == "number"
               for a in r["answers"]]
    assert "1" in answers or "2" in answers
    assert "one" in answers or "two" in answers


def test_captions_describe_their_picture(shapes_dir: Path) -> None:
    for row in all_rows(shapes_dir, "captions"):
        names = {s["shape"] for s in row["shapes"]}
        for cap in row["captions"]:
            assert describes(cap, row["shapes"]), (cap, row["shapes"])
            assert set(re.findall(SHAPE_RE, cap)) == names, cap
            if " to the right of " in cap:  # "<right shape> to the right of <left shape>"
                first = re.search(SHAPE_RE, cap).group(0)
                assert first == row["shapes"][1]["shape"], cap


def test_match_captions_swap_words_and_describe_one_image_each(shapes_dir: Path) -> None:
    swaps = Counter()
    for row in all_rows(shapes_dir, "match"):
        c0, c1 = row["captions"]
        s0, s1 = row["shapes"]
        assert c0 != c1 and Counter(c0.split()) == Counter(c1.split())
        assert describes(c0, s0) and not describes(c0, s1), row
        assert describes(c1, s1) and not describes(c1, s0), row
        swaps[row["swap"]] += 1
        changed = {k for a, b in zip(s0, s1) for k in a if a[k] != b[k]}
        expected = {"color": {"color"}, "size": {"size", "r"},
                    "position": {"shape", "color", "size", "r", "x", "y"}}[row["swap"]]
        assert changed <= expected and changed, row
        if row["swap"] == "position":
            assert [s["shape"] for s in s0] == [s["shape"] for s in s1][::-1]
    assert set(swaps) == {"color", "size", "position"}


def test_classify_labels_are_balanced_and_true(shapes_dir: Path) -> None:
    rows = read_jsonl(shapes_dir / "classify.jsonl")
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == set(shape_names()) and set(counts.values()) == {6}  # 30 / 5
    for r in rows:
        assert len(r["shapes"]) == 1 and r["shapes"][0]["shape"] == r["label"]


# ---------------------------------------------------------------- schema


def test_schema(shapes_dir: Path) -> None:
    for row in all_rows(shapes_dir, "vqa"):
        assert {"id", "image", "question", "answers", "answer_type", "shapes"} <= set(row)
        assert len(row["answers"]) == 10 and all(isinstance(a, str) and a for a in row["answers"])
        assert row["image"].startswith("images/") and row["question"].endswith("?")
    per_image = Counter(r["image"] for r in read_jsonl(shapes_dir / "vqa.jsonl"))
    assert len(per_image) == 30 and set(per_image.values()) <= {1, 2}
    for row in all_rows(shapes_dir, "captions"):
        assert {"id", "image", "captions", "shapes"} <= set(row)
        assert len(row["captions"]) == 5 == len(set(row["captions"]))
    for row in all_rows(shapes_dir, "classify"):
        assert {"id", "image", "label", "shapes"} <= set(row) and row["label"] in shape_names()
    for row in all_rows(shapes_dir, "match"):
        assert {"id", "images", "captions", "shapes"} <= set(row)
        assert len(row["images"]) == 2 == len(row["captions"]) == len(row["shapes"])
        assert row["images"] == [f"images/{row['id']}a.png", f"images/{row['id']}b.png"]
    for kind in ("vqa", "captions", "classify", "match"):
        for row in all_rows(shapes_dir, kind):
            for shapes in row["shapes"] if kind == "match" else [row["shapes"]]:
                for s in shapes:
                    assert set(s) == {"shape", "color", "size", "x", "y", "r"}
    ids = [r["id"] for k in JSONL for r in all_rows(shapes_dir, k)]
    assert "test_0001" in ids and "support_0001" in ids and "match_0001" in ids


def test_rows_per_split(shapes_dir: Path) -> None:
    assert len(read_jsonl(shapes_dir / "captions.jsonl")) == 30
    assert len(read_jsonl(shapes_dir / "captions_support.jsonl")) == 12
    assert len(read_jsonl(shapes_dir / "match_support.jsonl")) == 12
    assert len(read_jsonl(shapes_dir / "classify_support.jsonl")) == 12


def test_bad_counts_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n must be a non-negative integer"):
        write_shapes(tmp_path, n=-1)
    with pytest.raises(ConfigError, match="n_support"):
        write_shapes(tmp_path, n_support=2.5)  # type: ignore[arg-type]


def test_default_set_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    paths = write_shapes(tmp_path)
    assert time.perf_counter() - start < 2.0
    assert len(list(paths["images"].glob("*.png"))) == 2 * (40 + 40 + 80)


# ---------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.data.synthetic", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "set"
    proc = run_cli(str(out), "--n", "4", "--n-support", "2", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 9
    for line in lines[:8]:
        path, rows = line.split("\t")
        assert Path(path).exists() and int(rows.split()[0]) == len(read_jsonl(Path(path)))
    assert lines[-1].endswith("\t24 images")  # (4 + 4 + 8) + (2 + 2 + 4)
    again = write_shapes(tmp_path / "again", n=4, n_support=2, seed=7)
    assert (out / "captions.jsonl").read_bytes() == again["captions"].read_bytes()


@pytest.mark.parametrize("args", [["--n", "-1"], ["--n", "abc"], ["--n-support", "-3"], []])
def test_cli_bad_argument(tmp_path: Path, args: list[str]) -> None:
    proc = run_cli(*([str(tmp_path / "x")] if args else []), *args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "error" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "x").exists()
