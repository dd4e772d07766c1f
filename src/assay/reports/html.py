"""The self-contained HTML comparison report.

One file that opens offline, anywhere, years later: the stylesheet, the script, the charts (inline
SVG from :mod:`assay.reports.plots`) and the items are all inside the page, and a
Content-Security-Policy forbids the browser from fetching anything, so a stray external link
fails loudly in a browser's console instead of quietly depending on the network.

Python does the formatting (numbers, ranks, which cell is best) and Jinja2 only lays it out, so
the template stays free of arithmetic and every number on the page follows one rule: a task
whose ``percent`` is true shows ``value × 100`` with one decimal, any other three decimals.
The item viewer is the one dynamic part; the items travel as JSON and a small vanilla script
renders them with ``textContent`` only, so a model's response can never become markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from assay.reports import plots
from assay.store.atomic import write_text_atomic

__all__ = ["render_html", "write_html", "fmt_value", "fmt_stderr", "items_json", "script_json", "judge_views", "JudgeView"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_DASH = "—"
_MINUS = "\u2212"  # a typographic minus, as wide as the plus next to it
_FALLBACK_COLOR = "#777777"
_REQUIRED: dict[str, type] = {
    "title": str, "created": str, "runs": list, "models": list, "tasks": list,
    "scores": dict, "leaderboards": list,
}
_OPTIONAL_LISTS = ("languages", "pairs", "summary", "items", "judges")
_PAIR_KINDS = ("overall", "family", "task")


# --------------------------------------------------------------------------- number formatting


def _finite(value: object) -> float | None:
    """A finite float or None: NaN/inf (a metric over no items) read as missing, not as 'nan'."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt_value(value: object, percent: bool) -> str:
    """A score as the page shows it: ×100 with one decimal for fractions, else three decimals."""
    v = _finite(value)
    if v is None:
        return _DASH
    return f"{v * 100:.1f}" if percent else f"{v:.3f}"


def fmt_stderr(stderr: object, percent: bool) -> str:
    """``± s`` in the value's units, or an empty string when no standard error is known."""
    s = _finite(stderr)
    return "" if s is None else f"± {fmt_value(s, percent)}"


def fmt_diff(diff: object, percent: bool) -> str:
    """A signed difference; percentage scores differ by points, not by percent."""
    d = _finite(diff)
    if d is None:
        return _DASH
    text = f"{d * 100:+.1f} pts" if percent else f"{d:+.3f}"
    return text.replace("-", _MINUS)


def fmt_ci(low: object, high: object, percent: bool) -> str:
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None:
        return _DASH
    return f"[{fmt_value(lo, percent)}, {fmt_value(hi, percent)}]".replace("-", _MINUS)


def fmt_p(p: object) -> str:
    v = _finite(p)
    if v is None:
        return _DASH
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def fmt_share(value: object) -> str:
    """A share (0–1) as a percentage with one decimal and the sign: ``62.5%``."""
    v = _finite(value)
    return _DASH if v is None else f"{v * 100:.1f}%"


def fmt_judged(value: object, scale: str) -> str:
    """A judged score: the pass rate (``62.5%``) or the mean rating out of ten (``6.50/10``)."""
    v = _finite(value)
    if v is None:
        return _DASH
    return fmt_share(v) if scale == "pass/fail" else f"{v:.2f}/10"


def fmt_judged_stderr(stderr: object, scale: str) -> str:
    s = _finite(stderr)
    if s is None:
        return ""
    return f"± {s * 100:.1f}" if scale == "pass/fail" else f"± {s:.2f}"


def fmt_strength(value: object) -> str:
    """A Bradley–Terry strength on its Elo-like scale (mean 1000): a whole number."""
    v = _finite(value)
    return _DASH if v is None else f"{v:.0f}".replace("-", _MINUS)


def fmt_strength_ci(low: object, high: object) -> str:
    lo, hi = _finite(low), _finite(high)
    return _DASH if lo is None or hi is None else f"[{fmt_strength(lo)}, {fmt_strength(hi)}]"


