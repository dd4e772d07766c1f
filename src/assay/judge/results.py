"""Judges' replies → verdicts → scores: each model's judged score per task (single grading),
and pairwise win rates, Bradley–Terry strengths and position bias per judge (over each task
and over all of them). Reads the run store only, so re-scoring never asks a judge again.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from assay.judge import verdicts
from assay.requests import GenerateResult
from assay.results import JudgeRecord, JudgeScore, PairResult, PromptScore, Ratings, Strength
from assay.scoring import ratings as R
from assay.store.runs import RunStore

SampleKey = tuple[str, str, str, str]  # model, task, prompt id, doc id


@dataclass
class Judged:
    """What scoring adds to a run's results from its judges."""

    scores: dict[tuple[str, str], dict[str, JudgeScore]] = field(default_factory=dict)  # (model, task) -> judge -> score
    records: dict[str, JudgeRecord] = field(default_factory=dict)
    samples: dict[SampleKey, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def _finite(x: Any) -> float | None:
    """NaN (no data for an interval) as null: results.json is strict JSON."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _mean_se(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None)


def score_judges(store: RunStore) -> Judged:
    out = Judged()
    for judge, fp, info in store.judges():
        rows = store.judgements(judge)
        replies = store.results(fp, [r[6] for r in rows])
        record = JudgeRecord.model_validate({"fingerprint": fp, **{k: info[k] for k in ("name", "backend", "args") if k in info}})
        _single(judge, [r for r in rows if r[3] == "single"], replies, out)
        record.ratings = _pairwise(judge, [r for r in rows if r[3] == "pairwise"], replies, out)
        out.records[judge] = record
    return out


def _reply(replies: dict[str, Any], key: str) -> str | None:
    res = replies.get(key)
    return res.text if isinstance(res, GenerateResult) else None


def _single(judge: str, rows: list, replies: dict[str, Any], out: Judged) -> None:
    by: dict[tuple[str, str], list] = defaultdict(list)
    for task, pid, did, _mode, models, data, key in rows:
        by[(models[0], task)].append((pid, did, data, key))
    for (model, task), items in by.items():
        scale = items[0][2]["scale"]
        values: list[float] = []
        per_prompt: dict[str, list[float]] = defaultdict(list)
        unparseable = missing = 0
        for pid, did, data, key in items:
            reply = _reply(replies, key)
            verdict = verdicts.single(reply, scale) if reply is not None else None
            if reply is None:
                missing += 1
            elif verdict is None:
                unparseable += 1
            else:
                values.append(verdict)
                per_prompt[pid].append(verdict)
            out.samples[(model, task, pid, did)].append(
                {"judge": judge, "mode": "single", "scale": scale, "verdict": verdict, "reply": reply, "reference": data.get("reference"), "template": data["template"]}
            )
        mean, se = _mean_se(values)
        out.scores.setdefault((model, task), {})[judge] = JudgeScore(
            scale=scale, value=mean, stderr=se, n=len(values), n_unparseable=unparseable, n_missing=missing,
            per_prompt={p: PromptScore(value=_mean_se(v)[0], stderr=_mean_se(v)[1], n=len(v)) for p, v in per_prompt.items()},
            template=items[0][2]["template"],
        )


def _pairwise(judge: str, rows: list, replies: dict[str, Any], out: Judged) -> dict[str, Ratings]:
    """Both orders of each (task, item, pair) reconciled into one verdict from the first
    model's side (in label order); ratings per task and over all tasks."""
    shown: dict[tuple, dict[tuple[str, str], tuple[float | None, str | None, dict]]] = defaultdict(dict)
    for task, pid, did, _mode, models, data, key in rows:
        reply = _reply(replies, key)
        shown[(task, pid, did, tuple(sorted(models)))][models] = (verdicts.pairwise(reply) if reply is not None else None, reply, data)
    per_task: dict[str, dict[str, Any]] = defaultdict(lambda: {"verdicts": [], "orders": [], "unparseable": 0, "missing": 0})
    for (task, pid, did, (a, b)), orders in shown.items():
        acc = per_task[task]
        first, second = orders.get((a, b)), orders.get((b, a))
        o1 = first[0] if first else None  # a shown first: a's side
        o2 = (1.0 - second[0]) if second and second[0] is not None else None  # b shown first, back to a's side
        for o in (first, second):
            if o is None or o[1] is None:
                acc["missing"] += 1
            elif o[0] is None:
                acc["unparseable"] += 1
        outcome = R.reconcile(o1, o2)
        if first and second:
            acc["orders"].append((o1, o2))
        if outcome is not None:
            data = (first or second)[2]  # type: ignore[index]
            ans_a, ans_b = data["answers"] if first else data["answers"][::-1]
            acc["verdicts"].append(R.Verdict(f"{task}/{pid}/{did}", a, b, outcome, len(ans_a), len(ans_b)))
        for model, other, mine in ((a, b, outcome), (b, a, None if outcome is None else 1.0 - outcome)):
            out.samples[(model, task, pid, did)].append({
                "judge": judge, "mode": "pairwise", "against": other, "verdict": mine,
                "orders": {"first": None if first is None else (first[0] if model == a else None if first[0] is None else 1.0 - first[0]),
                           "second": None if second is None else (second[0] if model == b else None if second[0] is None else 1.0 - second[0])},
                "replies": [o[1] for o in (first, second) if o is not None], "template": (first or second)[2]["template"],  # type: ignore[index]
            })
    ratings = {task: _ratings([task], acc) for task, acc in per_task.items()}
    if len(per_task) > 1:
        merged = {"verdicts": [v for acc in per_task.values() for v in acc["verdicts"]], "orders": [o for acc in per_task.values() for o in acc["orders"]],
                  "unparseable": sum(acc["unparseable"] for acc in per_task.values()), "missing": sum(acc["missing"] for acc in per_task.values())}
        ratings["all"] = _ratings(sorted(per_task), merged)
    elif per_task:
        ratings["all"] = next(iter(ratings.values()))
    return ratings


def _ratings(tasks: list[str], acc: dict[str, Any]) -> Ratings:
    vs: list[R.Verdict] = acc["verdicts"]
    out = Ratings(tasks=tasks, n_judged=len(vs), n_unparseable=acc["unparseable"], n_missing=acc["missing"])
    if acc["orders"]:
        out.position_bias = {k: _finite(v) if isinstance(v, float) else v for k, v in R.position_bias(acc["orders"]).items()}
    if not vs:
        return out
    models = sorted({v.a for v in vs} | {v.b for v in vs})
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            mine = [v for v in vs if {v.a, v.b} == {a, b}]
            if not mine:
                continue
            w = R.win_tie_loss(mine, a, b)
            lc = None
            if len(mine) >= 4:
                try:
                    lc = _finite(R.length_adjusted_win_rate(mine, a, b)["adjusted_win_rate"])
                except ValueError:
                    lc = None
            out.pairs.append(PairResult(a=a, b=b, n=w["n"], wins=w["wins"], ties=w["ties"], losses=w["losses"], win_rate=w["win_rate"],
                                        low=_finite(w.get("low")), high=_finite(w.get("high")), length_adjusted=lc))
    try:
        bt = R.bradley_terry(vs, models)
        out.bradley_terry = {m: Strength(strength=s["strength"], low=_finite(s.get("low")), high=_finite(s.get("high")), rank=int(s["rank"])) for m, s in bt.items()}
    except ValueError:  # a comparison graph in pieces: no common scale
        pass
    return out
