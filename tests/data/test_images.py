"""Image ids by content: files, bytes, Hugging Face Image records and decoded pictures."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from assay.data import images  # noqa: E402
from assay.errors import TaskError  # noqa: E402


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def test_the_same_bytes_get_the_same_id_from_any_source(tmp_path):
    data = _png((1, 2, 3))
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(data)
    ids = {
        images.register("a.png", tmp_path, "row 0"),
        images.register(tmp_path / "sub" / "b.png", None, "row 1"),
        images.register(data, None, "row 2"),
        images.register({"bytes": data, "path": None}, None, "row 3"),
        images.register({"bytes": None, "path": "sub/b.png"}, tmp_path, "row 4"),
    }
    assert len(ids) == 1
    ref = ids.pop()
    assert ref.startswith("img:") and images.known(ref)
    assert images.load(ref).getpixel((0, 0)) == (1, 2, 3)


def test_a_decoded_picture_is_kept_losslessly():
    pic = Image.new("RGB", (4, 4), (200, 10, 30))
    ref = images.register(pic, None, "row 0")
    assert images.load(ref).getpixel((3, 3)) == (200, 10, 30)
    assert images.register(Image.new("RGB", (4, 4), (200, 10, 31)), None, "row 1") != ref


def test_other_pixels_other_ids():
    assert images.register(_png((0, 0, 0)), None, "r") != images.register(_png((0, 0, 1)), None, "r")


def test_bad_values_are_errors_naming_the_row(tmp_path):
    with pytest.raises(TaskError, match="row 7: image file not found"):
        images.register("nope.png", tmp_path, "row 7")
    with pytest.raises(TaskError, match="row 8: an image must be"):
        images.register(3.5, tmp_path, "row 8")
    with pytest.raises(TaskError, match="not known"):
        images.load("img:" + "0" * 32)
