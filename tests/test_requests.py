"""Tests for assay.requests (request kinds, stable keys, result serialisation)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.requests import (
    KEY_VERSION,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
    canonical_json,
    request_key,
    request_length,
    result_from_json,
    result_to_json,
)

LL = LoglikelihoodRequest("The capital of France is", " Paris")
ROLL = RollingRequest("some text to score")
GEN = GenerateRequest("Q: 2+2?\nA:", until=("\n",), max_tokens=8)


@pytest.mark.parametrize("req", [LL, ROLL, GEN])
def test_key_format(req):
    key = request_key(req)
    assert key.startswith(f"{KEY_VERSION}:")
    digest = key.split(":", 1)[1]
    assert len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)


def test_equal_requests_equal_keys():
    assert request_key(LoglikelihoodRequest("a", " b")) == request_key(LoglikelihoodRequest("a", " b"))
    assert request_key(RollingRequest("x")) == request_key(RollingRequest("x"))
    assert request_key(GenerateRequest("c", until=("a", "b"))) == request_key(GenerateRequest("c", until=("a", "b")))


def test_key_stable_across_processes():
    code = (
        "from assay.requests import GenerateRequest, request_key;"
        "print(request_key(GenerateRequest('Q: 2+2?\\nA:', until=('\\n',), max_tokens=8)))"
    )
    # a fresh interpreter with a different hash seed must produce the same key
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.strip()
    assert out == request_key(GEN)


GEN_CHANGES = {
    "context": "other",
    "until": ("\n", "Q:"),
    "max_tokens": 9,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 40,
    "repetition_penalty": 1.1,
    "seed": 1,
    "sample_index": 1,
    "special": True,
    "until_ids": (32000,),
    "images": ("img:0123",),
}


def test_generate_key_changes_with_every_field():
    fields = {f.name for f in dataclasses.fields(GenerateRequest) if f.init}
    assert fields == set(GEN_CHANGES), "update GEN_CHANGES for the new field"
    base = request_key(GEN)
    keys = {base}
    for name, value in GEN_CHANGES.items():
        key = request_key(dataclasses.replace(GEN, **{name: value}))
        assert key != base, name
        keys.add(key)
    assert len(keys) == len(GEN_CHANGES) + 1


def test_loglikelihood_key_changes_with_every_field():
    base = request_key(LL)
    assert request_key(dataclasses.replace(LL, context="The capital of Italy is")) != base
    assert request_key(dataclasses.replace(LL, continuation=" Rome")) != base
    assert request_key(dataclasses.replace(LL, special=True)) != base


def test_kinds_never_share_keys():
    assert request_key(RollingRequest("abc")) != request_key(GenerateRequest("abc"))
    assert request_key(LoglikelihoodRequest("abc", "")) != request_key(GenerateRequest("abc"))


def test_key_depends_on_the_split_point():
    # the same concatenated text split differently is a different request
    assert request_key(LoglikelihoodRequest("ab", "c")) != request_key(LoglikelihoodRequest("a", "bc"))


def test_until_order_and_tuple_vs_list():
    a = GenerateRequest("c", until=("x", "y"))
    b = GenerateRequest("c", until=("y", "x"))
    assert request_key(a) != request_key(b)
    assert request_key(GenerateRequest("c", until=["x", "y"])) == request_key(a)  # JSON makes both lists


def test_requests_are_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LL.context = "x"  # type: ignore[misc]
    assert len({LL, LoglikelihoodRequest(LL.context, LL.continuation), ROLL}) == 2
    assert LL.kind == "loglikelihood" and ROLL.kind == "rolling" and GEN.kind == "generate"


def test_canonical_json():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


@pytest.mark.parametrize(
    ("kind", "res"),
    [
        ("loglikelihood", LoglikelihoodResult(-12.25, True, 3)),
        ("loglikelihood", LoglikelihoodResult(-0.1, False, 1)),
        ("rolling", RollingResult(-1234.5678, 400)),
        ("generate", GenerateResult("4\nand ünïcode ✓", 5, "stop")),
        ("generate", GenerateResult("", 0, "length")),
    ],
)
def test_result_round_trip(kind, res):
    payload = result_to_json(res)
    json.loads(payload)  # valid JSON
    back = result_from_json(kind, payload)
    assert back == res
    assert type(back) is type(res)


def test_result_of_wrong_kind_fails():
    with pytest.raises(TypeError):
        result_from_json("rolling", result_to_json(GenerateResult("x", 1, "stop")))


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite, st.booleans(), st.integers(min_value=0, max_value=10**6))
def test_loglikelihood_result_round_trip_property(lp, greedy, n):
    res = LoglikelihoodResult(lp, greedy, n)
    assert result_from_json("loglikelihood", result_to_json(res)) == res


@given(finite, st.integers(min_value=0, max_value=10**6))
def test_rolling_result_round_trip_property(lp, n):
    res = RollingResult(lp, n)
    assert result_from_json("rolling", result_to_json(res)) == res


@given(st.text(), st.integers(min_value=0), st.sampled_from(["stop", "length"]))
def test_generate_result_round_trip_property(text, n, reason):
    res = GenerateResult(text, n, reason)
    assert result_from_json("generate", result_to_json(res)) == res


def test_negative_infinity_logprob_round_trips():
    res = LoglikelihoodResult(-math.inf, False, 2)
    assert result_from_json("loglikelihood", result_to_json(res)) == res


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), min_size=2, max_size=12, unique=True))
def test_distinct_pairs_distinct_keys(pairs):
    keys = {request_key(LoglikelihoodRequest(c, x)) for c, x in pairs}
    assert len(keys) == len(pairs)


@given(st.text(max_size=30), st.text(max_size=30))
def test_key_is_a_function_of_the_pair(context, continuation):
    assert request_key(LoglikelihoodRequest(context, continuation)) == request_key(
        LoglikelihoodRequest(str(context), str(continuation))
    )


def test_request_length():
    assert request_length(LoglikelihoodRequest("abc", " de")) == 6
    assert request_length(RollingRequest("hello")) == 5
    assert request_length(GenerateRequest("ab", max_tokens=10)) == 42


def test_text_only_keys_are_the_ones_stored_before_images_existed():
    # keys computed with the request module of commit c72e1cf (before the `images` field)
    assert request_key(LoglikelihoodRequest("Question: 2+2?\nAnswer:", " 4")) == "r1:0e57a6b842d6a18060f500d57670b0f9"
    g = GenerateRequest("Say hi", ("\n",), 16, 0.7, 0.9, 40, 1.1, 3, 2, True, (7,))
    assert request_key(g) == "r1:500de3036e8a54b1a4f90746e07359cd"


def test_images_are_part_of_the_key():
    base = LoglikelihoodRequest("<image>Caption:", " a red circle")
    a = LoglikelihoodRequest("<image>Caption:", " a red circle", images=("img:aa",))
    b = LoglikelihoodRequest("<image>Caption:", " a red circle", images=("img:bb",))
    assert len({request_key(base), request_key(a), request_key(b)}) == 3
    assert request_key(a) == request_key(LoglikelihoodRequest("<image>Caption:", " a red circle", images=("img:aa",)))
