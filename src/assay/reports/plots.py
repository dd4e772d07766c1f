"""Inline SVG plots for the self-contained HTML comparison report.

The report must open offline as one file, so the charts are plain SVG strings built here rather
than a JavaScript charting library or images. Every chart follows the same conventions:

- text carries CSS classes (never a font family) so the page's stylesheet decides the font;
  sizes are attributes;
- every user-supplied string (task names, model ids) is escaped, so ``a<b & "c"`` is safe;
- coordinates are rounded to 2 decimals to keep the page small, and the output depends only on
  the arguments, so re-rendering a report gives a byte-identical file;
- each data mark has a ``<title>`` tooltip and ``data-*`` attributes, which the tests (and any
  script a reader adds) use instead of reverse-engineering geometry;
- empty input gives a small "no data" SVG instead of an exception, so one empty section never
  breaks the whole report.

Values are fractions in [0, 1] when ``percent`` is true (drawn ×100 on a 0–100 axis); otherwise
they are drawn as given on an axis from 0 to 1.1 × the largest value.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["palette", "bar_chart", "heatmap", "spread_plot", "profile_chart",
           "OKABE_ITO", "HEAT_SCALE", "MISSING_FILL"]

# Okabe & Ito (2008), in their published order except that black moves to the end: black reads
# as axis or text colour, so it is the colour least suited to the first model.
OKABE_ITO: tuple[str, ...] = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
)
# viridis stops: sequential, perceptually even and readable with the common colour-vision
# deficiencies; the first stop is the minimum of a heatmap, the last the maximum.
HEAT_SCALE: tuple[str, ...] = ("#440154", "#3B528B", "#21918C", "#5EC962", "#FDE725")
MISSING_FILL = "#D9D9D9"
MISSING_MARK = "–"

_HEIGHT = 320
_FONT = 11  # tick and label text size, px
_TITLE_FONT = 13
_CI_Z = 1.96
_LABEL_MAX = 20  # characters of a task/dataset name shown before truncation
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------- small helpers


def _num(x: float) -> str:
    """A coordinate with at most 2 decimals and no trailing zeros: short and deterministic."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _esc(text: object) -> str:
    """Escape for both text and attribute values; drop characters XML 1.0 cannot hold at all."""
    return html.escape(_XML_INVALID.sub("", str(text)), quote=True)


def _row_label(attr: str, name: str, x: float, y: float, limit: int | None = None) -> str:
    """A row's name at the left of a chart, right-aligned, cut to ``limit`` characters with the
    whole name as its tooltip; ``data-<attr>`` carries it for tests."""
    text = _truncate(name, limit) if limit else _truncate(name)
    return (f'<g class="row" data-{attr}="{_esc(name)}"><title>{_esc(name)}</title>'
            f'<text class="row-label" x="{_num(x)}" y="{_num(y)}" dy="0.32em" font-size="{_FONT}" text-anchor="end">{_esc(text)}</text></g>')


def _truncate(text: str, limit: int = _LABEL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unique(items: Iterable[object]) -> list[str]:
    """Keep first occurrences: a repeated id would otherwise draw two marks with one identity."""
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(item), None)
    return list(seen)


def _scale_value(value: float, percent: bool) -> float:
    return value * 100.0 if percent else value


def _label_value(value: float, percent: bool) -> str:
    """How a number reads in tooltips and cells: one decimal for percentages, three otherwise."""
    return f"{value * 100:.1f}" if percent else f"{value:.3f}"


