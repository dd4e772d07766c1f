"""Documents × prompt templates → instances (rendered, with their few-shot examples).

An instance is model-independent: the chat format of a model is applied later, when
instances become requests (``build_requests``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from assay.errors import TaskError
from assay.tasks import render
from assay.tasks.spec import PromptSpec, TaskSpec


@dataclass(frozen=True)
class Instance:
    task: str
    prompt_id: str
    doc_id: str
    query: str  # this document's rendered prompt
    shots: tuple[tuple[str, str], ...] = ()  # (rendered prompt, answer) of each few-shot example
    choices: tuple[str, ...] = ()
    target: Any = None  # choice index for multiple choice; answer(s) for generation
    preamble: str = ""  # shown once, before the few-shot examples
    doc: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _choices(spec: TaskSpec, p: PromptSpec, doc: dict, what: str) -> tuple[str, ...]:
    src = p.choices if p.choices is not None else spec.choices
    if src is None:
        return ()
    if isinstance(src, list):
        vals = [render.render(c, doc, spec.vars, what) for c in src]
    else:
        vals = render.evaluate(src, doc, spec.vars, what)
    if not isinstance(vals, (list, tuple)) or not vals:
        raise TaskError(f"{what}: 'choices' must give a non-empty list, got {type(vals).__name__}")
    return tuple(str(v) for v in vals)


def _target(spec: TaskSpec, p: PromptSpec, doc: dict, choices: tuple[str, ...], what: str) -> Any:
    src = p.target if p.target is not None else spec.target
    if src is None:
        return None
    value = render.evaluate(src, doc, spec.vars, what)
    if spec.output_type != "multiple_choice":
        return value
    if isinstance(value, (list, tuple)):  # multi-label: 1 marks every correct choice (TruthfulQA MC2)
        if len(value) != len(choices) or not all(v in (0, 1, True, False) for v in value) or not any(value):
            raise TaskError(f"{what}: a list target needs one 0/1 label per choice, at least one 1; got {value!r}")
        return [int(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TaskError(f"{what}: multiple-choice target must be an index or a choice text, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            if value in choices:
                return choices.index(value)
            raise TaskError(f"{what}: target {value!r} is not one of the choices {list(choices)}") from None
    if not 0 <= value < len(choices):
        raise TaskError(f"{what}: target index {value} is outside the {len(choices)} choices")
    return value


def answer_text(spec: TaskSpec, choices: tuple[str, ...], target: Any) -> str:
    """The gold answer as text, as a few-shot example shows it."""
    if spec.output_type == "multiple_choice":
        return choices[target]
    if isinstance(target, (list, tuple)):
        return str(target[0]) if target else ""
    return "" if target is None else str(target)


def _render_doc(spec: TaskSpec, p: PromptSpec, doc: dict) -> tuple[str, tuple[str, ...], Any]:
    what = f"task {spec.task}, prompt {p.id}, row {doc.get('_id')}"
    query = render.render(p.template, doc, spec.vars, what)
    choices = _choices(spec, p, doc, what)
    target = _target(spec, p, doc, choices, what)
    return query, choices, target


def build_instances(
    spec: TaskSpec,
    docs: list[dict[str, Any]],
    prompts: list[PromptSpec],
    fewshot_pool: list[dict[str, Any]] | None = None,
) -> list[Instance]:
    """Render every document with every selected prompt.

    Few-shot examples are drawn per document with a generator seeded by the task's seed and
    the document id, so the choice never depends on order, limit or batch size. The pool
    defaults to ``docs``; a row identical to the document (itself) is never its example.
    """
    k = spec.fewshot.k
    pool = list(fewshot_pool if fewshot_pool is not None else docs)
    if spec.fewshot.sampler == "random":
        pool.sort(key=lambda d: d["_id"])  # the draw must not depend on the order of the rows
    if k and len(pool) <= k and fewshot_pool is None:
        raise TaskError(f"task {spec.task}: {k}-shot needs more than {k} documents in the split")
    out: list[Instance] = []
    for p in prompts:
        rendered_pool: dict[str, tuple[str, str]] = {}
        for doc in docs:
            query, choices, target = _render_doc(spec, p, doc)
            shots: tuple[tuple[str, str], ...] = ()
            if k:
                candidates = [d for d in pool if d != doc]
                if spec.fewshot.sampler == "first_n":
                    picked = candidates[:k]
                else:
                    rng = random.Random(f"{spec.fewshot.seed}:{doc['_id']}")
                    picked = rng.sample(candidates, min(k, len(candidates)))
                shot_list = []
                for d in picked:
                    if d["_id"] not in rendered_pool:
                        q, c, t = _render_doc(spec, p, d)
                        a = render.render(p.shot_answer, d, spec.vars, f"task {spec.task}, prompt {p.id} shot_answer, row {d['_id']}") if p.shot_answer else answer_text(spec, c, t)
                        rendered_pool[d["_id"]] = (q, a)
                    shot_list.append(rendered_pool[d["_id"]])
                shots = tuple(shot_list)
            preamble = render.render(p.preamble, doc, spec.vars, f"task {spec.task}, prompt {p.id} preamble") if p.preamble else ""
            out.append(Instance(spec.task, p.id, doc["_id"], query, shots, choices, target, preamble, doc))
    return out
