"""``assay run``: task specs → instances → requests → scheduler/store → scoring → results.

Everything that can fail on bad input (task files, data files, model names) is checked
before the first model is loaded. Each model's responses go to the run store as they are
computed, so a crash or Ctrl-C loses at most the batch in flight, and re-running the same
command (same run folder) computes only what is missing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from assay.backends.base import Origin
from assay.backends.registry import ModelSpec, load_backend, parse_model
from assay.data.sources import Documents, data_dir, load_documents
from assay.data.sources import _resolve as resolve_data_path
from assay.errors import BackendError, ConfigError, StoreError, TaskError, UnknownNameError
from assay.instances import Instance, attach_images, build_instances
from assay.prompts.chat import ChatTemplate, apply_format, choose_format
from assay.reports.terminal import UI
from assay.requests import IMAGE, GenerateRequest, LoglikelihoodRequest, Request, RollingRequest, canonical_json, request_key
from assay.schedule.scheduler import execute, pending
from assay.scoring.extract import check_extract
from assay.scoring.metrics import check_metrics
from assay.scoring.score import TRUNCATION, score_task
from assay.store.atomic import remove_stale_tmp, write_text_atomic
from assay.store.lock import run_lock
from assay.store.runs import RunStore
from assay.tasks import registry
from assay.tasks.spec import DatasetSpec, TaskSpec, template_hash

RESULTS_NAME = "results.json"
REPORT_NAME = "report.html"
# the request kind each output type needs
REQUEST_KIND = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood", "match": "loglikelihood", "rolling": "rolling", "generate": "generate"}


@dataclass(frozen=True)
class RunConfig:
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    limit: int | None = None
    output: Path | None = None
    data_dir: Path | None = None
    batch_size: int = 64
    prompts: tuple[str, ...] = ()
    chat_format: str | None = None
    system_prompt: str | None = None
    sandbox: str = "auto"  # code tasks: strict (namespaces required), auto, off (unsandboxed)

    def identity(self) -> dict[str, Any]:
        """What decides the content of a run folder (the folder's name is derived from it)."""
        d = asdict(self)
        for k in ("output", "data_dir", "batch_size", "sandbox"):
            d.pop(k)
        return d


@dataclass
class TaskPlan:
    spec: TaskSpec
    path: Path
    docs: Documents
    instances: list[Instance] = field(default_factory=list)


def default_run_dir(cfg: RunConfig, labels: list[str]) -> Path:
    digest = hashlib.sha256(canonical_json(cfg.identity()).encode()).hexdigest()[:8]
    tasks = "+".join(cfg.tasks)
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{'+'.join(labels)}__{tasks}")[:80]
    return Path("runs") / f"{slug}-{digest}"


def _labels(models: list[ModelSpec]) -> list[str]:
    out: list[str] = []
    for m in models:
        lbl = m.label
        n = 2
        while lbl in out:
            lbl = f"{m.label}-{n}"
            n += 1
        out.append(lbl)
    return out


def _image_base(ds: DatasetSpec, root: Path) -> Path | None:
    """Where a dataset's relative image paths start: its local file's folder."""
    return resolve_data_path(ds.local.path, root).parent if ds.local is not None else None


def plan_task(spec: TaskSpec, path: Path, root: Path, limit: int | None = None, prompt_ids: tuple[str, ...] = ()) -> TaskPlan:
    """Validate one task and render its instances (the few-shot source included)."""
    check_metrics(spec.task, spec.output_type, spec.metrics)
    check_extract(spec.extract, spec.vars, spec.task)
    # --prompt picks templates by id in the tasks that have them; others keep all of theirs
    prompts = [p for p in spec.prompts if p.id in prompt_ids] or spec.prompts
    docs = load_documents(spec.dataset, spec.split, root, f"task {spec.task}")
    rows = docs.rows[:limit] if limit else docs.rows
    pool = docs.rows  # the whole split, not just --limit; an item is never its own example
    if spec.fewshot.k and spec.fewshot.split:
        pool = load_documents(spec.splits[spec.fewshot.split], spec.fewshot.split, root, f"task {spec.task} few-shot").rows
    elif spec.fewshot.k and len(pool) <= spec.fewshot.k:
        raise TaskError(f"task {spec.task}: {spec.fewshot.k}-shot from the evaluation split needs more than {spec.fewshot.k} documents")
    if spec.images is not None:  # image ids for the rows used (and the few-shot pool)
        attach_images(spec, rows, _image_base(spec.dataset, root), f"task {spec.task}")
        if spec.fewshot.k and not spec.fewshot.text_only:
            ds = spec.splits[spec.fewshot.split] if spec.fewshot.split else spec.dataset
            attach_images(spec, pool, _image_base(ds, root), f"task {spec.task} few-shot")
        elif spec.fewshot.k and spec.fewshot.sampler == "rices":
            raise TaskError(f"task {spec.task}: fewshot.sampler 'rices' compares images; it cannot pick text-only examples")
    plan = TaskPlan(spec, path, docs)
    plan.instances = build_instances(spec, rows, prompts, pool if spec.fewshot.k else None)
    return plan


def plan_tasks(cfg: RunConfig) -> list[TaskPlan]:
    root = data_dir(cfg.data_dir)
    resolved = registry.resolve(list(cfg.tasks))
    if cfg.prompts:
        known = {p.id for spec, _ in resolved for p in spec.prompts}
        unknown = [p for p in cfg.prompts if p not in known]
        if unknown:
            raise UnknownNameError("prompt id", unknown[0], known)
    return [plan_task(spec, path, root, cfg.limit, cfg.prompts) for spec, path in resolved]


def _requests(spec: TaskSpec, context: str, inst: Instance, special: bool, stops: tuple[str, ...]) -> list[Request]:
    images = inst.images
    if spec.output_type == "match":  # image i (its own context) × caption j, row-major
        return [LoglikelihoodRequest(context, f"{spec.target_delimiter}{c}", special, (img,)) for img in images for c in inst.choices]
    if spec.output_type == "multiple_choice":
        return [LoglikelihoodRequest(context, f"{spec.target_delimiter}{c}", special, images) for c in inst.choices]
    if spec.output_type == "rolling":
        return [RollingRequest(context)]
    if spec.output_type == "loglikelihood":
        return [LoglikelihoodRequest(context, f"{spec.target_delimiter}{inst.target}", special, images)]
    g = spec.generation
    until = tuple(dict.fromkeys(list(g.until) + list(stops)))
    return [
        GenerateRequest(
            context, until, g.max_tokens, g.temperature, g.top_p, g.top_k, g.repetition_penalty, g.seed,
            sample_index=i if g.temperature > 0 else 0, special=special, until_ids=tuple(g.stop_token_ids), images=images,
        )
        for i in range(g.n)
    ]


def _task_info(plan: TaskPlan, formats: dict[str, Any]) -> dict[str, Any]:
    spec = plan.spec
    return {
        "version": spec.version,
        "hash": spec.content_hash(),
        "file": str(plan.path),
        "family": spec.family,
        "group": spec.group,
        "language": spec.language,
        "description": spec.description,
        "dataset": {"origin": plan.docs.origin, "revision": plan.docs.revision, "split": spec.split, "n_docs": len(plan.docs.rows)},
        "prompts": {p.id: {"hash": template_hash(p), "language": p.language} for p in spec.prompts},
        "chat_format": formats,
        "fewshot": spec.fewshot.model_dump(),
        "card": spec.card_info(),
    }


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as stored with its instance: pictures and bytes (hub image features)
    are replaced by a short note; their ids are in the instance's ``images``."""

    def clean(v: Any) -> Any:
        if isinstance(v, (bytes, bytearray)) or (hasattr(v, "save") and hasattr(v, "mode")):
            return f"<{type(v).__name__}>"
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(doc)


def _bind_origins(backend: Any, spec: TaskSpec, inst: Instance, used: set[str], keys: list[str]) -> bool:
    """For a backend that serves stored answers (``replay``): tell it which item each request
    answers; False when the item has no answer and is left out. Other backends: True."""
    answers = getattr(backend, "answers", None)
    if answers is None:
        return True
    first = next(p.id for p in spec.prompts if p.id in used)
    origins = [Origin(spec.task, inst.prompt_id, inst.doc_id, i, inst.prompt_id == first) for i in range(len(keys))]
    if not all(answers(o) for o in origins):
        return False
    for k, o in zip(keys, origins):
        backend.bind(k, o)
    return True


Registration = tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str, dict[str, Any], list[str]]]]  # task, spec, info, rows


