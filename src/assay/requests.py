"""The three request kinds a backend serves, and their stable hash keys.

Requests are frozen and carry everything that decides the answer: the exact text sent to the
model (chat formatting already applied) and, for generation, the decoding settings. Two tasks or
two prompts that produce the same request share one computation and one stored response.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# Bump when the meaning of a stored response changes, so old entries are never reused silently.
KEY_VERSION = "r1"

# Where an image sits in a context: the request's ``images`` fill the placeholders in order.
# A vision-language backend splits the text here and hands the images to its processor.
IMAGE = "<image>"


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context), summed over the continuation's tokens.

    Word-boundary spaces belong to the continuation (" Paris", not "Paris"): backends split
    context and continuation exactly where the strings split. ``special`` asks the backend to
    parse special-token text (chat formats) in the context.
    """

    context: str
    continuation: str
    special: bool = False
    images: tuple[str, ...] = ()  # image ids (``assay.data.images``), one per IMAGE in the context
    kind: str = field(default="loglikelihood", init=False)


@dataclass(frozen=True)
class RollingRequest:
    """log P(text), every token predicted once, in windows of the model's context length."""

    text: str
    kind: str = field(default="rolling", init=False)


@dataclass(frozen=True)
class GenerateRequest:
    """Text generated after ``context`` until a stop string, a stop token or ``max_tokens``.

    The returned text never includes the stop string or stop token. ``until_ids`` are token ids
    that end the reply (in addition to the model's own end-of-generation tokens).
    ``temperature == 0`` means greedy; sampled requests carry ``seed`` and ``sample_index``
    so n samples are n distinct requests, each reproducible on its own.
    """

    context: str
    until: tuple[str, ...] = ()
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0
    sample_index: int = 0
    special: bool = False
    until_ids: tuple[int, ...] = ()
    images: tuple[str, ...] = ()  # image ids (``assay.data.images``), one per IMAGE in the context
    kind: str = field(default="generate", init=False)

    @property
    def sampling_seed(self) -> int:
        """The RNG seed of this sample, distinct for every (seed, sample_index) pair; below
        2**32 - 1, which llama.cpp reads as "pick a random seed"."""
        return (self.seed * 1_000_003 + self.sample_index) % 0xFFFFFFFF


Request = LoglikelihoodRequest | RollingRequest | GenerateRequest


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    is_greedy: bool  # every continuation token was the argmax
    n_tokens: int
    truncated: int = 0  # context tokens cut from the left to fit the model's window


@dataclass(frozen=True)
class RollingResult:
    logprob: float
    n_tokens: int


@dataclass(frozen=True)
class GenerateResult:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" | "length"
    truncated: int = 0  # prompt tokens cut from the left to leave room for max_tokens


Result = LoglikelihoodResult | RollingResult | GenerateResult

_RESULT_TYPES = {"loglikelihood": LoglikelihoodResult, "rolling": RollingResult, "generate": GenerateResult}


def canonical_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(req: Request) -> str:
    """Version-tagged hash of the request's canonical JSON.

    A request without images hashes without the ``images`` field, so text-only keys are the
    ones stored before images existed. Images enter the key as content hashes."""
    payload = asdict(req)
    if not payload.get("images"):
        payload.pop("images", None)
    digest = hashlib.blake2b(canonical_json(payload).encode(), digest_size=16).hexdigest()
    return f"{KEY_VERSION}:{digest}"


def result_to_json(res: Result) -> str:
    return canonical_json(asdict(res))


def result_from_json(kind: str, payload: str) -> Result:
    return _RESULT_TYPES[kind](**json.loads(payload))


def request_length(req: Request) -> int:
    """A cheap length proxy (characters) used to sort work before tokenisation."""
    if isinstance(req, LoglikelihoodRequest):
        return len(req.context) + len(req.continuation)
    if isinstance(req, RollingRequest):
        return len(req.text)
    return len(req.context) + 4 * req.max_tokens
