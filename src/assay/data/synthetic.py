"""A small, deterministic image set of coloured shapes for the multimodal tasks.

Why: no real image dataset can be downloaded where assay is developed and tested, yet the
vision-language tasks (open-ended VQA, captioning, classification by likelihood,
Winoground-style image-text matching, few-shot with a support set) need images whose content is
known exactly. So we draw them: 96x96 RGB pictures of one or two shapes from a fixed palette.
Every row carries the structured truth it was made from (``shapes``: shape, colour, size and
centre of each shape), so a test can check the text against the pixels.

Determinism: all choices come from one ``random.Random(seed)``; drawing uses Pillow without
anti-aliasing (the pixel at a shape's centre is exactly its palette colour) and PNGs are saved
without metadata, so the same seed gives the same bytes on every run.

Files written into ``out`` (``<kind>.jsonl`` for the test split, ``<kind>_support.jsonl`` for the
support split, ``n`` and ``n_support`` rows respectively):

- ``vqa``: one or two questions per scene image, 10 annotator answers each (mostly the true
  answer in varying surface forms, sometimes 1-3 annotators disagree; the lower-cased majority is
  always the truth), ``answer`` (canonical truth), ``answer_type`` and ``query`` (structured).
- ``captions``: 5 differently phrased captions per scene image.
- ``classify``: one-shape images with a shape ``label`` from :func:`shape_names`, balanced.
- ``match``: Winoground-style pairs; the two captions use the same multiset of words and caption
  i describes image i only (a colour, position or size swap).

Run ``python -m assay.data.synthetic OUT_DIR [--n N] [--n-support M] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from math import cos, pi, sin
from pathlib import Path
from typing import Any

from assay.errors import AssayError, ConfigError, MissingDependency

SIZE = 96
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "grey": (225, 225, 225)}
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 20),
    "purple": (140, 50, 180),
    "orange": (250, 135, 20),
}
# Bump when the generated pictures or rows change: cached copies (synthetic:shapes/…) are per version.
VERSION = 1
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
SIZES: tuple[str, ...] = ("small", "large")
# the confusions a careless annotator plausibly makes
NEAR_COLOR = {"red": "orange", "orange": "red", "yellow": "orange", "green": "blue",
              "blue": "purple", "purple": "blue"}
NEAR_SHAPE = {"circle": "square", "square": "circle", "triangle": "star", "star": "cross",
              "cross": "star"}
# radius (half the extent) in pixels: one-shape images, two-shape images
RADIUS = {1: {"small": 16, "large": 30}, 2: {"small": 11, "large": 19}}
NUMBER_WORDS = ("zero", "one", "two", "three")
KINDS = ("vqa", "captions", "classify", "match")


def shape_names() -> list[str]:
    """The class labels of the ``classify`` files, in a fixed order."""
    return list(SHAPES)


def color_names() -> list[str]:
    """The palette's colour names, in a fixed order."""
    return list(PALETTE)


@dataclass(frozen=True)
class Shape:
    shape: str
    color: str
    size: str
    x: int
    y: int
    r: int


@dataclass(frozen=True)
class Scene:
    id: str
    background: str
    shapes: tuple[Shape, ...]  # two shapes: left first

    @property
    def image(self) -> str:
        return f"images/{self.id}.png"

    def truth(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.shapes]


# ---------------------------------------------------------------- drawing


def _pil() -> Any:
    try:
        from PIL import Image, ImageDraw
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependency("the synthetic image set", "vision", "Pillow") from exc
    return Image, ImageDraw


def _star(x: int, y: int, r: int) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.45
        ang = -pi / 2 + k * pi / 5
        pts.append((x + rad * cos(ang), y + rad * sin(ang)))
    return pts


def _draw_shape(draw: Any, s: Shape) -> None:
    fill, x, y, r = PALETTE[s.color], s.x, s.y, s.r
    if s.shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif s.shape == "square":
        h = round(r * 0.85)
        draw.rectangle((x - h, y - h, x + h, y + h), fill=fill)
    elif s.shape == "triangle":  # equilateral, pointing up, centroid at (x, y)
        draw.polygon([(x + r * cos(a), y + r * sin(a)) for a in (-pi / 2, pi / 6, 5 * pi / 6)],
                     fill=fill)
    elif s.shape == "star":
        draw.polygon(_star(x, y, r), fill=fill)
    elif s.shape == "cross":
        w = max(3, round(r * 0.3))
        draw.rectangle((x - r, y - w, x + r, y + w), fill=fill)
        draw.rectangle((x - w, y - r, x + w, y + r), fill=fill)
    else:
        raise ConfigError(f"unknown shape '{s.shape}'")