def _finite(value: object, field: str) -> float | None:
    """A present, finite float; ``None`` and NaN/inf count as missing (a metric over no items)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field}: expected a number or None, got {type(value).__name__} {value!r}")
    return float(value) if math.isfinite(value) else None


def _svg(width: float, height: float, title: str, body: Sequence[str], cls: str) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="plot {cls}" '
            f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" height="{_num(height)}">')
    return "\n".join([head, f"<title>{_esc(title)}</title>", *body, "</svg>"])


def _no_data(title: str, cls: str) -> str:
    body = [f'<text class="no-data" x="120" y="34" font-size="{_FONT + 1}" text-anchor="middle">no data</text>']
    return _svg(240, 60, title or "no data", body, cls)


def _title_text(title: str, x: float) -> list[str]:
    if not title:
        return []
    return [f'<text class="plot-title" x="{_num(x)}" y="18" font-size="{_TITLE_FONT}" '
            f'font-weight="600">{_esc(title)}</text>']


def _legend(models: Sequence[str], colors: Mapping[str, str], x: float, y: float, max_width: float) -> tuple[list[str], float]:
    """Swatch + model id per model, wrapping into rows; returns the elements and the height used.

    A single model needs no legend: its name is already in the chart title or tooltips.
    """
    if len(models) <= 1:
        return [], 0.0
    out, cx, cy, row_h = ['<g class="legend">'], x, y, 16.0
    for model in models:
        label = _truncate(model, 28)
        w = 16 + len(label) * _FONT * 0.6 + 14
        if cx > x and cx + w > x + max_width:
            cx, cy = x, cy + row_h
        out.append(f'<g class="legend-item" data-model="{_esc(model)}"><title>{_esc(model)}</title>'
                   f'<rect x="{_num(cx)}" y="{_num(cy)}" width="10" height="10" fill="{colors[model]}"/>'
                   f'<text class="legend-label" x="{_num(cx + 14)}" y="{_num(cy + 9)}" font-size="{_FONT}">'
                   f'{_esc(label)}</text></g>')
        cx += w
    out.append("</g>")
    return out, cy - y + row_h + 4


def _nice_step(span: float, target: int = 5) -> float:
    """A 1/2/5×10^k tick step giving about ``target`` ticks over ``span``."""
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


@dataclass(frozen=True)
class _Axis:
    """A linear value axis from 0 to ``top`` mapped onto pixels ``p0`` (at 0) → ``p1`` (at top)."""

    top: float
    p0: float
    p1: float

    def px(self, v: float) -> float:
        v = min(max(v, 0.0), self.top)
        return self.p0 + (self.p1 - self.p0) * v / self.top

    def ticks(self) -> list[float]:
        step = _nice_step(self.top)
        n = int(math.floor(self.top / step + 1e-9))
        return [round(i * step, 10) for i in range(n + 1)]


def _axis_top(values: Iterable[float], percent: bool) -> float:
    """0–100 for percentages (comparable across charts), else 10% headroom over the largest."""
    if percent:
        return 100.0
    peak = max((v for v in values), default=0.0)
    return peak * 1.1 if peak > 0 else 1.0


def _tick_text(v: float) -> str:
    return f"{v:g}"


# --------------------------------------------------------------------------- palette


def palette(models: Sequence[str]) -> dict[str, str]:
    """A colour per model id, by first appearance, cycling through Okabe–Ito after 8 models.

    Colours follow position rather than a hash of the id so that the first models of every
    report get the most distinct colours; charts of one report share one palette.
    """
    return {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(_unique(models))}


def _colors_for(models: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    base = palette(models)
    if colors:
        base.update({m: str(colors[m]) for m in models if m in colors})
    return base


# --------------------------------------------------------------------------- bar chart

_BAR_W, _BAR_GAP, _GROUP_PAD = 18.0, 2.0, 18.0


def _bar_entry(raw: object, task: str, model: str) -> tuple[float, float | None] | None:
    """Normalise one ``values`` entry: ``None``, ``(value, stderr)`` or a bare number."""
    field = f"bar_chart values[({task!r}, {model!r})]"
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value, stderr = _finite(raw, field), None
    elif isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == 2:
        value, stderr = _finite(raw[0], field), _finite(raw[1], f"{field} stderr")
    else:
        raise ValueError(f"{field}: expected (value, stderr) or None, got {raw!r}")
    if value is None:
        return None
    if stderr is not None and stderr < 0:
        raise ValueError(f"{field} stderr: must not be negative, got {stderr}")
    return value, stderr


def _task_label(task: str, x: float, y: float, rotate: bool) -> str:
    """A task name under its group; long names are rotated and cut, the full name in <title>."""
    shown = _truncate(task) if rotate else task
    if rotate:
        text = (f'<text class="tick-label" x="{_num(x)}" y="{_num(y)}" font-size="{_FONT}" text-anchor="end" '
                f'transform="rotate(-35 {_num(x)} {_num(y)})">{_esc(shown)}</text>')
    else:
        text = f'<text class="tick-label" x="{_num(x)}" y="{_num(y)}" font-size="{_FONT}" text-anchor="middle">{_esc(shown)}</text>'
    return f'<g class="task-label" data-task="{_esc(task)}"><title>{_esc(task)}</title>{text}</g>'


def _value_axis_y(axis: _Axis, x0: float, x1: float, label: str) -> list[str]:
    """Horizontal grid lines with tick labels for a vertical value axis, plus the axis title."""
    out = ['<g class="axis y-axis">']
    for t in axis.ticks():
        y = _num(axis.px(t))
        out.append(f'<line class="grid" x1="{_num(x0)}" x2="{_num(x1)}" y1="{y}" y2="{y}" stroke="#e0e0e0"/>'
                   f'<text class="tick" x="{_num(x0 - 5)}" y="{y}" dy="0.32em" font-size="{_FONT}" text-anchor="end">'
                   f'{_tick_text(t)}</text>')
    mid = (axis.p0 + axis.p1) / 2
    out.append(f'<text class="axis-label" x="12" y="{_num(mid)}" font-size="{_FONT}" text-anchor="middle" '
               f'transform="rotate(-90 12 {_num(mid)})">{_esc(label)}</text>')
    out.append(f'<line class="axis-line" x1="{_num(x0)}" x2="{_num(x1)}" y1="{_num(axis.p0)}" y2="{_num(axis.p0)}" stroke="#555"/>')
    out.append("</g>")
    return out


def _tooltip(what: str, model: str, value: float, percent: bool, ci: float | None = None) -> str:
    s = f"{what} · {model}: {_label_value(value, percent)}"
    if ci is not None:
        s += f" ± {_label_value(ci, percent)} (95% CI)"
    return s


def _bar(task: str, model: str, entry: tuple[float, float | None], x: float, axis: _Axis,
         color: str, percent: bool) -> list[str]:
    """One bar and, when a standard error is known, its 95% CI whisker clipped to the axis."""
    value, stderr = entry
    shown = _scale_value(value, percent)
    top, base = axis.px(shown), axis.p0
    ci = None if stderr is None else _CI_Z * stderr
    tip = _esc(_tooltip(task, model, value, percent, ci))
    ids = f'data-task="{_esc(task)}" data-model="{_esc(model)}"'
    out = [f'<rect class="bar" {ids} data-value="{_num4(shown)}" x="{_num(x)}" y="{_num(top)}" '
           f'width="{_num(_BAR_W)}" height="{_num(base - top)}" fill="{_esc(color)}"><title>{tip}</title></rect>']
    if ci is not None:
        lo, hi = axis.px(_scale_value(value - ci, percent)), axis.px(_scale_value(value + ci, percent))
        cx, cap = x + _BAR_W / 2, _BAR_W / 4
        out.append(f'<g class="whisker" {ids}><title>{tip}</title>'
                   f'<line class="ci" {ids} x1="{_num(cx)}" x2="{_num(cx)}" y1="{_num(lo)}" y2="{_num(hi)}" stroke="#222"/>'
                   f'<line x1="{_num(cx - cap)}" x2="{_num(cx + cap)}" y1="{_num(hi)}" y2="{_num(hi)}" stroke="#222"/>'
                   f'<line x1="{_num(cx - cap)}" x2="{_num(cx + cap)}" y1="{_num(lo)}" y2="{_num(lo)}" stroke="#222"/></g>')
    return out


def _num4(x: float) -> str:
    """Data attributes keep 4 decimals: they are read back by tests and scripts, not drawn."""
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _missing(x: float, y: float, **ids: str) -> str:
    data = " ".join(f'data-{k}="{_esc(v)}"' for k, v in ids.items())
    what = " · ".join(ids.values())
    return (f'<text class="missing" {data} x="{_num(x)}" y="{_num(y)}" font-size="{_FONT}" text-anchor="middle">'
            f'<title>{_esc(what)}: no value</title>{MISSING_MARK}</text>')


def bar_chart(tasks: Sequence[str], models: Sequence[str],
              values: Mapping[tuple[str, str], tuple[float, float | None] | None], *,
              percent: bool = True, title: str = "", colors: Mapping[str, str] | None = None) -> str:
    """Grouped bars, one group per task and one bar per model, with 95% CI whiskers.

    A missing (task, model) keeps its slot, so bars of one model stay at the same offset in every
    group, and shows a "–" marker there so an absent result is not mistaken for a zero.
    """
    tasks, models = _unique(tasks), _unique(models)
    if not tasks or not models:
        return _no_data(title, "bar-chart")
    entries = {(t, m): _bar_entry(values.get((t, m)), t, m) for t in tasks for m in models}
    colors_ = _colors_for(models, colors)
    bars_w = len(models) * (_BAR_W + _BAR_GAP) - _BAR_GAP
    left, right = 52.0, 16.0
    width = max(480.0, left + right + len(tasks) * (bars_w + _GROUP_PAD))
    group_w = (width - left - right) / len(tasks)  # few bars: groups widen to fill the minimum width
    rotate = any(len(t) * _FONT * 0.6 > group_w - 4 for t in tasks)
    legend, legend_h = _legend(models, colors_, left, 28 if title else 8, width - left - right)
    top = (28 if title else 8) + legend_h + 8
    bottom = 96.0 if rotate else 40.0
    present = [_scale_value(e[0], percent) for e in entries.values() if e is not None]
    axis = _Axis(_axis_top(present, percent), _HEIGHT - bottom, top)
    body = [*_title_text(title, left), *legend,
            *_value_axis_y(axis, left, width - right, "score (%)" if percent else "score")]
    for gi, task in enumerate(tasks):
        gx = left + gi * group_w + (group_w - bars_w) / 2
        body.append(f'<g class="group" data-task="{_esc(task)}">')
        for mi, model in enumerate(models):
            x = gx + mi * (_BAR_W + _BAR_GAP)
            entry = entries[(task, model)]
            if entry is None:
                body.append(_missing(x + _BAR_W / 2, axis.p0 - 4, task=task, model=model))
            else:
                body.extend(_bar(task, model, entry, x, axis, colors_[model], percent))
        body.append("</g>")
        cx = gx + bars_w / 2
        body.append(_task_label(task, cx, axis.p0 + 15, rotate))
    body.append(f'<text class="axis-label" x="{_num((left + width - right) / 2)}" y="{_num(_HEIGHT - 4)}" '
                f'font-size="{_FONT}" text-anchor="middle">task</text>')
    return _svg(width, _HEIGHT, title, body, "bar-chart")


# --------------------------------------------------------------------------- heatmap

_CELL_W, _CELL_H = 56.0, 26.0


def _hex_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _scale_color(t: float) -> str:
    """Interpolate the sequential scale at ``t`` in [0, 1] (in sRGB between neighbouring stops)."""
    t = min(max(t, 0.0), 1.0)
    pos = t * (len(HEAT_SCALE) - 1)
    i = min(int(pos), len(HEAT_SCALE) - 2)
    f = pos - i
    a, b = _hex_rgb(HEAT_SCALE[i]), _hex_rgb(HEAT_SCALE[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * f):02X}" for x, y in zip(a, b))


def _text_on(fill: str) -> str:
    """Black or white, whichever contrasts more with ``fill`` (WCAG relative luminance)."""
    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in _hex_rgb(fill))
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#FFFFFF"


def _heat_legend(lo: float, hi: float, x: float, y: float, percent: bool) -> list[str]:
    """Five swatches from minimum to maximum: what the colours mean, without gradient ids that
    could collide between several SVGs inlined in one page."""
    out = ['<g class="legend scale">']
    for i in range(5):
        out.append(f'<rect x="{_num(x + i * 16)}" y="{_num(y)}" width="16" height="10" fill="{_scale_color(i / 4)}"/>')
    out.append(f'<text class="legend-label" x="{_num(x - 4)}" y="{_num(y + 9)}" font-size="{_FONT}" text-anchor="end">'
               f'{_label_value(lo, percent)}</text>')
    out.append(f'<text class="legend-label" x="{_num(x + 84)}" y="{_num(y + 9)}" font-size="{_FONT}">'
               f'{_label_value(hi, percent)}</text></g>')
    return out


def _col_label(col: str, x: float, y: float, rotate: bool) -> str:
    shown = _truncate(col, 16) if rotate else col
    tf = f' transform="rotate(-45 {_num(x)} {_num(y)})"' if rotate else ""
    anchor = "start" if rotate else "middle"
    return (f'<g class="col-label" data-col="{_esc(col)}"><title>{_esc(col)}</title>'
            f'<text class="tick-label" x="{_num(x)}" y="{_num(y)}" font-size="{_FONT}" text-anchor="{anchor}"{tf}>'
            f'{_esc(shown)}</text></g>')


def _cell(row: str, col: str, value: float | None, x: float, y: float, lo: float, hi: float, percent: bool) -> str:
    ids = f'data-row="{_esc(row)}" data-col="{_esc(col)}"'
    geom = f'x="{_num(x)}" y="{_num(y)}" width="{_num(_CELL_W - 2)}" height="{_num(_CELL_H - 2)}"'
    tx, ty = _num(x + (_CELL_W - 2) / 2), _num(y + (_CELL_H - 2) / 2)
    if value is None:
        return (f'<rect class="cell missing" {ids} {geom} fill="{MISSING_FILL}"><title>{_esc(f"{row} · {col}: no value")}</title></rect>'
                f'<text class="cell-label" x="{tx}" y="{ty}" dy="0.32em" font-size="{_FONT}" text-anchor="middle" fill="#000000">{MISSING_MARK}</text>')
    fill = _scale_color(0.5 if hi == lo else (value - lo) / (hi - lo))
    text = _label_value(value, percent)
    return (f'<rect class="cell" {ids} data-value="{_num4(_scale_value(value, percent))}" {geom} fill="{fill}">'
            f'<title>{_esc(f"{row} · {col}: {text}")}</title></rect>'
            f'<text class="cell-label" x="{tx}" y="{ty}" dy="0.32em" font-size="{_FONT}" text-anchor="middle" '
            f'fill="{_text_on(fill)}">{text}</text>')


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Mapping[tuple[str, str], float | None], *,
            percent: bool = True, title: str = "") -> str:
    """Models × languages, each cell coloured between the smallest and largest present value.

    The scale spans the observed range rather than 0–100 because the point of the chart is which
    language is weakest for which model; the printed number keeps the absolute level readable.
    """
    rows, cols = _unique(rows), _unique(cols)
    if not rows or not cols:
        return _no_data(title, "heatmap")
    vals = {(r, c): _finite(values.get((r, c)), f"heatmap values[({r!r}, {c!r})]") for r in rows for c in cols}
    present = [v for v in vals.values() if v is not None]
    lo, hi = (min(present), max(present)) if present else (0.0, 0.0)
    rotate = any(len(c) * _FONT * 0.6 > _CELL_W - 4 for c in cols)
    left = 16 + min(max(len(r) for r in rows), 24) * _FONT * 0.65
    head = (28 if title else 8) + (18 if present else 0)
    label_reach = min(max(len(c) for c in cols), 16) * _FONT * 0.65 * 0.71 if rotate else 0.0  # at 45°
    top = head + (label_reach + 12 if rotate else 18)
    width = max(240.0, left + len(cols) * _CELL_W + max(16.0, label_reach - _CELL_W / 2 + 8))
    height = top + len(rows) * _CELL_H + 12
    body = _title_text(title, 8)
    if present:
        body += _heat_legend(lo, hi, left + 30, head - 16, percent)
    for ci, col in enumerate(cols):
        body.append(_col_label(col, left + ci * _CELL_W + _CELL_W / 2, top - 6, rotate))
    for ri, row in enumerate(rows):
        y = top + ri * _CELL_H
        body.append(_row_label("row", row, left - 6, y + _CELL_H / 2 - 1, 24))
        for ci, col in enumerate(cols):
            body.append(_cell(row, col, vals[(row, col)], left + ci * _CELL_W, y, lo, hi, percent))
    return _svg(width, height, title, body, "heatmap")


# --------------------------------------------------------------------------- spread plot

_SPREAD_W = 640.0
_BAND_H = 14.0


def _spread_values(raw: object, dataset: str, model: str) -> list[float]:
    field = f"spread_plot values[({dataset!r}, {model!r})]"
    if raw is None:
        return []
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise ValueError(f"{field}: expected a sequence of per-prompt scores, got {raw!r}")
    out = [_finite(v, field) for v in raw]
    return [v for v in out if v is not None]


def _value_axis_x(axis: _Axis, y0: float, y1: float, label: str) -> list[str]:
    """Vertical grid lines with tick labels for a horizontal value axis, plus the axis title."""
    out = ['<g class="axis x-axis">']
    for t in axis.ticks():
        x = _num(axis.px(t))
        out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{_num(y0)}" y2="{_num(y1)}" stroke="#e0e0e0"/>'
                   f'<text class="tick" x="{x}" y="{_num(y1 + 14)}" font-size="{_FONT}" text-anchor="middle">{_tick_text(t)}</text>')
    out.append(f'<text class="axis-label" x="{_num((axis.p0 + axis.p1) / 2)}" y="{_num(y1 + 30)}" font-size="{_FONT}" '
               f'text-anchor="middle">{_esc(label)}</text></g>')
    return out


def _spread_band(dataset: str, model: str, scores: Sequence[float], y: float, axis: _Axis,
                 color: str, percent: bool) -> list[str]:
    """One model's scores on one dataset: min–max line, a dot per prompt and a tick at the mean."""
    ids = f'data-dataset="{_esc(dataset)}" data-model="{_esc(model)}"'
    if not scores:
        return [_missing(axis.p0 + 8, y + 4, dataset=dataset, model=model)]
    shown = [_scale_value(s, percent) for s in scores]
    lo, hi, mean = min(shown), max(shown), sum(shown) / len(shown)
    summary = (f"{dataset} · {model}: {len(scores)} prompts, min {_label_value(min(scores), percent)}, "
               f"mean {_label_value(sum(scores) / len(scores), percent)}, max {_label_value(max(scores), percent)}")
    out = [f'<line class="range" {ids} x1="{_num(axis.px(lo))}" x2="{_num(axis.px(hi))}" y1="{_num(y)}" y2="{_num(y)}" '
           f'stroke="{_esc(color)}" stroke-width="2"><title>{_esc(summary)}</title></line>',
           f'<line class="mean" {ids} data-value="{_num4(mean)}" x1="{_num(axis.px(mean))}" x2="{_num(axis.px(mean))}" '
           f'y1="{_num(y - 6)}" y2="{_num(y + 6)}" stroke="#222" stroke-width="2"><title>{_esc(summary)}</title></line>']
    for i, (raw, v) in enumerate(zip(scores, shown), start=1):
        tip = f"{dataset} · {model}: prompt {i}: {_label_value(raw, percent)}"
        out.append(f'<circle class="dot" {ids} data-prompt="{i}" data-value="{_num4(v)}" cx="{_num(axis.px(v))}" '
                   f'cy="{_num(y)}" r="3.5" fill="{_esc(color)}" fill-opacity="0.8" stroke="#fff" stroke-width="0.5">'
                   f'<title>{_esc(tip)}</title></circle>')
    return out


