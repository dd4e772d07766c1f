"""Task planning: task names → validated specs → documents → instances, before any model.

Everything that can fail on bad input (task files, data files, prompt ids, metrics,
extraction steps) fails here, so a mistake costs seconds, not a model load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assay.config import RunConfig
from assay.data.sources import Documents, data_dir, load_documents
from assay.data.sources import _resolve as resolve_data_path
from assay.errors import TaskError, UnknownNameError
from assay.instances import Instance, attach_images, build_instances
from assay.scoring.extract import check_extract
from assay.scoring.metrics import check_metrics
from assay.tasks import registry
from assay.tasks.spec import DatasetSpec, TaskSpec


@dataclass
class TaskPlan:
    spec: TaskSpec
    path: Path
    docs: Documents
    instances: list[Instance] = field(default_factory=list)


def _image_base(ds: DatasetSpec, root: Path, base: Path | None) -> Path | None:
    """Where a dataset's relative image paths start: its local file's folder."""
    return resolve_data_path(ds.local.path, root, base).parent if ds.local is not None else None


def plan_task(spec: TaskSpec, path: Path, root: Path, limit: int | None = None, prompt_ids: tuple[str, ...] = ()) -> TaskPlan:
    """Validate one task and render its instances (the few-shot source included)."""
    check_metrics(spec.task, spec.output_type, spec.metrics)
    check_extract(spec.extract, spec.vars, spec.task)
    # --prompt picks templates by id in the tasks that have them; others keep all of theirs
    prompts = [p for p in spec.prompts if p.id in prompt_ids] or spec.prompts
    # a user's relative data paths are read beside the task file first; built-in tasks' in the data directory
    base = None if path.resolve().is_relative_to(registry.BUILTIN) else path.parent
    docs = load_documents(spec.dataset, spec.split, root, f"task {spec.task}", base)
    rows = docs.rows[:limit] if limit else docs.rows
    pool = docs.rows  # the whole split, not just --limit; an item is never its own example
    if spec.fewshot.k and spec.fewshot.split:
        pool = load_documents(spec.splits[spec.fewshot.split], spec.fewshot.split, root, f"task {spec.task} few-shot", base).rows
    elif spec.fewshot.k and len(pool) <= spec.fewshot.k:
        raise TaskError(f"task {spec.task}: {spec.fewshot.k}-shot from the evaluation split needs more than {spec.fewshot.k} documents")
    if spec.images is not None:  # image ids for the rows used (and the few-shot pool)
        attach_images(spec, rows, _image_base(spec.dataset, root, base), f"task {spec.task}")
        if spec.fewshot.k and not spec.fewshot.text_only:
            ds = spec.splits[spec.fewshot.split] if spec.fewshot.split else spec.dataset
            attach_images(spec, pool, _image_base(ds, root, base), f"task {spec.task} few-shot")
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