def render(scene: Scene, path: Path) -> None:
    """Draw ``scene`` and save it as a metadata-free PNG."""
    Image, ImageDraw = _pil()
    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for s in scene.shapes:
        _draw_shape(draw, s)
    img.save(path, format="PNG", compress_level=6)


# ---------------------------------------------------------------- scenes


def _one(rng: random.Random, shape: str, color: str, size: str) -> Shape:
    x, y = SIZE // 2 + rng.randint(-6, 6), SIZE // 2 + rng.randint(-6, 6)
    return Shape(shape, color, size, x, y, RADIUS[1][size])


def _pair(rng: random.Random, specs: Sequence[tuple[str, str, str]]) -> tuple[Shape, Shape]:
    """Two shapes, the first in the left half and the second in the right half (no overlap)."""
    out = []
    for (shape, color, size), cx in zip(specs, (24, 72)):
        x, y = cx + rng.randint(-3, 3), SIZE // 2 + rng.randint(-10, 10)
        out.append(Shape(shape, color, size, x, y, RADIUS[2][size]))
    return out[0], out[1]


def _scene(rng: random.Random, id_: str, n_shapes: int, shape: str | None = None) -> Scene:
    bg = rng.choice(sorted(BACKGROUNDS))
    if n_shapes == 1:
        s = _one(rng, shape or rng.choice(SHAPES), rng.choice(color_names()), rng.choice(SIZES))
        return Scene(id_, bg, (s,))
    shapes = rng.sample(SHAPES, 2)  # two different shapes, so "the circle" is unambiguous
    specs = [(sh, rng.choice(color_names()), rng.choice(SIZES)) for sh in shapes]
    return Scene(id_, bg, _pair(rng, specs))


# ---------------------------------------------------------------- text helpers


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _side(scene: Scene, side: str) -> Shape:
    return scene.shapes[0] if side == "left" else scene.shapes[1]


def _find(scene: Scene, shape: str) -> Shape:
    return next(s for s in scene.shapes if s.shape == shape)


# ---------------------------------------------------------------- VQA


def answer(scene: Scene, query: dict[str, Any]) -> str:
    """The true canonical answer to a structured ``query`` about ``scene``."""
    t = query["type"]
    if t == "color_of":
        return _find(scene, query["shape"]).color
    if t == "size_of":
        return _find(scene, query["shape"]).size
    if t == "shape":
        return scene.shapes[0].shape
    if t == "shape_at":
        return _side(scene, query["side"]).shape
    if t == "color_at":
        return _side(scene, query["side"]).color
    if t == "count":
        return str(len(scene.shapes))
    if t == "count_color":
        return str(sum(s.color == query["color"] for s in scene.shapes))
    if t == "exists":
        return "yes" if any(s.shape == query["shape"] for s in scene.shapes) else "no"
    if t == "is_color":
        return "yes" if _find(scene, query["shape"]).color == query["color"] else "no"
    raise ConfigError(f"unknown VQA query type '{t}'")


def _question(query: dict[str, Any]) -> str:
    t, q = query["type"], query
    return {
        "color_of": lambda: f"What color is the {q.get('shape')}?",
        "size_of": lambda: f"Is the {q.get('shape')} small or large?",
        "shape": lambda: "What shape is in the picture?",
        "shape_at": lambda: f"What shape is on the {q.get('side')}?",
        "color_at": lambda: f"What color is the shape on the {q.get('side')}?",
        "count": lambda: "How many shapes are there?",
        "count_color": lambda: f"How many {q.get('color')} shapes are there?",
        "exists": lambda: f"Is there {_a(str(q.get('shape')))} in the image?",
        "is_color": lambda: f"Is the {q.get('shape')} {q.get('color')}?",
    }[t]()


ANSWER_TYPE = {"count": "number", "count_color": "number", "exists": "yes/no",
               "is_color": "yes/no"}


def _queries(rng: random.Random, scene: Scene) -> list[dict[str, Any]]:
    """One or two distinct structured questions about ``scene``."""
    names = [s.shape for s in scene.shapes]
    pool: list[dict[str, Any]] = [
        {"type": "color_of", "shape": rng.choice(names)},
        {"type": "size_of", "shape": rng.choice(names)},
        {"type": "count"},
        {"type": "count_color", "color": rng.choice(color_names())},
        {"type": "exists", "shape": rng.choice(SHAPES)},
        {"type": "is_color", "shape": rng.choice(names), "color": rng.choice(color_names())},
    ]
    if len(scene.shapes) == 1:
        pool.append({"type": "shape"})
    else:
        pool += [{"type": "shape_at", "side": rng.choice(("left", "right"))},
                 {"type": "color_at", "side": rng.choice(("left", "right"))}]
    return rng.sample(pool, rng.choice((1, 2)))