def spread_plot(datasets: Sequence[str], models: Sequence[str], values: Mapping[tuple[str, str], Sequence[float]], *,
                percent: bool = True, title: str = "") -> str:
    """How much a score moves with the prompt template: one row per dataset, one band per model.

    A wide line means the ranking of models on that dataset may depend on the prompt chosen.
    """
    datasets, models = _unique(datasets), _unique(models)
    if not datasets or not models:
        return _no_data(title, "spread-plot")
    scores = {(d, m): _spread_values(values.get((d, m)), d, m) for d in datasets for m in models}
    colors = palette(models)
    left = 12 + min(max(len(d) for d in datasets), _LABEL_MAX) * _FONT * 0.6
    legend, legend_h = _legend(models, colors, left, 28 if title else 8, _SPREAD_W - left - 16)
    top = (28 if title else 8) + legend_h + 6
    row_h = len(models) * _BAND_H + 10
    height = top + len(datasets) * row_h + 40
    present = [_scale_value(v, percent) for s in scores.values() for v in s]
    axis = _Axis(_axis_top(present, percent), left + 6, _SPREAD_W - 16)
    body = [*_title_text(title, 8), *legend,
            *_value_axis_x(axis, top, top + len(datasets) * row_h, "score (%)" if percent else "score")]
    for di, dataset in enumerate(datasets):
        y0 = top + di * row_h
        body.append(_row_label("dataset", dataset, left - 4, y0 + row_h / 2))
        for mi, model in enumerate(models):
            y = y0 + 5 + mi * _BAND_H + _BAND_H / 2
            body.extend(_spread_band(dataset, model, scores[(dataset, model)], y, axis, colors[model], percent))
    return _svg(_SPREAD_W, height, title, body, "spread-plot")


