"""The report's inline SVG charts, read back with ElementTree: marks are where the numbers say,
whiskers span the 95% CI, missing values are visible, names are escaped and output is stable."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from assay.reports.plots import (
    HEAT_SCALE,
    MISSING_FILL,
    OKABE_ITO,
    bar_chart,
    heatmap,
    palette,
    profile_chart,
    spread_plot,
)

NS = "{http://www.w3.org/2000/svg}"
MODELS = ["gemma3-270m", "smollm2"]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    for attr in ("viewBox", "width", "height"):
        assert root.get(attr)
    return root


def marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if cls in (e.get("class") or "").split()]


def by_ids(elems: list[ET.Element], **ids: str) -> ET.Element:
    found = [e for e in elems if all(e.get(f"data-{k}") == v for k, v in ids.items())]
    assert len(found) == 1, (ids, len(found))
    return found[0]


def fl(e: ET.Element, attr: str) -> float:
    return float(e.get(attr))  # type: ignore[arg-type]


def tooltip(e: ET.Element) -> str:
    t = e.find(f"{NS}title")
    assert t is not None
    return t.text or ""


# --------------------------------------------------------------------------- palette


def test_palette_is_stable_distinct_and_cycles() -> None:
    models = [f"m{i}" for i in range(8)]
    pal = palette(models)
    assert pal == palette(list(models))
    assert len(set(pal.values())) == 8
    assert list(pal.values()) == list(OKABE_ITO)
    nine = palette([*models, "m8"])
    assert nine["m8"] == nine["m0"]
    assert palette(["a", "b", "a"]) == {"a": OKABE_ITO[0], "b": OKABE_ITO[1]}


# --------------------------------------------------------------------------- bar chart

BAR_VALUES = {
    ("xcopa_it", "gemma3-270m"): (0.64, 0.024),
    ("xcopa_it", "smollm2"): (0.32, None),
    ("arc", "gemma3-270m"): (0.98, 0.05),   # upper whisker clipped at 100
    ("arc", "smollm2"): (0.02, 0.03),       # lower whisker clipped at 0
    ("piqa", "gemma3-270m"): None,
    # ("piqa", "smollm2") absent altogether
}


def _bar_svg() -> ET.Element:
    return parse(bar_chart(["xcopa_it", "arc", "piqa"], MODELS, BAR_VALUES, title="accuracy"))


def _scale(bars: list[ET.Element]) -> tuple[float, float]:
    """(baseline y, pixels per axis unit) recovered from the drawn bars."""
    b = by_ids(bars, task="xcopa_it", model="gemma3-270m")
    return fl(b, "y") + fl(b, "height"), fl(b, "height") / 64.0


def test_bar_count_and_heights_proportional() -> None:
    root = _bar_svg()
    bars = marks(root, "rect", "bar")
    assert len(bars) == 4
    h = {(b.get("data-task"), b.get("data-model")): fl(b, "height") for b in bars}
    assert h[("xcopa_it", "gemma3-270m")] / h[("xcopa_it", "smollm2")] == pytest.approx(2.0, rel=1e-3)
    assert h[("arc", "gemma3-270m")] / h[("xcopa_it", "smollm2")] == pytest.approx(98 / 32, rel=1e-3)
    base, _ = _scale(bars)
    assert all(fl(b, "y") + fl(b, "height") == pytest.approx(base, abs=0.01) for b in bars)
    assert float(by_ids(bars, task="xcopa_it", model="gemma3-270m").get("data-value")) == pytest.approx(64.0)


def test_bar_whiskers_span_ci_and_clip_to_axis() -> None:
    root = _bar_svg()
    bars = marks(root, "line", "ci")
    base, ppu = _scale(marks(root, "rect", "bar"))

    def extent(task: str, model: str) -> tuple[float, float]:
        w = by_ids(bars, task=task, model=model)
        ys = sorted([fl(w, "y1"), fl(w, "y2")])
        return (base - ys[1]) / ppu, (base - ys[0]) / ppu  # (low, high) in axis units

    lo, hi = extent("xcopa_it", "gemma3-270m")
    assert lo == pytest.approx(64 - 1.96 * 2.4, abs=0.05)
    assert hi == pytest.approx(64 + 1.96 * 2.4, abs=0.05)
    lo, hi = extent("arc", "gemma3-270m")
    assert lo == pytest.approx(98 - 1.96 * 5, abs=0.05)
    assert hi == pytest.approx(100.0, abs=0.05)
    lo, hi = extent("arc", "smollm2")
    assert lo == pytest.approx(0.0, abs=0.05)
    assert hi == pytest.approx(2 + 1.96 * 3, abs=0.05)
    assert len(bars) == 3  # no whisker where stderr is None
    assert "64.0 ± 4.7" in tooltip(by_ids(marks(root, "rect", "bar"), task="xcopa_it", model="gemma3-270m"))


def test_bar_missing_value_draws_marker_not_bar() -> None:
    root = _bar_svg()
    assert not [b for b in marks(root, "rect", "bar") if b.get("data-task") == "piqa"]
    missing = [m for m in marks(root, "text", "missing") if m.get("data-task") == "piqa"]
    assert sorted(m.get("data-model") for m in missing) == MODELS
    assert all("–" in "".join(m.itertext()) for m in missing)
    # the slot is kept: smollm2's piqa marker sits to the right of gemma's, one bar apart
    xs = {m.get("data-model"): fl(m, "x") for m in missing}
    assert xs["smollm2"] - xs["gemma3-270m"] == pytest.approx(20.0)


def test_bar_escapes_names() -> None:
    nasty, model = 'a<b & "c"', "m'&<x>"
    svg = bar_chart([nasty], [model, "other"], {(nasty, model): (0.5, 0.01)}, title="<t> & more")
    root = parse(svg)
    assert tooltip(root) == "<t> & more"
    bar = marks(root, "rect", "bar")[0]
    assert bar.get("data-task") == nasty and bar.get("data-model") == model
    assert tooltip(bar).startswith(f"{nasty} · {model}: 50.0")
    labels = [g for g in root.iter(f"{NS}g") if g.get("class") == "task-label"]
    assert tooltip(labels[0]) == nasty
    legend = [t for t in root.iter(f"{NS}text") if t.get("class") == "legend-label"]
    assert model in [t.text for t in legend]


def test_bar_is_deterministic_and_compact() -> None:
    a = bar_chart(["t1", "t2"], MODELS, {("t1", "smollm2"): (0.123456, 0.0111)})
    assert a == bar_chart(["t1", "t2"], MODELS, {("t1", "smollm2"): (0.123456, 0.0111)})
    root = parse(a)
    for e in root.iter():
        for attr in ("x", "y", "width", "height", "x1", "x2", "y1", "y2"):
            if e.get(attr) is not None:
                frac = e.get(attr).partition(".")[2]
                assert len(frac) <= 2, (attr, e.get(attr))
    assert "font-family" not in a


def test_bar_width_grows_with_bars_and_long_names_rotate() -> None:
    few = parse(bar_chart(["t"], ["m"], {("t", "m"): (0.5, None)}))
    tasks = [f"task_{i}" for i in range(20)]
    many = parse(bar_chart(tasks, MODELS, {(t, "m"): (0.5, None) for t in tasks}))
    assert fl(few, "width") == 480
    assert fl(many, "width") > 480
    assert fl(many, "height") == fl(few, "height")
    long = "a_very_long_task_name_that_does_not_fit"
    root = parse(bar_chart([long, "x"], ["m"], {(long, "m"): (0.5, None)}))
    label = next(g for g in root.iter(f"{NS}g") if g.get("data-task") == long and g.get("class") == "task-label")
    text = label.find(f"{NS}text")
    assert "rotate" in (text.get("transform") or "")
    assert text.text != long and text.text.endswith("…")
    assert tooltip(label) == long


def test_bar_non_percent_axis_and_single_model_has_no_legend() -> None:
    root = parse(bar_chart(["t1", "t2"], ["m"], {("t1", "m"): (2.0, None), ("t2", "m"): (4.0, None)}, percent=False))
    bars = marks(root, "rect", "bar")
    assert fl(by_ids(bars, task="t2"), "height") / fl(by_ids(bars, task="t1"), "height") == pytest.approx(2.0, rel=1e-3)
    grid = [fl(g, "y1") for g in root.iter(f"{NS}line") if g.get("class") == "grid"]
    base = max(grid)
    top_px = base - fl(by_ids(bars, task="t2"), "height") * 4.4 / 4.0  # axis top is 1.1 × max
    assert top_px < min(grid) + 0.05
    assert not [g for g in root.iter(f"{NS}g") if g.get("class") == "legend"]


def test_empty_inputs_give_no_data_svg() -> None:
    for svg in (bar_chart([], MODELS, {}), bar_chart(["t"], [], {}), heatmap([], ["it"], {}),
                spread_plot(["d"], [], {}), profile_chart([], MODELS, {})):
        root = parse(svg)
        assert "no data" in "".join(root.itertext())


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"bar_chart values\[\('t', 'm'\)\]"):
        bar_chart(["t"], ["m"], {("t", "m"): ("high", None)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="stderr"):
        bar_chart(["t"], ["m"], {("t", "m"): (0.5, -0.1)})
    with pytest.raises(ValueError, match="heatmap values"):
        heatmap(["m"], ["it"], {("m", "it"): "x"})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- heatmap


def test_heatmap_scale_ends_text_and_missing() -> None:
    rows, cols = ["m1", "m2", "m3"], ["it", "de"]
    values = {("m1", "it"): 0.2, ("m1", "de"): 0.5, ("m2", "it"): 0.8, ("m2", "de"): None, ("m3", "it"): 0.35}
    root = parse(heatmap(rows, cols, values))
    cells = marks(root, "rect", "cell")
    assert len(cells) == len(rows) * len(cols)
    assert by_ids(cells, row="m1", col="it").get("fill") == HEAT_SCALE[0]
    assert by_ids(cells, row="m2", col="it").get("fill") == HEAT_SCALE[-1]
    mid = by_ids(cells, row="m1", col="de").get("fill")
    assert mid not in (HEAT_SCALE[0], HEAT_SCALE[-1], MISSING_FILL)
    for row, col in (("m2", "de"), ("m3", "de")):
        assert by_ids(cells, row=row, col=col).get("fill") == MISSING_FILL
    labels = [t for t in root.iter(f"{NS}text") if t.get("class") == "cell-label"]
    texts = [t.text for t in labels]
    assert {"20.0", "50.0", "80.0", "35.0"} <= set(texts)
    assert texts.count("–") == 2
    # contrast: dark purple minimum gets white text, yellow maximum gets black
    fill_of = {t.text: t.get("fill") for t in labels}
    assert fill_of["20.0"] == "#FFFFFF" and fill_of["80.0"] == "#000000"
    assert tooltip(by_ids(cells, row="m2", col="it")) == "m2 · it: 80.0"


# --------------------------------------------------------------------------- spread plot


def test_spread_dots_per_prompt_and_min_max_line() -> None:
    values = {("xcopa", "gemma3-270m"): [0.5, 0.6, 0.55, 0.7], ("xcopa", "smollm2"): [0.3, 0.4],
              ("xnli", "gemma3-270m"): [0.25]}
    root = parse(spread_plot(["xcopa", "xnli"], MODELS, values))
    dots = marks(root, "circle", "dot")
    assert len(dots) == 7
    mine = [d for d in dots if d.get("data-dataset") == "xcopa" and d.get("data-model") == "gemma3-270m"]
    assert len(mine) == 4
    xs = sorted(fl(d, "cx") for d in mine)
    line = by_ids(marks(root, "line", "range"), dataset="xcopa", model="gemma3-270m")
    assert sorted([fl(line, "x1"), fl(line, "x2")]) == pytest.approx([xs[0], xs[-1]])
    assert all(fl(d, "cy") == pytest.approx(fl(line, "y1")) for d in mine)
    # dot positions are linear in the score: (0.6 - 0.5) is half of (0.7 - 0.5)
    assert (xs[2] - xs[0]) / (xs[3] - xs[0]) == pytest.approx(0.5, abs=0.01)
    mean = by_ids(marks(root, "line", "mean"), dataset="xcopa", model="gemma3-270m")
    assert fl(mean, "x1") == pytest.approx(xs[0] + (xs[3] - xs[0]) * 8.75 / 20, abs=0.02)
    assert float(mean.get("data-value")) == pytest.approx(58.75)
    missing = marks(root, "text", "missing")
    assert [(m.get("data-dataset"), m.get("data-model")) for m in missing] == [("xnli", "smollm2")]


# --------------------------------------------------------------------------- profile chart


def _points(poly: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in (poly.get("points") or "").split()]  # type: ignore[misc]


def test_profile_radar_for_three_or_more_families() -> None:
    fams = ["reasoning", "knowledge", "code", "multilingual"]
    values = {(f, m): 0.2 + 0.1 * i for i, f in enumerate(fams) for m in MODELS}
    values[("code", "smollm2")] = None
    root = parse(profile_chart(fams, MODELS, values))
    polys = marks(root, "polygon", "profile")
    assert sorted(p.get("data-model") for p in polys) == MODELS
    assert all(len(_points(p)) == len(fams) for p in polys)
    verts = marks(root, "circle", "mark")
    assert len(verts) == len(fams) * len(MODELS)
    gemma = next(p for p in polys if p.get("data-model") == "gemma3-270m")
    ring = [p for p in root.iter(f"{NS}polygon") if p.get("class") == "ring"][-1]  # the 100% ring
    centre = by_ids(verts, family="code", model="smollm2")  # missing: at the centre, hollow
    cx, cy = fl(centre, "cx"), fl(centre, "cy")
    assert "missing" in centre.get("class")
    # each vertex's distance from the centre is value/100 of the outer ring's radius
    radius = math.dist((cx, cy), _points(ring)[0])
    for (x, y), v in zip(_points(gemma), (0.2, 0.3, 0.4, 0.5)):
        assert math.dist((cx, cy), (x, y)) / radius == pytest.approx(v, abs=0.001)
    assert [g.get("data-model") for g in root.iter(f"{NS}g") if g.get("class") == "legend-item"] == MODELS


def test_profile_bars_for_two_families() -> None:
    values = {("reasoning", "gemma3-270m"): 0.6, ("code", "gemma3-270m"): 0.3, ("reasoning", "smollm2"): 0.45}
    root = parse(profile_chart(["reasoning", "code"], MODELS, values))
    assert not marks(root, "polygon", "profile")
    bars = marks(root, "rect", "mark")
    assert len(bars) == 3
    w = {(b.get("data-family"), b.get("data-model")): fl(b, "width") for b in bars}
    assert w[("reasoning", "gemma3-270m")] / w[("code", "gemma3-270m")] == pytest.approx(2.0, rel=1e-3)
    assert [(m.get("data-family"), m.get("data-model")) for m in marks(root, "text", "missing")] == [("code", "smollm2")]
    assert tooltip(by_ids(bars, family="reasoning", model="smollm2")) == "reasoning · smollm2: 45.0"