def fmt_share_ci(low: object, high: object) -> str:
    lo, hi = _finite(low), _finite(high)
    return _DASH if lo is None or hi is None else f"[{fmt_share(lo)}, {fmt_share(hi)}]"


def fmt_kappa(value: object) -> str:
    v = _finite(value)
    return _DASH if v is None else f"{v:.2f}".replace("-", _MINUS)


def _fmt_scalar(value: object) -> str:
    """A provenance value: scalars as text, lists and mappings as compact JSON."""
    if value is None:
        return _DASH
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _kv(mapping: object) -> list[tuple[str, str]]:
    if not isinstance(mapping, Mapping):
        return []
    return [(str(k), _fmt_scalar(v)) for k, v in mapping.items()]


# --------------------------------------------------------------------------- validation


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(f"report document: {message}")


def _validate(doc: object) -> None:
    """Fail early with the field's name: a template error deep in Jinja would not name it."""
    _require(isinstance(doc, Mapping), f"expected a mapping, got {type(doc).__name__}")
    assert isinstance(doc, Mapping)
    for key, kind in _REQUIRED.items():
        _require(key in doc, f"field '{key}' is missing")
        _require(isinstance(doc[key], kind), f"field '{key}' must be a {kind.__name__}")
    for key in _OPTIONAL_LISTS:
        _require(isinstance(doc.get(key, []), list), f"field '{key}' must be a list")
    for i, m in enumerate(doc["models"]):
        _require(isinstance(m, Mapping) and isinstance(m.get("id"), str), f"field 'models[{i}].id' is missing")
    for i, t in enumerate(doc["tasks"]):
        for key in ("name", "family"):
            _require(isinstance(t, Mapping) and isinstance(t.get(key), str), f"field 'tasks[{i}].{key}' is missing")
    for i, lb in enumerate(doc["leaderboards"]):
        _require(isinstance(lb, Mapping) and isinstance(lb.get("rows"), list), f"field 'leaderboards[{i}].rows' is missing")
        _require(isinstance(lb.get("scope"), str), f"field 'leaderboards[{i}].scope' is missing")
    for i, it in enumerate(doc.get("items", [])):
        for key in ("task", "prompt_id", "doc_id", "answers"):
            _require(isinstance(it, Mapping) and key in it, f"field 'items[{i}].{key}' is missing")
    for i, j in enumerate(doc.get("judges", [])):
        _require(isinstance(j, Mapping) and isinstance(j.get("id"), str), f"field 'judges[{i}].id' is missing")
        for key in ("single", "pairwise", "prompts"):
            _require(isinstance(j.get(key, []), list), f"field 'judges[{i}].{key}' must be a list")


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class Cell:
    """One score cell: the formatted value, its stderr and whether it is the row's best."""

    text: str
    stderr: str = ""
    best: bool = False
    missing: bool = False


@dataclass(frozen=True)
class TaskRow:
    name: str
    metric: str
    description: str
    cells: list[Cell]
    secondary: bool = False  # another metric the task declares, under its headline row


@dataclass(frozen=True)
class FamilyGroup:
    family: str
    rows: list[TaskRow]


@dataclass(frozen=True)
class LeaderRow:
    rank: str
    model: str
    color: str
    value: str
    stderr: str
    n_tasks: str


@dataclass(frozen=True)
class Leaderboard:
    scope: str
    header: str
    n_tasks: int
    rows: list[LeaderRow]


@dataclass(frozen=True)
class Chart:
    kind: str
    title: str
    svg: str


@dataclass(frozen=True)
class PairRow:
    kind: str
    scope: str
    a: str
    b: str
    color_a: str
    color_b: str
    n: str
    diff: str
    ci: str
    p: str
    test: str
    significant: bool


@dataclass
class _Index:
    """Look-ups every section needs: tasks by name, model order and colours."""

    tasks: dict[str, Mapping[str, Any]]
    models: list[str]
    colors: dict[str, str]
    families: list[str] = field(default_factory=list)

    def percent(self, task: str) -> bool:
        return bool(self.tasks.get(task, {}).get("percent", False))

    def all_percent(self, tasks: Iterable[str]) -> bool:
        """A scope averages its tasks, so it reads as percent only if every task does."""
        names = [t for t in tasks if t in self.tasks]
        return bool(names) and all(self.percent(t) for t in names)

    def family_tasks(self, family: str) -> list[str]:
        return [name for name, t in self.tasks.items() if t.get("family") == family]

    def color(self, model: str) -> str:
        return self.colors.get(model, _FALLBACK_COLOR)


