"""A deterministic stand-in model: ``mock:NAME[,seed=0,max_length=2048,answer=TEXT,latency=S]``.

It serves every request kind without weights, so a task file can be dry-run end to end
(``assay run -m mock:m1 -t my_task.yaml --limit 5``: rendering, requests, the run store,
scoring, reports) in seconds, and tests can drive the scheduler and the store. Its numbers
mean nothing about any model; they are a function of what was asked, and nothing else:

* a "token" is a word with the spaces before it; a context starts with one more (its BOS);
* ``loglikelihood``: ``n × -(0.25 + 4.75·u)``, where n is the continuation's tokens (at least
  one) and u in [0, 1) is read from a hash of (seed, context, continuation, images); the
  continuation is greedy when u < 0.15. A context longer than ``max_length`` counts as cut
  from the left (``truncated``), as the real backends report it;
* ``loglikelihood_rolling``: ``n × -(0.25 + 4.75·u)`` over the text's n tokens;
* ``generate``: ``answer=TEXT`` when given (no commas: they separate arguments), else 1 to 16 words from a small vocabulary
  (letters, numbers, yes/no, line breaks) picked by a hash of (seed, context, images, and the
  sampling seed of a sampled request); then cut at the first ``until`` stop string (finish
  "stop") or after ``max_tokens`` tokens (finish "length"). Images are accepted and only
  enter the hash.

``latency=S`` makes every batch wait S seconds before it answers (a remote model's round trip,
without using a CPU: what ``bench/scale`` spreads over many replicas); it changes no number
and is not part of the fingerprint.

The fingerprint depends on NAME, seed, max_length and answer, so two mock models with
different names or seeds are different models in a run store. The run's label is NAME. The
module imports nothing beyond the standard library and assay.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import fingerprint, trim_at_stop
from assay.backends.options import Option
from assay.backends.registry import ModelSpec
from assay.errors import BackendError
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

VERSION = "mock-v1"  # part of the fingerprint: bump when the numbers change
_WORDS = ("A", "B", "C", "D", "yes", "no", "the", "answer", "is", "0", "1", "2", "7", "42", "because", "so", "True", "False")
_PIECE = re.compile(r"\s*\S+|\s+$")
_GREEDY = 0.15


def _unit(*parts: object) -> float:
    """A number in [0, 1) read from the hash of ``parts``."""
    digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pieces(text: str) -> list[str]:
    """The mock's tokens: each word with the spaces before it (and trailing spaces)."""
    return _PIECE.findall(text)


