"""Runs → one comparison document: the data every report format (HTML, Markdown) renders.

``build(run_dirs)`` reads each run's ``results.json`` and ``samples/``, and returns a JSON-able
dict (schema in ``docs``-style comments below, and in DESIGN.md "Reports"):

- ``runs``, ``models``, ``tasks``: provenance (fingerprints, template hashes, chat formats,
  package versions, dates, the code sandbox's mode and isolation);
- ``scores``: task → model → the headline metric (value, stderr, n documents, per-prompt
  values) and the task's other metrics (``others``); each task lists its ``metrics`` and
  their facts from the metric registry (percent, higher is better);
- ``leaderboards``: overall and per task family, over the tasks every model ran;
- ``languages``: model × language matrices of the multilingual datasets;
- ``pairs``: paired statistics between every two models on the items both answered
  (overall, per family, per task);
- ``summary``: sentences written from those numbers;
- ``items``: every (task, prompt, doc) with each model's answer, for the side-by-side viewer,
  and each answer's ``judgements`` (judge, verdict, the raw replies);
- ``judges``: each run's judges (``assay run --judge``): identity, the judge prompts used,
  single-grading scores per (task, model) and pairwise ratings (Bradley–Terry, pairs,
  position bias) over all tasks and per task, with unparseable and missing counts.

Judges are per run: a judge is ``label``, or ``label (run N)`` when two runs have a judge of
that label.

A model in several runs with the same fingerprint is one model (its tasks are the union;
for a task in two runs the later run counts); the same label with another fingerprint is
another model, named ``label (run N)``.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import AssayError
from assay.reports import paired
from assay.results import Ratings, RunResults, SandboxRecord, read_results
from assay.scoring.metrics import facts as metric_facts

N_BOOT = 2000  # paired bootstrap resamples per comparison
# the item viewer shows a prompt's last characters: a 5-shot prompt repeats the same examples
# in every item, and whole prompts would make a report of thousands of items very large
MAX_PROMPT = 4000
# a judge's reply likewise keeps its end (where the verdict is): pairwise judging stores two
# replies per pair of models on every item, which would otherwise outweigh the answers
MAX_REPLY = 1500


def _tail(text: str, limit: int = MAX_PROMPT, what: str = "prompt") -> str:
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit:,} earlier characters not shown; the run's samples/ files have the whole {what}]\n" + text[-limit:]


def _when(ts: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(ts)))
    except (TypeError, ValueError):
        return "?"


def _sandbox(rec: SandboxRecord | None) -> str:
    """How a run's code answers were isolated: ``mode: isolation used`` ('' without code tasks)."""
    if rec is None:
        return ""
    used = "; ".join(rec.isolation) or "no program ran"
    return f"{rec.mode}: {used}"


def _text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    return json.dumps(x, ensure_ascii=False)


@dataclass
class _Run:
    index: int
    dir: Path
    doc: RunResults
    ids: dict[str, str] = field(default_factory=dict)  # label in this run -> model id


def _load(run_dir: Path, index: int) -> _Run:
    return _Run(index, Path(run_dir), read_results(run_dir))


def _read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise AssayError(f"{path}:{n}: not a JSON line: {exc}") from None
    return out


def _target_text(s: dict[str, Any]) -> str:
    t, choices = s.get("target"), s.get("choices")
    if choices and isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(choices):
        return str(choices[t])
    if choices and isinstance(t, list) and all(isinstance(x, (int, bool)) for x in t) and len(t) == len(choices):
        return " | ".join(str(c) for c, ok in zip(choices, t) if ok)  # multiple true answers
    return _text(t)


def _extracted_text(s: dict[str, Any]) -> str:
    x, choices = s.get("extracted"), s.get("choices")
    if choices and isinstance(x, int) and not isinstance(x, bool) and 0 <= x < len(choices):
        return f"{x}: {choices[x]}"
    return _text(x)


