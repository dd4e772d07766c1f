"""Answers produced elsewhere, scored like any model's: ``replay:ANSWERS.jsonl[,model=NAME]``.

Each line of the file is one answer::

    {"task": "core_code", "id": "code-07", "answer": "def add(a, b): ...",
     "sample": 0, "prompt": "instruct", "model": "alpaca-lora"}

``task``, ``id`` (the document id, as in the sample files) and ``answer`` are required.
``sample`` (default 0) numbers the samples of an item for pass@k; ``prompt`` names the task
prompt the answer was given to, and an answer without one counts for the task's first prompt
in the run; ``model`` lets one file hold several systems' answers (select one with
``model=NAME``, which also becomes the label in tables).

Only items with an answer take part: the run says how many per task. The same extraction,
sandbox and metrics then score them, so generations made by another system, or collected by
hand from web demos, get the same verdicts as the models assay runs itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from assay.backends.base import Backend, Capabilities, ModelInfo, Origin
from assay.backends.common import file_sha256, fingerprint
from assay.backends.options import Option
from assay.backends.registry import ModelSpec
from assay.errors import BackendError, ConfigError
from assay.requests import GenerateRequest, GenerateResult, LoglikelihoodRequest, RollingRequest, request_key



def _read(path: Path, model: str | None) -> dict[tuple[str, str, str | None, int], str]:
    answers: dict[tuple[str, str, str | None, int], str] = {}
    models: set[str] = set()
    seen: set[tuple[str | None, tuple[str, str, str | None, int]]] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"{path}: cannot read the answers file: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BackendError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BackendError(f"{path}:{n}: each line must be a JSON object")
        missing = [k for k in ("task", "id", "answer") if k not in row]
        if missing:
            raise BackendError(f"{path}:{n}: missing field '{missing[0]}' (each line needs task, id and answer)")
        if not isinstance(row["answer"], str):
            raise BackendError(f"{path}:{n}: field 'answer' must be a string")
        sample = row.get("sample", 0)
        if not isinstance(sample, int) or sample < 0:
            raise BackendError(f"{path}:{n}: field 'sample' must be a non-negative integer")
        who = None if row.get("model") is None else str(row["model"])
        if who is not None:
            models.add(who)
        key = (str(row["task"]), str(row["id"]), None if row.get("prompt") is None else str(row["prompt"]), sample)
        if (who, key) in seen:
            raise BackendError(f"{path}:{n}: a second answer for task {key[0]}, id {key[1]}, sample {sample}" + (f", model {who}" if who else ""))
        seen.add((who, key))
        if model is None or who == model:
            answers[key] = row["answer"]
    if model is not None and model not in models:
        known = ", ".join(sorted(models)) or "none (no line has a 'model' field)"
        raise ConfigError(f"{path}: no answers for model '{model}' (models in the file: {known})")
    if model is None and len(models) > 1:
        raise ConfigError(f"{path}: the file holds answers of several models ({', '.join(sorted(models))}); pick one with replay:{path},model=NAME")
    return answers


class ReplayBackend(Backend):
    """Serves ``generate`` requests from a file of answers; cannot score likelihoods."""

    options = {"model": Option(str, None, "whose answers, when the file holds several systems' (also the run's label)")}
    serves_stored_answers = True

    def __init__(self, spec: ModelSpec):
        model = self.parse_options(spec)["model"]
        path = Path(spec.target).expanduser()
        if not path.is_file():
            raise BackendError(f"answers file not found: {spec.target}")
        self._answers = _read(path, model)
        self._origin: dict[str, Origin] = {}
        self._used: set[tuple[str, str, str | None, int] | None] = set()
        digest = file_sha256(path)
        self.capabilities = Capabilities(loglikelihood=False, rolling=False, generate=True, images=True, max_length=1 << 30)
        self.info = ModelInfo(
            name=model or path.name,
            backend="replay",
            fingerprint=fingerprint("replay", digest, model),
            args={"path": str(path), "sha256": digest, **spec.args},
        )

    def _key(self, o: Origin) -> tuple[str, str, str | None, int] | None:
        key = (o.task, o.doc_id, o.prompt_id, o.sample)
        if key in self._answers:
            return key
        if o.first_prompt and (key := (o.task, o.doc_id, None, o.sample)) in self._answers:
            return key
        return None

    def _lookup(self, o: Origin) -> str | None:
        key = self._key(o)
        return None if key is None else self._answers[key]

    def unmatched(self) -> list[tuple[str, str, str | None, int]]:
        """The answers no request of the run was bound to, in file order."""
        return [k for k in self._answers if k not in self._used]

    # -- the hooks of a backend that serves stored answers (see Backend) ------------------------
    def answers(self, origin: Origin) -> bool:
        """Whether this request has an answer; items without one are left out of the run."""
        return self._lookup(origin) is not None

    def bind(self, key: str, origin: Origin) -> None:
        prev = self._origin.get(key)
        if prev is not None and prev != origin and self._lookup(prev) != self._lookup(origin):
            raise BackendError(
                f"replay: task {prev.task} id {prev.doc_id} and task {origin.task} id {origin.doc_id} render the same "
                "prompt but have different answers; run them separately"
            )
        self._origin[key] = origin
        self._used.add(self._key(origin))

    # -- the three batch methods ------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        out = []
        for r in requests:
            o = self._origin.get(request_key(r))
            text = self._lookup(o) if o is not None else None
            if text is None:  # build.py only sends requests whose answers exist
                raise BackendError("replay: a request arrived that no answer in the file matches")
            out.append(GenerateResult(text, 0, "stop"))
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list:
        raise BackendError("the replay backend holds answers, not a model: it cannot score log-likelihoods")

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list:
        raise BackendError("the replay backend holds answers, not a model: it cannot score log-likelihoods")

    def close(self) -> None:
        self._origin.clear()
