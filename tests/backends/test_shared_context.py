"""Shared-context scoring (one pass over a context, its cache copied to every continuation)
gives the plain path's numbers: the embedded SmolLM2 through `hf` on real items of
HellaSwag, ARC-Challenge, XCOPA and MMLU (0- and 5-shot), built exactly as `assay run` builds them."""

from __future__ import annotations

import pytest

from assay.backends.registry import load_backend, parse_model
from assay.config import RunConfig
from assay.pipeline import register_model as _register_model
from assay.plan import plan_tasks
from assay.reports.terminal import UI
from assay.requests import LoglikelihoodRequest, request_key
from assay.schedule.scheduler import execute
from assay.store.runs import RunStore

TASKS = {"hellaswag": 80, "arc_challenge": 70, "xcopa_it": 50, "mmlu_anatomy": 50, "mmlu_anatomy_5shot": 8}


def _requests(backend, tmp_path, tasks=None):
    """(request key → request) and the items: (keys of the choices, gold index)."""
    items, requests = [], {}
    for task, n in (tasks or TASKS).items():
        cfg = RunConfig(models=("x",), tasks=(task,), limit=n, prompts=("lmeval",))
        plans = plan_tasks(cfg)
        store = RunStore(tmp_path / f"plan-{task}")
        try:
            requests.update(_register_model(store, "x", backend, plans, cfg, UI(quiet=True)))
            for _, _, data, keys in store.instances("x", task):
                items.append((keys, data["target"]))
        finally:
            store.close()
    return requests, items


def _run(backend, requests, batch_size, folder):
    store = RunStore(folder)
    try:
        execute(backend, store, backend.info.fingerprint, requests, batch_size)
        return store.results(backend.info.fingerprint, list(requests))
    finally:
        store.close()


def _both_paths(shared, plain_model: str, tmp_path, tasks=None):
    """The same real requests through the shared path (batch 64) and a plain backend loaded
    from ``plain_model`` (batch 16): (requests, items, shared results, plain results)."""
    assert shared.share_context
    plain = load_backend(parse_model(plain_model))
    try:
        requests, items = _requests(shared, tmp_path, tasks)
        assert len(items) == sum((tasks or TASKS).values())
        fast = _run(shared, requests, 64, tmp_path / "shared")
        slow = _run(plain, requests, 16, tmp_path / "plain")
    finally:
        plain.close()
    return requests, items, fast, slow


@pytest.mark.hf
@pytest.mark.slow
def test_shared_context_scores_equal_the_plain_path_on_real_items(smollm2_hf, data_dir, tmp_path):
    requests, items, fast, slow = _both_paths(smollm2_hf, "hf:smollm2-135m-instruct,share_context=false", tmp_path)
    assert len(requests) > 800
    # the choices of an item share their context: the case the shared path exists for
    assert sum(1 for keys, _ in items if len({requests[k].context for k in keys}) == 1) == len(items)
    diffs = [abs(fast[k].logprob - slow[k].logprob) for k in requests]
    assert max(diffs) < 1e-4, sorted(diffs)[-5:]
    assert all(fast[k].is_greedy == slow[k].is_greedy and fast[k].n_tokens == slow[k].n_tokens for k in requests)
    for keys, _ in items:
        pick = lambda res, keys=keys: max(range(len(keys)), key=lambda i: res[keys[i]].logprob)  # noqa: E731
        assert pick(fast) == pick(slow)
    # multi-token continuations are most of HellaSwag's and ARC's requests
    multi = [k for k, r in requests.items() if isinstance(r, LoglikelihoodRequest) and fast[k].n_tokens > 1]
    assert len(multi) > 400
    assert all(request_key(requests[k]) == k for k in multi[:5])


LLAMA_TASKS = {"hellaswag": 30, "arc_challenge": 30, "mmlu_anatomy": 30}


@pytest.mark.llamacpp
@pytest.mark.slow
def test_llamacpp_shared_context_is_bit_identical_to_the_plain_path(smollm2_llamacpp, data_dir, tmp_path):
    requests, items, fast, slow = _both_paths(smollm2_llamacpp, "smollm2-135m-instruct,share_context=false", tmp_path, LLAMA_TASKS)
    # llama.cpp's numbers depend on how a sequence is cut into decode calls; both paths cut it
    # the same way (context, then continuation), so they agree exactly, not just closely
    assert all(fast[k].logprob == slow[k].logprob and fast[k].is_greedy == slow[k].is_greedy for k in requests)
