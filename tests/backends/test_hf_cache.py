"""The hf backend hands key/value caches to transformers under the name the installed release
takes (``cache`` in transformers 5; ``past_key_values`` before), so scoring and generation
print no FutureWarning, and the paths that reuse a cache give the numbers of the paths that
do not (a cache passed under a name the model ignores would change every score)."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("transformers")

from assay.backends import hf  # noqa: E402
from assay.backends.registry import load_backend, parse_model  # noqa: E402
from assay.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest  # noqa: E402

# a few-shot-like prefix longer than the 32 tokens greedy generation shares between rows
LONG = " ".join(["Hello how are you today ? What is 2 + 3 ."] * 5)
SCORE = [
    *(LoglikelihoodRequest("Hello how are", c) for c in (" you today", " you", " today is 2 + 3", " What")),
    LoglikelihoodRequest("Q : What is", " 4 5 1"),
    LoglikelihoodRequest(LONG, " A"),
    LoglikelihoodRequest(LONG, " Answer is 4 5"),
]
GREEDY = [GenerateRequest(LONG + " Q", max_tokens=7), GenerateRequest(LONG + " A :", max_tokens=7), GenerateRequest(LONG + " Hi", max_tokens=7, until=("w0",))]
SAMPLED = [GenerateRequest("Hello how are you", max_tokens=6, temperature=0.8, seed=3)]


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from llama_layout import tiny_llama

    folder = tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    shared = load_backend(parse_model(f"hf:{folder}"))
    plain = load_backend(parse_model(f"hf:{folder},share_context=false"))
    yield shared, plain
    shared.close()
    plain.close()


@pytest.mark.hf
def test_scoring_and_generation_emit_no_future_warning_and_keep_their_numbers(backends):
    shared, plain = backends
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        cached = shared.loglikelihood(SCORE)  # one pass per context, its cache read by each continuation
        fast = shared.generate(GREEDY)  # assay's greedy loop: a shared prefix's cache, rows leaving the batch
        sampled = shared.generate(SAMPLED)  # transformers' generate
        rolling = shared.loglikelihood_rolling([RollingRequest(LONG)])
        full = plain.loglikelihood(SCORE)  # one full pass per request, no cache
        reference = plain.generate(GREEDY)  # transformers' generate
    assert [r.n_tokens for r in cached] == [r.n_tokens for r in full]
    assert max(abs(a.logprob - b.logprob) for a, b in zip(cached, full)) < 1e-4
    assert [a.is_greedy for a in cached] == [b.is_greedy for b in full]
    assert [r.text for r in fast] == [r.text for r in reference]
    assert sampled[0].text and rolling[0].logprob < 0


class _Current:
    def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs): ...


class _Legacy:  # transformers before the rename, and remote code written for it
    def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs): ...


class _Wrapper:  # PEFT: keywords pass through to the wrapped model
    def __init__(self, inner):
        self.inner = inner

    def forward(self, input_ids=None, **kwargs): ...

    def get_base_model(self):
        return self.inner


def test_the_cache_goes_by_the_name_the_model_takes():
    c = object()
    assert hf._pass_cache(_Current(), c) == {"cache": c, "use_cache": True}
    assert hf._pass_cache(_Legacy(), c) == {"past_key_values": c, "use_cache": True}
    assert hf._pass_cache(_Wrapper(_Legacy()), c) == {"past_key_values": c, "use_cache": True}
    assert hf._returned_cache({"logits": 1, "cache": c}) is c
    assert hf._returned_cache({"logits": 1, "past_key_values": c}) is c
