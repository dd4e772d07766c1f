"""Instances × prompt format → requests: what one model is asked, and the rows that record it.

No store and no terminal here: ``build_model`` returns the requests (by key) and, per task,
the rows the run store records; notes for the user go through the ``note`` callback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from assay.backends.base import Backend, Origin
from assay.config import RunConfig
from assay.errors import BackendError, TaskError
from assay.instances import Instance
from assay.plan import TaskPlan
from assay.prompts.chat import ChatTemplate, apply_format, choose_format
from assay.requests import IMAGE, GenerateRequest, LoglikelihoodRequest, Request, RollingRequest, canonical_json, request_key
from assay.tasks.spec import TaskSpec, template_hash

# the request kind each output type needs
REQUEST_KIND = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood", "match": "loglikelihood", "rolling": "rolling", "generate": "generate"}

Note = Callable[[str], None]
Row = tuple[str, str, dict[str, Any], list[str]]  # prompt id, doc id, what the sample shows, request keys
Registration = tuple[str, dict[str, Any], dict[str, Any], list[Row]]  # task, spec, info, rows


def requests_for(spec: TaskSpec, context: str, inst: Instance, special: bool, stops: tuple[str, ...]) -> list[Request]:
    """The requests of one instance whose prompt is ``context``."""
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


def task_info(plan: TaskPlan, formats: dict[str, Any]) -> dict[str, Any]:
    """What results.json says of a task (``results.TaskInfo``)."""
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


def _bind_origins(backend: Backend, spec: TaskSpec, inst: Instance, used: set[str], keys: list[str]) -> bool:
    """For a backend that serves stored answers (``replay``): tell it which item each request
    answers; False when the item has no answer and is left out. Other backends: True."""
    if not backend.serves_stored_answers:
        return True
    first = next(p.id for p in spec.prompts if p.id in used)
    origins = [Origin(spec.task, inst.prompt_id, inst.doc_id, i, inst.prompt_id == first) for i in range(len(keys))]
    if not all(backend.answers(o) for o in origins):
        return False
    for k, o in zip(keys, origins):
        backend.bind(k, o)
    return True


def check_capabilities(label: str, backend: Backend, plans: list[TaskPlan]) -> None:
    """Every task's request kind (and images) is one the backend serves, or one line why not."""
    for plan in plans:
        kind = REQUEST_KIND[plan.spec.output_type]
        if not backend.capabilities.supports(kind):
            why = f": {backend.capabilities.why_not}" if backend.capabilities.why_not else ""
            raise BackendError(f"model {label} ({backend.info.backend}) cannot serve {kind} requests needed by task {plan.spec.task}{why}")
        if plan.spec.images is not None and not backend.capabilities.images:
            raise BackendError(
                f"model {label} ({backend.info.backend}) reads no images, and task {plan.spec.task} shows images: use a vision-language model (e.g. hf:HuggingFaceM4/idefics-9b-instruct)"
            )


