"""The deterministic ``mock`` backend: every request kind, the same answer every time, and
nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_cli

from assay.backends.mock import MockBackend
from assay.backends.registry import BACKEND_INFO, BACKENDS, load_backend, parse_model
from assay.errors import BackendError, ConfigError
from assay.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest


def mock(text: str = "mock:m1") -> MockBackend:
    b = load_backend(parse_model(text))
    assert isinstance(b, MockBackend)
    return b


def test_registered_with_its_label_and_capabilities():
    assert "mock" in BACKENDS and "mock" in BACKEND_INFO
    spec = parse_model("mock:m1,seed=1")
    assert (spec.backend, spec.target, spec.label) == ("mock", "m1", "m1")
    caps = mock().capabilities
    assert caps.loglikelihood and caps.rolling and caps.generate and caps.images


def test_fingerprint_depends_on_name_and_seed():
    fps = {mock(t).info.fingerprint for t in ("mock:m1", "mock:m2", "mock:m1,seed=1")}
    assert len(fps) == 3
    assert mock("mock:m1,seed=0").info.fingerprint == mock("mock:m1").info.fingerprint
    assert mock("mock:m1,answer=x").info.fingerprint != mock("mock:m1").info.fingerprint
    assert mock().info.name == "m1" and mock().info.backend == "mock"


def test_latency_waits_per_batch_and_changes_no_number():
    import time

    slow, fast = mock("mock:m1,latency=0.3"), mock()
    assert slow.info.fingerprint == fast.info.fingerprint
    reqs = [LoglikelihoodRequest("Q:", " a"), LoglikelihoodRequest("Q:", " b")]
    t0 = time.perf_counter()
    assert slow.loglikelihood(reqs) == fast.loglikelihood(reqs)
    assert time.perf_counter() - t0 >= 0.3  # once for the batch, not per request
    with pytest.raises(ConfigError):
        mock("mock:m1,latency=-1")


def test_loglikelihood_is_a_deterministic_function_of_the_request():
    reqs = [LoglikelihoodRequest("The sky is", f" {w}") for w in ("blue", "green", "red", "very dark blue")]
    a, b = mock().loglikelihood(reqs), mock().loglikelihood(list(reversed(reqs)))
    assert a == list(reversed(b))  # neither order nor batch changes a result
    assert len({r.logprob for r in a}) == 4 and all(r.logprob < 0 for r in a)
    assert [r.n_tokens for r in a] == [1, 1, 1, 3]
    assert a != mock("mock:m1,seed=1").loglikelihood(reqs)
    # greedy flags are part of the result and as deterministic as the numbers
    many = mock().loglikelihood([LoglikelihoodRequest("q", f" {i}") for i in range(200)])
    assert many == mock().loglikelihood([LoglikelihoodRequest("q", f" {i}") for i in range(200)])
    assert 0 < sum(r.is_greedy for r in many) < 200
    # images enter the hash
    img = mock().loglikelihood([LoglikelihoodRequest("<image> is", " a cat", images=("sha256:abc",))])
    assert img != mock().loglikelihood([LoglikelihoodRequest("<image> is", " a cat")])


def test_a_context_longer_than_the_window_is_reported_as_cut():
    (r,) = mock("mock:m,max_length=4").loglikelihood([LoglikelihoodRequest("a b c d e", " f")])
    assert r.truncated == 2  # BOS + 5 words + 1 continuation token, less the last (predicted) one: 6 > 4
    with pytest.raises(BackendError, match="does not fit"):
        mock("mock:m,max_length=2").loglikelihood([LoglikelihoodRequest("a", " b c d")])


def test_rolling():
    rs = mock().loglikelihood_rolling([RollingRequest("one two three"), RollingRequest("")])
    assert rs[0].n_tokens == 3 and rs[0].logprob < 0
    assert (rs[1].logprob, rs[1].n_tokens) == (0.0, 0)
    assert rs == mock().loglikelihood_rolling([RollingRequest("one two three"), RollingRequest("")])


def test_generate_honours_stop_strings_and_max_tokens():
    b = mock("mock:m,answer=The answer is 42.\nNext question")
    (whole,) = b.generate([GenerateRequest("Q?", max_tokens=50)])
    assert (whole.text, whole.n_tokens, whole.finish_reason) == ("The answer is 42.\nNext question", 6, "stop")
    (stopped,) = b.generate([GenerateRequest("Q?", until=("\n",), max_tokens=50)])
    assert (stopped.text, stopped.n_tokens, stopped.finish_reason) == ("The answer is 42.", 5, "stop")
    (short,) = b.generate([GenerateRequest("Q?", max_tokens=2)])
    assert (short.text, short.n_tokens, short.finish_reason) == ("The answer", 2, "length")


def test_generated_text_is_deterministic_and_depends_on_the_sample():
    b = mock()
    greedy = [GenerateRequest(f"Question {i}:", max_tokens=64) for i in range(20)]
    out = b.generate(greedy)
    assert out == mock().generate(greedy) and len({r.text for r in out}) > 10
    assert all(r.finish_reason == "stop" and 1 <= r.n_tokens <= 16 for r in out)
    samples = b.generate([GenerateRequest("Q:", max_tokens=64, temperature=0.8, sample_index=i) for i in range(8)])
    assert len({r.text for r in samples}) > 1
    for r, _req in zip(b.generate([GenerateRequest(f"Q {i}", until=("\n",), max_tokens=3) for i in range(40)]), range(40)):
        assert "\n" not in r.text and r.n_tokens <= 3


def test_bad_arguments():
    with pytest.raises(ConfigError, match=r"unknown mock argument 'sede'\. Did you mean: seed\?"):
        mock("mock:m,sede=1")
    with pytest.raises(ConfigError, match="seed must be a whole number, not 'x'"):
        mock("mock:m,seed=x")


def test_loads_without_torch_or_llama_cpp():
    code = (
        "import sys\n"
        "from assay.backends.registry import load_backend, parse_model\n"
        "load_backend(parse_model('mock:m,seed=3'))\n"
        "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'httpx', 'vllm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_dry_run_from_the_command_line(tmp_path, data_dir):
    out = tmp_path / "run"
    proc = run_cli("run", "-m", "mock:m1", "-t", "core", "--limit", "2", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert (out / "store.sqlite").is_file() and "m1" in (out / "report.md").read_text()