def _build_model(label: str, backend: Any, plans: list[TaskPlan], cfg: RunConfig, ui: UI) -> tuple[dict[str, Request], list[Registration]]:
    """A model's requests and the rows that record them, per task; the store is not touched."""
    tpl: ChatTemplate | None = backend.chat_template()
    all_requests: dict[str, Request] = {}
    registrations: list[Registration] = []
    for plan in plans:
        spec = plan.spec
        formats, choice_of = {}, {}
        for p in spec.prompts:
            choice = choose_format(p.chat or spec.chat, spec.output_type, tpl, cfg.chat_format)
            choice_of[p.id] = choice
            formats[p.id] = {"name": choice.name, "template_hash": choice.template_hash, "reason": choice.reason}
        used = {p.id for p in spec.prompts} & {i.prompt_id for i in plan.instances}
        shown = {pid: f"{f['name']}" + (f" {f['template_hash']}" if f["template_hash"] != "-" else "") for pid, f in formats.items()}
        ui.note(f"  {spec.task}: " + "; ".join(f"{pid} → {shown[pid]} ({formats[pid]['reason']})" for pid in sorted(used)))
        rows = []
        for inst in plan.instances:
            choice = choice_of[inst.prompt_id]
            chat = choice.name != "none"
            fmt = lambda q, c=choice, i=inst: apply_format(c, tpl, q, i.shots, spec.fewshot.separator, spec.target_delimiter, cfg.system_prompt, i.preamble)  # noqa: E731
            if (spec.prompt(inst.prompt_id).choice_mode or spec.choice_mode) == "context":
                contexts = [fmt(c) for c in inst.choices]
                reqs: list[Request] = [LoglikelihoodRequest(c, spec.target_delimiter + inst.query, chat) for c in contexts]
                context: Any = contexts
            else:
                context = fmt(inst.query)
                want = 1 if spec.output_type == "match" else len(inst.images)
                if spec.images is not None and context.count(IMAGE) != want:
                    raise TaskError(f"task {spec.task}, prompt {inst.prompt_id}: the {choice.name} chat format left {context.count(IMAGE)} of {want} {IMAGE} placeholder(s)")
                reqs = _requests(spec, context, inst, chat, choice.stop)
            keys = [request_key(r) for r in reqs]
            if not _bind_origins(backend, spec, inst, used, keys):
                continue
            all_requests.update(zip(keys, reqs))
            data = {"prompt": context, "query": inst.query, "shots": inst.shots, "choices": inst.choices, "target": inst.target, "doc": _jsonable(inst.doc), "chat_format": choice.name}
            if inst.images:
                data["images"] = inst.images
            rows.append((inst.prompt_id, inst.doc_id, json.loads(canonical_json(data)), keys))
        if hasattr(backend, "answers") and len(rows) < len(plan.instances):
            ui.note(f"  {spec.task}: {len(rows)} of {len(plan.instances)} items have an answer; the others are left out")
        registrations.append((spec.task, spec.model_dump(mode="json"), _task_info(plan, formats), rows))
    unmatched = getattr(backend, "unmatched", None)
    if unmatched is not None:
        _check_replay(label, unmatched(), sum(len(r[3]) for r in registrations), [p.spec.task for p in plans], ui)
    return all_requests, registrations