def build(run_dirs: Sequence[Path], *, n_boot: int = N_BOOT) -> dict[str, Any]:
    if not run_dirs:
        raise AssayError("no run folders given")
    runs = [_load(Path(d), i) for i, d in enumerate(run_dirs)]
    models: dict[str, dict[str, Any]] = {}
    by_fp: dict[tuple[str, str], str] = {}
    for run in runs:
        for label in run.doc.results:
            rec = run.doc.models.get(label)
            key = (label, rec.fingerprint if rec else "")
            if key in by_fp:
                run.ids[label] = by_fp[key]
                continue
            mid = label if label not in models else f"{label} (run {run.index + 1})"
            by_fp[key] = run.ids[label] = mid
            models[mid] = {
                "id": mid, "name": (rec.name if rec else "") or label, "backend": rec.backend if rec else "?",
                "fingerprint": rec.fingerprint if rec else "?", "run": run.index,
                "args": {k: _text(v) for k, v in sorted((rec.args if rec else {}).items())},
            }

    tasks: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    notes: list[str] = []
    for run in runs:
        for name, meta in run.doc.tasks.items():
            prev = tasks.get(name)
            if prev is not None and prev["hash"] != meta.hash:
                notes.append(f"Task {name} differs between runs (template hash {prev['hash']} vs {meta.hash}); the later run's definition is listed.")
            group = list(meta.group)
            language = meta.language
            entry = tasks.setdefault(name, {"name": name, "chat_formats": {}, "runs": []})
            entry.update(
                family=meta.family or "other", language=language,
                dataset=group[0] if (language and group) else name,
                description=meta.description, hash=meta.hash, version=meta.version,
                prompts={pid: p.hash for pid, p in meta.prompts.items()}, group=group,
            )
            entry["runs"].append(run.index)
            for label, per_prompt in meta.chat_format.items():
                if label in run.ids:
                    entry["chat_formats"][run.ids[label]] = {pid: f"{cf.name} ({cf.template_hash})" for pid, cf in per_prompt.items()}
        for label, by_task in run.doc.results.items():
            mid = run.ids[label]
            for name, res in by_task.items():
                m = res.metrics.get(res.primary)
                if m is None or m.value is None or math.isnan(m.value):
                    continue
                tasks[name]["metric"] = res.primary
                # every metric the task declares, the headline first (shown beside it)
                tasks[name]["metrics"] = [res.primary] + [k for k in res.metrics if k != res.primary]
                if res.n_truncated:
                    tasks[name].setdefault("truncated", {})[mid] = f"{res.n_truncated} of {res.n_items}"
                scores.setdefault(name, {})[mid] = {
                    "value": m.value, "stderr": m.stderr, "n": res.documents,
                    "per_prompt": {pid: v.value for pid, v in m.per_prompt.items() if v.value is not None},
                    "run": run.index,
                    "others": {k: {"value": v.value, "stderr": v.stderr} for k, v in res.metrics.items() if k != res.primary and v.value is not None},
                }
    for t in tasks.values():
        metric = t.setdefault("metric", "?")
        t.setdefault("metrics", [metric])
        facts = metric_facts(metric)
        t["percent"] = facts.percent
        t["higher_is_better"] = facts.higher_is_better
        t["metric_facts"] = {k: {"percent": metric_facts(k).percent, "higher_is_better": metric_facts(k).higher_is_better} for k in t["metrics"]}
    order = sorted(tasks, key=lambda n: (tasks[n]["family"], n))
    tasks = {n: tasks[n] for n in order}
    model_ids = list(models)

    judge_ids = _judge_ids(runs)
    items = _items(runs, tasks, scores, judge_ids)
    judges = _judges(runs, judge_ids)
    leaderboards = _leaderboards(tasks, scores, model_ids)
    rank = {r["model"]: k for k, r in enumerate(leaderboards[0]["rows"])} if leaderboards else {}
    model_ids.sort(key=lambda m: rank.get(m, len(rank)))
    pairs = _pairs(tasks, items, model_ids, n_boot)
    title = "assay report: " + (" vs ".join(model_ids) if len(model_ids) <= 3 else f"{len(model_ids)} models")
    return {
        "title": title,
        "created": _when(time.time()),
        "runs": [
            {
                "dir": str(r.dir), "created": _when(r.doc.created), "scored": _when(r.doc.scored),
                "tasks": list(r.doc.tasks), "models": list(dict.fromkeys(r.ids.values())),
                "environment": dict(r.doc.environment), "config": dict(r.doc.config or {}),
                "sandbox": _sandbox(r.doc.sandbox),
            }
            for r in runs
        ],
        "models": [models[m] for m in model_ids],
        "tasks": list(tasks.values()),
        "scores": {n: scores.get(n, {}) for n in tasks},
        "leaderboards": leaderboards,
        "languages": _languages(tasks, scores, model_ids),
        "pairs": [{"scope": scope, "kind": kind, "a": a, "b": b, **p.as_dict()} for scope, kind, a, b, p in pairs],
        "summary": _summary(leaderboards, pairs) + notes + _judge_summary(judges),
        "items": items,
        "judges": judges,
    }


