"""The comparison document as Markdown: the summary, the leaderboards, the per-task table,
the language matrices, the paired statistics (overall and per family), the judges and the
provenance.
The HTML report holds the same numbers plus the plots and the item viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.reports.html import JudgeView, fmt_ci, fmt_diff, fmt_p, fmt_stderr, fmt_value, judge_views
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

    views = judge_views(doc)
    if views:
        out += _judges(views)

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


def _judges(views: list[JudgeView]) -> list[str]:
    out = ["## Judges", "", "Verdicts of a judge model (`assay run --judge`), per run. Replies without a verdict (unparseable) and judge "
           "requests not computed (missing) are counted here and left out of the scores.", ""]
    for j in views:
        out += [f"### Judge {_cell(j.id)}", ""]
        if j.flagged:
            out += [f"> **Warning — position bias:** {j.warning}.", ""]
        prompts = "; ".join(f"{p.mode}: {p.name} v{p.version} ({p.hash})" for p in j.prompts) or "—"
        args = ", ".join(f"{k}={v}" for k, v in j.args)
        out += [f"- {j.name}, backend {j.backend}, fingerprint `{j.fingerprint_short}`; run `{j.run_dir}`" + (f"; {args}" if args else ""),
                f"- judge prompts: {prompts}",
                f"- unparseable judgements: {j.n_unparseable}; missing: {j.n_missing}", ""]
        if j.single:
            out += ["#### Single grading", "", "Mean rating out of 10 (1–10) or pass rate (pass/fail), ± one standard error; agreement with the "
                    "task's automatic verdict (share equal, Cohen's κ) where both exist.", ""]
            out += _table(["task", "model", "scale", "judged score", "n", "unparseable", "missing", "agree", "κ", "vs metric"],
                          [[r.task, r.model, r.scale, f"{r.value} {r.stderr}".rstrip(), r.n, r.unparseable, r.missing, r.agree, r.kappa,
                            r.agreement] for r in j.single])
        for sc in j.scopes:
            out += [f"#### Pairwise: {sc.title}", "", f"{sc.n_judged} item pair(s) with a verdict; {sc.n_unparseable} unparseable; {sc.n_missing} missing.", ""]
            if sc.strengths:
                out += _table(["rank", "model", "Bradley–Terry", "95% CI"], [[s.rank, s.model, s.strength, s.ci] for s in sc.strengths])
            if sc.pairs:
                out += _table(["A", "B", "n", "A wins", "ties", "B wins", "A win rate", "95% CI", "length-adjusted"],
                              [[p.a, p.b, p.n, p.wins, p.ties, p.losses, p.win_rate, p.ci, p.length_adjusted] for p in sc.pairs])
            if sc.bias:
                b = sc.bias
                out += [f"Position bias: of {b.parsed} pair(s) judged in both orders, {b.order_decided} ({b.share}) were decided by the order "
                        f"shown; of those, {b.first_share} went to the answer shown first ({b.p})" + ("; **flagged**." if b.flagged else "."), ""]
    out += ["Each pair is asked in both orders; orders that disagree count as a tie. Win rates count ties as half (95% bootstrap interval "
            "over items); length-adjusted: the win rate at equal answer lengths. Bradley–Terry strengths are on an Elo-like scale (mean 1000).", ""]
    return out


def write_markdown(doc: dict[str, Any], path: Path) -> Path:
    write_text_atomic(Path(path), render_markdown(doc))
    return Path(path)