def _index(doc: Mapping[str, Any]) -> _Index:
    models = [m["id"] for m in doc["models"]]
    tasks = {t["name"]: t for t in doc["tasks"]}
    families = list(dict.fromkeys(t["family"] for t in doc["tasks"]))
    return _Index(tasks=tasks, models=models, colors=plots.palette(models), families=families)


def _score(doc: Mapping[str, Any], task: str, model: str) -> Mapping[str, Any] | None:
    entry = doc["scores"].get(task, {}).get(model)
    return entry if isinstance(entry, Mapping) else None


def _metric_header(metric: str, percent: bool) -> str:
    return f"{metric} (%)" if percent else metric


def _task_row(doc: Mapping[str, Any], ix: _Index, name: str, metric: str | None = None) -> TaskRow:
    """A per-task row of its headline metric (``metric`` None) or of another metric it
    declares; the best value is bold (ties all bold): the highest, or the lowest for a metric
    where lower is better (perplexity)."""
    task = ix.tasks[name]
    facts = (task.get("metric_facts") or {}).get(metric) if metric else None
    percent = bool(facts["percent"]) if facts else ix.percent(name)
    higher = bool(facts["higher_is_better"]) if facts else bool(task.get("higher_is_better", True))

    def entry_of(m: str) -> Mapping[str, Any] | None:
        e = _score(doc, name, m)
        if e is None or metric is None:
            return e
        other = (e.get("others") or {}).get(metric)
        return other if isinstance(other, Mapping) else None

    values = {m: _finite((entry_of(m) or {}).get("value")) for m in ix.models}
    present = [v for v in values.values() if v is not None]
    pick = max if higher else min
    best = pick(present) if len(present) > 1 else None
    cells = []
    for m in ix.models:
        entry = entry_of(m)
        v = values[m]
        if entry is None or v is None:
            cells.append(Cell(_DASH, missing=True))
            continue
        cells.append(Cell(fmt_value(v, percent), fmt_stderr(entry.get("stderr"), percent), best is not None and v == best))
    header = _metric_header(metric or str(task.get("metric", "score")), percent)
    return TaskRow(name, header, str(task.get("description") or ""), cells, secondary=metric is not None)


def _per_task(doc: Mapping[str, Any], ix: _Index) -> list[FamilyGroup]:
    groups = []
    for f in ix.families:
        rows = []
        for t in ix.family_tasks(f):
            rows.append(_task_row(doc, ix, t))
            rows += [_task_row(doc, ix, t, m) for m in list(ix.tasks[t].get("metrics") or [])[1:]]
        groups.append(FamilyGroup(f, rows))
    return groups


def _leaderboard(entry: Mapping[str, Any], ix: _Index) -> Leaderboard:
    tasks = list(entry.get("tasks") or [])
    percent = ix.all_percent(tasks)
    rows = [
        LeaderRow(
            rank=_fmt_scalar(r.get("rank")), model=str(r.get("model")), color=ix.color(str(r.get("model"))),
            value=fmt_value(r.get("value"), percent), stderr=fmt_stderr(r.get("stderr"), percent),
            n_tasks=_fmt_scalar(r.get("n_tasks")),
        )
        for r in entry["rows"]
    ]
    return Leaderboard(str(entry["scope"]), "score (%)" if percent else "score", len(tasks), rows)


def _pair_percent(pair: Mapping[str, Any], ix: _Index, lb_tasks: Mapping[str, list[str]]) -> bool:
    scope = str(pair.get("scope"))
    if pair.get("kind") == "task":
        return ix.percent(scope)
    tasks = lb_tasks.get(scope) or (ix.family_tasks(scope) if pair.get("kind") == "family" else list(ix.tasks))
    return ix.all_percent(tasks)