def _wrong(rng: random.Random, query: dict[str, Any], truth: str) -> str:
    """What a disagreeing annotator says instead of ``truth``."""
    kind = query["type"]
    if kind in ("exists", "is_color"):
        return "no" if truth == "yes" else "yes"
    if kind in ("count", "count_color"):
        n = int(truth)
        return str(n + 1 if n == 0 or rng.random() < 0.5 else n - 1)
    if kind in ("color_of", "color_at"):
        return NEAR_COLOR[truth]
    if kind == "size_of":
        return "small" if truth == "large" else "large"
    return NEAR_SHAPE[truth]


def _variants(truth: str, answer_type: str) -> list[str]:
    """Surface forms other than the bare word (they lower-case to something else)."""
    if answer_type == "number":
        return [NUMBER_WORDS[int(truth)]] if int(truth) < len(NUMBER_WORDS) else [truth + "."]
    if answer_type == "yes/no":
        return [truth + ".", "yeah" if truth == "yes" else "nope"]
    if truth in PALETTE:
        return [truth + ".", f"the {truth} one", f"it is {truth}"]
    if truth in SIZES:
        return [truth + ".", "big" if truth == "large" else "little", f"it is {truth}"]
    return [truth + ".", "the " + truth, _a(truth)]


def annotate(rng: random.Random, query: dict[str, Any], truth: str, answer_type: str) -> list[str]:
    """Ten human-like answers: 6 lower-case to ``truth``; 0-3 disagree, the rest are variants."""
    n_wrong = rng.choices((0, 1, 2, 3), weights=(60, 20, 12, 8))[0]
    bare = [truth.capitalize() if rng.random() < 0.25 else truth for _ in range(6)]
    rest = [rng.choice(_variants(truth, answer_type)) for _ in range(4 - n_wrong)]
    wrong = _wrong(rng, query, truth)
    answers = bare + rest + [wrong] * n_wrong
    rng.shuffle(answers)
    return answers


def _vqa_rows(rng: random.Random, scene: Scene) -> list[dict[str, Any]]:
    rows = []
    for k, query in enumerate(_queries(rng, scene), 1):
        truth = answer(scene, query)
        a_type = ANSWER_TYPE.get(query["type"], "other")
        rows.append({"id": f"{scene.id}_q{k}", "image": scene.image, "question": _question(query),
                     "answers": annotate(rng, query, truth, a_type), "answer": truth,
                     "answer_type": a_type, "query": query, "background": scene.background,
                     "shapes": scene.truth()})
    return rows


# ---------------------------------------------------------------- captions


BIG = {"small": ("small", "little", "tiny"), "large": ("big", "large")}


def _one_captions(rng: random.Random, scene: Scene) -> list[str]:
    s, bg = scene.shapes[0], scene.background
    big = rng.choice(BIG[s.size])
    pool = [
        f"{_a(s.color)} {s.shape} on {_a(bg)} background",
        f"one {s.color} {s.shape}",
        f"{_a(big)} {s.color} {s.shape} in the middle",
        f"a single {s.color} {s.shape} on {bg}",
        f"a picture of {_a(big)} {s.color} {s.shape}",
        f"there is {_a(s.color)} {s.shape} in the center of the image",
        f"{_a(s.color)} {s.shape} drawn on a plain {bg} background",
    ]
    return rng.sample(pool, 5)


def _two_captions(rng: random.Random, scene: Scene) -> list[str]:
    left, right = scene.shapes
    lc, rc = f"{left.color} {left.shape}", f"{right.color} {right.shape}"
    lb, rb = rng.choice(BIG[left.size]), rng.choice(BIG[right.size])
    pool = [
        f"{_a(lc)} to the left of {_a(rc)}",
        f"{_a(rc)} to the right of {_a(lc)}",
        f"{_a(lc)} and {_a(rc)}",
        f"two shapes: {_a(lc)} and {_a(rc)}",
        f"{_a(lb)} {lc} next to {_a(rb)} {rc}",
        f"{_a(lc)} on the left and {_a(rc)} on the right",
        f"{_a(lc)} beside {_a(rc)} on {_a(scene.background)} background",
    ]
    return rng.sample(pool, 5)


def _caption_row(rng: random.Random, scene: Scene) -> dict[str, Any]:
    caps = _one_captions(rng, scene) if len(scene.shapes) == 1 else _two_captions(rng, scene)
    return {"id": scene.id, "image": scene.image, "captions": caps,
            "background": scene.background, "shapes": scene.truth()}


# ---------------------------------------------------------------- matching pairs


def _phrase(s: Shape, attr: str) -> str:
    """A noun phrase naming ``s`` by the attribute a match pair swaps."""
    if attr == "size":
        return _a(f"{BIG[s.size][0]} {s.shape}")
    return _a(f"{s.color} {s.shape}")


