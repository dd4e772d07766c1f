"""The scoring stage: stored responses → extracted answers → per-item values → aggregates.

It reads the run store only, so re-scoring after a metric fix never re-runs a model. Items
whose responses are not all stored yet (an interrupted run) are left out and counted.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from assay.requests import GenerateResult, LoglikelihoodResult, RollingResult
from assay.scoring import metrics as M
from assay.scoring import text
from assay.scoring.entities import entity_counts, prf
from assay.scoring.code import check_many, code_job
from assay.scoring.sandbox import limits_for
from assay.scoring.extract import extract, label_map, vote
from assay.results import MetricResult, SandboxRecord, TaskResult
from assay.store.runs import RunStore
from assay.tasks.spec import TaskSpec


@dataclass
class Scored:
    prompt_id: str
    doc_id: str
    item: M.Item
    sample: dict[str, Any]


# What happens to a prompt longer than the model's window: the established harnesses' rule
# (lm-evaluation-harness cuts the context from the left), kept for comparable numbers, but
# never silently: each result counts the tokens cut, each sample shows them, each task counts
# its truncated items, and the terminal and the report say so.
TRUNCATION = "left: the oldest prompt tokens are cut to fit the model's window (as lm-evaluation-harness does); counted per task as n_truncated"

# per-item metrics whose value is itself a score in [0, 1]; the verdict follows them
_ITEM_SCORES = ("exact_match", "f1", "number_match", "label_acc")


def _item_score(it: M.Item, primary: str | None = None) -> float:
    """A per-item score in [0, 1] for the verdict column of the sample files: the task's
    primary metric where it scores items one by one, so verdict and score never disagree."""
    if it.output_type == "generate" and primary in _ITEM_SCORES and not it.passed:
        return float(M.metric(primary).item(it, {}))
    if it.output_type in ("multiple_choice", "loglikelihood"):
        return M._acc(it, {})
    if it.output_type == "rolling":
        return float("nan")
    if it.output_type == "match":
        return float(M.metric("group_score").item(it, {}))
    if it.passed:
        return sum(it.passed) / len(it.passed)
    x = it.extracted[0] if it.extracted else None
    if isinstance(it.target, (list, tuple)) and it.target and isinstance(it.target[0], dict):
        tp, fp, fn = entity_counts(M._entity_list(x), M._entity_list(it.target), typed=False)
        return prf(tp, fp, fn)[2] if (tp + fp + fn) else 1.0
    if isinstance(x, str) and isinstance(it.target, (list, tuple)):
        return text.token_f1(x, M._golds(it.target))
    return float(x is not None and str(x) == str(it.target))


def _verdict(score: float) -> str:
    if math.isnan(score):
        return "-"
    return "correct" if score >= 1.0 else "wrong" if score <= 0.0 else "partial"


def _build_items(spec: TaskSpec, rows: list, results: dict, sandbox: str = "auto") -> tuple[list[Scored], int]:
    labels: tuple[str, ...] = ()
    if spec.extract.name == "label":
        labels = tuple(label_map(spec.extract, spec.vars, spec.task))
    out: list[Scored] = []
    code_jobs: list[tuple[int, tuple[str, dict]]] = []
    missing = 0
    for prompt_id, doc_id, data, keys in rows:
        turns = data.get("turns")
        if any(k not in results for k in keys) or (turns and len(keys) < len(turns)):
            missing += 1
            continue
        conversation = None
        if turns:  # a conversation: its last answer is scored, the whole exchange is shown
            conversation = [{"user": t, "assistant": getattr(results[k], "text", None)} for t, k in zip(turns, keys)]
            keys = keys[-1:]
        res = [results[k] for k in keys]
        target = data["target"]
        sample: dict[str, Any] = {"task": spec.task, "prompt_id": prompt_id, "doc_id": doc_id, "prompt": data["prompt"], "target": target}
        cut = max((getattr(r, "truncated", 0) for r in res), default=0)
        if cut:  # the model read the prompt without its first `cut` tokens (see TRUNCATION)
            sample["truncated_tokens"] = cut
        if data.get("images"):
            sample["images"] = data["images"]
        if conversation is not None:
            sample["conversation"] = conversation
        if spec.output_type == "multiple_choice":
            lps = tuple(r.logprob for r in res if isinstance(r, LoglikelihoodResult))
            item = M.Item("multiple_choice", target, tuple(data["choices"]), lps)
            pred = M._pred_choice(item, False)
            sample.update(choices=data["choices"], logprobs=list(lps), response=data["choices"][pred], extracted=pred)
        elif spec.output_type == "match":  # N images × N captions, row-major
            lps = tuple(r.logprob for r in res if isinstance(r, LoglikelihoodResult))
            choices = data["choices"]
            n = len(choices)
            item = M.Item("match", target, tuple(choices), lps)
            matrix = [list(lps[i * n : (i + 1) * n]) for i in range(n)]
            best = [max(range(n), key=lambda j, row=row: row[j]) for row in matrix]
            sample.update(choices=choices, logprobs=matrix, response=[choices[j] for j in best], extracted=best)
        elif spec.output_type == "loglikelihood":
            r0 = res[0]
            assert isinstance(r0, LoglikelihoodResult)
            item = M.Item("loglikelihood", target, logprobs=(r0.logprob,), greedy=r0.is_greedy)
            sample.update(response=None, extracted=r0.is_greedy, logprobs=[r0.logprob])
        elif spec.output_type == "rolling":
            r0 = res[0]
            assert isinstance(r0, RollingResult)
            item = M.Item("rolling", target, rolling=(r0.logprob, r0.n_tokens, len(str(data["prompt"]).encode())))
            sample.update(response=None, extracted=r0.logprob)
        else:
            texts = [r.text for r in res if isinstance(r, GenerateResult)]
            ex = tuple(extract(spec.extract, t, task_vars=spec.vars, target=target, task=spec.task) for t in texts)
            item = M.Item("generate", target, extracted=ex, labels=labels)
            sample.update(response=texts[0] if len(texts) == 1 else texts, extracted=ex[0] if len(ex) == 1 else list(ex))
            if spec.extract.majority:  # one answer per item: the vote over its samples
                sample["vote"] = vote(ex)
                item = M.Item("generate", target, extracted=(sample["vote"],), labels=labels)
            if spec.extract.name == "code":
                # HumanEval (check(candidate) + the prompt a completion continues), MBPP
                # (asserts + setup code) and stdout programs: see code.code_job
                code_jobs.extend((len(out), code_job(t, target)) for t in texts)
        out.append(Scored(prompt_id, doc_id, item, sample))
    if code_jobs:
        verdicts = check_many([job for _, job in code_jobs], limits=limits_for(sandbox))
        passed: dict[int, list[bool]] = {}
        reasons: dict[int, list[str]] = {}
        isolation: dict[int, list[str]] = {}
        for (i, _), v in zip(code_jobs, verdicts):
            passed.setdefault(i, []).append(v.passed)
            reasons.setdefault(i, []).append(v.reason)
            if v.isolation and v.isolation not in isolation.setdefault(i, []):
                isolation[i].append(v.isolation)
        for i, s in enumerate(out):
            if i in passed:
                s.item = M.Item("generate", s.item.target, extracted=s.item.extracted, passed=tuple(passed[i]))
                s.sample["exec"] = reasons[i][0] if len(reasons[i]) == 1 else reasons[i]
                # how its programs were sandboxed (None: none ran, e.g. no code found)
                used = isolation.get(i) or [None]
                s.sample["sandbox"] = used[0] if len(used) == 1 else used
    primary = M.facts(spec.headline()).name
    for s in out:
        sc = _item_score(s.item, primary)
        s.sample["score"] = None if math.isnan(sc) else round(sc, 6)
        s.sample["verdict"] = _verdict(sc)
    return out, missing


def _summary(per_prompt: dict[str, dict[str, Any]]) -> dict[str, Any]:
    vals = [v["value"] for v in per_prompt.values() if v["value"] is not None and not math.isnan(v["value"])]
    ses = [v["stderr"] for v in per_prompt.values()]
    if not vals:
        return {"value": None, "stderr": None}
    med = statistics.median(vals)
    # the prompt whose score is the median carries its standard error
    closest = min(per_prompt.values(), key=lambda v: abs((v["value"] if v["value"] is not None else 1e9) - med))
    return {
        "value": med,
        "stderr": closest["stderr"] if len(vals) > 1 else ses[0],
        "mean": statistics.fmean(vals),
        "max": max(vals),
        "min": min(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "n_prompts": len(vals),
    }


def score_task(store: RunStore, model_label: str, model_fp: str, spec: TaskSpec, sandbox: str = "auto") -> tuple[TaskResult, list[dict[str, Any]]]:
    """A task's result and samples; ``sandbox`` is the ``--sandbox`` mode of code tasks."""
    rows = store.instances(model_label, spec.task)
    results = store.results(model_fp, [k for r in rows for k in r[3]])
    scored, missing = _build_items(spec, rows, results, sandbox)
    metrics_out: dict[str, MetricResult] = {}
    prompts = [p.id for p in spec.prompts if any(s.prompt_id == p.id for s in scored)]
    for m in spec.metrics:
        met = M.metric(m.name)
        per_prompt = {}
        for pid in prompts:
            vals = [met.item(s.item, m.args) for s in scored if s.prompt_id == pid]
            value, se = met.aggregate(vals, m.args)
            per_prompt[pid] = {"value": _clean(value), "stderr": _clean(se), "n": len(vals)}
        name = M.display_name(m.name, m.args)
        metrics_out[name] = MetricResult.model_validate({**_summary(per_prompt), "per_prompt": per_prompt}) if per_prompt else MetricResult()
    n_cut = sum(1 for s in scored if s.sample.get("truncated_tokens"))
    result = TaskResult(
        primary=spec.headline(), metrics=metrics_out, n_items=len(scored), n_docs=len({s.doc_id for s in scored}),
        n_incomplete=missing, n_truncated=n_cut,
    )
    if spec.extract.name == "code":  # the mode asked for and the isolation its programs got
        used = {u for s in scored for u in _as_list(s.sample.get("sandbox")) if u}
        result.sandbox = SandboxRecord(mode=sandbox, isolation=sorted(used))
    return result, [s.sample for s in scored]


def _as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
