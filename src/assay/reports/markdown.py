"""The comparison document as Markdown: the summary, the leaderboards, the per-task table,
the language matrices, the paired statistics (overall and per family) and the provenance.
The HTML report holds the same numbers plus the plots and the item viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.reports.html import fmt_ci, fmt_diff, fmt_p, fmt_stderr, fmt_value
from assay.store.atomic import write_text_atomic


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def fmt(value: float | None, percent: bool, stderr: float | None = None) -> str:
    """A score with its standard error, formatted as the HTML report shows it."""
    se = fmt_stderr(stderr, percent) if value is not None else ""
    return f"{fmt_value(value, percent)} {se}".rstrip()


def render_markdown(doc: dict[str, Any]) -> str:
    tasks = {t["name"]: t for t in doc["tasks"]}
    models = [m["id"] for m in doc["models"]]
    out = [f"# {doc['title']}", "", f"{len(models)} model(s), {len(tasks)} task(s), {len(doc['runs'])} run(s); written {doc['created']}.", ""]
    out += ["## Summary", ""] + [f"- {s}" for s in doc["summary"]] + [""]

    out += ["## Leaderboards", ""]
    for lb in doc["leaderboards"]:
        scope = "Overall" if lb["scope"] == "overall" else lb["scope"]
        note = f"mean over {len(lb['tasks'])} task(s) every model ran" if lb.get("shared", True) else "no task is shared by every model: each model's own tasks"
        out += [f"### {scope}", "", f"Primary metric, {note}; ± is the standard error.", ""]
        out += _table(["rank", "model", "score", "tasks"], [[r["rank"], r["model"], fmt(r["value"], True, r["stderr"]), r["n_tasks"]] for r in lb["rows"]])

    out += ["## Per task", ""]
    rows = []
    for name, t in tasks.items():
        sc = doc["scores"].get(name, {})
        names = list(t.get("metrics") or [t["metric"]])
        for k, metric in enumerate(names):
            facts = (t.get("metric_facts") or {}).get(metric) or {"percent": t["percent"], "higher_is_better": t["higher_is_better"]}
            entries = {m: (sc[m] if k == 0 else (sc[m].get("others") or {}).get(metric)) for m in models if m in sc}
            entries = {m: e for m, e in entries.items() if e is not None}
            present = [e["value"] for e in entries.values()]
            best = (max if facts["higher_is_better"] else min)(present) if present else None
            cells = []
            for m in models:
                if m not in entries:
                    cells.append("—")
                    continue
                text = fmt(entries[m]["value"], facts["percent"], entries[m].get("stderr"))
                cells.append(f"**{text}**" if len(present) > 1 and entries[m]["value"] == best else text)
            label = f"{metric} (%)" if facts["percent"] else metric
            rows.append([t["family"] if k == 0 else "", name if k == 0 else "", label, *cells])
    out += _table(["family", "task", "metric", *models], rows)

    for lang in doc["languages"]:
        out += [f"## {lang['dataset']} by language", ""]
        out += _table(["model", *lang["languages"]], [[m, *(fmt(v.get(c), lang["percent"]) for c in lang["languages"])] for m, v in lang["values"].items()])

    pairs = [p for p in doc["pairs"] if p["kind"] in ("overall", "family")]
    if pairs:
        out += ["## Paired comparisons", "", "On the items both models answered (each item once); Δ = A − B; 95% paired bootstrap interval.", ""]
        out += _table(
            ["scope", "A", "B", "items", "Δ", "95% CI", "p", "test", "verdict"],
            [[p["scope"], p["a"], p["b"], p["n"], fmt_diff(p["diff"], True), fmt_ci(p["ci_low"], p["ci_high"], True),
              fmt_p(p["p_value"]), p["test"], "significant" if p["significant"] else "too close to call"] for p in pairs],
        )

    out += ["## Provenance", ""]
    out += _table(["model", "backend", "fingerprint", "run"], [[m["id"], m["backend"], m["fingerprint"], doc["runs"][m["run"]]["dir"]] for m in doc["models"]])
    out += _table(["task", "version", "hash", "prompts (template hash)", "prompts cut to fit"],
                  [[t["name"], t["version"], t["hash"], ", ".join(f"{k} ({v})" for k, v in t["prompts"].items()),
                    ", ".join(f"{m}: {n} items" for m, n in (t.get("truncated") or {}).items()) or "none"] for t in tasks.values()])
    for r in doc["runs"]:
        env = ", ".join(f"{k} {v}" for k, v in r["environment"].items())
        sandbox = f"; code sandbox {r['sandbox']}" if r.get("sandbox") else ""
        out += [f"- `{r['dir']}`: created {r['created']}, scored {r['scored']}; {env}{sandbox}"]
    return "\n".join(out).rstrip() + "\n"


def write_markdown(doc: dict[str, Any], path: Path) -> Path:
    write_text_atomic(Path(path), render_markdown(doc))
    return Path(path)
