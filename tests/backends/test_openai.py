"""The ``openai`` backend: HTTP behaviour against ``httpx.MockTransport`` servers, and scores
against a real llama-cpp-python server on loopback serving the embedded SmolLM2."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install 'assay[openai]')")

from assay.backends.openai import OpenAIBackend  # noqa: E402
from assay.backends.registry import parse_model  # noqa: E402
from assay.errors import BackendError, ConfigError  # noqa: E402
from assay.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest  # noqa: E402

BASE = "http://fake.test/v1"


# -- a small fake OpenAI server ------------------------------------------------------------------
def _lp(tok: str) -> float:
    return -0.25 * len(tok.strip())


def _echo_answer(prompt: str, with_logprobs: bool = True, late: bool = False) -> dict:
    """Tokens are words with their leading spaces; a word containing 'x' is not the argmax. A
    ``late`` server reports at each token the distribution of the next position, whose top-1 is
    the next token (as llama-cpp-python's server does for a GGUF without BOS)."""
    toks = re.findall(r"\s*\S+|\s+$", prompt) + ["!"]
    offsets, pos = [], 0
    for t in toks:
        offsets.append(pos)
        pos += len(t)
    values = [None] + [_lp(t) for t in toks[1:]]
    tops = [None] + [({"other": 0.0, t: _lp(t)} if "x" in t else {t: _lp(t)}) for t in toks[1:]]
    if late:
        tops = [None] + [{nxt: 0.0, t: _lp(t) - 1.0} for t, nxt in zip(toks[1:], toks[2:] + ["?"])]
    choice: dict = {"text": prompt + "!", "index": 0, "finish_reason": "length"}
    choice["logprobs"] = {"tokens": toks, "text_offset": offsets, "token_logprobs": values, "top_logprobs": tops} if with_logprobs else None
    return {"choices": [choice], "usage": {"prompt_tokens": len(toks) - 1, "completion_tokens": 1}}


class Fake:
    """``failures`` answer the scored and generated requests (not GET /models nor the start-up
    probe) first, one each; ``refuse`` refuses every connection, as a server that is down."""

    def __init__(self, logprobs: bool = True, failures: list[httpx.Response | Exception] | None = None, delay: float = 0.0, late: bool = False,
                 models: tuple[str, ...] = ("fake-model",), refuse: bool = False):
        self.logprobs, self.failures, self.delay, self.late = logprobs, list(failures or []), delay, late
        self.models, self.refuse = models, refuse
        self.seen: list[httpx.Request] = []
        self.in_flight = self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.refuse:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        self.seen.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if request.url.path.endswith("/models"):
                return httpx.Response(200, json={"data": [{"id": m} for m in self.models]})
            body = json.loads(request.content)
            if self.failures and body.get("prompt") != "x" and not str(body.get("prompt", "")).startswith("The capital"):
                f = self.failures.pop(0)
                if isinstance(f, Exception):
                    raise f
                return f
            if request.url.path.endswith("/completions") and body.get("echo"):
                return httpx.Response(200, json=_echo_answer(body["prompt"], self.logprobs, self.late))
            if request.url.path.endswith("/chat/completions"):
                text = "chat:" + body["messages"][0]["content"]
                return httpx.Response(200, json={"choices": [{"message": {"content": text}, "finish_reason": "stop"}], "usage": {"completion_tokens": 2}})
            return httpx.Response(200, json={"choices": [{"text": body["prompt"].upper() + " STOP more", "finish_reason": "length"}], "usage": {"completion_tokens": 3}})
        finally:
            self.in_flight -= 1


def _backend(fake: Fake, extra: str = "") -> OpenAIBackend:
    return OpenAIBackend(parse_model(f"openai:fake,base_url={BASE},backoff=0.01{extra}"), transport=httpx.MockTransport(fake))


# -- unit tests ----------------------------------------------------------------------------------
def test_loglikelihood_sums_continuation_tokens_and_moves_trailing_spaces():
    b = _backend(Fake())
    a, c, e = b.loglikelihood([
        LoglikelihoodRequest("The cat sat", " on mat"),
        LoglikelihoodRequest("The cat sat ", "on xmat"),  # trailing space moves to the continuation
        LoglikelihoodRequest("The cat", "s"),  # merges into the context's last word
    ])
    assert (a.logprob, a.is_greedy, a.n_tokens) == (pytest.approx(-0.25 * 5), True, 2)
    assert (c.logprob, c.is_greedy, c.n_tokens) == (pytest.approx(-0.25 * 6), False, 2)
    assert (e.logprob, e.n_tokens) == (pytest.approx(-0.25 * 4), 1)
    (r,) = b.loglikelihood_rolling([RollingRequest("one two three")])
    assert (r.logprob, r.n_tokens) == (pytest.approx(-0.25 * 8), 2)  # the first token has no score


def test_server_without_prompt_logprobs_is_detected_before_any_work():
    b = _backend(Fake(logprobs=False))
    assert not b.capabilities.loglikelihood and not b.capabilities.rolling and b.capabilities.generate
    with pytest.raises(BackendError, match=r"does not return prompt log-probabilities \(echo\+logprobs\); log-likelihood tasks need them"):
        b.loglikelihood([LoglikelihoodRequest("a", " b")])


def test_echo_logprobs_one_position_late_are_detected_and_refused_in_one_line():
    ok = _backend(Fake())
    assert ok.capabilities.loglikelihood and ok.info.args["echo_logprobs"] == "aligned"
    b = _backend(Fake(late=True))
    assert b.info.args["echo_logprobs"] == "late" and b.info.fingerprint != ok.info.fingerprint
    assert not b.capabilities.loglikelihood and not b.capabilities.rolling and b.capabilities.generate
    with pytest.raises(BackendError, match=r"one position late .* score_prefix=") as err:
        b.loglikelihood([LoglikelihoodRequest("a", " b")])
    assert "\n" not in str(err.value)
    assert b.generate([GenerateRequest("hi", max_tokens=5)])[0].text.startswith("HI")


def test_retries_429_and_503_honouring_retry_after():
    fake = Fake(failures=[httpx.Response(429, headers={"Retry-After": "0.4"}, text="slow down"), httpx.Response(503, text="busy")])
    b = _backend(fake)
    sent = b.requests_sent
    t0 = time.monotonic()
    (res,) = b.generate([GenerateRequest("hi", until=("STOP",), max_tokens=5)])
    assert time.monotonic() - t0 >= 0.4
    assert b.requests_sent - sent == 3
    assert (res.text, res.n_tokens, res.finish_reason) == ("HI ", 3, "stop")


def test_timeouts_and_connection_errors_are_retried_then_reported_in_one_line():
    fake = Fake(failures=[httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
    (res,) = _backend(fake).generate([GenerateRequest("ok", max_tokens=5)])
    assert res.text.startswith("OK")
    fake = Fake(failures=[httpx.Response(500, text="boom")] * 3)
    with pytest.raises(BackendError, match=r"gave up after 3 attempts: HTTP 500: boom") as err:
        _backend(fake, ",max_retries=2").generate([GenerateRequest("ok", max_tokens=5)])
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match="HTTP 400"):  # a client error is not retried
        _backend(Fake(failures=[httpx.Response(400, text="bad")])).generate([GenerateRequest("ok", max_tokens=5)])


def test_concurrency_and_rate_limit():
    fake = Fake(delay=0.05)
    b = _backend(fake, ",concurrency=3")
    b.generate([GenerateRequest(f"p{i}", max_tokens=5) for i in range(12)])
    assert fake.max_in_flight == 3
    b = _backend(Fake(), ",rate=20")
    t0 = time.monotonic()
    b.generate([GenerateRequest(f"p{i}", max_tokens=5) for i in range(11)])
    assert 0.45 <= time.monotonic() - t0 < 3.0  # 11 starts, 1/20 s apart


def test_api_key_is_sent_as_bearer_but_never_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_SECRET_KEY", "sk-very-secret-123")
    fake = Fake()
    b = _backend(fake, ",api_key_env=MY_SECRET_KEY")
    b.generate([GenerateRequest("x1", max_tokens=2)])
    assert {r.headers.get("authorization") for r in fake.seen} == {"Bearer sk-very-secret-123"}
    recorded = json.dumps({"info": b.info.__dict__, "fp": b.info.fingerprint}, default=str)
    assert "sk-very-secret" not in recorded and "MY_SECRET_KEY" in recorded
    monkeypatch.delenv("MY_SECRET_KEY")
    with pytest.raises(ConfigError, match="MY_SECRET_KEY"):
        _backend(Fake(), ",api_key_env=MY_SECRET_KEY")


def test_generation_payload_and_chat_mode():
    fake = Fake()
    b = _backend(fake)
    b.generate([GenerateRequest("q", until=("\n",), max_tokens=7, top_k=0, repetition_penalty=1.0)])
    body = json.loads(fake.seen[-1].content)
    assert body["prompt"] == "q" and body["stop"] == ["\n"] and body["max_tokens"] == 7
    assert (body["min_p"], body["top_k"], body["repeat_penalty"], body["temperature"]) == (0.0, 0, 1.0, 0.0)
    chat = _backend(fake, ",chat=true")
    (res,) = chat.generate([GenerateRequest("hello", max_tokens=4)])
    assert fake.seen[-1].url.path == "/v1/chat/completions" and res.text == "chat:hello"
    assert chat.info.fingerprint != b.info.fingerprint


# -- several endpoints behind one model -------------------------------------------------------------
A, B = "http://a.test/v1", "http://b.test/v1"


def _two(fa: Fake, fb: Fake, extra: str = "", urls: str = f"{A};{B}") -> OpenAIBackend:
    """A model served by two fake servers, told apart by host."""
    fakes = {"a.test": fa, "b.test": fb}

    async def route(request: httpx.Request) -> httpx.Response:
        return await fakes[request.url.host](request)

    return OpenAIBackend(parse_model(f"openai:fake,base_url={urls},backoff=0.01{extra}"), transport=httpx.MockTransport(route))


def _gen(n: int, tag: str = "p") -> list[GenerateRequest]:
    return [GenerateRequest(f"{tag}{i}", until=("STOP",), max_tokens=5) for i in range(n)]


def _answered(b: OpenAIBackend, before: dict[str, int]) -> dict[str, int]:
    return {u: n - before[u] for u, n in b.answered_by.items()}


def test_requests_are_spread_over_endpoints_each_with_its_own_concurrency():
    fa, fb = Fake(delay=0.03), Fake(delay=0.03)
    b = _two(fa, fb, ",concurrency=3")
    assert b.info.args["endpoints"] == [{"url": A, "state": "up"}, {"url": B, "state": "up"}]
    before = dict(b.answered_by)
    got = b.generate(_gen(24))
    assert [r.text for r in got] == [r.text for r in _backend(Fake()).generate(_gen(24))]
    assert (fa.max_in_flight, fb.max_in_flight) == (3, 3)  # 3 per endpoint, 6 in all
    assert _answered(b, before) == {A: 12, B: 12}
    # the least busy endpoint takes each request: a faster server answers more
    fast, slow = Fake(delay=0.01), Fake(delay=0.08)
    b = _two(fast, slow, ",concurrency=2")
    before = dict(b.answered_by)
    b.generate(_gen(40))
    done = _answered(b, before)
    assert done[A] + done[B] == 40 and done[A] > 2 * done[B] > 0, done


def test_an_endpoint_refusing_connections_is_failed_over_and_marked_down():
    ref = [r.text for r in _backend(Fake()).generate(_gen(12))]
    fa, fb = Fake(), Fake(failures=[httpx.ConnectError("[Errno 111] Connection refused")] * 100)
    b = _two(fa, fb, ",backoff=1.0")  # no request waits for a backoff while A serves
    before = dict(b.answered_by)
    t0 = time.monotonic()
    with pytest.warns(RuntimeWarning, match=rf"endpoint {B} refused or dropped a connection"):
        got = b.generate(_gen(12))
    assert time.monotonic() - t0 < 0.9
    assert [r.text for r in got] == ref
    assert _answered(b, before) == {A: 12, B: 0}
    assert not b.endpoints[1].up and "Connection refused" in b.endpoints[1].why
    n_b = len(fb.seen)
    assert [r.text for r in b.generate(_gen(12))] == ref and len(fb.seen) == n_b  # B rests: no traffic


def test_5xx_and_timeouts_fail_over_at_once_without_marking_down_and_4xx_is_not_retried():
    ref = [r.text for r in _backend(Fake()).generate(_gen(12))]
    for failure in (httpx.Response(500, text="boom"), httpx.ReadTimeout("slow")):
        fa, fb = Fake(), Fake(failures=[failure] * 12)
        b = _two(fa, fb, ",backoff=1.0")
        before = dict(b.answered_by)
        t0 = time.monotonic()
        assert [r.text for r in b.generate(_gen(12))] == ref
        assert time.monotonic() - t0 < 0.9
        # B is tried once, then passed over while A has room (a server failing fast would
        # otherwise always look the least busy: 11 of 12 went to it first without this)
        assert len(fb.failures) == 11, f"B took {12 - len(fb.failures)} requests"
        assert _answered(b, before) == {A: 12, B: 0}
        # and B stays up: a 5xx or a timeout says nothing of the connection
        assert b.endpoints[1].up
        assert b.endpoints[1].failing
    fa, fb = Fake(failures=[httpx.Response(400, text="bad")] * 12), Fake()
    b = _two(fa, fb)
    n_b = len(fb.seen)
    with pytest.raises(BackendError, match=rf"^{A}/completions: HTTP 400: bad$"):
        b.generate(_gen(1))
    assert len(fb.seen) == n_b


def test_every_endpoint_failing_waits_with_backoff_and_the_final_error_names_each():
    # both refuse once: the request waits (backoff), then the one down longest is checked and serves
    fa, fb = (Fake(failures=[httpx.ConnectError("refused")]) for _ in range(2))
    b = _two(fa, fb, ",backoff=0.3")
    t0 = time.monotonic()
    with pytest.warns(RuntimeWarning):
        (res,) = b.generate(_gen(1))
    assert res.text == "P0 " and time.monotonic() - t0 >= 0.15
    assert b.endpoints[0].up and not b.endpoints[1].up
    fa, fb = Fake(failures=[httpx.Response(503, text="busy")] * 9), Fake(failures=[httpx.ReadTimeout("slow")] * 9)
    with pytest.raises(BackendError, match=r"/completions: gave up after 4 attempts on 2 endpoints: ") as err:
        _two(fa, fb, ",max_retries=3").generate(_gen(1))
    msg = str(err.value)
    assert f"{A}: HTTP 503: busy" in msg and f"{B}: timed out" in msg and "\n" not in msg


def test_an_endpoint_down_at_start_is_skipped_then_rechecked_before_it_gets_traffic():
    fa, fb = Fake(), Fake(refuse=True)
    with pytest.warns(RuntimeWarning, match=rf"endpoint {B} does not answer GET /models \(connection failed"):
        b = _two(fa, fb, ",recheck=0.3")
    (up, down) = b.info.args["endpoints"]
    assert up == {"url": A, "state": "up"} and down["state"] == "down" and "Connection refused" in down["why"]
    before = dict(b.answered_by)
    ref = [r.text for r in _backend(Fake()).generate(_gen(8))]
    assert [r.text for r in b.generate(_gen(8))] == ref and _answered(b, before) == {A: 8, B: 0}
    fb.refuse = False  # the server is back; after the rest, GET /models and the echo probe readmit it
    time.sleep(0.35)
    before = dict(b.answered_by)
    assert [r.text for r in b.generate(_gen(8))] == ref
    assert _answered(b, before)[B] > 0 and b.endpoints[1].up
    assert [r.url.path for r in fb.seen[:2]] == ["/v1/models", "/v1/completions"] and json.loads(fb.seen[1].content)["echo"]
    # one that comes back with echoed log-probabilities that disagree is kept out
    fa, fb = Fake(), Fake(refuse=True, late=True)
    with pytest.warns(RuntimeWarning):
        b = _two(fa, fb, ",recheck=0")
    fb.refuse = False
    before = dict(b.answered_by)
    b.generate(_gen(8))
    assert _answered(b, before)[B] == 0 and not b.endpoints[1].up
    assert "echoes prompt log-probabilities late, unlike the endpoints that served at start (aligned)" in b.endpoints[1].why
    # and so is one that comes back serving another model
    fa, fb = Fake(), Fake(refuse=True, models=("other-model",))
    with pytest.warns(RuntimeWarning):
        b = _two(fa, fb, ",recheck=0")
    fb.refuse = False
    before = dict(b.answered_by)
    b.generate(_gen(8))
    assert _answered(b, before)[B] == 0 and b.endpoints[1].why == "now serves ['other-model'], not ['fake-model']"


def test_endpoints_all_down_at_start_is_one_line_naming_each():
    with pytest.raises(BackendError) as err:
        _two(Fake(refuse=True), Fake(refuse=True), ",max_retries=1")
    msg = str(err.value)
    assert "no endpoint answered GET /models (2 attempts each)" in msg and f"{A}: connection failed" in msg and f"{B}: connection failed" in msg
    assert "\n" not in msg


def test_endpoints_serving_other_models_or_echoing_differently_are_refused():
    with pytest.raises(ConfigError, match=rf"{A} serves \['fake-model'\] but {B} serves \['other-model'\]") as err:
        _two(Fake(), Fake(models=("other-model",)))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=rf"echo prompt log-probabilities differently \({A}: aligned; {B}: late, cannot score\)") as err:
        _two(Fake(), Fake(late=True))
    assert "\n" not in str(err.value)


def test_replicas_file_lists_the_endpoints(tmp_path, monkeypatch):
    fakes = {"a.test": Fake(), "b.test": Fake()}

    async def route(request: httpx.Request) -> httpx.Response:
        return await fakes[request.url.host](request)

    def load(args: str) -> OpenAIBackend:
        return OpenAIBackend(parse_model(f"openai:fake,{args}"), transport=httpx.MockTransport(route))

    (tmp_path / "servers.txt").write_text(f"# the model's servers\n{A}/\n\n   {B}   # the second\n")
    monkeypatch.chdir(tmp_path)
    b = load("replicas=servers.txt")  # relative to the current folder
    assert [e["url"] for e in b.info.args["endpoints"]] == [A, B]
    assert b.info.fingerprint == load(f"base_url={A};{B}").info.fingerprint
    with pytest.raises(ConfigError, match=r"replicas=missing.txt: cannot read .*missing.txt") as err:
        load("replicas=missing.txt")
    assert "\n" not in str(err.value)
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(ConfigError, match=r"replicas=empty.txt: .*empty.txt lists no base URL"):
        load("replicas=empty.txt")
    with pytest.raises(ConfigError, match="give base_url or replicas, not both"):
        load(f"base_url={A},replicas=servers.txt")
    with pytest.raises(ConfigError, match=f"base_url lists {A} twice"):
        load(f"base_url={A};{B};{A}/")
    with pytest.raises(ConfigError, match="'a.test:8000/v1' is not an http:// or https:// URL"):
        load("base_url=a.test:8000/v1")


def test_fingerprint_is_the_same_whichever_endpoints_serve_and_in_which_order():
    fps = {urls: _two(Fake(), Fake(), urls=urls).info.fingerprint for urls in (f"{A};{B}", f"{B};{A}", A, B)}
    assert len(set(fps.values())) == 1, fps
    assert _two(Fake(), Fake(), urls=f"{B};{A}").info.args["endpoints"] == [{"url": B, "state": "up"}, {"url": A, "state": "up"}]


# -- a real llama-cpp-python server ----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """llama-cpp-python's server as a user starts it: its defaults (no flash attention, its own
    batch size and prefix reuse), one thread, on loopback."""

    def __init__(self, model: Path, port: int, extra: tuple[str, ...] = ()):
        self.model, self.port, self.extra, self.proc = model, port, extra, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_threads", "1", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the llama-cpp-python server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("the llama-cpp-python server did not answer in 120 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def _serve(*extra: str):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn", reason="llama-cpp-python's server needs llama-cpp-python[server]")
    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server needs llama-cpp-python[server]")
    from assay.backends.registry import ALIASES

    s = Server(ALIASES["smollm2-135m-instruct"].locate(), _free_port(), extra)
    s.start()
    yield s
    s.kill()


@pytest.fixture(scope="module")
def server():
    yield from _serve()


# measured (see the tests): |Δ log-likelihood| against in-process scores of the same tokens,
# and the share of items whose choice equals the plain (no-BOS) in-process backend's
TOL = 1e-4  # measured max 1.5e-6 (float32 log-softmax on the server)
AGREE = 0.8  # measured 10/10 items with the test's selection
SMOL = "openai:smollm2-135m-instruct,base_url={url},score_prefix=<|im_start|>,tokenizer=smollm2-135m-instruct"


def _choice_requests(task: str, n_docs: int, prefix: str = "", special: bool = False):
    from assay.config import RunConfig
    from assay.plan import plan_tasks

    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=(task,), limit=n_docs))
    return [[LoglikelihoodRequest(prefix + inst.query, " " + c, special) for c in inst.choices] for inst in plan.instances]


def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=xs.__getitem__)


@pytest.mark.slow
@pytest.mark.llamacpp
def test_real_server_scores_equal_in_process_llamacpp(server, smollm2_llamacpp, data_dir):
    # a server started with its defaults: it scores without flash attention, as the in-process
    # backend does (before, in-process scoring used it, and scores differed by up to 1.7 nats)
    from assay.backends.registry import load_backend

    remote = load_backend(parse_model(SMOL.format(url=server.url)))
    assert remote.info.args["echo_logprobs"] == "aligned"
    assert remote.capabilities.loglikelihood and remote.chat_template().hash == smollm2_llamacpp.chat_template().hash
    # the 10 shortest items (20 requests): llama-cpp-python's server sorts the whole vocabulary
    # in Python for every echoed token, ~0.1 s per token on two cores
    items = sorted(_choice_requests("copa", 10) + _choice_requests("xcopa_it", 10), key=lambda it: len(it[0].context))[:10]
    # the same token sequence in process: BOS, context, continuation (see score_prefix)
    same = [[LoglikelihoodRequest("<|im_start|>" + r.context, r.continuation, True) for r in it] for it in items]
    got = remote.loglikelihood([r for item in items for r in item])
    ref = smollm2_llamacpp.loglikelihood([r for item in same for r in item])
    assert [g.n_tokens for g in got] == [r.n_tokens for r in ref]
    diffs = [abs(g.logprob - r.logprob) for g, r in zip(got, ref)]
    assert max(diffs) < TOL, sorted(diffs)[-5:]
    k = 0
    for item in items:
        n = len(item)
        assert _argmax([g.logprob for g in got[k:k + n]]) == _argmax([r.logprob for r in ref[k:k + n]])
        k += n
    # against the plain in-process scores (no BOS before the context), choices mostly agree
    plain = smollm2_llamacpp.loglikelihood([r for item in items for r in item])
    k, agree = 0, 0
    for item in items:
        n = len(item)
        agree += _argmax([g.logprob for g in got[k:k + n]]) == _argmax([p.logprob for p in plain[k:k + n]])
        k += n
    assert agree >= AGREE * len(items), agree


@pytest.mark.slow
@pytest.mark.llamacpp
def test_real_server_greedy_generation_equals_in_process(server, smollm2_llamacpp, data_dir):
    from assay.backends.registry import load_backend
    from assay.config import RunConfig
    from assay.plan import plan_tasks
    from assay.prompts.chat import render_chat

    remote = load_backend(parse_model(SMOL.format(url=server.url)))
    tpl = smollm2_llamacpp.chat_template()
    (plan,) = plan_tasks(RunConfig(models=("x",), tasks=("core_qa",), limit=4))
    reqs = [
        GenerateRequest(render_chat(tpl, [{"role": "user", "content": inst.query}]), until=tpl.stop_strings(), max_tokens=40, special=True)
        for inst in plan.instances
    ]
    got = remote.generate(reqs)
    ref = smollm2_llamacpp.generate(reqs)
    assert [g.text for g in got] == [r.text for r in ref]
    assert all(g.text.strip() for g in got)


def _stored(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.llamacpp
def test_killing_the_server_midway_loses_nothing(server, data_dir, tmp_path):
    model = SMOL.format(url=server.url) + ",max_retries=10,max_backoff=4"
    args = ["run", "-m", model, "-t", "xcopa_it", "--limit", "8", "-b", "1", "--prompt", "lmeval"]
    out = tmp_path / "r"
    env = {**os.environ, "ASSAY_DATA_DIR": os.environ["ASSAY_DATA_DIR"]}
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", *args, "-o", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = out / "store.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and _stored(store) < 4 and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the server could be killed"
    server.kill()
    n_killed = _stored(store)
    time.sleep(2.0)
    server.start()  # same port
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert 4 <= n_killed < 16
    with sqlite3.connect(store) as db:
        per_key = db.execute("SELECT COUNT(*) FROM compute_log GROUP BY model_fp, req_key").fetchall()
    assert len(per_key) == 16 and {c for (c,) in per_key} == {1}
    assert json.loads((out / "results.json").read_text())["results"]


@pytest.fixture
def spare_server():
    yield from _serve()


def _sst2_answers(run: Path) -> list[tuple[str, str]]:
    (samples,) = (run / "samples").glob("*/sst2.jsonl")
    return [(row["doc_id"], row["response"]) for row in map(json.loads, samples.read_text().splitlines())]


@pytest.mark.slow
@pytest.mark.llamacpp
def test_two_servers_one_killed_midway_answer_as_one_server_does(server, spare_server, data_dir, tmp_path):
    """One model behind two llama-cpp-python servers; the first is killed once some answers are
    stored. Its requests in flight go to the other, the run finishes, and its answers and
    scores equal those of a run against one server (greedy generation is deterministic)."""
    common = ["-t", "sst2", "--prompt", "ask", "--limit", "24", "-b", "4"]  # 24 answers of at most 16 tokens
    one = _cli("run", "-m", SMOL.format(url=server.url), *common, "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    out = tmp_path / "two"
    model = SMOL.format(url=f"{spare_server.url};{server.url}") + ",max_retries=10,max_backoff=4"
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "run", "-m", model, *common, "-o", str(out)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = out / "store.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and _stored(store) < 8 and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before a server could be killed"
    spare_server.kill()
    n_killed = _stored(store)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert 8 <= n_killed < 24
    # the killed server was serving: a request of the run lost its connection to it
    assert f"openai endpoint {spare_server.url} refused or dropped a connection" in err, err[-2000:]
    # said in one line, not Python's warning format with a file, a line number and the source
    warned = [ln for ln in err.splitlines() if "refused or dropped a connection" in ln]
    assert warned and all("assay: warning: " in ln for ln in warned) and "openai.py:" not in err, err[-2000:]
    assert _sst2_answers(out) == _sst2_answers(tmp_path / "one") and len(_sst2_answers(out)) == 24
    r1, r2 = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "one", out))
    assert r2["results"] == r1["results"]
    (m1,), (m2,) = r1["models"].values(), r2["models"].values()
    assert m2["fingerprint"] == m1["fingerprint"]
    assert m2["args"]["endpoints"] == [{"url": spare_server.url, "state": "up"}, {"url": server.url, "state": "up"}]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], env=dict(os.environ), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.llamacpp
def test_server_as_users_call_it_refuses_misaligned_echo_in_one_line(server, data_dir, tmp_path):
    """As the README calls it, against a server with its defaults: llama-cpp-python reports the
    echo log-probabilities of this BOS-less GGUF one position late, which once scored XCOPA-it
    55.0 where the in-process backend scores 65.0. The run now stops before any work, in one
    line naming the fix; with that fix the same command scores, and the results say so."""
    common = ["-t", "xcopa_it", "--prompt", "lmeval"]
    plain = f"openai:smollm2-135m-instruct,base_url={server.url}"
    remote = _cli("run", "-m", plain, *common, "--limit", "8", "-o", str(tmp_path / "plain"))
    assert remote.returncode != 0, "a server with misaligned echo log-probabilities was used for scoring"
    errors = [line for line in remote.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in remote.stderr, remote.stderr[-2000:]
    assert "one position late" in errors[0] and "score_prefix=" in errors[0], errors[0]
    assert not (tmp_path / "plain" / "results.json").exists()
    fixed = _cli("run", "-m", plain + ",score_prefix=<|im_start|>", *common, "--limit", "2", "-o", str(tmp_path / "fixed"))
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    (model,) = json.loads((tmp_path / "fixed" / "results.json").read_text())["models"].values()
    assert model["args"]["echo_logprobs"] == "aligned"
