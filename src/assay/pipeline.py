"""The orchestrator of ``assay run`` and ``assay.evaluate``, as the data flow of DESIGN.md:

    task specs → plan (instances) → build (requests) → scheduler + run store → backend
    → responses → scoring (score, aggregate) → results.json → reports

Each stage is its own module (``config``, ``plan``, ``build``, ``schedule``, ``store``,
``scoring.run``, ``results``, ``reports``); this one only puts them in order, holds the run
folder's lock, and decides when the folder may change: nothing is stored until the tasks are
planned and the first model has loaded and accepted every task (DESIGN.md, "A run folder
you can trust"). Each model's responses are committed batch by batch, so a crash or Ctrl-C
loses at most the batch in flight, and the same command resumes. Progress and notes go to
an optional ``events.Observer``; nothing here needs a terminal.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assay.backends.base import Backend
from assay.backends.registry import ModelSpec, parse_model
from assay.build import Registration, build_model, check_capabilities
from assay.config import RunConfig, default_run_dir, unique_labels
from assay.errors import BackendError, StoreError
from assay.requests import Result, result_to_json
from assay.events import Observer
from assay.plan import TaskPlan, plan_tasks
from assay.requests import Request, canonical_json
from assay.results import RESULTS_NAME, RunResults
from assay.schedule.executor import make_executor
from assay.schedule.scheduler import pending
from assay.scoring.run import check_code_sandbox, score_store
from assay.store.atomic import remove_stale_tmp, write_text_atomic
from assay.store.cache import ResponseCache, resolve_cache
from assay.store.lock import run_lock
from assay.store.runs import RunStore

REPORT_NAME = "report.html"


def store_model(store: RunStore, label: str, backend: Backend, registrations: list[Registration]) -> None:
    """Record a model and its tasks' instances (with their request keys) in the run store."""
    store.put_model(label, backend.info.fingerprint, asdict(backend.info))
    for task, spec_json, info, rows in registrations:
        store.put_task(label, task, spec_json, info, rows)


def _commit_config(store: RunStore, cfg: RunConfig, run_dir: Path, ui: Observer) -> None:
    """The first change to the folder: its configuration (an earlier run with other settings
    loses its registrations, not its responses)."""
    identity = json.loads(canonical_json(cfg.identity()))
    prev = store.get_meta("config")
    if prev is not None and prev != identity:
        ui.note(f"[yellow]note:[/] {run_dir} holds an earlier run with other settings; its results are replaced by this run's (stored responses are reused where they match)")
        store.forget_registrations()
    store.set_meta("config", identity)
    store.set_meta("created", store.get_meta("created") or time.time())


class _Cache:
    """The shared response cache as a run uses it: read before computing, written batch by
    batch; any failure of the cache is said once and the run goes on without it."""

    def __init__(self, setting: str, ui: Observer):
        self.ui = ui
        self.cache: ResponseCache | None = None
        path = resolve_cache(setting)
        if path is not None:
            try:
                self.cache = ResponseCache(path)
            except StoreError as exc:
                self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        self.ui.note(f"[yellow]note:[/] {exc}; this run goes on without the shared response cache")
        if self.cache is not None:
            self.cache.close()
        self.cache = None

    def fill(self, store: RunStore, fp: str, todo: dict[str, Request]) -> int:
        """Copy the cached responses of ``todo`` into the run store; how many there were."""
        if self.cache is None or not todo:
            return 0
        try:
            rows = self.cache.get(fp, todo)
        except StoreError as exc:
            self._drop(exc)
            return 0
        return store.put_cached(fp, rows)  # a failure here is the run store's: the run's error

    def writer(self, fp: str) -> Callable[[list[tuple[str, Request, Result]]], None]:
        def write(batch: list[tuple[str, Request, Result]]) -> None:
            if self.cache is None:
                return
            try:
                self.cache.put(fp, [(k, r.kind, canonical_json(asdict(r)), result_to_json(res)) for k, r, res in batch])
            except StoreError as exc:
                self._drop(exc)

        return write

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def prepare(cfg: RunConfig) -> tuple[list[ModelSpec], list[str], Any, list[TaskPlan], Path]:
    """Everything a run decides before any model loads: the settings checked, models parsed
    and labelled, the executor, the planned tasks, the run folder."""
    cfg.check()
    models = [parse_model(m) for m in cfg.models]
    labels = unique_labels([m.label for m in models])
    executor = make_executor(cfg.executor)
    executor.check(models)
    plans = plan_tasks(cfg)
    return models, labels, executor, plans, Path(cfg.output) if cfg.output else default_run_dir(cfg, labels)


