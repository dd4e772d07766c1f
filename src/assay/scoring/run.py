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

from assay.errors import ConfigError, StoreError, TaskError
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


# What a task file may change and still be scored from a run's stored responses: how answers
# are read and scored and how the task is described. Every other key decides the requests
# (data, prompts, choices, targets, few-shot, generation, chat format) or what was asked.
RESCORABLE = frozenset({"metrics", "primary", "extract", "card", "description", "family", "group", "language", "version"})


def reload_specs(store: RunStore) -> dict[str, TaskSpec]:
    """``assay score --reload-tasks``: each stored task re-read from its file, which may change
    only ``RESCORABLE`` keys; else one line naming the task, the file and the keys changed."""
    from assay.tasks.loader import load_task

    out: dict[str, TaskSpec] = {}
    for _, task, spec_json, info in store.tasks():
        if task in out:
            continue
        file = info.get("file")
        if not file or not Path(file).is_file():
            raise TaskError(f"--reload-tasks: task {task}: its file {file or '(unknown)'} is not there any more; score without --reload-tasks")
        new = load_task(file)
        if new.task != task:
            raise TaskError(f"--reload-tasks: {file} now defines task '{new.task}', the run has '{task}'")
        old, now = TaskSpec.model_validate(spec_json).model_dump(mode="json"), new.model_dump(mode="json")
        changed = sorted(k for k in old.keys() | now.keys() if k not in RESCORABLE and old.get(k) != now.get(k))
        if changed:
            raise TaskError(
                f"--reload-tasks: task {task} ({file}): {', '.join(changed)} changed since the run, and they decide what the model was asked; "
                f"run the tasks again (assay run: stored responses are reused) or undo the edit"
            )
        out[task] = new
    return out


def _reloaded_info(info: dict, spec: TaskSpec) -> dict:
    """A task's stored info with what a re-read file changes (hash, card, labels)."""
    return info | {"hash": spec.content_hash(), "version": spec.version, "card": spec.card_info(), "description": spec.description,
                   "family": spec.family, "group": spec.group, "language": spec.language, "reloaded": True}


def _agreement(res: TaskResult, rows: list[dict]) -> None:
    """Each pass/fail judge's verdicts beside the automatic verdict of the task's primary
    metric, on the answers both judged (correct or wrong; partial ones are left out)."""
    from assay.scoring.ratings import cohen_kappa

    for judge, score in res.judged.items():
        if score.scale != "pass/fail":
            continue
        pairs = [(j["verdict"] == 1.0, row["verdict"] == "correct") for row in rows if row.get("verdict") in ("correct", "wrong")
                 for j in row.get("judgements", []) if j["judge"] == judge and j["mode"] == "single" and j["verdict"] is not None]
        if pairs:
            score.agreement = {"metric": res.primary, "n": len(pairs), "agree": sum(a == b for a, b in pairs) / len(pairs),
                               "kappa": cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])}


def score_store(store: RunStore, sandbox: str = "auto", results_path: Path | None = None, reload: bool = False) -> tuple[RunResults, list[SampleFile]]:
    """Every (model, task) of the store scored; a store with no models, tasks or responses is
    refused (``results_path``: the file the message says was left as it was). ``reload``: with
    the task files as they are now (``reload_specs``), not the definitions stored at run time."""
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
    if reload:
        fresh = reload_specs(store)
        specs = [fresh[task] for _, task, _, _ in registered]
        registered = [(label, task, spec_json, _reloaded_info(info, fresh[task])) for label, task, spec_json, info in registered]
    if any(spec.extract.name == "code" for spec in specs):
        check_code_sandbox(sandbox)  # once, before any task is scored
    from assay.judge.results import score_judges

    judged = score_judges(store)
    for (label, task, _, info), spec in zip(registered, specs):
        res, rows = score_task(store, label, models[label][0], spec, sandbox)
        res.judged = judged.scores.get((label, task), {})
        for row in rows:
            if (j := judged.samples.get((label, task, row["prompt_id"], row["doc_id"]))):
                row["judgements"] = j
        _agreement(res, rows)
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
        judges=judged.records,
    )
    used = [r.sandbox for per_task in results.values() for r in per_task.values() if r.sandbox is not None]
    if used:  # code tasks: the --sandbox mode and the isolation their programs got
        out.sandbox = SandboxRecord(mode=sandbox, isolation=sorted({i for u in used for i in u.isolation}))
    return out, samples
