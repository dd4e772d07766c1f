"""Documents × prompt templates → instances (``build_instances``): every document rendered
with every selected prompt, with its choices, target, preamble and few-shot examples, and the
image ids of its pictures (given to the rows by ``attach_images`` first).

An instance is model-independent: a model's chat format is applied later, when ``build``
turns the instances of a (model, task prompt) pair into requests (``prompts.chat.apply_format``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.data import images as image_store
from assay.errors import TaskError
from assay.requests import IMAGE
from assay.tasks import render
from assay.tasks.fewshot import Rices, embedding, pick_random
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
    # image ids in the order their <image> placeholders appear: the shots' images, then the
    # document's (a match task: the document's N images, one context each)
    images: tuple[str, ...] = ()
    # a conversation's later user messages (``turns:``), each sent after the model's previous answer
    followups: tuple[str, ...] = ()


def attach_images(spec: TaskSpec, rows: list[dict[str, Any]], base: Path | None, what: str) -> None:
    """Give every row its image ids (``_images``) from the task's ``images`` expression;
    relative paths resolve against ``base``, the data file's folder."""
    if spec.images is None:
        return
    for row in rows:
        if "_images" in row:
            continue
        where = f"{what}, row {row.get('_id')}"
        value = render.evaluate(spec.images, row, spec.vars, f"{where}, images")
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values or any(v is None for v in values):
            raise TaskError(f"{where}: 'images' gives no image ({value!r})")
        row["_images"] = tuple(image_store.register(v, base, where) for v in values)


def _check_placeholders(text: str, n: int, what: str) -> None:
    found = text.count(IMAGE)
    if found != n:
        raise TaskError(f"{what}: the prompt has {found} {IMAGE} placeholder(s) for {n} image(s)")


def _drop_images(text: str) -> str:
    """A text-only example: the prompt without its image placeholders."""
    return "\n".join(" ".join(line.replace(IMAGE, " ").split()) for line in text.split("\n")).strip()


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
    kind = p.target_type or spec.target_type
    if kind == "text":
        if str(value) not in choices:
            raise TaskError(f"{what}: target {str(value)!r} (target_type text) is not one of the choices {list(choices)}")
        return choices.index(str(value))
    if isinstance(value, str):
        index = _as_index(value)
        if kind == "index":
            if index is None:
                raise TaskError(f"{what}: target {value!r} is not a choice index (target_type index)")
        elif value in choices:  # a choice's text, unless as an index it names another choice
            text = choices.index(value)
            if index is not None and 0 <= index < len(choices) and index != text:
                raise TaskError(
                    f"{what}: target {value!r} is ambiguous: it is the text of choice {text} and, as an index, "
                    f"choice {index} ({choices[index]!r}); set target_type: text or target_type: index"
                )
            return text
        elif index is None:
            raise TaskError(f"{what}: target {value!r} is not one of the choices {list(choices)}")
        value = index
    if not 0 <= value < len(choices):
        raise TaskError(f"{what}: target index {value} is outside the {len(choices)} choices")
    return value


def _as_index(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


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
    if spec.fewshot.sampler != "first_n":
        pool.sort(key=lambda d: d["_id"])  # the choice must not depend on the order of the rows
    if k and len(pool) <= k and fewshot_pool is None:
        raise TaskError(f"task {spec.task}: {k}-shot needs more than {k} documents in the split")
    rices = Rices(embedding(spec.fewshot.embedding, spec.task), spec.task, image_store.load) if k and spec.fewshot.sampler == "rices" else None
    with_images = spec.images is not None
    out: list[Instance] = []
    for p in prompts:
        rendered_pool: dict[str, tuple[str, str]] = {}
        for doc in docs:
            what = f"task {spec.task}, prompt {p.id}, row {doc['_id']}"
            query, choices, target = _render_doc(spec, p, doc)
            doc_images: tuple[str, ...] = doc.get("_images", ()) if with_images else ()
            if spec.output_type == "match":
                _check_placeholders(query, 1, what + " (a match prompt shows one image)")
                if len(doc_images) != len(choices):
                    raise TaskError(f"{what}: a match item needs as many captions as images, got {len(choices)} and {len(doc_images)}")
            elif with_images:
                _check_placeholders(query, len(doc_images), what)
            shots: tuple[tuple[str, str], ...] = ()
            shot_images: tuple[str, ...] = ()
            if k:
                candidates = [d for d in pool if d != doc]
                if spec.fewshot.sampler == "first_n":
                    picked = candidates[:k]
                elif rices is not None:
                    picked = rices.pick(doc, candidates, k)
                else:
                    picked = pick_random(doc, candidates, k, spec.fewshot.seed)
                shot_list = []
                for d in picked:
                    if d["_id"] not in rendered_pool:
                        q, c, t = _render_doc(spec, p, d)
                        a = render.render(p.shot_answer, d, spec.vars, f"task {spec.task}, prompt {p.id} shot_answer, row {d['_id']}") if p.shot_answer else answer_text(spec, c, t)
                        rendered_pool[d["_id"]] = (_drop_images(q) if spec.fewshot.text_only else q, a)
                    shot_list.append(rendered_pool[d["_id"]])
                    if with_images and not spec.fewshot.text_only:
                        shot_images += tuple(d.get("_images", ()))
                shots = tuple(shot_list)
            preamble = render.render(p.preamble, doc, spec.vars, f"task {spec.task}, prompt {p.id} preamble") if p.preamble else ""
            if with_images:
                _check_placeholders(preamble, 0, what + " preamble")
            followups: tuple[str, ...] = ()
            if spec.turns is not None:
                value = render.evaluate(spec.turns, doc, spec.vars, f"{what}, turns")
                if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) and t.strip() for t in value):
                    raise TaskError(f"{what}: 'turns' must give a list of non-empty strings (the later user messages), got {value!r:.80}")
                followups = tuple(value)
            out.append(Instance(spec.task, p.id, doc["_id"], query, shots, choices, target, preamble, doc, shot_images + doc_images, followups))
    return out
