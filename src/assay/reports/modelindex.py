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

METRIC_TYPES = {
    "acc": "Accuracy",
    "acc_norm": "Accuracy (length-normalised)",
    "exact_match": "Exact Match",
    "f1": "F1",
    "label_acc": "Accuracy",
    "macro_f1": "Macro F1",
    "entity_f1": "F1",
    "perplexity": "Perplexity",
    "vqa_accuracy": "VQA Accuracy",
    "cider": "CIDEr",
    "bleu4": "BLEU-4",
    "text_score": "Text Score",
    "image_score": "Image Score",
    "group_score": "Group Score",
}
AGGREGATES = ("max", "median", "mean")


def _metric_type(name: str) -> str:
    if name.startswith("pass@"):
        return "Pass@" + name.removeprefix("pass@")
    return METRIC_TYPES.get(name, name)


def _card(task: str, info: dict[str, Any]) -> dict[str, str]:
    if "card" in info:  # resolved by TaskSpec.card_info when the run was made
        return {"type": info["card"]["type"], "name": info["card"]["name"], "config": info["card"].get("config") or ""}
    card: dict[str, Any] = {}
    dtype = card.get("type") or task.split("_")[0]
    config = card.get("config") or info.get("language") or ""
    name = card.get("name") or (f"{dtype.upper()} ({config})" if config else dtype.upper())
    return {"type": dtype, "name": name, "config": config}


def _value(m: dict[str, Any], how: str) -> float | None:
    v = m.get(how) if how != "median" else m.get("value")
    if v is None and "per_prompt" not in m:
        v = m.get("value")
    return None if v is None else round(100.0 * v, 2) if abs(v) <= 1.0 else round(v, 2)


def model_index(doc: dict[str, Any], model: str, how: str = "max", name: str | None = None) -> dict[str, Any]:
    """The model-index mapping for one model of a results document."""
    if how not in AGGREGATES:
        raise AssayError(f"--aggregate must be one of {', '.join(AGGREGATES)}")
    if model not in doc["results"]:
        raise AssayError(f"no model '{model}' in these results (have: {', '.join(doc['results'])})")
    entries = []
    for task, res in doc["results"][model].items():
        info = doc["tasks"][task]
        card = _card(task, info)
        names = [res["primary"]] + [k for k in res["metrics"] if k.startswith("pass@") and k != res["primary"]]
        metrics = []
        for mname in names:
            val = _value(res["metrics"][mname], how)
            if val is not None:
                metrics.append({"type": _metric_type(mname), "value": val})
        if not metrics:
            continue
        dataset: dict[str, Any] = {"type": card["type"], "name": card["name"]}
        if card["config"]:
            dataset["config"] = card["config"]
        dataset["split"] = info["dataset"]["split"]
        dataset["revision"] = info["dataset"]["revision"]
        entries.append({"task": {"type": info.get("family") or "Other"}, "dataset": dataset, "metrics": metrics})
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


def write(doc: dict[str, Any], model: str, out: Path | None, readme: Path | None, how: str, name: str | None) -> str:
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
