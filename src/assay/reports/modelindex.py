"""Results as model-card ``model-index`` YAML, and its merge into a README's front matter.

The merge edits text, not a parsed tree: the old ``model-index`` block (if any) is cut out of
the front matter and the new one appended, so every other key keeps its exact formatting,
comments included, and the body is untouched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from assay.errors import AssayError
from assay.results import MetricResult, RunResults, TaskInfo
from assay.scoring.metrics import card_type, facts

AGGREGATES = ("max", "median", "mean")


def _value(name: str, m: MetricResult, how: str) -> float | None:
    v = m.value if how == "median" else getattr(m, how)
    if v is None and not m.per_prompt:  # a metric without per-prompt values: its one value
        v = m.value
    return None if v is None else facts(name).card_value(v)


def _card(task: str, info: TaskInfo) -> dict[str, str]:
    if info.card:  # resolved by TaskSpec.card_info when the run was made
        return {"type": info.card["type"], "name": info.card["name"], "config": info.card.get("config") or ""}
    dtype = task.split("_")[0]
    config = info.language or ""
    return {"type": dtype, "name": f"{dtype.upper()} ({config})" if config else dtype.upper(), "config": config}


def model_index(doc: RunResults, model: str, how: str = "max", name: str | None = None) -> dict[str, Any]:
    """The model-index mapping for one model of a run's results: every metric each task
    declares (its headline first), each formatted as the metric registry says."""
    if how not in AGGREGATES:
        raise AssayError(f"--aggregate must be one of {', '.join(AGGREGATES)}")
    if model not in doc.results:
        raise AssayError(f"no model '{model}' in these results (have: {', '.join(doc.results)})")
    entries = []
    for task, res in doc.results[model].items():
        info = doc.tasks.get(task) or TaskInfo()
        card = _card(task, info)
        metrics = []
        for mname in [res.primary] + [k for k in res.metrics if k != res.primary]:
            val = _value(mname, res.metrics[mname], how)
            if val is not None:
                metrics.append({"type": card_type(mname), "value": val})
        if not metrics:
            continue
        dataset: dict[str, Any] = {"type": card["type"], "name": card["name"]}
        if card["config"]:
            dataset["config"] = card["config"]
        dataset["split"] = info.dataset.split
        dataset["revision"] = info.dataset.revision
        entries.append({"task": {"type": info.family or "Other"}, "dataset": dataset, "metrics": metrics})
    return {"model-index": [{"name": name or model, "results": entries}]}


def to_yaml(block: dict[str, Any]) -> str:
    return yaml.safe_dump(block, sort_keys=False, allow_unicode=True, width=1000)


_FRONT = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$\n?", re.S | re.M)


def merge_readme(text: str, block: dict[str, Any]) -> str:
    """README text with ``block`` as its front matter's model-index, all else unchanged."""
    new = to_yaml(block)
    m = _FRONT.match(text)
    if not m:
        return f"---\n{new}---\n{text}"
    front = m.group(1)
    lines = front.splitlines(keepends=True)
    kept, skipping = [], False
    for line in lines:
        if re.match(r"^model-index\s*:", line):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t", "-")) or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    try:
        yaml.safe_load(body + new)
    except yaml.YAMLError as exc:
        raise AssayError(f"the README's front matter is not valid YAML: {str(exc).splitlines()[0]}") from None
    return f"---\n{body}{new}---\n{text[m.end():]}"


def write(doc: RunResults, model: str, out: Path | None, readme: Path | None, how: str, name: str | None) -> str:
    block = model_index(doc, model, how, name)
    if readme is not None:
        try:
            original = readme.read_text(encoding="utf-8") if readme.exists() else ""
        except OSError as exc:
            raise AssayError(f"{readme}: cannot read: {exc}") from None
        merged = merge_readme(original, block)
        readme.write_text(merged, encoding="utf-8")
        return merged
    text = to_yaml(block)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text
