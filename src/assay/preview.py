"""See before you spend: rendered requests (``assay validate --show N``) and a run's plan
(``assay run --dry-run``), built by the same code a run uses (``build.build_model``), so what
is shown is what would be sent.

Without a model, prompts are shown as the plain-text format decides them; a prompt whose
format needs a model's chat template says so (give ``-m MODEL`` to see it applied).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from assay.backends.base import Backend
from assay.build import REQUEST_KIND, build_model
from assay.config import RunConfig
from assay.errors import TaskError
from assay.plan import TaskPlan
from assay.prompts.template import ChatTemplate
from assay.requests import GenerateRequest, LoglikelihoodRequest, Request, RollingRequest

Out = Callable[[str], None]


class NoModel:
    """What ``build_model`` asks of a backend, for a preview without one: no chat template,
    no stored answers."""

    serves_stored_answers = False

    def chat_template(self) -> ChatTemplate | None:
        return None


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + line if line else pad.rstrip() for line in text.split("\n"))


def _request_lines(r: Request) -> list[str]:
    if isinstance(r, LoglikelihoodRequest):
        return [f"continuation {r.continuation!r}"]
    if isinstance(r, RollingRequest):
        return [f"rolling log-likelihood of the text ({len(r.text)} characters)"]
    assert isinstance(r, GenerateRequest)
    how = "greedy" if r.temperature == 0 else f"temperature {r.temperature}, top_p {r.top_p}, sample {r.sample_index}"
    return [f"generate up to {r.max_tokens} tokens, {how}, stops at {list(r.until)}"]


def _build(plan: TaskPlan, backend: Backend | NoModel, cfg: RunConfig, out: Out) -> tuple[dict[str, Request], list[Any]]:
    try:
        return build_model("preview", backend, [plan], cfg)  # type: ignore[arg-type]
    except TaskError as exc:
        if not isinstance(backend, NoModel) or "chat template" not in str(exc):
            raise
        out(f"  (task {plan.spec.task} asks for a model's chat template: shown as plain text here; give -m MODEL to see it applied)")
        return build_model("preview", backend, [plan], replace(cfg, chat_format="none"))  # type: ignore[arg-type]


def show_instances(plan: TaskPlan, backend: Backend | NoModel, cfg: RunConfig, n: int, out: Out = print) -> None:
    """The first ``n`` instances of each prompt of a task, as the requests a run would send."""
    requests, registrations = _build(plan, backend, cfg, out)
    spec = plan.spec
    kind = REQUEST_KIND[spec.output_type]
    for _task, _spec, info, rows in registrations:
        fmts = info["chat_format"]
        shown: Counter[str] = Counter()
        for prompt_id, doc_id, data, keys in rows:
            if shown[prompt_id] >= n:
                continue
            shown[prompt_id] += 1
            f = fmts[prompt_id]
            reason = f["reason"]
            if isinstance(backend, NoModel) and reason == "model has no chat template":
                reason = "no model given: -m MODEL applies a model's chat format where a run would"
            head = f"── {spec.task} · prompt {prompt_id} · document {doc_id} · {len(keys)} {kind} request(s) · chat format {f['name']} ({reason})"
            out(head)
            reqs = [requests[k] for k in keys]
            contexts = data["prompt"] if isinstance(data["prompt"], list) else None
            if contexts is None:
                first = reqs[0]
                out("  context:")
                out(_indent(first.text if isinstance(first, RollingRequest) else first.context))
            for i, r in enumerate(reqs):
                if contexts is not None and isinstance(r, LoglikelihoodRequest):  # choice_mode context: one context per choice
                    out(f"  [{i}] context:")
                    out(_indent(r.context))
                mark = "*" if spec.output_type == "multiple_choice" and data["target"] == i else " "
                for line in _request_lines(r):
                    out(f"  {mark}[{i}] {line}" if len(reqs) > 1 or spec.output_type == "multiple_choice" else f"  {line}")
            for n, turn in enumerate(data.get("turns", [])[1:], 2):
                out(f"  turn {n}, sent after the model's answer to turn {n - 1}: {turn!r}")
            if spec.output_type == "multiple_choice":
                out(f"  target: [{data['target']}] (* marks it)")
            elif spec.output_type != "rolling":
                out(f"  target: {json.dumps(data['target'], ensure_ascii=False)}")
        missing = [p.id for p in spec.prompts if p.id in fmts and shown[p.id] == 0]
        for pid in missing:
            out(f"── {spec.task} · prompt {pid}: no instances (not selected, or no rows)")


def dry_run(cfg: RunConfig, out: Out = print, note: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The plan of ``assay run`` without running it: tasks, prompts, requests per kind, and
    how many of them the run folder or the response cache holds already. Each model is loaded
    (its chat format and fingerprint decide the requests); nothing is computed or written.
    Returns the figures printed (per model: per task)."""
    from assay.pipeline import prepare
    from assay.schedule.scheduler import pending
    from assay.store.cache import ResponseCache, resolve_cache
    from assay.store.runs import STORE_NAME, RunStore

    models, labels, executor, plans, run_dir = prepare(cfg)
    has_store = (run_dir / STORE_NAME).is_file()
    cache_path = resolve_cache(cfg.cache)
    out(f"run folder: {run_dir}" + (" (exists: stored responses are reused)" if has_store else " (new)"))
    for plan in plans:
        spec = plan.spec
        prompts = sorted({i.prompt_id for i in plan.instances})
        docs = len({i.doc_id for i in plan.instances})
        out(f"task {spec.task}: {docs} of {len(plan.docs.rows)} documents × {len(prompts)} prompt(s) ({', '.join(prompts)}), "
            f"{REQUEST_KIND[spec.output_type]} requests, metrics {', '.join(spec.metric_names())}")
    store = RunStore(run_dir, readonly=True) if has_store else None
    cache = ResponseCache(cache_path) if cache_path is not None and cache_path.is_file() else None
    figures: dict[str, Any] = {}
    try:
        for ms, label in zip(models, labels):
            backend = executor.open(ms, note)
            try:
                requests, registrations = build_model(label, backend, plans, cfg, note)
                fp = backend.info.fingerprint
                todo = pending(store, fp, requests) if store is not None else dict(requests)
                cached = {k for k, *_ in cache.get(fp, todo)} if cache is not None else set()
            finally:
                backend.close()
            out(f"model {label} ({backend.info.backend}, fingerprint {fp[:12]}):")
            rows = figures[label] = {}
            for task, _spec, _info, regs in registrations:
                keys = list(dict.fromkeys(k for r in regs for k in r[3]))
                kinds = Counter(requests[k].kind for k in keys)
                stored = sum(k not in todo for k in keys)
                from_cache = sum(k in cached for k in keys)
                rows[task] = {"requests": len(keys), "by_kind": dict(kinds), "stored": stored, "cached": from_cache, "to_compute": len(keys) - stored - from_cache}
                by_kind = ", ".join(f"{n} {k}" for k, n in kinds.items())
                out(f"  {task}: {len(keys)} requests ({by_kind}): {stored} stored, {from_cache} in the response cache, {len(keys) - stored - from_cache} to compute")
            total = {k: sum(r[k] for r in rows.values()) for k in ("requests", "stored", "cached", "to_compute")}
            out(f"  all tasks: {total['requests']} requests: {total['stored']} stored, {total['cached']} in the response cache, {total['to_compute']} to compute")
    finally:
        executor.close()
        if store is not None:
            store.close()
        if cache is not None:
            cache.close()
    out("dry run: nothing was computed or written; run the same command without --dry-run to run it")
    return figures