def _match_pair(rng: random.Random, id_: str) -> tuple[Scene, Scene, list[str], str]:
    """Two scenes and two captions with the same words, caption i true of scene i only."""
    swap = rng.choice(("color", "position", "size"))
    s1, s2 = rng.sample(SHAPES, 2)
    c1, c2 = rng.sample(color_names(), 2)
    z1, z2 = rng.sample(SIZES, 2) if swap == "size" else (rng.choice(SIZES),) * 2
    bg = rng.choice(sorted(BACKGROUNDS))
    a = _pair(rng, [(s1, c1, z1), (s2, c2, z2)])
    if swap == "color":
        b = (replace(a[0], color=c2), replace(a[1], color=c1))
    elif swap == "size":
        b = (replace(a[0], size=z2, r=RADIUS[2][z2]), replace(a[1], size=z1, r=RADIUS[2][z1]))
    else:  # position: the same two objects change sides
        b = (replace(a[1], x=a[0].x, y=a[0].y), replace(a[0], x=a[1].x, y=a[1].y))
    attr = "size" if swap == "size" else "color"
    joins = (" to the left of ", " and ") if swap != "position" else (" to the left of ",)
    join = rng.choice(joins)
    caps = [_phrase(sc[0], attr) + join + _phrase(sc[1], attr) for sc in (a, b)]
    return Scene(id_ + "a", bg, a), Scene(id_ + "b", bg, b), caps, swap


def _match_row(rng: random.Random, id_: str, out: Path) -> dict[str, Any]:
    sa, sb, caps, swap = _match_pair(rng, id_)
    render(sa, out / sa.image)
    render(sb, out / sb.image)
    return {"id": id_, "images": [sa.image, sb.image], "captions": caps, "swap": swap,
            "background": sa.background, "shapes": [sa.truth(), sb.truth()]}


# ---------------------------------------------------------------- splits and files


def _split_rows(rng: random.Random, split: str, n: int, out: Path) -> dict[str, list[dict]]:
    """All rows of one split (``test`` or ``support``), rendering its images into ``out``."""
    rows: dict[str, list[dict]] = {k: [] for k in KINDS}
    for i in range(1, n + 1):
        scene = _scene(rng, f"{split}_{i:04d}", rng.choice((1, 2)))
        render(scene, out / scene.image)
        rows["vqa"] += _vqa_rows(rng, scene)
        rows["captions"].append(_caption_row(rng, scene))
    labels = [SHAPES[i % len(SHAPES)] for i in range(n)]
    rng.shuffle(labels)
    for i, label in enumerate(labels, 1):
        scene = _scene(rng, f"classify_{split}_{i:04d}", 1, shape=label)
        render(scene, out / scene.image)
        rows["classify"].append({"id": scene.id, "image": scene.image, "label": label,
                                 "background": scene.background, "shapes": scene.truth()})
    prefix = "match" if split == "test" else "match_support"
    rows["match"] = [_match_row(rng, f"{prefix}_{i:04d}", out) for i in range(1, n + 1)]
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8", newline="\n")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def write_shapes(out: Path, n: int = 40, n_support: int = 40, seed: int = 0) -> dict[str, Path]:
    """Write the image set into ``out``; return ``kind -> path`` (plus ``images``: the folder).

    Kinds: ``vqa``, ``captions``, ``classify``, ``match`` (test split, ``n`` scenes / rows) and
    the same with ``_support`` (``n_support``). The VQA files have 1-2 rows per scene.
    """
    _check_count("n", n)
    _check_count("n_support", n_support)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths: dict[str, Path] = {}
    for split, count, suffix in (("test", n, ""), ("support", n_support, "_support")):
        for kind, rows in _split_rows(rng, split, count, out).items():
            paths[kind + suffix] = out / f"{kind}{suffix}.jsonl"
            _write_jsonl(paths[kind + suffix], rows)
    paths["images"] = out / "images"
    return paths


# ---------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got '{text}'")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="python -m assay.data.synthetic",
                description="Write the synthetic shapes image set (PNG + JSONL).")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--n", type=_count, default=40, help="test-split rows per kind (default 40)")
    p.add_argument("--n-support", type=_count, default=40, help="support-split rows per kind")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        paths = write_shapes(args.out, args.n, args.n_support, args.seed)
    except (AssayError, OSError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    for _kind, path in paths.items():
        if path.suffix == ".jsonl":
            rows = path.read_text(encoding="utf-8").count("\n")
            print(f"{path}\t{rows} rows")
    print(f"{paths['images']}\t{len(list(paths['images'].glob('*.png')))} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