# --------------------------------------------------------------------------- profile chart

_RADAR_R = 110.0


def _angle(i: int, n: int) -> float:
    """Spoke ``i`` of ``n``, clockwise from 12 o'clock."""
    return -math.pi / 2 + 2 * math.pi * i / n


def _radar_grid(families: Sequence[str], cx: float, cy: float, r: float, axis_top: float) -> list[str]:
    """Rings at quarters of the axis, one spoke and one label per family."""
    n = len(families)
    out = ['<g class="axis radar-grid">']
    for q in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{_num(cx + r * q * math.cos(_angle(i, n)))},{_num(cy + r * q * math.sin(_angle(i, n)))}" for i in range(n))
        out.append(f'<polygon class="ring" points="{pts}" fill="none" stroke="#e0e0e0"/>'
                   f'<text class="tick" x="{_num(cx + 3)}" y="{_num(cy - r * q + 9)}" font-size="{_FONT - 2}">{_tick_text(round(axis_top * q, 2))}</text>')
    for i, fam in enumerate(families):
        a = _angle(i, n)
        ex, ey = cx + r * math.cos(a), cy + r * math.sin(a)
        lx, ly = cx + (r + 10) * math.cos(a), cy + (r + 10) * math.sin(a)
        anchor = "middle" if abs(math.cos(a)) < 0.3 else ("start" if math.cos(a) > 0 else "end")
        dy = "0" if math.sin(a) < -0.7 else ("0.8em" if math.sin(a) > 0.7 else "0.32em")  # clear of the rings
        out.append(f'<line class="spoke" x1="{_num(cx)}" y1="{_num(cy)}" x2="{_num(ex)}" y2="{_num(ey)}" stroke="#ccc"/>'
                   f'<g class="family-label" data-family="{_esc(fam)}"><title>{_esc(fam)}</title>'
                   f'<text class="tick-label" x="{_num(lx)}" y="{_num(ly)}" dy="{dy}" font-size="{_FONT}" '
                   f'text-anchor="{anchor}">{_esc(_truncate(fam, 18))}</text></g>')
    out.append("</g>")
    return out