def _items(runs: list[_Run], tasks: dict[str, dict[str, Any]], scores: dict[str, dict[str, Any]],
           judge_ids: dict[tuple[int, str], str] | None = None) -> list[dict[str, Any]]:
    """Every (task, prompt, doc) any model answered, each model's answer beside the others
    (with the judges' verdicts on it, where a judge graded it)."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:
        for label, mid in run.ids.items():
            for name in run.doc.results.get(label, {}):
                if scores.get(name, {}).get(mid, {}).get("run") != run.index:
                    continue  # this model's task was scored again in a later run
                path = run.dir / "samples" / label / f"{name}.jsonl"
                for s in _read_samples(path):
                    key = (name, str(s.get("prompt_id", "")), str(s.get("doc_id", "")))
                    item = found.setdefault(key, {
                        "task": key[0], "prompt_id": key[1], "doc_id": key[2], "prompt": _tail(_text(s.get("prompt"))),
                        "target": _target_text(s), "choices": [str(c) for c in s["choices"]] if s.get("choices") else None,
                        "answers": {},
                    })
                    item["answers"][mid] = {
                        "response": _text(s.get("response")), "extracted": _extracted_text(s),
                        "score": s.get("score"), "verdict": str(s.get("verdict", "-")),
                        "judgements": [_judgement(j, run, label, judge_ids or {}) for j in s.get("judgements") or [] if isinstance(j, dict)],
                    }
    order = {n: k for k, n in enumerate(tasks)}
    out = sorted(found.values(), key=lambda it: (order.get(it["task"], 1 << 30), it["prompt_id"], _doc_order(it["doc_id"])))
    for it in out:
        answers = list(it["answers"].values())
        it["disagree"] = len(answers) > 1 and (len({a["verdict"] for a in answers}) > 1 or len({a["extracted"] for a in answers}) > 1)
    return out


# --------------------------------------------------------------------------- judges


def _judge_ids(runs: list[_Run]) -> dict[tuple[int, str], str]:
    """(run index, judge label) -> the judge's id in the report: its label, or ``label (run N)``
    when another run has a judge of the same label (judges are per run, never merged)."""
    count: dict[str, int] = {}
    for run in runs:
        for label in run.doc.judges:
            count[label] = count.get(label, 0) + 1
    return {(run.index, label): (label if count[label] == 1 else f"{label} (run {run.index + 1})") for run in runs for label in run.doc.judges}


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _judge_verdict(j: dict[str, Any], against: str) -> tuple[str, str]:
    """A judgement's verdict in words, and its status: ``ok``, ``unparseable`` or ``missing``."""
    v = _finite(j.get("verdict"))
    if v is None:
        replies = list(j.get("replies") or []) if j.get("mode") == "pairwise" else [j.get("reply")]
        status = "missing" if not replies or any(r is None for r in replies) else "unparseable"
        return f"no verdict ({status})", status
    if j.get("mode") == "pairwise":
        word = "win" if v == 1.0 else "loss" if v == 0.0 else "tie" if v == 0.5 else f"{v:g}"
        return f"{word} vs {against}", "ok"
    if j.get("scale") == "pass/fail":
        return ("pass" if v >= 0.5 else "fail"), "ok"
    return f"{v:g}/10", "ok"


def _reply(label: str, text: Any) -> dict[str, Any]:
    return {"label": label, "text": None if text is None else _tail(_text(text), MAX_REPLY, "reply")}


