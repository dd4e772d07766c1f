"""Results as model-card ``model-index`` YAML, and its merge into a README's front matter.

What each entry says, and where it comes from:

- ``task.type``: a Hugging Face task id (``multiple-choice``, ``text-classification``,
  ``question-answering``, ``token-classification``, ``text-generation``, ...) from the task's
  ``card: {task_type: ...}``, else derived from its output type and metrics when the run was
  made (``tasks.card``); never its family or language label. Results of runs made before the
  card recorded one get the same derivation from their metric names.
- ``dataset.type`` / ``name`` / ``config``: the task's ``card:`` as ``TaskSpec.card_info``
  resolved it at run time; ``config`` is the card's or the hub dataset's, never the language.
- ``metrics``: every metric the task declares, its headline first, each the **median over
  prompt templates** by default, the number every other view of assay calls the task's score
  (``--aggregate max``: the best prompt, as the BLOOMZ/mT0 cards report; ``mean``).
- Partial results are refused: a task scored on fewer documents than its data has (a run
  with ``--limit``, or items missing) would be written under the full split's name.
  ``allow_partial`` (``--allow-partial``) exports them and says so in two places the spec
  allows: ``dataset.args`` records ``{items: N, items_total: M}`` (and ``limit: L`` for a run
  made with ``--limit``), and each metric gets a ``name`` such as
  ``"Accuracy (first 100 of 500 items)"`` (``"(100 of 500 items)"`` when items are missing
  rather than cut), so the count shows wherever the card's results are displayed.

The merge edits text, not a parsed tree: the old ``model-index`` block (if any) is cut out of
the front matter and the new one appended, so every other key keeps its exact formatting,
comments included, and the body is untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assay.errors import AssayError
from assay.results import MetricResult, RunResults, TaskInfo, TaskResult
from assay.scoring.metrics import card_type, facts
from assay.tasks.card import default_task_type

AGGREGATES = ("median", "max", "mean")
DEFAULT_AGGREGATE = "median"
AGGREGATE_NOTE = {
    "median": "exporting the median over prompt templates (the headline); --aggregate max for the best prompt",
    "max": "exporting the best prompt template's score (--aggregate max), as the BLOOMZ/mT0 model cards do; the headline is the median",
    "mean": "exporting the mean over prompt templates (--aggregate mean); the headline is the median",
}


def _value(name: str, m: MetricResult, how: str) -> float | None:
    v = m.value if how == "median" else getattr(m, how)
    if v is None and not m.per_prompt:  # a metric without per-prompt values: its one value
        v = m.value
    return None if v is None else facts(name).card_value(v)


def _card(task: str, info: TaskInfo, res: TaskResult) -> dict[str, str]:
    card = dict(info.card or {})
    if not card:  # results without a card: the task name's prefix; the language only in the display name
        dtype = task.split("_")[0]
        card = {"type": dtype, "name": f"{dtype.upper()} ({info.language})" if info.language else dtype.upper(), "config": ""}
    card["config"] = card.get("config") or ""
    # recorded at run time (TaskSpec.card_info); older results: derived from the metric names
    card["task_type"] = card.get("task_type") or default_task_type(None, res.metrics)
    return card


@dataclass(frozen=True)
class Coverage:
    """How much of a task's data a result scored."""

    task: str
    scored: int  # documents scored
    total: int | None  # documents in the task's data (its split after ``where``); None: not recorded
    limit: int | None  # the run's --limit
    incomplete: int  # instances without all their responses

    @property
    def partial(self) -> bool:
        if self.incomplete:
            return True
        if self.total is not None:
            return self.scored < self.total
        return self.limit is not None  # the size is unknown, and the run was cut

    @property
    def cut(self) -> bool:
        """--limit cut this task's data (a limit above its size cuts nothing)."""
        return self.limit is not None and (self.total is None or self.limit < self.total)

    @property
    def first(self) -> bool:
        """The documents are the first N (cut by --limit), not a set with items missing."""
        return self.cut and self.scored == self.limit and not self.incomplete

    def count(self) -> str:
        of = f" of {self.total}" if self.total is not None else " of an unrecorded number of"
        return f"{'first ' if self.first else ''}{self.scored}{of} items"

    def said(self) -> str:
        out = f"{self.task} scored {self.scored}{' of ' + str(self.total) if self.total is not None else ''} items"
        return out + (f" ({self.incomplete} instances unfinished)" if self.incomplete else "")


