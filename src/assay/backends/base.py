"""The backend contract: three batch methods, typed requests in, results in the same order.

``Backend`` is the base class of every backend. Everything else a backend may offer (a chat
template, the hooks of a backend that serves stored answers) has a default there, and what it
serves is advertised through ``Capabilities``, so a task a backend cannot serve fails before
any work.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from assay.backends import options
from assay.backends.options import Option
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

    Backends never need this to compute; a backend that serves stored answers (``replay``,
    ``Backend.serves_stored_answers``) overrides the hooks that ``assay run`` calls while it
    builds requests: ``answers(origin) -> bool`` (items without an answer are left out of the
    run), ``bind(request_key, origin)`` and, once all are built, ``unmatched()``.
    """

    task: str
    prompt_id: str
    doc_id: str
    sample: int
    first_prompt: bool  # the task's first prompt in this run


class Backend(abc.ABC):
    """The class every backend subclasses.

    A backend is built from a ``ModelSpec`` (its ``__init__(spec)``), reads its arguments
    with ``parse_options(spec)`` from the ``options`` it declares, and sets ``info`` and
    ``capabilities``. It implements the three batch methods; a kind its ``capabilities`` says
    it does not serve raises a BackendError that says why (the run checks capabilities before
    any request is sent, so this is a last guard).

    A backend that serves stored answers instead of computing them (``replay``) sets
    ``serves_stored_answers`` and overrides the three hooks ``assay run`` calls while it
    builds the requests (see ``Origin``); their defaults here fit a model that answers
    everything.
    """

    #: the ``key=value`` arguments this backend takes (see ``assay.backends.options``)
    options: ClassVar[dict[str, Option]] = {}
    #: arguments of the backend's family this class does not take: name -> "for ..." (why)
    unsupported_options: ClassVar[dict[str, str]] = {}
    #: answers come from a store (``answers``/``bind``/``unmatched`` matter), not a model
    serves_stored_answers: ClassVar[bool] = False
    #: the model computes elsewhere (a server): the backend only sends requests, so it runs in
    #: the run's own process whatever the executor, and ``replicas=`` is its own argument
    remote: ClassVar[bool] = False

    info: ModelInfo
    capabilities: Capabilities

    @classmethod
    def parse_options(cls, spec: Any) -> dict[str, Any]:
        """``spec``'s arguments in the declared types, defaults filled in; an unknown key or a
        bad value is a one-line ConfigError naming the model."""
        return options.parse(spec, cls.options, cls.unsupported_options)

    @property
    def fingerprint(self) -> str:
        """What identifies the numbers this backend computes (``info.fingerprint``)."""
        return self.info.fingerprint

    @abc.abstractmethod
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) per request.

        The context/continuation boundary is the string boundary: tokenise context+continuation
        together and score the tokens that belong to the continuation. An empty context is
        scored after the model's BOS (or EOS) token. Contexts too long for the window are cut
        from the left; the continuation is never cut.
        """

    @abc.abstractmethod
    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        """log P(text): every token predicted exactly once, the first one after BOS/EOS, in
        windows no longer than ``capabilities.max_length`` that carry as much preceding text
        as fits."""

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Continue each context until a stop string (excluded from the text), an
        end-of-generation token, or ``max_tokens``."""

    def chat_template(self) -> ChatTemplate | None:
        """The model's own chat template, if it has one."""
        return None

    def close(self) -> None:
        """Free what the backend holds (weights, engines, connections)."""
        return None

    # -- the hooks of a backend that serves stored answers (``serves_stored_answers``) ---------
    def answers(self, origin: Origin) -> bool:
        """Whether the request from ``origin`` has an answer; items without one are left out
        of the run. A model answers everything."""
        return True

    def bind(self, key: str, origin: Origin) -> None:
        """The request with ``key`` answers ``origin``. A model needs no such link."""
        return None

    def unmatched(self) -> list[Any]:
        """The stored answers no request of the run was bound to."""
        return []
