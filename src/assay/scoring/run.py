"""The scoring stage of a whole run: the run store → ``RunResults`` and the sample files.

Reads the store only: every registered (model, task) is scored from its stored responses,
then groups are aggregated (``results.aggregate``). Nothing is written here; the orchestrator
writes the results only when every task has scored.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path

from assay.errors import ConfigError, StoreError
from assay.results import ModelRecord, RunResults, SandboxRecord, TaskInfo, TaskResult, group_scores
from assay.scoring.score import TRUNCATION, score_task
from assay.store.runs import RunStore
from assay.tasks.spec import TaskSpec

SampleFile = tuple[Path, str]  # path relative to the output folder, JSON lines


def check_code_sandbox(mode: str) -> str:
    """The isolation code tasks get under ``--sandbox mode``, or one line why it refuses."""
    from assay.scoring.sandbox import SANDBOX_MODES, check_sandbox

    if mode not in SANDBOX_MODES:
        raise ConfigError(f"--sandbox {mode}: expected one of {', '.join(SANDBOX_MODES)}")
    try:
        return check_sandbox(mode)
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("assay", "numpy", "pydantic", "jinja2", "torch", "transformers", "llama_cpp_python", "gguf"):
        try:
            out[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
    return out


def score_store(store: RunStore, sandbox: str = "auto", results_path: Path | None = None) -> tuple[RunResults, list[SampleFile]]:
    """Every (model, task) of the store scored; a store with no models, tasks or responses is
    refused (``results_path``: the file the message says was left as it was)."""
    models = {lbl: (fp, info) for lbl, fp, info in store.models()}
    registered = [row for row in store.tasks() if row[0] in models]
    if not registered or store.n_responses_of(fp for fp, _ in models.values()) == 0:
        what = "no models or tasks" if not registered else f"no responses for its models ({', '.join(models)})"
        kept = f", and {results_path} was left as it was" if results_path is not None else ""
        raise StoreError(f"{store.path} holds {what}: nothing to score{kept}")
    results: dict[str, dict[str, TaskResult]] = {}
    task_docs: dict[str, dict] = {}
    samples: list[SampleFile] = []
    specs = [TaskSpec.model_validate(spec_json) for _, _, spec_json, _ in registered]
    if any(spec.extract.name == "code" for spec in specs):
        check_code_sandbox(sandbox)  # once, before any task is scored
    for (label, task, _, info), spec in zip(registered, specs):
        res, rows = score_task(store, label, models[label][0], spec, sandbox)
        results.setdefault(label, {})[task] = res
        doc = task_docs.setdefault(task, {k: v for k, v in info.items() if k != "chat_format"} | {"chat_format": {}})
        doc["chat_format"][label] = info["chat_format"]
        samples.append((Path("samples") / label / f"{task}.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in rows)))
    tasks = {t: TaskInfo.model_validate(d) for t, d in task_docs.items()}
    out = RunResults(
        created=store.get_meta("created"),
        scored=time.time(),
        config=store.get_meta("config"),
        environment=versions(),
        models={lbl: ModelRecord.model_validate({"fingerprint": fp, **info}) for lbl, (fp, info) in models.items() if lbl in results},
        # the latest computation per model (a re-run that computes nothing keeps it)
        compute={lbl: stats for lbl in results if (stats := store.get_meta(f"compute:{lbl}")) is not None},
        tasks=tasks,
        results=results,
        groups=group_scores(results, tasks),
        truncation=TRUNCATION,
    )
    used = [r.sandbox for per_task in results.values() for r in per_task.values() if r.sandbox is not None]
    if used:  # code tasks: the --sandbox mode and the isolation their programs got
        out.sandbox = SandboxRecord(mode=sandbox, isolation=sorted({i for u in used for i in u.isolation}))
    return out, samples