def _judgement(j: dict[str, Any], run: _Run, model: str, judge_ids: dict[tuple[int, str], str]) -> dict[str, Any]:
    """One judgement in a sample row of ``model`` (its label in ``run``), for the item viewer:
    who judged, the verdict in words, and the judge's raw replies (for a pair, labelled by the
    answer shown first)."""
    label = str(j.get("judge", "?"))
    mode = str(j.get("mode", "?"))
    out: dict[str, Any] = {"judge": judge_ids.get((run.index, label), label), "mode": mode}
    if mode == "pairwise":
        other = str(j.get("against", "?"))
        against = run.ids.get(other, other)
        out["against"] = against
        out["verdict"], out["status"] = _judge_verdict(j, against)
        replies = list(j.get("replies") or [])
        # stored in a fixed order: the pair's first model by label shown first, then the other
        a, b = sorted([model, other])
        names = [f"{run.ids.get(a, a)} shown first", f"{run.ids.get(b, b)} shown first"] if len(replies) == 2 else ["reply"] * len(replies)
        out["replies"] = [_reply(n, r) for n, r in zip(names, replies)]
    else:
        out["scale"] = str(j.get("scale", ""))
        out["verdict"], out["status"] = _judge_verdict(j, "")
        out["replies"] = [_reply("reply", j.get("reply"))]
    return out


def _pairwise_templates(run: _Run, ratings: dict[str, Ratings], judge: str) -> list[dict[str, Any]]:
    """The pairwise judge prompt(s) a judge used: the ratings do not record them, the sample
    rows do (one row per task is enough: a task's pairs all use the same prompt)."""
    found: dict[str, dict[str, Any]] = {}
    for task, r in ratings.items():
        if task == "all":
            continue
        models = sorted({m for p in r.pairs for m in (p.a, p.b)} | set(r.bradley_terry)) or sorted(run.doc.results)
        for label in models:
            hit = _first_pairwise_template(run.dir / "samples" / label / f"{task}.jsonl", judge)
            if hit is not None:
                found.setdefault(json.dumps(hit, sort_keys=True), hit)
                break
    return list(found.values())


