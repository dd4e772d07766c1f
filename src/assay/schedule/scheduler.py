"""Send the requests that are not stored yet to a backend, longest first, in batches, and
commit every finished batch to the run store before asking for the next one.

``plan_batches`` decides the batches; ``execute`` computes them in this process, one after the
other. ``raypool`` sends the same batches to Ray actors instead (``--executor ray``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from assay.backends.base import Backend
from assay.requests import LoglikelihoodRequest, Request, Result, request_length
from assay.schedule.worker import worker_facts
from assay.store.runs import RunStore

Progress = Callable[[int], None]


@dataclass
class Stats:
    total: int = 0
    computed: int = 0
    seconds: float = 0.0
    spans: dict[str, tuple[int, float, float]] = field(default_factory=dict, repr=False)  # kind -> (n, first start, last end)

    def add(self, kind: str, n: int, t0: float, t1: float) -> None:
        """``n`` requests of ``kind`` computed between ``t0`` and ``t1``."""
        m, a, b = self.spans.get(kind, (0, t0, t1))
        self.spans[kind] = (m + n, min(a, t0), max(b, t1))

    @property
    def by_kind(self) -> dict[str, tuple[int, float]]:
        """kind -> (requests, seconds from its first batch's start to its last one's end;
        batches on several workers overlap)."""
        return {k: (n, b - a) for k, (n, a, b) in self.spans.items()}

    @property
    def rate(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def pending(store: RunStore, model_fp: str, requests: dict[str, Request]) -> dict[str, Request]:
    missing = store.missing(model_fp, requests)
    return {k: requests[k] for k in requests if k in missing}


def _order(req: Request, key: str) -> tuple:
    """Longest first; log-likelihood requests with the same context side by side, so that a
    backend scoring a shared context once sees all of its continuations together."""
    if isinstance(req, LoglikelihoodRequest):
        return (-len(req.context), req.context, req.images, -len(req.continuation), key)
    return (-request_length(req), "", (), 0, key)


def _batches(items: list[tuple[str, Request]], size: int) -> Iterator[list[tuple[str, Request]]]:
    """Batches of ``size`` requests, each extended to the end of its last context's group
    (never more than twice ``size``), so the choices of one item are scored together."""
    i = 0
    while i < len(items):
        j = min(i + size, len(items))
        last = items[j - 1][1]
        if isinstance(last, LoglikelihoodRequest):
            while j < len(items) and j < i + 2 * size and _same_context(items[j][1], last):
                j += 1
        yield items[i:j]
        i = j


def _same_context(a: Request, b: LoglikelihoodRequest) -> bool:
    return isinstance(a, LoglikelihoodRequest) and a.context == b.context and a.images == b.images


def plan_batches(todo: dict[str, Request], batch_size: int) -> list[tuple[str, list[tuple[str, Request]]]]:
    """The batches ``todo`` is computed in, as (kind, [(key, request)]): log-likelihoods, then
    rolling, then generation; longest first within a kind; an item's choices in one batch.
    Every executor sends the same batches, so scores cannot depend on where they ran."""
    kinds: dict[str, list[tuple[str, Request]]] = {}
    for key, req in todo.items():
        kinds.setdefault(req.kind, []).append((key, req))
    out: list[tuple[str, list[tuple[str, Request]]]] = []
    for kind in KINDS:
        items = sorted(kinds.get(kind, []), key=lambda kr: _order(kr[1], kr[0]))
        out.extend((kind, batch) for batch in _batches(items, batch_size))
    return out


KINDS = ("loglikelihood", "rolling", "generate")


def call(backend: Backend, kind: str, requests: list[Request]) -> Sequence[Result]:
    """One batch through the backend method of its kind, checked for a result per request."""
    method: dict[str, Callable[[list], Sequence[Result]]] = {
        "loglikelihood": backend.loglikelihood,
        "rolling": backend.loglikelihood_rolling,
        "generate": backend.generate,
    }
    results = method[kind](requests)
    if len(results) != len(requests):
        raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
    return results


def new_session() -> str:
    return uuid.uuid4().hex[:12]


class Commit:
    """Where finished batches go, whichever executor computed them: the run store (responses
    and compute-log rows of the batch's session in one transaction, and the first time a
    session is seen, where it ran as ``worker:<session>``), then ``on_batch``, the stats and
    the progress."""

    def __init__(self, store: RunStore, model_fp: str, total: int, advance: Progress | None = None,
                 on_batch: Callable[[list[tuple[str, Request, Result]]], None] | None = None):
        self.store, self.model_fp, self.advance, self.on_batch = store, model_fp, advance, on_batch
        self.stats = Stats(total=total)
        self.sessions: set[str] = set()
        self.start = time.perf_counter()

    def __call__(self, kind: str, batch: list[tuple[str, Request]], results: Sequence[Result], session: str, worker: dict, t0: float) -> None:
        if session not in self.sessions:
            self.store.set_meta(f"worker:{session}", worker)
            self.sessions.add(session)
        done = [(k, r, res) for (k, r), res in zip(batch, results)]
        self.store.put_results(self.model_fp, done, session)
        if self.on_batch is not None:
            self.on_batch(done)
        self.stats.computed += len(batch)
        self.stats.add(kind, len(batch), t0, time.perf_counter())
        if self.advance:
            self.advance(len(batch))

    def finish(self) -> Stats:
        self.stats.seconds = time.perf_counter() - self.start
        return self.stats


def execute(
    backend: Backend,
    store: RunStore,
    model_fp: str,
    todo: dict[str, Request],
    batch_size: int,
    advance: Progress | None = None,
    on_batch: Callable[[list[tuple[str, Request, Result]]], None] | None = None,
) -> Stats:
    """Compute ``todo`` (request key → request) in this process and store each batch as it
    finishes; ``on_batch`` then sees the committed batch (the shared response cache takes
    it). The compute log names the session, and ``worker:<session>`` in the store's meta says
    where it ran."""
    commit = Commit(store, model_fp, len(todo), advance, on_batch)
    session, worker = new_session(), worker_facts(backend)
    for kind, batch in plan_batches(todo, batch_size):
        t0 = time.perf_counter()
        commit(kind, batch, call(backend, kind, [r for _, r in batch]), session, worker, t0)
    return commit.finish()