def _register_model(store: RunStore, label: str, backend: Any, plans: list[TaskPlan], cfg: RunConfig, ui: UI) -> dict[str, Request]:
    """Build a model's requests and record them (its tasks and instances) in ``store``."""
    requests, registrations = _build_model(label, backend, plans, cfg, ui)
    _store_model(store, label, backend, registrations)
    return requests


def _store_model(store: RunStore, label: str, backend: Any, registrations: list[Registration]) -> None:
    store.put_model(label, backend.info.fingerprint, asdict(backend.info))
    for task, spec_json, info, rows in registrations:
        store.put_task(label, task, spec_json, info, rows)


def _check_replay(label: str, left: list[tuple[str, str, str | None, int]], n_used: int, tasks: list[str], ui: UI) -> None:
    """Answers that matched no item of the run are counted and listed; none matching at all
    is an error (a wrong file, task or id field), never a run with a null score."""
    if not left and n_used:
        return
    shown = "; ".join(f"task {t} id {i}" + (f" prompt {p}" if p else "") + (f" sample {n}" if n else "") for t, i, p, n in left[:5])
    more = f" (and {len(left) - 5} more)" if len(left) > 5 else ""
    unknown_tasks = sorted({t for t, *_ in left} - set(tasks))
    why = f"; tasks not in this run: {', '.join(unknown_tasks)}" if unknown_tasks else ""
    if not n_used:
        raise BackendError(f"model {label}: none of the answers matches an item of the run's tasks ({', '.join(tasks)}){why}; unmatched: {shown}{more}")
    ui.note(f"  [yellow]{len(left)} answer(s) of {label} match no item of this run[/]{why}: {shown}{more}")