def _pairs(doc: Mapping[str, Any], ix: _Index) -> list[PairRow]:
    lb_tasks = {str(lb["scope"]): list(lb.get("tasks") or []) for lb in doc["leaderboards"]}
    rows = []
    for p in doc.get("pairs", []):
        percent = _pair_percent(p, ix, lb_tasks)
        a, b = str(p.get("a")), str(p.get("b"))
        rows.append(PairRow(
            kind=str(p.get("kind", "")), scope=str(p.get("scope", "")), a=a, b=b,
            color_a=ix.color(a), color_b=ix.color(b), n=_fmt_scalar(p.get("n")),
            diff=fmt_diff(p.get("diff"), percent), ci=fmt_ci(p.get("ci_low"), p.get("ci_high"), percent),
            p=fmt_p(p.get("p_value")), test=_fmt_scalar(p.get("test")), significant=bool(p.get("significant")),
        ))
    return rows


# --------------------------------------------------------------------------- judges


@dataclass(frozen=True)
class JudgePrompt:
    mode: str
    name: str
    version: str
    hash: str


@dataclass(frozen=True)
class JudgeSingleRow:
    """One model's answers to one task as a judge graded them on their own."""

    task: str
    model: str
    color: str
    scale: str
    value: str
    stderr: str
    n: str
    unparseable: str
    missing: str
    agreement: str  # the automatic metric it is compared with and the answers compared, "exact_match (n 8)", or "—"
    agree: str
    kappa: str


@dataclass(frozen=True)
class StrengthRow:
    rank: str
    model: str
    color: str
    strength: str
    ci: str


@dataclass(frozen=True)
class JudgePairRow:
    a: str
    b: str
    color_a: str
    color_b: str
    n: str
    wins: str
    ties: str
    losses: str
    win_rate: str
    ci: str
    length_adjusted: str


@dataclass(frozen=True)
class BiasView:
    n: str
    parsed: str
    order_decided: str
    share: str  # of the pairs judged in both orders, the share whose verdict followed the order
    first_share: str  # of those, the share that went to the answer shown first
    p: str  # "p = 0.008" or "p < 0.001"
    flagged: bool


@dataclass(frozen=True)
class JudgeScope:
    scope: str
    title: str
    strengths: list[StrengthRow]
    pairs: list[JudgePairRow]
    bias: BiasView | None
    n_judged: str
    n_unparseable: str
    n_missing: str


@dataclass(frozen=True)
class JudgeView:
    id: str
    label: str
    run: int
    run_dir: str
    name: str
    backend: str
    fingerprint: str
    fingerprint_short: str
    args: list[tuple[str, str]]
    prompts: list[JudgePrompt]
    single: list[JudgeSingleRow]
    scopes: list[JudgeScope]
    n_unparseable: str
    n_missing: str
    flagged: bool
    warning: str


def _p_text(p: object) -> str:
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _bias(b: Mapping[str, Any]) -> BiasView | None:
    if not b:
        return None
    return BiasView(
        n=_fmt_scalar(b.get("n")), parsed=_fmt_scalar(b.get("parsed")), order_decided=_fmt_scalar(b.get("order_decided")),
        share=fmt_share(b.get("order_decided_share")), first_share=fmt_share(b.get("first_position_share")),
        p=_p_text(b.get("p_value")), flagged=bool(b.get("flagged")),
    )


def _judge_scope(r: Mapping[str, Any], colors: _Index) -> JudgeScope:
    scope = str(r.get("scope", "all"))
    tasks = [str(t) for t in r.get("tasks") or []]
    title = f"all tasks ({', '.join(tasks)})" if scope == "all" else scope
    return JudgeScope(
        scope=scope, title=title,
        strengths=[StrengthRow(rank=_fmt_scalar(s.get("rank")), model=str(s.get("model")), color=colors.color(str(s.get("model"))),
                               strength=fmt_strength(s.get("strength")), ci=fmt_strength_ci(s.get("low"), s.get("high")))
                   for s in r.get("bradley_terry") or []],
        pairs=[JudgePairRow(a=str(p.get("a")), b=str(p.get("b")), color_a=colors.color(str(p.get("a"))), color_b=colors.color(str(p.get("b"))),
                            n=_fmt_scalar(p.get("n")), wins=_fmt_scalar(p.get("wins")), ties=_fmt_scalar(p.get("ties")), losses=_fmt_scalar(p.get("losses")),
                            win_rate=fmt_share(p.get("win_rate")), ci=fmt_share_ci(p.get("low"), p.get("high")),
                            length_adjusted=fmt_share(p.get("length_adjusted")))
               for p in r.get("pairs") or []],
        bias=_bias(r.get("position_bias") or {}),
        n_judged=_fmt_scalar(r.get("n_judged", 0)), n_unparseable=_fmt_scalar(r.get("n_unparseable", 0)), n_missing=_fmt_scalar(r.get("n_missing", 0)),
    )