def _documents(res: TaskResult) -> int:
    """Documents scored; version-1 files count instances only, so the most any prompt scored."""
    if res.n_docs is not None:
        return res.n_docs
    per_prompt = res.metrics[res.primary].per_prompt if res.primary in res.metrics else {}
    return max((p.n for p in per_prompt.values()), default=res.n_items)


def coverage(doc: RunResults, model: str) -> list[Coverage]:
    """Each of a model's tasks: documents scored against the documents its data has
    (``dataset.n_docs``, recorded at run time before ``--limit`` cuts it; the run's
    ``config.limit``)."""
    limit = (doc.config or {}).get("limit")
    out = []
    for task, res in doc.results[model].items():
        info = doc.tasks.get(task) or TaskInfo()
        out.append(Coverage(task, _documents(res), info.dataset.n_docs, limit if isinstance(limit, int) else None, res.n_incomplete))
    return out


def _refuse_partial(cov: list[Coverage]) -> None:
    partial = [c for c in cov if c.partial]
    if not partial:
        return
    cut = any(c.cut for c in partial)
    listed = ", ".join(c.said() for c in partial[:6]) + (f" and {len(partial) - 6} more" if len(partial) > 6 else "")
    why = f"the run was made with --limit {partial[0].limit}" if cut else "items are missing"
    todo = "rerun without --limit" if cut else "finish the run (run the same command again)"
    raise AssayError(
        f"partial results would be exported under the full datasets' names: {listed}; {why}: "
        f"{todo}, or pass --allow-partial to export them with their item counts"
    )


def model_index(doc: RunResults, model: str, how: str = DEFAULT_AGGREGATE, name: str | None = None, allow_partial: bool = False) -> dict[str, Any]:
    """The model-index mapping for one model of a run's results: every metric each task
    declares (its headline first), each formatted as the metric registry says. A task
    scored on part of its data is refused unless ``allow_partial`` (then its count is written)."""
    if how not in AGGREGATES:
        raise AssayError(f"--aggregate must be one of {', '.join(AGGREGATES)}")
    if model not in doc.results:
        raise AssayError(f"no model '{model}' in these results (have: {', '.join(doc.results)})")
    cov = {c.task: c for c in coverage(doc, model)}
    if not allow_partial:
        _refuse_partial(list(cov.values()))
    entries = []
    for task, res in doc.results[model].items():
        info = doc.tasks.get(task) or TaskInfo()
        card = _card(task, info, res)
        c = cov[task]
        metrics = []
        for mname in [res.primary] + [k for k in res.metrics if k != res.primary]:
            val = _value(mname, res.metrics[mname], how)
            if val is not None:
                m: dict[str, Any] = {"type": card_type(mname), "value": val}
                if c.partial:
                    m["name"] = f"{m['type']} ({c.count()})"
                metrics.append(m)
        if not metrics:
            continue
        dataset: dict[str, Any] = {"type": card["type"], "name": card["name"]}
        if card["config"]:
            dataset["config"] = card["config"]
        dataset["split"] = info.dataset.split
        dataset["revision"] = info.dataset.revision
        if c.partial:
            args: dict[str, Any] = {"items": c.scored}
            if c.total is not None:
                args["items_total"] = c.total
            if c.cut:
                args["limit"] = c.limit
            dataset["args"] = args
        entries.append({"task": {"type": card["task_type"]}, "dataset": dataset, "metrics": metrics})
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


def write(doc: RunResults, model: str, out: Path | None, readme: Path | None, how: str, name: str | None, allow_partial: bool = False) -> str:
    block = model_index(doc, model, how, name, allow_partial)
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