def _check_capabilities(label: str, backend: Any, plans: list[TaskPlan]) -> None:
    for plan in plans:
        kind = REQUEST_KIND[plan.spec.output_type]
        if not backend.capabilities.supports(kind):
            why = f": {backend.capabilities.why_not}" if backend.capabilities.why_not else ""
            raise BackendError(f"model {label} ({backend.info.backend}) cannot serve {kind} requests needed by task {plan.spec.task}{why}")
        if plan.spec.images is not None and not backend.capabilities.images:
            raise BackendError(
                f"model {label} ({backend.info.backend}) reads no images, and task {plan.spec.task} shows images: use a vision-language model (e.g. hf:HuggingFaceM4/idefics-9b-instruct)"
            )


def run(cfg: RunConfig, ui: UI) -> Path:
    """Plan, check, then compute; nothing in the run folder changes until the tasks are
    planned and the first model has loaded and accepted every task (see DESIGN.md
    "A run folder you can trust")."""
    if not cfg.models:
        raise ConfigError("name at least one model (--model)")
    if cfg.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    models = [parse_model(m) for m in cfg.models]
    labels = _labels(models)
    plans = plan_tasks(cfg)
    if any(p.spec.extract.name == "code" for p in plans):
        check_code_sandbox(cfg.sandbox)  # refuse before any model loads
    run_dir = Path(cfg.output) if cfg.output else default_run_dir(cfg, labels)
    created = not run_dir.exists()
    with run_lock(run_dir, exclusive=True, command="run"):
        for stale in remove_stale_tmp(run_dir):
            ui.note(f"removed {stale}, left by a write that was interrupted")
        store = RunStore(run_dir)
        committed = False
        try:
            identity = json.loads(canonical_json(cfg.identity()))
            for ms, label in zip(models, labels):
                with ui.status(f"loading {ms.text} ({ms.backend})"):
                    backend = load_backend(ms)
                try:
                    _check_capabilities(label, backend, plans)
                    ui.note(f"[bold]{label}[/] ({backend.info.backend}, fingerprint {backend.info.fingerprint[:12]}); prompt formats:")
                    requests, registrations = _build_model(label, backend, plans, cfg, ui)
                    if not committed:  # the first change to the folder
                        prev = store.get_meta("config")
                        if prev is not None and prev != identity:
                            ui.note(
                                f"[yellow]note:[/] {run_dir} holds an earlier run with other settings; its results are replaced by this run's "
                                "(stored responses are reused where they match)"
                            )
                            store.forget_registrations()
                        store.set_meta("config", identity)
                        store.set_meta("created", store.get_meta("created") or time.time())
                        committed = True
                        ui.note(f"run folder: {run_dir}")
                        n_inst = sum(len(p.instances) for p in plans)
                        ui.note(f"{len(plans)} task(s), {n_inst} instances per model, {len(models)} model(s)")
                    _store_model(store, label, backend, registrations)
                    todo = pending(store, backend.info.fingerprint, requests)
                    ui.note(f"  {len(requests)} requests: {len(requests) - len(todo)} already stored, {len(todo)} to compute")
                    if todo:
                        with ui.progress(f"{label}", len(todo)) as advance:
                            stats = execute(backend, store, backend.info.fingerprint, todo, cfg.batch_size, advance)
                        store.set_meta(f"compute:{label}", {"requests": stats.computed, "seconds": stats.seconds, "by_kind": {k: {"requests": n, "seconds": sec} for k, (n, sec) in stats.by_kind.items()}})
                        per_kind = ", ".join(f"{k} {n} in {sec:.1f}s = {n / sec:.1f} req/s" for k, (n, sec) in stats.by_kind.items() if sec > 0)
                        ui.note(f"  computed {stats.computed} requests in {stats.seconds:.1f}s ({per_kind})")
                finally:
                    backend.close()
            score_run(run_dir, ui, store, sandbox=cfg.sandbox)
        finally:
            store.close()
            if created and not committed:  # a run that failed before storing anything leaves no folder
                shutil.rmtree(run_dir, ignore_errors=True)
    return run_dir