def _judge_single(s: Mapping[str, Any], ix: _Index) -> JudgeSingleRow:
    scale = str(s.get("scale", ""))
    ag = s.get("agreement") or {}
    agree, kappa = fmt_share(ag.get("agree")), fmt_kappa(ag.get("kappa"))
    agreement = f"{_fmt_scalar(ag.get('metric'))} (n {_fmt_scalar(ag.get('n'))})" if ag else _DASH
    model = str(s.get("model"))
    return JudgeSingleRow(
        task=str(s.get("task")), model=model, color=ix.color(model), scale=scale,
        value=fmt_judged(s.get("value"), scale), stderr=fmt_judged_stderr(s.get("stderr"), scale),
        n=_fmt_scalar(s.get("n", 0)), unparseable=_fmt_scalar(s.get("n_unparseable", 0)), missing=_fmt_scalar(s.get("n_missing", 0)),
        agreement=agreement, agree=agree if ag else _DASH, kappa=kappa if ag else _DASH,
    )


def judge_views(doc: Mapping[str, Any]) -> list[JudgeView]:
    """The document's judges, formatted once for both the HTML and the Markdown report."""
    ix = _index(doc)
    out = []
    for j in doc.get("judges", []):
        fp = str(j.get("fingerprint", "?"))
        out.append(JudgeView(
            id=str(j["id"]), label=str(j.get("label", j["id"])), run=int(j.get("run", 0)), run_dir=str(j.get("run_dir", "")),
            name=str(j.get("name", "")), backend=str(j.get("backend", "?")), fingerprint=fp, fingerprint_short=fp[:12],
            args=_kv(j.get("args")),
            prompts=[JudgePrompt(str(t.get("mode", "?")), str(t.get("name", "?")), _fmt_scalar(t.get("version")), str(t.get("hash", "?")))
                     for t in j.get("prompts") or []],
            single=[_judge_single(s, ix) for s in j.get("single") or []],
            scopes=[_judge_scope(r, ix) for r in j.get("pairwise") or []],
            n_unparseable=_fmt_scalar(j.get("n_unparseable", 0)), n_missing=_fmt_scalar(j.get("n_missing", 0)),
            flagged=bool(j.get("flagged")), warning=j.get("warning", ""),
        ))
    return out


# --------------------------------------------------------------------------- charts


def _split_by_percent(names: Sequence[str], is_percent: Mapping[str, bool]) -> list[tuple[list[str], bool]]:
    """One chart cannot have two value axes, so percent and raw scores are drawn separately."""
    groups = [([n for n in names if is_percent[n]], True), ([n for n in names if not is_percent[n]], False)]
    return [(g, pct) for g, pct in groups if g]


def _group_title(base: str, percent: bool, split: bool) -> str:
    """Charts split by axis get told apart by their titles."""
    return f"{base} ({'percent' if percent else 'raw scores'})" if split else base


def _bar_charts(doc: Mapping[str, Any], ix: _Index) -> list[Chart]:
    charts = []
    for family in ix.families:
        tasks = [t for t in ix.family_tasks(family) if doc["scores"].get(t)]
        groups = _split_by_percent(tasks, {t: ix.percent(t) for t in tasks})
        for group, pct in groups:
            title = _group_title(family, pct, len(groups) > 1)
            values: dict[tuple[str, str], tuple[float, float | None] | None] = {}
            for t in group:
                for m in ix.models:
                    entry = _score(doc, t, m)
                    v = _finite(entry.get("value")) if entry else None
                    values[(t, m)] = None if v is None else (v, _finite(entry.get("stderr")) if entry else None)
            if any(v is not None for v in values.values()):
                svg = plots.bar_chart(group, ix.models, values, percent=pct, title=title, colors=ix.colors)
                charts.append(Chart("bar", title, svg))
    return charts


