"""The scheduler (assay.schedule.scheduler) over the deterministic mock backend: the order of
batches, contexts kept together, a commit after every batch, and resuming what is missing."""

from __future__ import annotations

import random

import pytest

from assay.backends.base import Backend
from assay.backends.registry import load_backend, parse_model
from assay.requests import (
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    RollingRequest,
    request_key,
    request_length,
)
from assay.schedule.scheduler import execute, pending
from assay.store.runs import RunStore


class Recording(Backend):
    """The mock backend, with every batch it is sent recorded; ``fail_at`` makes that call
    (1-based, counting every batch of every kind) raise instead of answering."""

    def __init__(self, fail_at: int | None = None, model: str = "mock:m1,seed=7"):
        self.inner = load_backend(parse_model(model))
        self.info, self.capabilities = self.inner.info, self.inner.capabilities
        self.batches: list[tuple[str, list[Request]]] = []
        self.fail_at = fail_at

    def _call(self, kind: str, requests):
        self.batches.append((kind, list(requests)))
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            raise RuntimeError(f"batch {self.fail_at} fails")
        return getattr(self.inner, kind)(requests)

    def loglikelihood(self, requests):
        return self._call("loglikelihood", requests)

    def loglikelihood_rolling(self, requests):
        return self._call("loglikelihood_rolling", requests)

    def generate(self, requests):
        return self._call("generate", requests)


def _mc_items(n_items: int, n_choices: int, seed: int = 0) -> list[Request]:
    """Multiple-choice items: each context with its continuations, contexts of distinct
    lengths so that "longest first" has one answer."""
    rng = random.Random(seed)
    out: list[Request] = []
    for i in range(n_items):
        context = f"Question {i}: " + "word " * rng.randrange(1, 40) + "x" * i + "\nAnswer:"
        out += [LoglikelihoodRequest(context, f" choice {c}{'!' * c}") for c in range(n_choices)]
    return out


def _todo(reqs: list[Request], seed: int = 1) -> dict[str, Request]:
    items = [(request_key(r), r) for r in reqs]
    random.Random(seed).shuffle(items)  # the scheduler must not depend on the order it gets
    return dict(items)


def _mixed() -> list[Request]:
    return (
        _mc_items(6, 3)
        + [RollingRequest("text " * n) for n in (3, 17, 9, 30, 1)]
        + [GenerateRequest(f"Q{n}: " + "w " * n, until=("\n",), max_tokens=8 * (n % 3 + 1)) for n in range(7)]
    )


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run")
    yield s
    s.close()


def test_batches_go_longest_first_kind_by_kind(store):
    backend = Recording()
    todo = _todo(_mixed())
    ticks: list[int] = []
    stats = execute(backend, store, backend.info.fingerprint, todo, batch_size=4, advance=ticks.append)
    kinds = [k for k, _ in backend.batches]
    assert kinds == sorted(kinds, key=["loglikelihood", "loglikelihood_rolling", "generate"].index)
    for kind in ("loglikelihood", "loglikelihood_rolling", "generate"):
        sent = [r for k, batch in backend.batches if k == kind for r in batch]
        if kind == "loglikelihood":
            lengths = [len(r.context) for r in sent]  # contexts longest first, choices after
        else:
            lengths = [request_length(r) for r in sent]
        assert lengths == sorted(lengths, reverse=True), kind
        assert len(sent) == len({request_key(r) for r in sent})
    assert sum(ticks) == stats.computed == stats.total == len(todo)
    assert set(stats.by_kind) == {"loglikelihood", "rolling", "generate"}
    # the first batch holds the longest context
    first_kind, first = backend.batches[0]
    longest = max((r for r in todo.values() if isinstance(r, LoglikelihoodRequest)), key=lambda r: len(r.context))
    assert first_kind == "loglikelihood" and len(first[0].context) == len(longest.context)


def test_choices_of_one_context_share_a_batch(store):
    backend = Recording()
    todo = _todo(_mc_items(7, 3))
    execute(backend, store, backend.info.fingerprint, todo, batch_size=2)
    batch_of: dict[str, set[int]] = {}
    for n, (_, batch) in enumerate(backend.batches):
        assert 2 <= len(batch) <= 4  # a batch is extended to its context's end, never past twice its size
        for r in batch:
            batch_of.setdefault(r.context, set()).add(n)
        # within a batch, the continuations of a context sit side by side
        contexts = [r.context for r in batch]
        assert contexts == sorted(contexts, key=contexts.index)
    assert len(batch_of) == 7 and all(len(b) == 1 for b in batch_of.values()), batch_of


def test_each_batch_is_committed_before_the_next_is_asked_for(tmp_path):
    todo = _todo(_mixed())
    store = RunStore(tmp_path / "run")
    backend = Recording(fail_at=3)
    fp = backend.info.fingerprint
    with pytest.raises(RuntimeError, match="batch 3 fails"):
        execute(backend, store, fp, todo, batch_size=4)
    store.close()
    # a new connection sees what was committed: the first two batches, nothing else
    again = RunStore(tmp_path / "run")
    done = {request_key(r) for _, batch in backend.batches[:2] for r in batch}
    assert len(done) == sum(len(b) for _, b in backend.batches[:2]) > 0
    assert set(again.results(fp, todo)) == done
    assert again.missing(fp, todo) == set(todo) - done
    assert set(again.compute_counts().values()) == {1} and len(again.compute_counts()) == len(done)
    again.close()


def test_resume_computes_only_what_is_missing_and_ends_where_an_uninterrupted_run_does(tmp_path):
    todo = _todo(_mixed())
    fp = Recording().info.fingerprint

    whole = RunStore(tmp_path / "whole")
    execute(Recording(), whole, fp, todo, batch_size=4)
    expected = whole.results(fp, todo)
    assert len(expected) == len(todo)

    store = RunStore(tmp_path / "resumed")
    with pytest.raises(RuntimeError):
        execute(Recording(fail_at=3), store, fp, todo, batch_size=4)
    left = pending(store, fp, todo)
    assert 0 < len(left) < len(todo) and set(left) == store.missing(fp, todo)
    assert list(left) == [k for k in todo if k in left]  # pending keeps the caller's order

    second = Recording()
    stats = execute(second, store, fp, left, batch_size=4)
    sent = [request_key(r) for _, batch in second.batches for r in batch]
    assert sorted(sent) == sorted(left) and stats.computed == len(left)
    assert store.results(fp, todo) == expected
    assert set(store.compute_counts().values()) == {1} and len(store.compute_counts()) == len(todo)
    assert pending(store, fp, todo) == {}
    # nothing left: a third pass asks the backend for nothing
    third = Recording()
    assert execute(third, store, fp, pending(store, fp, todo), batch_size=4).computed == 0 and third.batches == []
    whole.close()
    store.close()


def test_a_backend_that_loses_results_stops_the_run(store):
    class Short(Recording):
        def generate(self, requests):
            return super().generate(requests)[:-1]

    backend = Short()
    todo = _todo([GenerateRequest(f"q{i}") for i in range(3)])
    with pytest.raises(RuntimeError, match="returned 2 results for 3 requests"):
        execute(backend, store, backend.info.fingerprint, todo, batch_size=8)
    assert store.results(backend.info.fingerprint, todo) == {}