def check_code_sandbox(mode: str) -> str:
    """The isolation code tasks get under ``--sandbox mode``, or one line why it refuses."""
    from assay.scoring.sandbox import SANDBOX_MODES, check_sandbox

    if mode not in SANDBOX_MODES:
        raise ConfigError(f"--sandbox {mode}: expected one of {', '.join(SANDBOX_MODES)}")
    try:
        return check_sandbox(mode)
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("assay", "numpy", "pydantic", "jinja2", "torch", "transformers", "llama_cpp_python", "gguf"):
        try:
            out[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
    return out


def score_run(run_dir: Path, ui: UI, store: RunStore | None = None, out_dir: Path | None = None, sandbox: str = "auto") -> dict[str, Any]:
    """Score every (model, task) from the store; write results.json, samples/ and the report
    into ``out_dir`` (default: the run folder). Nothing is written unless every task scored,
    and a store with no responses for its models is refused, so a good results.json is never
    replaced by an empty one. ``sandbox``: the ``--sandbox`` mode code answers run under."""
    own = store is None
    store = store or RunStore(run_dir, readonly=True)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir)
    if out_dir.exists() and not os.access(out_dir, os.W_OK):
        if own:
            store.close()
        raise StoreError(f"{out_dir} is read-only: its results.json cannot be rewritten; score it into another folder: assay score {run_dir} -o DIR")
    try:
        models = {lbl: (fp, info) for lbl, fp, info in store.models()}
        registered = [row for row in store.tasks() if row[0] in models]
        if not registered or store.n_responses_of(fp for fp, _ in models.values()) == 0:
            what = "no models or tasks" if not registered else f"no responses for its models ({', '.join(models)})"
            raise StoreError(f"{store.path} holds {what}: nothing to score, and {out_dir / RESULTS_NAME} was left as it was")
        results: dict[str, dict[str, Any]] = {}
        tasks: dict[str, Any] = {}
        groups: dict[str, list[str]] = {}
        sample_files: list[tuple[Path, str]] = []
        for label, task, spec_json, info in registered:
            spec = TaskSpec.model_validate(spec_json)
            if spec.extract.name == "code":
                check_code_sandbox(sandbox)
            res, samples = score_task(store, label, models[label][0], spec, sandbox)
            results.setdefault(label, {})[task] = res
            tinfo = tasks.setdefault(task, {k: v for k, v in info.items() if k != "chat_format"} | {"chat_format": {}})
            tinfo["chat_format"][label] = info["chat_format"]
            for g in spec.group:
                groups.setdefault(g, [])
                if task not in groups[g]:
                    groups[g].append(task)
            sample_files.append((out_dir / "samples" / label / f"{task}.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples)))
        doc = {
            "assay_results_version": 1,
            "created": store.get_meta("created"),
            "scored": time.time(),
            "config": store.get_meta("config"),
            "environment": _versions(),
            "models": {lbl: {"fingerprint": fp, **info} for lbl, (fp, info) in models.items() if lbl in results},
            # the latest computation per model (a re-run that computes nothing keeps it)
            "compute": {lbl: stats for lbl in results if (stats := store.get_meta(f"compute:{lbl}")) is not None},
            "tasks": tasks,
            "results": results,
            "groups": _group_scores(results, groups, tasks),
            "truncation": TRUNCATION,
        }
        used = [r["sandbox"] for per_task in results.values() for r in per_task.values() if "sandbox" in r]
        if used:  # code tasks: the --sandbox mode and the isolation their programs got
            doc["sandbox"] = {"mode": sandbox, "isolation": sorted({i for u in used for i in u["isolation"]})}
        path = out_dir / RESULTS_NAME
        try:
            for sample_path, text in sample_files:
                write_text_atomic(sample_path, text)
            write_text_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False))
        except OSError as exc:
            hint = "free some space and run" if exc.errno == errno.ENOSPC else "fix that and run"
            raise StoreError(f"cannot write {getattr(exc, 'filename', None) or path}: {exc.strerror or exc}; the responses are safe in {store.path}: {hint} assay score {run_dir}" + (" -o DIR" if exc.errno in (errno.EROFS, errno.EACCES) else "")) from None
        ui.leaderboard(doc)
        for label, by_task in results.items():
            for task, res in by_task.items():
                if res.get("n_truncated"):
                    ui.note(f"[yellow]note:[/] {label} read {res['n_truncated']} of {res['n_items']} {task} prompts cut from the left to fit its window (samples: truncated_tokens)")
        ui.note(f"results: {path}")
        _write_report(out_dir, ui)
        return doc
    finally:
        if own:
            store.close()


