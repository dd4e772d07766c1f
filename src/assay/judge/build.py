"""Stored answers → judge requests: what a judge model is asked about each answer (single
grading) or each pair of models' answers (pairwise, asked in both orders).

Judge requests are ordinary generation requests: keyed by their content, stored in the run
store under the judge's fingerprint, shared through the response cache, resumed after a kill
(a rerun builds the same requests and finds them stored). Nothing here runs a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from assay.backends.base import Backend
from assay.judge.prompts import JudgePrompt, judge_prompt
from assay.prompts.chat import apply_format, choose_format
from assay.requests import GenerateRequest, GenerateResult, Request, request_key
from assay.store.runs import RunStore
from assay.tasks import render
from assay.tasks.spec import JudgeSpec, TaskSpec

Note = Callable[[str], None]


@dataclass(frozen=True)
class JudgeItem:
    """One judge request: a task item's answer (single) or two models' answers in the order
    shown (pairwise: ``models[0]`` is answer A)."""

    task: str
    prompt_id: str
    doc_id: str
    mode: str
    models: tuple[str, ...]
    key: str
    data: dict[str, Any]


DEFAULT = JudgeSpec.model_validate({})


def _spec(spec: TaskSpec) -> JudgeSpec:
    return spec.judge or DEFAULT


def judged(spec: TaskSpec) -> bool:
    """Whether ``--judge`` grades a task: its answers are generated text."""
    return spec.output_type == "generate"


def modes(spec: TaskSpec, n_models: int) -> list[str]:
    j = _spec(spec)
    if j.mode == "both":
        return ["single", "pairwise"] if n_models > 1 else ["single"]
    if j.mode == "auto":
        return ["single"] if n_models < 2 or _has_reference(spec) else ["pairwise"]
    if j.mode == "pairwise" and n_models < 2:
        return []
    return [j.mode]


def _has_reference(spec: TaskSpec) -> bool:
    j = _spec(spec)
    return j.reference != "none" and (j.reference is not None or any((p.target or spec.target) for p in spec.prompts))


def scale(spec: TaskSpec) -> str:
    j = _spec(spec)
    return j.scale or ("pass/fail" if _has_reference(spec) else "1-10")


def _reference(spec: TaskSpec, data: dict[str, Any]) -> str | None:
    j = _spec(spec)
    if j.reference == "none":
        return None
    value = render.evaluate(j.reference, data.get("doc", {}), spec.vars, f"task {spec.task}, judge.reference") if j.reference else data.get("target")
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, (list, tuple)):
        texts = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in value]
        return texts[0] if len(texts) == 1 else " | ".join(texts) + "  (any of these)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _answers(store: RunStore, label: str, fp: str, task: str) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(prompt id, doc id) → (the model's answer, the instance's data with the judge's
    ``question``). A conversation (``turns:``) is judged whole once every turn is answered: the
    question lists the user's turns, the answer the model's, turn by turn."""
    rows = store.instances(label, task)
    results = store.results(fp, [k for _, _, data, keys in rows for k in (keys if data.get("turns") else keys[:1])])
    out = {}
    for prompt_id, doc_id, data, keys in rows:
        turns = data.get("turns")
        if turns:
            said = [results.get(k) for k in keys]
            if len(said) < len(turns) or not all(isinstance(r, GenerateResult) for r in said):
                continue
            question = "\n\n".join(f"Turn {i} (user): {t}" for i, t in enumerate(turns, 1))
            answer = "\n\n".join(f"Turn {i} (assistant): {r.text.strip()}" for i, r in enumerate(said, 1))  # type: ignore[union-attr]
            out[(prompt_id, doc_id)] = (answer, {**data, "question": question})
            continue
        res = results.get(keys[0]) if keys else None
        if isinstance(res, GenerateResult):
            out[(prompt_id, doc_id)] = (res.text.strip(), {**data, "question": data["query"]})
    return out


def judge_requests(store: RunStore, backend: Backend, specs: list[TaskSpec], labels: list[str], note: Note = lambda _: None) -> tuple[dict[str, Request], list[JudgeItem]]:
    """The judge's requests for every judged task of the models ``labels`` (stored answers only)."""
    tpl = backend.chat_template()
    choice = choose_format("auto", "generate", tpl, None)
    chat = choice.name != "none"
    fps = {lbl: fp for lbl, fp, _ in store.models()}
    requests: dict[str, Request] = {}
    items: list[JudgeItem] = []
    for spec in specs:
        if not judged(spec):
            continue
        j = _spec(spec)
        answers = {lbl: _answers(store, lbl, fps[lbl], spec.task) for lbl in labels if lbl in fps}
        sc = scale(spec)
        for mode in modes(spec, len(answers)):
            prompt = judge_prompt(mode, j.template if mode == "single" else j.pairwise_template, spec.task)
            before = len(items)
            if mode == "single":
                for lbl, by_item in answers.items():
                    for (pid, did), (answer, data) in by_item.items():
                        ref = _reference(spec, data)
                        text = prompt.render(question=data["question"], answer=answer, reference=ref, scale=sc)
                        items.append(_item(spec, pid, did, mode, (lbl,), text, prompt, sc, ref, [answer], choice, tpl, chat, j, requests))
            else:
                for a, b in combinations(answers, 2):
                    for (pid, did) in [k for k in answers[a] if k in answers[b]]:
                        (ans_a, data), (ans_b, _) = answers[a][(pid, did)], answers[b][(pid, did)]
                        ref = _reference(spec, data)
                        for first, second, x, y in ((a, b, ans_a, ans_b), (b, a, ans_b, ans_a)):
                            text = prompt.render(question=data["question"], answer_a=x, answer_b=y, reference=ref)
                            items.append(_item(spec, pid, did, mode, (first, second), text, prompt, sc, ref, [x, y], choice, tpl, chat, j, requests))
            note(f"  {spec.task}: {len(items) - before} {mode} judgements ({prompt.name} v{prompt.version} {prompt.hash}, {sc if mode == 'single' else 'A/B/tie'}, "
                 f"chat format {choice.name})")
    return requests, items


def _item(spec: TaskSpec, pid: str, did: str, mode: str, models: tuple[str, ...], text: str, prompt: JudgePrompt, sc: str, ref: str | None,
          answers: list[str], choice: Any, tpl: Any, chat: bool, j: JudgeSpec, requests: dict[str, Request]) -> JudgeItem:
    context = apply_format(choice, tpl, text, (), "\n\n", " ")
    req = GenerateRequest(context, tuple(choice.stop), j.max_tokens, 0.0, special=chat)
    key = request_key(req)
    requests[key] = req
    data = {"prompt": context, "template": {"name": prompt.name, "version": prompt.version, "hash": prompt.hash}, "scale": sc if mode == "single" else "A/B/tie",
            "reference": ref, "answers": answers, "chat_format": choice.name}
    return JudgeItem(spec.task, pid, did, mode, models, key, data)