def _heatmaps(doc: Mapping[str, Any], ix: _Index) -> list[Chart]:
    charts = []
    for entry in doc.get("languages", []):
        langs = [str(x) for x in entry.get("languages") or []]
        table = entry.get("values") or {}
        rows = [m for m in ix.models if m in table] + [m for m in table if m not in ix.models]
        values = {(m, lang): _finite((table.get(m) or {}).get(lang)) for m in rows for lang in langs}
        if any(v is not None for v in values.values()):
            title = f"{entry.get('dataset', '')} by language"
            svg = plots.heatmap(rows, langs, values, percent=bool(entry.get("percent", True)), title=title)
            charts.append(Chart("heatmap", title, svg))
    return charts


def _dataset_prompts(ix: _Index) -> dict[str, list[str]]:
    prompts: dict[str, list[str]] = {}
    for name, t in ix.tasks.items():
        ds = str(t.get("dataset") or name)
        prompts.setdefault(ds, [])
        prompts[ds] += [p for p in (t.get("prompts") or {}) if p not in prompts[ds]]
    return prompts


def _spread_values(doc: Mapping[str, Any], ix: _Index, dataset: str, model: str, prompts: list[str]) -> list[float]:
    """Per prompt, the mean over the dataset's tasks the model ran: how much the wording moves it."""
    tasks = [n for n, t in ix.tasks.items() if str(t.get("dataset") or n) == dataset]
    out = []
    for prompt in prompts:
        vals = [_finite(((_score(doc, t, model) or {}).get("per_prompt") or {}).get(prompt)) for t in tasks]
        present = [v for v in vals if v is not None]
        if present:
            out.append(sum(present) / len(present))
    return out


def _spread_plots(doc: Mapping[str, Any], ix: _Index) -> list[Chart]:
    prompts = _dataset_prompts(ix)
    datasets = [ds for ds, ps in prompts.items() if len(ps) >= 2]
    is_percent = {ds: ix.all_percent(n for n, t in ix.tasks.items() if str(t.get("dataset") or n) == ds) for ds in datasets}
    charts = []
    groups = _split_by_percent(datasets, is_percent)
    for group, pct in groups:
        values = {(ds, m): _spread_values(doc, ix, ds, m, prompts[ds]) for ds in group for m in ix.models}
        if any(len(v) >= 2 for v in values.values()):
            title = _group_title("score across prompts", pct, len(groups) > 1)
            charts.append(Chart("spread", title, plots.spread_plot(group, ix.models, values, percent=pct, title=title)))
    return charts


def _profile_charts(doc: Mapping[str, Any], ix: _Index) -> list[Chart]:
    family_lbs = [lb for lb in doc["leaderboards"][1:] if lb["scope"] in ix.families]
    if not family_lbs:
        return []
    families = [str(lb["scope"]) for lb in family_lbs]
    values: dict[tuple[str, str], float | None] = {(f, m): None for f in families for m in ix.models}
    for lb in family_lbs:
        for r in lb["rows"]:
            values[(str(lb["scope"]), str(r.get("model")))] = _finite(r.get("value"))
    is_percent = {f: ix.all_percent(lb.get("tasks") or ix.family_tasks(f)) for f, lb in zip(families, family_lbs)}
    charts = []
    groups = _split_by_percent(families, is_percent)
    for group, pct in groups:
        if any(values[(f, m)] is not None for f in group for m in ix.models):
            title = _group_title("profile by family", pct, len(groups) > 1)
            charts.append(Chart("profile", title, plots.profile_chart(group, ix.models, values, percent=pct, title=title)))
    return charts