def _radar_model(families: Sequence[str], model: str, vals: Mapping[str, float | None], cx: float, cy: float,
                 r: float, axis_top: float, color: str, percent: bool) -> list[str]:
    """One polygon per model with a vertex per family; a missing family sits at the centre and is
    drawn as a hollow marker, so the polygon keeps one vertex per family."""
    n, pts, marks = len(families), [], []
    for i, fam in enumerate(families):
        v = vals[fam]
        shown = 0.0 if v is None else min(max(_scale_value(v, percent), 0.0), axis_top)
        x = cx + r * shown / axis_top * math.cos(_angle(i, n))
        y = cy + r * shown / axis_top * math.sin(_angle(i, n))
        pts.append(f"{_num(x)},{_num(y)}")
        ids = f'data-family="{_esc(fam)}" data-model="{_esc(model)}"'
        if v is None:
            marks.append(f'<circle class="mark missing" {ids} cx="{_num(x)}" cy="{_num(y)}" r="3" fill="#fff" stroke="{_esc(color)}">'
                         f'<title>{_esc(f"{fam} · {model}: no value")}</title></circle>')
        else:
            marks.append(f'<circle class="mark" {ids} data-value="{_num4(_scale_value(v, percent))}" cx="{_num(x)}" cy="{_num(y)}" '
                         f'r="3" fill="{_esc(color)}"><title>{_esc(_tooltip(fam, model, v, percent))}</title></circle>')
    poly = (f'<polygon class="profile" data-model="{_esc(model)}" points="{" ".join(pts)}" fill="{_esc(color)}" '
            f'fill-opacity="0.12" stroke="{_esc(color)}" stroke-width="1.5"><title>{_esc(model)}</title></polygon>')
    return [f'<g class="model" data-model="{_esc(model)}">', poly, *marks, "</g>"]


