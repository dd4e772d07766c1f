"""The backend contract: three batch methods, typed requests in, results in the same order.

Everything else a backend may offer (a chat template, token counting) has a default here and
is advertised through ``Capabilities``, so a task a backend cannot serve fails before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from assay.prompts.chat import ChatTemplate
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)


@dataclass(frozen=True)
class Capabilities:
    loglikelihood: bool = True
    rolling: bool = True
    generate: bool = True
    images: bool = False
    max_length: int = 2048  # context window in tokens
    why_not: str = ""  # why a kind is not served, for the error that names it (one line)

    def supports(self, kind: str) -> bool:
        return {"loglikelihood": self.loglikelihood, "rolling": self.rolling, "generate": self.generate}[kind]


@dataclass(frozen=True)
class ModelInfo:
    """What identifies the model a backend serves; recorded with every result."""

    name: str  # what the user called it (alias or path)
    backend: str
    fingerprint: str  # changes whenever the numbers could change
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Origin:
    """Where a request comes from: the (task, prompt, document, sample) it answers.

    Backends never need this to compute; a backend that serves stored answers (``replay``)
    implements two optional hooks that ``assay run`` calls while it builds requests:
    ``answers(origin) -> bool`` (items without an answer are left out of the run) and
    ``bind(request_key, origin)``.
    """

    task: str
    prompt_id: str
    doc_id: str
    sample: int
    first_prompt: bool  # the task's first prompt in this run


@runtime_checkable
class Backend(Protocol):
    info: ModelInfo
    capabilities: Capabilities

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) per request.

        The context/continuation boundary is the string boundary: tokenise context+continuation
        together and score the tokens that belong to the continuation. An empty context is
        scored after the model's BOS (or EOS) token. Contexts too long for the window are cut
        from the left; the continuation is never cut.
        """
        ...

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        """log P(text): every token predicted exactly once, the first one after BOS/EOS, in
        windows no longer than ``capabilities.max_length`` that carry as much preceding text
        as fits."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Continue each context until a stop string (excluded from the text), an
        end-of-generation token, or ``max_tokens``."""
        ...

    def chat_template(self) -> ChatTemplate | None:
        ...

    def close(self) -> None:
        ...