def _charts(doc: Mapping[str, Any], ix: _Index) -> list[Chart]:
    return _bar_charts(doc, ix) + _heatmaps(doc, ix) + _spread_plots(doc, ix) + _profile_charts(doc, ix)


# --------------------------------------------------------------------------- items and provenance


def script_json(value: object) -> str:
    """JSON safe inside ``<script>``: ``</`` and ``<!--`` cannot end or confuse the element.

    Both replacements are valid JSON (``\\/`` and ``\\u003c``), so ``JSON.parse`` gives the
    original strings back.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<!--", "\\u003c!--").replace("</", "<\\/")


def items_json(items: Sequence[Mapping[str, Any]]) -> str:
    """The items for ``<script type="application/json" id="items-data">``."""
    return script_json(list(items))


def _verdicts(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """correct and wrong first (always offered), then whatever other verdicts occur."""
    seen = {str(a.get("verdict")) for it in items for a in (it.get("answers") or {}).values() if isinstance(a, Mapping)}
    return ["correct", "wrong", *sorted(seen - {"correct", "wrong", "None"})]


def _item_tasks(items: Sequence[Mapping[str, Any]], ix: _Index) -> list[str]:
    present = {str(it["task"]) for it in items}
    return [t for t in ix.tasks if t in present] + sorted(present - set(ix.tasks))


def _provenance_tasks(ix: _Index) -> list[dict[str, Any]]:
    out = []
    for name, t in ix.tasks.items():
        formats = t.get("chat_formats") or {}
        out.append({
            "name": name, "family": str(t.get("family")), "version": _fmt_scalar(t.get("version")),
            "hash": _fmt_scalar(t.get("hash")), "prompts": _kv(t.get("prompts")),
            "chat_formats": [(str(m), _kv(per_prompt)) for m, per_prompt in formats.items()],
            "truncated": [(str(m), str(v)) for m, v in (t.get("truncated") or {}).items()],
        })
    return out


def _context(doc: Mapping[str, Any]) -> dict[str, Any]:
    ix = _index(doc)
    items = list(doc.get("items", []))
    meta = {"models": ix.models, "colors": ix.colors}
    return {
        "title": doc["title"], "created": doc["created"], "summary": [str(s) for s in doc.get("summary", [])],
        "n_models": len(ix.models), "n_tasks": len(ix.tasks), "n_runs": len(doc["runs"]),
        "models": ix.models, "colors": ix.colors,
        "leaderboards": [_leaderboard(lb, ix) for lb in doc["leaderboards"]],
        "per_task": _per_task(doc, ix),
        "charts": _charts(doc, ix),
        "pairs": _pairs(doc, ix), "pair_kinds": _PAIR_KINDS,
        "judges": judge_views(doc),
        "n_items": len(items), "item_tasks": _item_tasks(items, ix), "verdicts": _verdicts(items),
        "items_json": items_json(items), "meta_json": script_json(meta),
        "runs": [{**r, "environment": _kv(r.get("environment")), "config": _kv(r.get("config"))} for r in doc["runs"]],
        "model_rows": [{**m, "color": ix.color(m["id"]), "args": _kv(m.get("args"))} for m in doc["models"]],
        "task_rows": _provenance_tasks(ix),
    }


# --------------------------------------------------------------------------- rendering


def _plural(n: int, word: str) -> str:
    """``1 run``, ``2 runs``: counts read as sentences on the page."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["plural"] = _plural
    return env


def _asset(name: str) -> str:
    """CSS and JS live in their own files for editing, and are inlined so the page stays one file."""
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def render_html(doc: dict) -> str:
    """The report document as one self-contained HTML page (no external URL of any kind)."""
    _validate(doc)
    template = _environment().get_template("report.html.j2")
    css, js = _asset("report.css"), _asset("report.js")
    # the assets are ours, but a "</" in them would end their element early and break the page
    if "</" in css or "</" in js:
        raise ValueError("report.css / report.js must not contain '</'")
    return template.render(**_context(doc), css=Markup(css), js=Markup(js))


def write_html(doc: dict, path: Path) -> Path:
    """Render and write atomically: a reader (or a crash) never sees half a report."""
    path = Path(path)
    write_text_atomic(path, render_html(doc))
    return path