def run(cfg: RunConfig, ui: Observer | None = None) -> Path:
    """Plan, check, compute, score; returns the run folder (its results.json is written)."""
    ui = ui or Observer()
    models, labels, executor, plans, run_dir = prepare(cfg)
    if any(p.spec.extract.name == "code" for p in plans):
        check_code_sandbox(cfg.sandbox)  # refuse before any model loads
    created = not run_dir.exists()
    with run_lock(run_dir, exclusive=True, command="run"):
        for stale in remove_stale_tmp(run_dir):
            ui.note(f"removed {stale}, left by a write that was interrupted")
        store = RunStore(run_dir)
        cache = _Cache(cfg.cache, ui)
        committed = False
        try:
            for ms, label in zip(models, labels):
                where = "" if executor.name == "local" else f" on {executor.name}"
                with ui.status(f"loading {ms.text} ({ms.backend}){where}"):
                    backend = executor.open(ms, ui.note)
                try:
                    check_capabilities(label, backend, plans)
                    ui.note(f"[bold]{label}[/] ({backend.info.backend}, fingerprint {backend.info.fingerprint[:12]}); prompt formats:")
                    requests, registrations = build_model(label, backend, plans, cfg, ui.note)
                    if not committed:
                        _commit_config(store, cfg, run_dir, ui)
                        committed = True
                        ui.note(f"run folder: {run_dir}")
                        ui.note(f"{len(plans)} task(s), {sum(len(p.instances) for p in plans)} instances per model, {len(models)} model(s)")
                    store_model(store, label, backend, registrations)
                    fp = backend.info.fingerprint
                    todo = pending(store, fp, requests)
                    n_stored = len(requests) - len(todo)
                    n_cached = cache.fill(store, fp, todo)
                    if n_cached:
                        todo = pending(store, fp, requests)
                    from_cache = f", {n_cached} from the response cache ({cache.cache.path})" if n_cached and cache.cache else ""
                    ui.note(f"  {len(requests)} requests: {n_stored} already stored, {len(todo)} to compute{from_cache}")
                    if todo:
                        with ui.progress(label, len(todo)) as advance:
                            stats = executor.execute(backend, store, fp, todo, cfg.batch_size, advance, on_batch=cache.writer(fp))
                        by_kind = {k: {"requests": n, "seconds": sec} for k, (n, sec) in stats.by_kind.items()}
                        store.set_meta(f"compute:{label}", {"requests": stats.computed, "seconds": stats.seconds, "by_kind": by_kind, "from_cache": n_cached})
                        per_kind = ", ".join(f"{k} {n} in {sec:.1f}s = {n / sec:.1f} req/s" for k, (n, sec) in stats.by_kind.items() if sec > 0)
                        rate = f" = {stats.computed / stats.seconds:.1f} req/s" if stats.seconds > 0 else ""
                        ui.note(f"  computed {stats.computed} requests in {stats.seconds:.1f}s{rate} ({per_kind})")
                    if any(p.spec.turns is not None for p in plans):
                        _conversations(label, backend, plans, registrations, cfg, store, executor, cache, ui)
                finally:
                    backend.close()
            if cfg.judges:
                _judge(cfg, plans, labels, store, executor, cache, ui)
            with executor.scoring(ui.note):
                score_run(run_dir, ui, store, sandbox=cfg.sandbox)
        finally:
            executor.close()
            cache.close()
            store.close()
            if created and not committed:  # a run that failed before storing anything leaves no folder
                shutil.rmtree(run_dir, ignore_errors=True)
    return run_dir


def _conversations(label: str, backend: Backend, plans: list[TaskPlan], registrations: list[Registration], cfg: RunConfig, store: RunStore,
                   executor: Any, cache: _Cache, ui: Observer) -> None:
    """Multi-turn tasks: each later turn is asked once the answers before it are stored, until
    every conversation is finished; the rows are registered again with each turn's key."""
    from assay.build import next_turns

    if backend.serves_stored_answers:
        raise BackendError(f"model {label}: replayed answers cannot continue a conversation (tasks with turns:)")
    fp = backend.info.fingerprint
    tpl = backend.chat_template()
    turn = 2
    while (more := next_turns(plans, registrations, tpl, cfg, lambda keys: store.results(fp, keys))):
        store_model(store, label, backend, registrations)
        _compute(f"turn {turn}", f"{label} turn {turn}", backend, more, cfg, store, executor, cache, ui)
        turn += 1