def _first_pairwise_template(path: Path, judge: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            for j in row.get("judgements") or []:
                if isinstance(j, dict) and j.get("judge") == judge and j.get("mode") == "pairwise" and isinstance(j.get("template"), dict):
                    return dict(j["template"])
    return None


def _template(mode: str, t: dict[str, Any]) -> dict[str, Any]:
    return {"mode": mode, "name": str(t.get("name", "?")), "version": _text(t.get("version", "?")), "hash": str(t.get("hash", "?"))}


def _ratings_view(scope: str, r: Ratings, ids: dict[str, str]) -> dict[str, Any]:
    bt = sorted(r.bradley_terry.items(), key=lambda kv: (kv[1].rank, kv[0]))
    return {
        "scope": scope, "tasks": list(r.tasks),
        "bradley_terry": [{"model": ids.get(m, m), "strength": s.strength, "low": s.low, "high": s.high, "rank": s.rank} for m, s in bt],
        "pairs": [{"a": ids.get(p.a, p.a), "b": ids.get(p.b, p.b), "n": p.n, "wins": p.wins, "ties": p.ties, "losses": p.losses,
                   "win_rate": p.win_rate, "low": p.low, "high": p.high, "length_adjusted": p.length_adjusted} for p in r.pairs],
        "position_bias": {k: (_finite(v) if isinstance(v, float) else v) for k, v in r.position_bias.items()},
        "n_judged": r.n_judged, "n_unparseable": r.n_unparseable, "n_missing": r.n_missing,
    }


def _judges(runs: list[_Run], judge_ids: dict[tuple[int, str], str]) -> list[dict[str, Any]]:
    """Each run's judges: who they are, the prompts they were given, their single grading of
    every (task, model) and their pairwise ratings over all tasks and per task."""
    out = []
    for run in runs:
        for label, rec in run.doc.judges.items():
            single = []
            prompts: dict[str, dict[str, Any]] = {}
            for model, by_task in run.doc.results.items():
                for task, res in by_task.items():
                    js = res.judged.get(label)
                    if js is None:
                        continue
                    if js.template:
                        t = _template("single", js.template)
                        prompts.setdefault(json.dumps(t, sort_keys=True), t)
                    agreement = dict(js.agreement) if js.agreement else None
                    single.append({
                        "task": task, "model": run.ids.get(model, model), "scale": js.scale, "value": _finite(js.value), "stderr": _finite(js.stderr),
                        "n": js.n, "n_unparseable": js.n_unparseable, "n_missing": js.n_missing, "agreement": agreement,
                    })
            single.sort(key=lambda s: (s["task"], s["model"]))
            for t in _pairwise_templates(run, rec.ratings, label):
                tv = _template("pairwise", t)
                prompts.setdefault(json.dumps(tv, sort_keys=True), tv)
            pairwise = []
            if "all" in rec.ratings:
                pairwise.append(_ratings_view("all", rec.ratings["all"], run.ids))
            per_task = sorted(k for k in rec.ratings if k != "all")
            if len(per_task) > 1 or "all" not in rec.ratings:
                pairwise += [_ratings_view(k, rec.ratings[k], run.ids) for k in per_task]
            top = pairwise[0] if pairwise else None
            bias = top["position_bias"] if top else {}
            out.append({
                "id": judge_ids[(run.index, label)], "label": label, "run": run.index, "run_dir": str(run.dir),
                "name": rec.name or label, "backend": rec.backend, "fingerprint": rec.fingerprint,
                "args": {k: _text(v) for k, v in sorted(rec.args.items())},
                "prompts": sorted(prompts.values(), key=lambda t: (t["mode"] != "single", t["name"], t["hash"])),
                "single": single, "pairwise": pairwise,
                "n_unparseable": sum(s["n_unparseable"] for s in single) + (top["n_unparseable"] if top else 0),
                "n_missing": sum(s["n_missing"] for s in single) + (top["n_missing"] if top else 0),
                "flagged": bool(bias.get("flagged")),
                "prefers": "first" if (_finite(bias.get("first_position_share")) or 0.0) >= 0.5 else "second",
            })
            out[-1]["warning"] = bias_warning(out[-1]) if out[-1]["flagged"] else ""
    return out


def bias_warning(judge: dict[str, Any]) -> str:
    """The warning a judge with a significant position bias gets, wherever it is shown."""
    return f"this judge prefers the answer shown {judge.get('prefers', 'first')}: its pairwise verdicts are unreliable"


def _judge_summary(judges: list[dict[str, Any]]) -> list[str]:
    out = []
    for j in judges:
        if j["flagged"]:
            out.append(f"Judge {j['id']}: {bias_warning(j)}.")
        lost = [f"{j[k]} {w}" for k, w in (("n_unparseable", "unparseable"), ("n_missing", "missing")) if j[k]]
        if lost:
            out.append(f"Judge {j['id']}: {' and '.join(lost)} judgement(s), counted and left out of its scores.")
    return out


def _doc_order(doc_id: str) -> tuple[int, Any]:
    return (0, int(doc_id)) if doc_id.isdigit() else (1, doc_id)


def _mean_se(rows: list[dict[str, Any]]) -> tuple[float, float | None]:
    k = len(rows)
    value = sum(r["value"] for r in rows) / k
    ses = [r.get("stderr") for r in rows]
    se = math.sqrt(sum(s * s for s in ses)) / k if all(isinstance(s, (int, float)) for s in ses) else None  # type: ignore[operator]
    return value, se


def _leaderboards(tasks: dict[str, dict[str, Any]], scores: dict[str, dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    """Overall, then one per family: the mean over the scope's tasks of the primary metric,
    on the tasks every model ran (so rows are comparable); where no task is shared by all,
    each model's own tasks, marked ``shared: false``."""
    averaged = [n for n, t in tasks.items() if t["percent"] and t["higher_is_better"]]
    scopes = [("overall", averaged)] + [
        (fam, [n for n in averaged if tasks[n]["family"] == fam]) for fam in dict.fromkeys(tasks[n]["family"] for n in averaged)
    ]
    out = []
    for scope, names in scopes:
        ran = [m for m in models if any(m in scores.get(n, {}) for n in names)]
        if not ran:
            continue
        shared = [n for n in names if all(m in scores.get(n, {}) for m in ran)]
        rows = []
        for m in ran:
            use = shared or [n for n in names if m in scores.get(n, {})]
            value, se = _mean_se([scores[n][m] for n in use])
            rows.append({"model": m, "value": value, "stderr": se, "n_tasks": len(use)})
        rows.sort(key=lambda r: -r["value"])
        for k, r in enumerate(rows, 1):
            r["rank"] = k
        out.append({"scope": scope, "tasks": shared or names, "shared": bool(shared), "rows": rows})
    return out


def _languages(tasks: dict[str, dict[str, Any]], scores: dict[str, dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    by_ds: dict[str, dict[str, str]] = {}
    for n, t in tasks.items():
        if t["language"] and t["dataset"] != n:
            by_ds.setdefault(t["dataset"], {})[t["language"]] = n
    out = []
    for ds, langs in by_ds.items():
        if len(langs) < 2:
            continue
        codes = sorted(langs)
        values = {m: {c: scores[langs[c]][m]["value"] for c in codes if m in scores.get(langs[c], {})} for m in models}
        values = {m: v for m, v in values.items() if v}
        if values:
            out.append({"dataset": ds, "languages": codes, "tasks": {c: langs[c] for c in codes}, "values": values,
                        "percent": all(tasks[langs[c]]["percent"] for c in codes)})
    return out


# (scope, kind, model a, model b, statistics)
_Pair = tuple[str, str, str, str, paired.Paired]


def _pairs(tasks: dict[str, dict[str, Any]], items: list[dict[str, Any]], models: list[str], n_boot: int) -> list[_Pair]:
    """Every two models on the items both answered with a per-item score: overall, per family
    and per task. Over several tasks every task weighs the same (the leaderboard's mean of
    task means), and the interval and p-value respect that (``paired.stratified_compare``)."""
    averaged = [n for n, t in tasks.items() if t["percent"] and t["higher_is_better"]]
    scopes: list[tuple[str, str, list[str]]] = [("overall", "overall", averaged)]
    for fam in dict.fromkeys(tasks[n]["family"] for n in averaged):
        scopes.append((fam, "family", [n for n in averaged if tasks[n]["family"] == fam]))
    scopes += [(n, "task", [n]) for n in averaged]
    out = []
    for a, b in itertools.combinations(models, 2):
        # per task, the two models' scores on the items both answered
        by_task: dict[str, tuple[list[float], list[float]]] = {}
        for it in items:
            if _scored(it, a) and _scored(it, b):
                xs, ys = by_task.setdefault(it["task"], ([], []))
                xs.append(it["answers"][a]["score"])
                ys.append(it["answers"][b]["score"])
        for scope, kind, names in scopes:
            groups = [by_task[n] for n in names if n in by_task]
            if groups:
                out.append((scope, kind, a, b, paired.stratified_compare(groups, n_boot=n_boot, seed=0)))
    return out


def _scored(item: dict[str, Any], model: str) -> bool:
    ans = item["answers"].get(model)
    return ans is not None and isinstance(ans.get("score"), (int, float)) and not math.isnan(ans["score"])


def _summary(leaderboards: list[dict[str, Any]], pairs: list[_Pair]) -> list[str]:
    scopes = []
    for lb in leaderboards:
        kind = "overall" if lb["scope"] == "overall" else "family"
        ps = [(a, b, p) for scope, k, a, b, p in pairs if scope == lb["scope"] and k == kind]
        scopes.append(paired.Scope(name=lb["scope"], kind=kind, scores={r["model"]: r["value"] for r in lb["rows"]}, pairs=ps))
    return paired.summarise(scopes) if scopes else ["No scored tasks in these runs."]


def write_reports(run_dirs: Sequence[Path], html_path: Path) -> tuple[Path, Path]:
    """Build the comparison of ``run_dirs`` and write it as HTML at ``html_path`` and as
    Markdown beside it (same name, ``.md``)."""
    from assay.reports.html import write_html
    from assay.reports.markdown import write_markdown

    doc = build(run_dirs)
    html_path = Path(html_path)
    return write_html(doc, html_path), write_markdown(doc, html_path.with_suffix(".md"))