def _profile_radar(families: Sequence[str], models: Sequence[str], vals: Mapping[tuple[str, str], float | None],
                   percent: bool, title: str) -> str:
    colors = palette(models)
    width = 480.0
    legend, legend_h = _legend(models, colors, 12, 28 if title else 8, width - 24)
    top = (28 if title else 8) + legend_h
    cx, cy = width / 2, top + 30 + _RADAR_R
    axis_top = _axis_top([_scale_value(v, percent) for v in vals.values() if v is not None], percent)
    body = [*_title_text(title, 8), *legend, *_radar_grid(families, cx, cy, _RADAR_R, axis_top)]
    for model in models:
        body.extend(_radar_model(families, model, {f: vals[(f, model)] for f in families}, cx, cy, _RADAR_R,
                                 axis_top, colors[model], percent))
    return _svg(width, cy + _RADAR_R + 28, title, body, "profile-chart radar")


def _profile_bars(families: Sequence[str], models: Sequence[str], vals: Mapping[tuple[str, str], float | None],
                  percent: bool, title: str) -> str:
    """With one or two families a radar has no area to read, so grouped horizontal bars instead."""
    colors, width, bar_h = palette(models), 480.0, 12.0
    left = 12 + min(max(len(f) for f in families), 18) * _FONT * 0.6
    legend, legend_h = _legend(models, colors, left, 28 if title else 8, width - left - 16)
    top = (28 if title else 8) + legend_h + 6
    group_h = len(models) * (bar_h + 2) + 12
    axis = _Axis(_axis_top([_scale_value(v, percent) for v in vals.values() if v is not None], percent), left + 4, width - 16)
    y_end = top + len(families) * group_h
    body = [*_title_text(title, 8), *legend, *_value_axis_x(axis, top, y_end, "score (%)" if percent else "score")]
    for fi, fam in enumerate(families):
        y0 = top + fi * group_h + 6
        body.append(f'<g class="family-label" data-family="{_esc(fam)}"><title>{_esc(fam)}</title>'
                    f'<text class="row-label" x="{_num(left - 4)}" y="{_num(y0 + (group_h - 12) / 2)}" dy="0.32em" '
                    f'font-size="{_FONT}" text-anchor="end">{_esc(_truncate(fam, 18))}</text></g>')
        for mi, model in enumerate(models):
            y, v = y0 + mi * (bar_h + 2), vals[(fam, model)]
            if v is None:
                body.append(_missing(axis.p0 + 8, y + bar_h - 2, family=fam, model=model))
                continue
            shown = _scale_value(v, percent)
            body.append(f'<rect class="mark" data-family="{_esc(fam)}" data-model="{_esc(model)}" data-value="{_num4(shown)}" '
                        f'x="{_num(axis.p0)}" y="{_num(y)}" width="{_num(axis.px(shown) - axis.p0)}" height="{_num(bar_h)}" '
                        f'fill="{_esc(colors[model])}"><title>{_esc(_tooltip(fam, model, v, percent))}</title></rect>')
    return _svg(width, y_end + 40, title, body, "profile-chart bars")


def profile_chart(families: Sequence[str], models: Sequence[str], values: Mapping[tuple[str, str], float | None], *,
                  percent: bool = True, title: str = "") -> str:
    """Each model's profile across task families: a radar from three families up, else bars.

    ``values`` is keyed ``(family, model)``.
    """
    families, models = _unique(families), _unique(models)
    if not families or not models:
        return _no_data(title, "profile-chart")
    vals = {(f, m): _finite(values.get((f, m)), f"profile_chart values[({f!r}, {m!r})]") for f in families for m in models}
    if len(families) >= 3:
        return _profile_radar(families, models, vals, percent, title)
    return _profile_bars(families, models, vals, percent, title)