def _write_report(run_dir: Path, ui: UI) -> None:
    """The run's HTML and Markdown report. The results are written already: a report that
    cannot be made is said in one line and loses nothing (``assay report`` retries it)."""
    try:
        from assay.reports.compare import write_reports

        html, _ = write_reports([run_dir], run_dir / REPORT_NAME)
    except Exception as exc:  # noqa: BLE001  (any failure here must not cost the run)
        from rich.markup import escape

        ui.error(escape(f"report not written ({type(exc).__name__}: {exc}); the results are in {run_dir / RESULTS_NAME}"))
        return
    ui.note(f"report: {html}")


def _group_scores(results: dict[str, dict[str, Any]], groups: dict[str, list[str]], tasks: dict[str, Any]) -> dict[str, Any]:
    """A group's score per model: the mean over its tasks of each task's primary metric.

    ``value`` averages the tasks' medians over prompts (the paper's protocol: median per
    dataset, then the mean); ``best_prompt`` averages their best prompts (the model cards'
    protocol); ``by_language`` lists each task's value under its language.
    """
    out: dict[str, Any] = {}
    for label, by_task in results.items():
        for g, members in groups.items():
            rows = [(t, by_task[t]["metrics"][by_task[t]["primary"]]) for t in members if t in by_task]
            rows = [(t, m) for t, m in rows if m.get("value") is not None]
            if not rows:
                continue
            k = len(rows)
            ses = [m["stderr"] for _, m in rows if m.get("stderr") is not None]
            by_language: dict[str, float] = {}
            for t, m in rows:
                lang = tasks.get(t, {}).get("language")
                if lang:
                    by_language[lang] = m["value"]
            out.setdefault(label, {})[g] = {
                "value": sum(m["value"] for _, m in rows) / k,
                "stderr": (sum(s * s for s in ses) ** 0.5) / k if len(ses) == k else None,
                "best_prompt": sum(m.get("max", m["value"]) for _, m in rows) / k,
                "n_tasks": k,
                "tasks": [t for t, _ in rows],
                "by_language": by_language,
            }
    return out
