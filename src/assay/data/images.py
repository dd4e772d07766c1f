"""Images by content: a dataset's image (a file, bytes, or a decoded picture) becomes an id.

Requests carry image ids, never pixels: the id is a hash of the image's bytes, so a request key
changes exactly when the picture does, and the same picture reached through two paths is
computed once. This module remembers, for the life of the process, where each id's bytes are;
a vision backend asks ``load(id)`` for the picture. Pillow is imported only when a picture is
opened or a decoded one must be encoded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from assay.errors import TaskError

_SOURCES: dict[str, Path | bytes] = {}
_BY_PATH: dict[tuple[str, int, int], str] = {}


def _id(data: bytes) -> str:
    return "img:" + hashlib.sha256(data).hexdigest()[:32]


def register_file(path: Path) -> str:
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise TaskError(f"{path}: image file not found") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _BY_PATH:
        ref = _id(path.read_bytes())
        _SOURCES.setdefault(ref, path)
        _BY_PATH[key] = ref
    return _BY_PATH[key]


def register_bytes(data: bytes) -> str:
    ref = _id(data)
    _SOURCES.setdefault(ref, bytes(data))
    return ref


def register(value: Any, base: Path | None, what: str) -> str:
    """An image id for a dataset value: a path (relative to ``base``, the data file's folder),
    bytes, a ``{"bytes": …, "path": …}`` record (Hugging Face ``Image`` features) or a Pillow
    image (encoded as PNG, losslessly)."""
    if isinstance(value, str) and value.startswith("img:") and value in _SOURCES:
        return value
    if isinstance(value, (str, Path)):
        p = Path(value).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.is_file():
            raise TaskError(f"{what}: image file not found: {p}")
        return register_file(p)
    if isinstance(value, (bytes, bytearray)):
        return register_bytes(bytes(value))
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        return register(value.get("bytes") or value["path"], base, what)
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return register_bytes(buf.getvalue())
    raise TaskError(f"{what}: an image must be a file path, bytes or a picture, got {type(value).__name__}")


def known(ref: str) -> bool:
    return ref in _SOURCES


def load(ref: str) -> Any:
    """The picture behind an id, as an RGB Pillow image."""
    from PIL import Image

    src = _SOURCES.get(ref)
    if src is None:
        raise TaskError(f"image {ref} is not known to this process (its task was not loaded)")
    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
        return im.convert("RGB")