def build_model(label: str, backend: Backend, plans: list[TaskPlan], cfg: RunConfig, note: Note = lambda _: None) -> tuple[dict[str, Request], list[Registration]]:
    """A model's requests (by key) and the rows that record them, per task."""
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
        note(f"  {spec.task}: " + "; ".join(f"{pid} → {shown[pid]} ({formats[pid]['reason']})" for pid in sorted(used)))
        rows: list[Row] = []
        for inst in plan.instances:
            choice = choice_of[inst.prompt_id]
            chat = choice.name != "none"
            fmt = lambda q, c=choice, i=inst, s=spec: apply_format(c, tpl, q, i.shots, s.fewshot.separator, s.target_delimiter, cfg.system_prompt, i.preamble)  # noqa: E731
            if (spec.prompt(inst.prompt_id).choice_mode or spec.choice_mode) == "context":
                contexts = [fmt(c) for c in inst.choices]
                reqs: list[Request] = [LoglikelihoodRequest(c, spec.target_delimiter + inst.query, chat) for c in contexts]
                context: Any = contexts
            else:
                context = fmt(inst.query)
                want = 1 if spec.output_type == "match" else len(inst.images)
                if spec.images is not None and context.count(IMAGE) != want:
                    raise TaskError(f"task {spec.task}, prompt {inst.prompt_id}: the {choice.name} chat format left {context.count(IMAGE)} of {want} {IMAGE} placeholder(s)")
                reqs = requests_for(spec, context, inst, chat, choice.stop)
            keys = [request_key(r) for r in reqs]
            if not _bind_origins(backend, spec, inst, used, keys):
                continue
            all_requests.update(zip(keys, reqs))
            data = {"prompt": context, "query": inst.query, "shots": inst.shots, "choices": inst.choices, "target": inst.target, "doc": _jsonable(inst.doc), "chat_format": choice.name}
            if inst.followups:  # a conversation: its later turns are built from the stored answers (next_turns)
                data.update(turns=[inst.query, *inst.followups], preamble=inst.preamble)
            if inst.images:
                data["images"] = inst.images
            rows.append((inst.prompt_id, inst.doc_id, json.loads(canonical_json(data)), keys))
        if backend.serves_stored_answers and len(rows) < len(plan.instances):
            note(f"  {spec.task}: {len(rows)} of {len(plan.instances)} items have an answer; the others are left out")
        registrations.append((spec.task, spec.model_dump(mode="json"), task_info(plan, formats), rows))
    if backend.serves_stored_answers:
        check_replay(label, backend.unmatched(), sum(len(r[3]) for r in registrations), [p.spec.task for p in plans], note)
    return all_requests, registrations


def next_turns(plans: list[TaskPlan], registrations: list[Registration], tpl: ChatTemplate | None, cfg: RunConfig,
               stored: Callable[[list[str]], dict[str, Any]]) -> dict[str, Request]:
    """The next turn of every conversation whose answers so far are all stored: its request,
    whose context is the conversation (the model's own earlier answers included), appended to
    the row's keys. Deterministic, so a resumed run rebuilds the same keys and finds them
    stored. Returns the new requests (none: every conversation is finished or waiting)."""
    out: dict[str, Request] = {}
    specs = {p.spec.task: p.spec for p in plans if p.spec.turns is not None}
    for task, _spec, _info, rows in registrations:
        spec = specs.get(task)
        if spec is None:
            continue
        open_rows = [r for r in rows if r[2].get("turns") and len(r[3]) < len(r[2]["turns"])]
        answers = stored([k for r in open_rows for k in r[3]])
        g = spec.generation
        for prompt_id, _doc_id, data, keys in open_rows:
            if not all(k in answers for k in keys):
                continue
            choice = choose_format(spec.prompt(prompt_id).chat or spec.chat, spec.output_type, tpl, cfg.chat_format)
            turns, said = data["turns"], [answers[k].text for k in keys]
            history = tuple((q, a) for q, a in data["shots"]) + tuple(zip(turns[: len(said)], said))
            context = apply_format(choice, tpl, turns[len(said)], history, spec.fewshot.separator, spec.target_delimiter, cfg.system_prompt, data.get("preamble", ""))
            until = tuple(dict.fromkeys(list(g.until) + list(choice.stop)))
            req = GenerateRequest(context, until, g.max_tokens, g.temperature, g.top_p, g.top_k, g.repetition_penalty, g.seed,
                                  special=choice.name != "none", until_ids=tuple(g.stop_token_ids))
            key = request_key(req)
            keys.append(key)
            out[key] = req
    return out


def check_replay(label: str, left: list[tuple[str, str, str | None, int]], n_used: int, tasks: list[str], note: Note) -> None:
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
    note(f"  [yellow]{len(left)} answer(s) of {label} match no item of this run[/]{why}: {shown}{more}")