def _per_token(u: float) -> float:
    return -(0.25 + 4.75 * u)


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip() if start in text and end in text else ""


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _judgement(how: str, prompt: str) -> str:
    """A judge's reply to assay's judge prompts (``judge.prompts``), decided by rule:
    ``longer`` prefers the answer with more words (a tie when equal), rates an answer 1 + its
    words / 2 (at most 10), and passes an answer that contains the reference (its first
    alternative); ``first`` always prefers answer A and rates 5 / passes; ``garbage`` gives no
    verdict."""
    from assay.judge import prompts as P

    if how == "garbage":
        return "I cannot tell."
    if P.ANSWER_A in prompt:
        if how == "first":
            return "The first one. [[A]]"
        a, b = (len(_between(prompt, s, e).split()) for s, e in ((P.ANSWER_A, P.END_A), (P.ANSWER_B, P.END_B)))
        return "Longer is better. " + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")
    answer = _between(prompt, P.ANSWER, P.END)
    if "[[PASS]]" in prompt.rsplit(P.END, 1)[-1]:
        ref = _between(prompt, "### Reference answer", "### End of reference answer").split(" | ")[0].removesuffix("  (any of these)")
        return "Checked. " + ("[[PASS]]" if how == "first" or (ref and _norm(ref) in _norm(answer)) else "[[FAIL]]")
    rating = 5 if how == "first" else min(10, 1 + len(answer.split()) // 2)
    return f"Rated. Rating: [[{rating}]]"


class MockBackend(Backend):
    """``mock:NAME[,seed=N,max_length=N,answer=TEXT]``; see the module docstring."""

    options = {
        "seed": Option(int, 0, "changes every number and every generated text"),
        "max_length": Option(int, 2048, "context window in tokens (what is cut is reported)", min=1),
        "answer": Option(str, None, "the text every generation returns (cut at stop strings and max_tokens)"),
        "latency": Option(float, 0.0, "seconds every batch waits before it answers (a remote model's round trip)", min=0),
        "judge": Option(str, None, "as a judge (--judge): longer (prefers the longer answer, passes an answer holding the reference), first (always the first answer), garbage (no verdict)",
                        choices=("longer", "first", "garbage")),
    }

    def __init__(self, spec: ModelSpec):
        args = self.parse_options(spec)
        self.name = spec.target
        self.seed: int = args["seed"]
        self.max_length: int = args["max_length"]
        self.answer: str | None = args["answer"]
        self.latency: float = args["latency"] or 0.0
        self.judge: str | None = args["judge"]
        self.capabilities = Capabilities(loglikelihood=True, rolling=True, generate=True, images=True, max_length=self.max_length)
        shown = {"seed": self.seed, "max_length": self.max_length, **({"answer": self.answer} if self.answer is not None else {}),
                 **({"judge": self.judge} if self.judge is not None else {})}
        self.info = ModelInfo(
            name=self.name,
            backend="mock",
            fingerprint=fingerprint(VERSION, self.name, self.seed, self.max_length, self.answer, *((self.judge,) if self.judge else ())),
            args=shown,
        )

    # -- scoring ------------------------------------------------------------------------------
    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self._wait()
        out = []
        for r in requests:
            n_cont = max(1, len(pieces(r.continuation)))
            if n_cont > self.max_length:
                raise BackendError(f"a continuation of {n_cont} tokens does not fit a {self.max_length}-token window")
            n_ctx = 1 + len(pieces(r.context))
            u = _unit("loglikelihood", self.seed, r.context, r.continuation, list(r.images))
            cut = max(0, n_ctx + n_cont - 1 - self.max_length)
            out.append(LoglikelihoodResult(n_cont * _per_token(u), u < _GREEDY, n_cont, cut))
        return out

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self._wait()
        out = []
        for r in requests:
            n = len(pieces(r.text))
            out.append(RollingResult(n * _per_token(_unit("rolling", self.seed, r.text)) if n else 0.0, n))
        return out

    # -- generation ---------------------------------------------------------------------------
    def _reply(self, r: GenerateRequest) -> list[str]:
        """The reply's tokens, before stop strings and max_tokens: all of them when the model
        ends by itself (an end-of-generation token)."""
        if self.judge is not None:
            return pieces(_judgement(self.judge, r.context))
        if self.answer is not None:
            return pieces(self.answer)
        sample = r.sampling_seed if r.temperature > 0 else None
        base = (self.seed, r.context, list(r.images), sample)
        n = 1 + int(_unit("length", *base) * 16)
        out = []
        for i in range(n):
            word = _WORDS[int(_unit("word", i, *base) * len(_WORDS))]
            sep = "\n" if i and _unit("break", i, *base) < 0.15 else " "
            out.append(sep + word)
        return out

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self._wait()
        results = []
        for r in requests:
            room = self.max_length - r.max_tokens
            if room <= 0:
                raise BackendError(f"max_tokens={r.max_tokens} does not fit the context window of {self.max_length}")
            cut = max(0, 1 + len(pieces(r.context)) - room)
            toks, finish = self._reply(r), "stop"
            if len(toks) > r.max_tokens:
                toks, finish = toks[: max(r.max_tokens, 0)], "length"
            text, stopped = trim_at_stop("".join(toks), r.until)
            n = len(toks)
            if stopped:  # the tokens up to the one that completes the stop string
                n = next(k for k in range(1, len(toks) + 1) if trim_at_stop("".join(toks[:k]), r.until)[1])
                finish = "stop"
            results.append(GenerateResult(text, n, finish, cut))
        return results