def _compute(what: str, bar: str, backend: Backend, requests: dict[str, Request], cfg: RunConfig, store: RunStore, executor: Any, cache: _Cache,
             ui: Observer) -> None:
    """Requests of a later phase (a conversation's next turn, a judge's): what the run folder
    or the response cache holds is not asked again, the rest is computed and stored."""
    fp = backend.info.fingerprint
    todo = pending(store, fp, requests)
    n_cached = cache.fill(store, fp, todo)
    if n_cached:
        todo = pending(store, fp, requests)
    ui.note(f"  {what}: {len(requests)} requests: {len(requests) - len(todo) - n_cached} already stored, {n_cached} from the response cache, {len(todo)} to compute")
    if todo:
        with ui.progress(bar, len(todo)) as advance:
            stats = executor.execute(backend, store, fp, todo, cfg.batch_size, advance, on_batch=cache.writer(fp))
        ui.note(f"  computed {stats.computed} in {stats.seconds:.1f}s")


def _judge(cfg: RunConfig, plans: list[TaskPlan], labels: list[str], store: RunStore, executor: Any, cache: _Cache, ui: Observer) -> None:
    """The judging phase: each judge model grades the stored answers of the run's generation
    tasks; its requests are stored, cached and resumed like the models' own."""
    from assay.judge.build import judge_requests, judged

    specs = [p.spec for p in plans if judged(p.spec)]
    if not specs:
        ui.note("[yellow]note:[/] --judge: no task of this run generates text; nothing to judge")
        return
    judges = [parse_model(m) for m in cfg.judges]
    for ms, label in zip(judges, unique_labels([m.label for m in judges])):
        with ui.status(f"loading judge {ms.text} ({ms.backend})"):
            backend = executor.open(ms, ui.note)
        try:
            ui.note(f"judge [bold]{label}[/] ({backend.info.backend}, fingerprint {backend.info.fingerprint[:12]}):")
            requests, items = judge_requests(store, backend, specs, labels, ui.note)
            store.put_judge(label, backend.info.fingerprint, asdict(backend.info), items)
            _compute("judging", f"judge {label}", backend, requests, cfg, store, executor, cache, ui)
        finally:
            backend.close()


def score_run(run_dir: Path, ui: Observer | None = None, store: RunStore | None = None, out_dir: Path | None = None, sandbox: str = "auto",
              reload_tasks: bool = False) -> RunResults:
    """Score every (model, task) from the store; write results.json, samples/ and the report
    into ``out_dir`` (default: the run folder). Nothing is written unless every task scored,
    and a store with no responses for its models is refused, so a good results.json is never
    replaced by an empty one. ``sandbox``: the ``--sandbox`` mode code answers run under.
    ``reload_tasks``: score with the task files as they are now (``scoring.run.reload_specs``)."""
    ui = ui or Observer()
    own = store is None
    store = store or RunStore(run_dir, readonly=True)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir)
    path = out_dir / RESULTS_NAME
    try:
        if out_dir.exists() and not os.access(out_dir, os.W_OK):
            raise StoreError(f"{out_dir} is read-only: its results.json cannot be rewritten; score it into another folder: assay score {run_dir} -o DIR")
        results, samples = score_store(store, sandbox, path, reload=reload_tasks)
        try:
            for rel, text in samples:
                write_text_atomic(out_dir / rel, text)
            write_text_atomic(path, results.to_json())
        except OSError as exc:
            hint = "free some space and run" if exc.errno == errno.ENOSPC else "fix that and run"
            ro = " -o DIR" if exc.errno in (errno.EROFS, errno.EACCES) else ""
            raise StoreError(f"cannot write {getattr(exc, 'filename', None) or path}: {exc.strerror or exc}; the responses are safe in {store.path}: {hint} assay score {run_dir}{ro}") from None
    finally:
        if own:
            store.close()
    ui.leaderboard(results)
    for label, by_task in results.results.items():
        for task, res in by_task.items():
            if res.n_truncated:
                ui.note(f"[yellow]note:[/] {label} read {res.n_truncated} of {res.n_items} {task} prompts cut from the left to fit its window (samples: truncated_tokens)")
    ui.note(f"results: {path}")
    _write_report(out_dir, ui)
    return results


def _write_report(run_dir: Path, ui: Observer) -> None:
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


def register_model(store: RunStore, label: str, backend: Backend, plans: list[TaskPlan], cfg: RunConfig, ui: Observer | None = None) -> dict[str, Request]:
    """Build a model's requests and record them in ``store`` at once (for tests and tools that
    drive the stages by hand); ``run`` stores only after every check has passed."""
    requests, registrations = build_model(label, backend, plans, cfg, (ui or Observer()).note)
    store_model(store, label, backend, registrations)
    return requests
