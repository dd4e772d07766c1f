"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp's and llama-cpp-python's servers), or
several serving one model:
``openai:MODEL,base_url=http://127.0.0.1:8000/v1[;URL2;...][,replicas=FILE,api_key_env=OPENAI_API_KEY,
concurrency=8,rate=R,timeout=S,max_retries=N,backoff=S,max_backoff=S,recheck=10,chat=false,
score_prefix=TEXT,tokenizer=ALIAS_OR_GGUF,max_length=N,probe=true,extra_params=true]``

* ``generate`` sends the exact rendered prompt to ``/v1/completions`` (greedy or seeded
  sampling, ``stop``, ``max_tokens``, ``top_k``/``top_p``/``min_p=0``/``repeat_penalty``) so a
  server gives the same text as the in-process backend on the same weights. ``chat=true``
  sends the prompt as one user turn to ``/v1/chat/completions`` instead, for servers that only
  speak chat: the server then applies its own template around assay's prompt, so the model
  sees a different string and scores are not comparable with other backends.
* ``loglikelihood`` and ``loglikelihood_rolling`` send context+continuation to
  ``/v1/completions`` with ``echo=true, logprobs=1, max_tokens=1`` and sum the prompt
  log-probabilities of the tokens past the context (the token whose text reaches past the
  context's end, trailing spaces of the context moved to the continuation as
  ``common.split_pair`` does). Support is probed once at start-up: a server that returns no
  prompt log-probabilities gets ``Capabilities(loglikelihood=False, rolling=False)``, so a
  run that needs them fails before any work. OpenAI's echo format gives no log-probability
  for the first prompt token, so a rolling score leaves out the text's first token unless a
  ``score_prefix`` (e.g. the model's BOS text) precedes it.
* The probe also checks where the server puts each echoed log-probability: it echoes a
  sentence twice, where a model's top-1 guess at a repeated token is that token. A server
  whose top-1 at token i is token i+1 reports each value one position late, and the value it
  gives is that of token i under the distribution for position i+1: no shift on the client
  recovers the right one. llama-cpp-python's server (0.3.x) does this for a GGUF that adds no
  BOS token (SmolLM2). Such a server gets no scoring capability, and a run that needs it stops
  in one line naming the ways out: the in-process backend, or ``score_prefix=<BOS text>`` (for
  SmolLM2 ``<|im_start|>``), which the server turns into the BOS token and strips, so values
  are aligned but condition on a BOS the in-process backend does not add for this model.
  ``info.args["echo_logprobs"]`` records what the probe found (``aligned``, ``late``,
  ``unchecked`` where the server gives no top log-probabilities).
* ``tokenizer=`` names a GGUF (or an embedded-model alias) whose chat template assay applies
  itself, as the in-process backend would; without it the backend offers no chat template.
* Every batch runs concurrently (``asyncio`` + ``httpx.AsyncClient``, at most ``concurrency``
  requests in flight on each endpoint, at most ``rate`` requests per second over all of
  them when given); 429, 5xx, timeouts and connection errors are retried ``max_retries``
  times with exponential backoff and jitter, honouring ``Retry-After``. The API key is read
  from the environment variable named by ``api_key_env`` and sent as a Bearer token; it is
  never recorded.
* Several endpoints (servers of one model): ``base_url=URL1;URL2;...``, or ``replicas=FILE``
  naming a file with one base URL a line (blank lines and ``#`` comments ignored; a relative
  path is read from the current folder). Each request goes to the endpoint with the fewest
  requests in flight that has a free slot (ties: round robin; one whose latest answer was a
  429/5xx or a timeout only when the others are busy), so a faster server takes more. At
  start every endpoint gets ``GET /models``: those that do not answer are left out with a
  warning while one does (none answering is one line naming each and why); the model ids of
  those that answer must agree, and the echo probe runs on each and must give one answer.
  A request that meets a timeout, a 429/5xx or a failed connection is retried at once on
  another endpoint not tried since its last wait; when every endpoint has failed it waits
  the backoff and tries again, the endpoint down longest where all are down (so one server
  restarted on the same port serves again). A refused or dropped connection marks its
  endpoint down: it rests ``recheck`` seconds, then ``GET /models`` (and the echo probe,
  for one that was down at start) must answer as at start before it gets traffic again. A
  4xx is not retried. ``max_retries`` bounds the tries of each request, and its last error
  names every endpoint tried. ``info.args["endpoints"]`` records each URL's state at start;
  ``answered_by`` counts the requests each answered. The fingerprint is made of the model
  ids and the settings that change numbers, never the URLs: ``base_url=A;B``, ``B;A`` and
  ``A`` give one fingerprint.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import httpx
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'openai' backend", "openai", "httpx") from exc

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import fingerprint, trim_at_stop
from assay.backends.options import Option
from assay.backends.registry import ALIASES, ModelSpec
from assay.errors import BackendError, ConfigError
from assay.prompts.chat import ChatTemplate
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

_NUMERIC_ARGS = {"chat", "score_prefix", "tokenizer", "extra_params"}  # settings that can change the numbers
# a sentence twice: a model's top-1 guess at a repeated token is that token, which shows
# whether the server reports each echoed log-probability at its own token or one position late
_PROBE = " ".join(["The capital of France is Paris."] * 2)


def _short(text: str, n: int = 200) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= n else one[: n - 1] + "…"


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _json_object(where: str, resp: httpx.Response) -> dict:
    """The JSON object of an answer that is not to be retried (not 429, not 5xx); a client
    error (4xx) or an answer that is not a JSON object is a BackendError naming ``where``."""
    if resp.status_code >= 400:
        raise BackendError(f"{where}: HTTP {resp.status_code}: {_short(resp.text)}")
    try:
        data = resp.json()
    except ValueError as exc:
        raise BackendError(f"{where}: the server's answer is not JSON: {_short(resp.text)}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{where}: the server's answer is not a JSON object")
    return data


class _RateLimit:
    """At most ``rate`` request starts per second (evenly spaced)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class _Endpoint:
    """One server of the model, and what the backend knows of it across batches."""

    url: str  # its API root, without a trailing slash
    up: bool = True
    why: str = ""  # why it is down
    down_since: float = 0.0  # time.monotonic() when it was last found down
    failing: bool = False  # its latest answer was a 429/5xx or a timeout: others go first


class _Pool:
    """What the requests of one batch share: the HTTP client, the rate limit, the requests in
    flight on each endpoint, and a lock per endpoint for its health checks."""

    def __init__(self, client: httpx.AsyncClient, limit: _RateLimit, endpoints: list[_Endpoint]):
        self.client, self.limit = client, limit
        self.in_flight = {e.url: 0 for e in endpoints}
        self.locks = {e.url: asyncio.Lock() for e in endpoints}
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """Wake every request waiting for a free slot or an endpoint's state."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        await self._changed.wait()


def _read_replicas(name: str, model: str) -> list[str]:
    """The base URLs of a replicas file: one a line, blank lines and ``#`` comments ignored."""
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"model '{model}': replicas={name}: cannot read {path} ({exc.strerror or exc})") from None
    urls = [u for u in (line.split("#", 1)[0].strip() for line in text.splitlines()) if u]
    if not urls:
        raise ConfigError(f"model '{model}': replicas={name}: {path} lists no base URL (one a line, # for comments)")
    return urls


def _endpoint_urls(args: dict[str, Any], model: str) -> list[str]:
    """The base URLs given by ``base_url`` (``;``-separated) or ``replicas``, checked."""
    if args["base_url"] is not None and args["replicas"] is not None:
        raise ConfigError(f"model '{model}': give base_url or replicas, not both")
    if args["replicas"] is not None:
        urls, where = _read_replicas(args["replicas"], model), f"replicas={args['replicas']}"
    elif args["base_url"] is not None:
        urls, where = [u.strip() for u in args["base_url"].split(";") if u.strip()], "base_url"
    else:
        raise ConfigError(f"model '{model}': the openai backend needs base_url=http://HOST:PORT/v1 (or replicas=FILE)")
    if not urls:
        raise ConfigError(f"model '{model}': base_url is empty")
    urls = [u.rstrip("/") for u in urls]
    for u in urls:
        if not u.startswith(("http://", "https://")) or any(c.isspace() for c in u):
            raise ConfigError(f"model '{model}': {where}: '{u}' is not an http:// or https:// URL")
    for i, u in enumerate(urls):
        if u in urls[:i]:
            raise ConfigError(f"model '{model}': {where} lists {u} twice")
    return urls


class OpenAIBackend(Backend):
    """Talks to an OpenAI-compatible HTTP server, or several serving one model; see the module
    docstring."""

    remote = True  # its servers compute; several are spread over with base_url=URL1;URL2 or replicas=FILE
    options = {
        "base_url": Option(str, None, "the server's API root, http://HOST:PORT/v1; several servers of one model: URL1;URL2;..."),
        "replicas": Option(str, None, "a file listing the servers' API roots, one a line (# comments), instead of base_url"),
        "api_key_env": Option(str, None, "the environment variable holding the API key (default OPENAI_API_KEY)"),
        "concurrency": Option(int, 8, "requests in flight at once on each server"),
        "rate": Option(float, None, "at most this many requests a second, over all servers (0 or empty: no limit)"),
        "timeout": Option(float, 120.0, "seconds a request may take"),
        "max_retries": Option(int, 8, "retries of a request after 429, 5xx, a timeout or a dropped connection"),
        "backoff": Option(float, 0.5, "seconds before the first retry (doubled each time, with jitter)"),
        "max_backoff": Option(float, 30.0, "the longest wait between retries, in seconds"),
        "recheck": Option(float, 10.0, "seconds a server that refused or dropped a connection rests before GET /models checks it again", min=0),
        "chat": Option(bool, False, "send prompts as one user turn to /chat/completions"),
        "score_prefix": Option(str, "", "text sent before every scored prompt (e.g. the model's BOS text)"),
        "tokenizer": Option(str, None, "a GGUF or alias whose chat template assay applies"),
        "max_length": Option(int, 2048, "the model's context window in tokens"),
        "probe": Option(bool, True, "check at start-up whether the server echoes prompt log-probabilities"),
        "extra_params": Option(bool, True, "send top_k, min_p, typical_p and repeat_penalty (llama.cpp servers)"),
    }

    def __init__(self, spec: ModelSpec, transport: httpx.AsyncBaseTransport | None = None):
        args = self.parse_options(spec)
        urls = _endpoint_urls(args, spec.text)
        self.model = spec.target
        self.endpoints = [_Endpoint(u) for u in urls]
        self._index = {u: i for i, u in enumerate(urls)}  # for round robin among equally busy endpoints
        self.base_url = ";".join(urls)  # as given, for messages
        self.concurrency = args["concurrency"]
        self.rate = args["rate"] or None
        self.timeout = args["timeout"]
        self.max_retries = args["max_retries"]
        self.backoff = args["backoff"]
        self.max_backoff = args["max_backoff"]
        self.recheck = args["recheck"]
        self.chat = args["chat"]
        self.score_prefix = args["score_prefix"]
        self.extra_params = args["extra_params"]
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError(f"model '{spec.text}': concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        key_env = args["api_key_env"]
        key = os.environ.get(key_env or "OPENAI_API_KEY")
        if key_env and not key:
            raise ConfigError(f"model '{spec.text}': the environment variable {key_env} (api_key_env) is not set")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._transport = transport
        self._tokenizer = args["tokenizer"]
        self._template: ChatTemplate | None = None
        self._rr = -1  # the endpoint chosen last, for round robin among equally busy ones
        self.requests_sent = 0  # HTTP attempts, health checks included, for tests and progress
        self.answered_by = {u: 0 for u in urls}  # requests each endpoint answered (2xx)

        self.server_models = self._first_contact(spec.text)
        live = [e for e in self.endpoints if e.up]
        self._probed: set[str] = set()  # endpoints whose echo probe gave the agreed answer
        if args["probe"]:
            self.echo_logprobs, why_not = self._probe_all(spec.text, live)
            self._probed = {e.url for e in live}
        else:
            self.echo_logprobs, why_not = "unchecked", f"{self.base_url}: probe=false, so prompt log-probabilities were not checked"
        self._probe_answer: tuple[str, bool] | None = (self.echo_logprobs, not why_not) if args["probe"] else None
        can_score = not why_not
        self.capabilities = Capabilities(
            loglikelihood=can_score, rolling=can_score, generate=True,
            max_length=args["max_length"], why_not=why_not,
        )
        numeric = {k: v for k, v in sorted(spec.args.items()) if k in _NUMERIC_ARGS}
        numeric["echo_logprobs"] = self.echo_logprobs
        endpoints = [{"url": e.url, "state": "up"} if e.up else {"url": e.url, "state": "down", "why": e.why} for e in self.endpoints]
        self.info = ModelInfo(
            name=spec.target,
            backend="openai",
            # the model ids and the settings that change numbers: never the URLs, so the same
            # model behind other or more servers keeps its fingerprint
            fingerprint=fingerprint("openai", spec.target, self.server_models, numeric),
            args={
                **{k: v for k, v in spec.args.items()}, "server_models": self.server_models,
                "echo_logprobs": self.echo_logprobs, "endpoints": endpoints,
            },
        )

    # -- start-up -----------------------------------------------------------------------------
    def _first_contact(self, model: str) -> list[str]:
        """GET /models on every endpoint: the model ids they serve (which must agree). Those that
        do not answer are marked down while one does; none answering is retried with backoff as
        one server is, then refused in one line naming each endpoint and why."""

        async def main(pool: _Pool) -> list[tuple[list[str] | None, str]]:
            got: list[tuple[list[str] | None, str, float | None]] = []
            for attempt in range(self.max_retries + 1):
                if attempt:
                    after = [a for _, _, a in got if a is not None]
                    await asyncio.sleep(max(after) if after else self._pause(attempt - 1))
                got = list(await asyncio.gather(*(self._models(pool, e) for e in self.endpoints)))
                if any(ids is not None for ids, _, _ in got):
                    break
            return [(ids, why) for ids, why, _ in got]

        answers = self._session(main)
        if all(ids is None for ids, _ in answers):
            if len(self.endpoints) == 1:
                raise BackendError(f"{self.endpoints[0].url}/models: gave up after {self.max_retries + 1} attempts: {answers[0][1]}")
            raise BackendError(
                f"model '{model}': no endpoint answered GET /models ({self.max_retries + 1} attempts each): "
                + "; ".join(f"{e.url}: {why}" for e, (_, why) in zip(self.endpoints, answers))
            )
        first: tuple[str, list[str]] | None = None
        now = time.monotonic()
        for e, (ids, why) in zip(self.endpoints, answers):
            if ids is None:
                e.up, e.why, e.down_since = False, why, now
                warnings.warn(
                    f"model '{model}': endpoint {e.url} does not answer GET /models ({why}); the others serve, and it is "
                    f"checked again after {self.recheck:g} s", RuntimeWarning, stacklevel=3,
                )
            elif first is None:
                first = (e.url, ids)
            elif ids != first[1]:
                raise ConfigError(
                    f"model '{model}': {first[0]} serves {first[1]} but {e.url} serves {ids}; the endpoints of one model must "
                    "serve the same model (numbers from different models would mix)"
                )
        assert first is not None
        return first[1]

    async def _models(self, pool: _Pool, ep: _Endpoint) -> tuple[list[str] | None, str, float | None]:
        """One GET /models: (the model ids or None, why not, Retry-After). A client error or an
        answer that is not JSON raises BackendError."""
        self.requests_sent += 1
        try:
            resp = await pool.client.get(ep.url + "/models")
        except httpx.TimeoutException as exc:
            return None, f"timed out after {self.timeout:g} s ({type(exc).__name__})", None
        except httpx.TransportError as exc:
            return None, f"connection failed ({type(exc).__name__}: {_short(str(exc), 120)})", None
        if resp.status_code == 429 or resp.status_code >= 500:
            return None, f"HTTP {resp.status_code}: {_short(resp.text)}", _retry_after(resp)
        data = _json_object(f"{ep.url}/models", resp)
        return sorted(str(m.get("id")) for m in (data.get("data") or []) if isinstance(m, dict)), "", None

    def _probe_all(self, model: str, live: list[_Endpoint]) -> tuple[str, str]:
        """The echo probe on every live endpoint, which must all give one answer."""
        payload = self._echo_payload(self.score_prefix + _PROBE)

        def safe(call):
            async def go(pool: _Pool) -> dict | None:
                try:
                    return (await call(pool))[1]
                except BackendError:
                    return None
            return go

        datas = self._run([safe(self._call("POST", "/completions", payload, pin=e)) for e in live])
        verdicts = [self._probe_verdict(e.url, d) for e, d in zip(live, datas)]
        if len({(where, not why) for where, why in verdicts}) > 1:
            said = "; ".join(
                f"{e.url}: {where}{'' if not why else ', cannot score'}" for e, (where, why) in zip(live, verdicts)
            )
            raise ConfigError(
                f"model '{model}': the endpoints echo prompt log-probabilities differently ({said}); serve one build of one "
                "model behind one name, or list the endpoints that agree"
            )
        return verdicts[0]

    # -- HTTP ---------------------------------------------------------------------------------
    def _session(self, main: Callable[[_Pool], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            limits = httpx.Limits(max_connections=max(100, 2 * self.concurrency * len(self.endpoints)), max_keepalive_connections=max(20, self.concurrency * len(self.endpoints)))
            async with httpx.AsyncClient(headers=self._headers, timeout=self.timeout, transport=self._transport, limits=limits) as client:
                return await main(_Pool(client, _RateLimit(self.rate), self.endpoints))

        return asyncio.run(go())

    def _run(self, calls: list[Callable[[_Pool], Awaitable[Any]]]) -> list[Any]:
        async def main(pool: _Pool) -> list[Any]:
            return list(await asyncio.gather(*(c(pool) for c in calls)))

        return self._session(main)

    def _pause(self, waits: int, retry_after: float | None = None) -> float:
        """Seconds before the next try: the server's Retry-After, else exponential backoff with jitter."""
        if retry_after is not None:
            return retry_after
        return min(self.max_backoff, self.backoff * 2**waits) * (0.5 + random.random() / 2)

    async def _take(self, pool: _Pool, avoid: set[str], force: bool = False, pin: _Endpoint | None = None) -> _Endpoint | None:
        """An endpoint with a free slot, reserved: of those up (or down, with their rest over)
        outside ``avoid``, the one with the fewest requests in flight (ties: round robin), one
        whose latest answer was a failure only when the others are busy (a server that fails
        fast would otherwise always look the least busy).
        None when there is none, unless ``force`` (called with nothing to avoid): then, every
        endpoint being down, the one down longest. Waits while the candidates are all busy."""
        while True:
            if pin is not None:
                cands = [pin]
            else:
                now = time.monotonic()
                cands = [e for e in self.endpoints if e.url not in avoid and (e.up or now - e.down_since >= self.recheck)]
                if not cands:
                    if not force:
                        return None
                    cands = [min(self.endpoints, key=lambda e: e.down_since)]
            free = [e for e in cands if pool.in_flight[e.url] < self.concurrency]
            if free:
                n = len(self.endpoints)
                ep = min(free, key=lambda e: (e.failing, pool.in_flight[e.url], (self._index[e.url] - self._rr - 1) % n))
                self._rr = self._index[ep.url]
                pool.in_flight[ep.url] += 1
                return ep
            await pool.wait_change()

    def _release(self, pool: _Pool, ep: _Endpoint) -> None:
        pool.in_flight[ep.url] -= 1
        pool.changed()

    def _mark_down(self, pool: _Pool, ep: _Endpoint, why: str) -> None:
        if ep.up and len(self.endpoints) > 1:
            warnings.warn(
                f"openai endpoint {ep.url} refused or dropped a connection; requests go to the other endpoints, and it is "
                f"checked again (GET /models) after {self.recheck:g} s", RuntimeWarning, stacklevel=2,
            )
        ep.up, ep.why, ep.down_since = False, why, time.monotonic()
        pool.changed()

    async def _recheck(self, pool: _Pool, ep: _Endpoint, force: bool = False) -> str:
        """Bring a down endpoint back if GET /models answers with the agreed model ids (and,
        where the start-up probe ran, the echo probe agrees): empty when it is up, else why
        not. Unless ``force``, an endpoint whose rest is not over (another request just checked
        it) is not asked."""
        async with pool.locks[ep.url]:
            if ep.up:
                return ""
            if not force and time.monotonic() - ep.down_since < self.recheck:
                return ep.why
            try:
                ids, why, _ = await self._models(pool, ep)
            except BackendError as exc:
                ids, why = None, str(exc)
            if ids is not None and ids != self.server_models:
                ids, why = None, f"now serves {ids}, not {self.server_models}"
            if ids is not None and self._probe_answer is not None and ep.url not in self._probed:
                why = await self._late_probe(pool, ep)
                ids = None if why else ids
            if ids is None:
                self._mark_down(pool, ep, why)
                return why
            ep.up, ep.why = True, ""
            pool.changed()
            return ""

    async def _late_probe(self, pool: _Pool, ep: _Endpoint) -> str:
        """The echo probe on an endpoint that was down at start-up: empty when it agrees."""
        self.requests_sent += 1
        try:
            resp = await pool.client.post(ep.url + "/completions", json=self._echo_payload(self.score_prefix + _PROBE))
            if resp.status_code >= 400:
                return f"the echo probe failed (HTTP {resp.status_code}: {_short(resp.text)})"
            data = resp.json()
        except (httpx.TransportError, ValueError) as exc:
            return f"the echo probe failed ({type(exc).__name__}: {_short(str(exc), 120)})"
        where, why = self._probe_verdict(ep.url, data if isinstance(data, dict) else None)
        if (where, not why) != self._probe_answer:
            self._probed.discard(ep.url)
            return f"it echoes prompt log-probabilities {where}, unlike the endpoints that served at start ({self.echo_logprobs})"
        self._probed.add(ep.url)
        return ""

    def _call(self, method: str, path: str, payload: dict | None, pin: _Endpoint | None = None):
        """One request as a coroutine on a pool, answering (the endpoint's URL, its JSON). It
        goes to the least busy endpoint; a timeout, a 429/5xx or a failed connection is
        retried at once on another endpoint not tried since the last wait, else after a
        backoff (on any endpoint, the one down longest when all are down). A failed connection
        marks its endpoint down. ``pin`` keeps every try on one endpoint."""

        async def go(pool: _Pool) -> tuple[str, dict]:
            last, retry_after, waits = "", None, 0
            tried: dict[str, str] = {}  # endpoint -> its latest failure, in the order first tried
            fresh: set[str] = set()  # endpoints tried since the last wait
            for attempt in range(self.max_retries + 1):
                if pin is not None:
                    if attempt:
                        await asyncio.sleep(self._pause(waits, retry_after))
                        waits += 1
                    ep = await self._take(pool, set(), pin=pin)
                else:
                    ep = await self._take_up(pool, fresh)
                    if ep is None:  # every endpoint is down, or failed since the last wait
                        await asyncio.sleep(self._pause(waits, retry_after))
                        waits += 1
                        fresh.clear()
                        ep = await self._take(pool, fresh, force=True)
                assert ep is not None  # a forced or pinned take always gives one
                try:
                    if not ep.up and pin is None:
                        why = await self._recheck(pool, ep, force=True)
                        if why:
                            last, retry_after = why, None
                            tried[ep.url] = last
                            fresh.add(ep.url)
                            continue
                    await pool.limit.wait()
                    self.requests_sent += 1
                    retry_after = None
                    try:
                        resp = await pool.client.request(method, ep.url + path, json=payload)
                    except httpx.TimeoutException as exc:
                        last = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
                        ep.failing = True
                    except httpx.TransportError as exc:
                        last = f"connection failed ({type(exc).__name__}: {_short(str(exc), 120)})"
                        if pin is None:
                            self._mark_down(pool, ep, last)
                    else:
                        if resp.status_code == 429 or resp.status_code >= 500:
                            last = f"HTTP {resp.status_code}: {_short(resp.text)}"
                            retry_after = _retry_after(resp)
                            ep.failing = True
                        else:
                            data = _json_object(f"{ep.url}{path}", resp)
                            self.answered_by[ep.url] += 1
                            ep.failing = False
                            return ep.url, data
                    tried[ep.url] = last
                    fresh.add(ep.url)
                finally:
                    self._release(pool, ep)
            if len(tried) <= 1:
                url = next(iter(tried), self.endpoints[0].url if pin is None else pin.url)
                raise BackendError(f"{url}{path}: gave up after {self.max_retries + 1} attempts: {last}")
            raise BackendError(
                f"{path}: gave up after {self.max_retries + 1} attempts on {len(tried)} endpoints: "
                + "; ".join(f"{u}: {why}" for u, why in tried.items())
            )

        return go

    async def _take_up(self, pool: _Pool, avoid: set[str]) -> _Endpoint | None:
        """An endpoint that is up (one whose rest is over is checked first), slot reserved; None
        when every endpoint outside ``avoid`` is down."""
        while True:
            ep = await self._take(pool, avoid)
            if ep is None or ep.up:
                return ep
            if not await self._recheck(pool, ep):
                return ep
            self._release(pool, ep)  # down again, resting: the next pick skips it

    def _post_all(self, path: str, payloads: list[dict]) -> list[tuple[str, dict]]:
        """(the endpoint that answered, its JSON) for each payload."""
        return self._run([self._call("POST", path, p) for p in payloads])

    # -- scoring ------------------------------------------------------------------------------
    def _echo_payload(self, prompt: str) -> dict:
        return {"model": self.model, "prompt": prompt, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}

    def _probe_verdict(self, url: str, data: dict | None) -> tuple[str, str]:
        """(where echoed log-probabilities sit: aligned, late or unchecked; why the server cannot
        score, empty when it can), from the answer to one echo request (None: it failed)."""
        no_logprobs = f"{url}: this server does not return prompt log-probabilities (echo+logprobs)"
        if data is None or len(self._prompt_tokens(data, self.score_prefix + _PROBE)) <= 1:
            return "unchecked", no_logprobs
        where = _alignment(data)
        if where == "late":
            return where, (
                f"{url}: this server reports echoed prompt log-probabilities one position late (each token's value is "
                "read from the next position, as llama-cpp-python's server does for a GGUF that adds no BOS token), which no "
                "client can undo; score in process (llamacpp:FILE.gguf), or pass score_prefix=<the model's BOS text> "
                "(SmolLM2: <|im_start|>), which the server strips, to score after a BOS token"
            )
        return where, ""

    @staticmethod
    def _prompt_tokens(data: dict, prompt: str) -> list[tuple[int, int, float | None, bool]]:
        """(start, end, logprob, greedy) of each prompt token, offsets in ``prompt``."""
        try:
            choice = data["choices"][0]
            lp = choice.get("logprobs") or {}
            tokens, offsets = lp.get("tokens"), lp.get("text_offset")
            values, tops = lp.get("token_logprobs"), lp.get("top_logprobs")
        except (KeyError, IndexError, TypeError, AttributeError):
            return []
        if not tokens or not offsets or values is None or len(tokens) != len(offsets) or len(values) != len(tokens):
            return []
        n_gen = int((data.get("usage") or {}).get("completion_tokens", 0) or 0)
        n_gen = min(n_gen, len(tokens))
        n_prompt = len(tokens) - n_gen
        if n_prompt <= 0:
            return []
        # offsets are relative to the prompt as the server renders it (special tokens may be
        # dropped): align them on the end of the last prompt token
        shift = len(prompt) - (offsets[n_prompt - 1] + len(tokens[n_prompt - 1]))
        out = []
        for i in range(n_prompt):
            v = values[i]
            top = (tops[i] if tops and i < len(tops) else None) or {}
            greedy = v is not None and (not top or v >= max(top.values()) - 1e-6)
            out.append((offsets[i] + shift, offsets[i] + shift + len(tokens[i]), v, greedy))
        return out

    def _need_scores(self, kind: str) -> None:
        if not self.capabilities.loglikelihood:
            raise BackendError(f"{self.capabilities.why_not}; {kind} tasks need them")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self._need_scores("log-likelihood")
        prompts, bounds = [], []
        for r in requests:
            context = r.context.rstrip(" ")  # trailing spaces belong to the continuation
            prompts.append(self.score_prefix + r.context + r.continuation)
            bounds.append(len(self.score_prefix) + len(context))
        answers = self._post_all("/completions", [self._echo_payload(p) for p in prompts])
        out = []
        for (url, data), prompt, bound in zip(answers, prompts, bounds):
            toks = self._prompt_tokens(data, prompt)
            if not toks:
                raise BackendError(f"{url}: the server returned no prompt log-probabilities for a log-likelihood request")
            cont = [t for t in toks if t[1] > bound]
            if not cont:
                cont = toks[-1:]
            if any(t[2] is None for t in cont):
                raise BackendError(f"{url}: the server gave no log-probability for a continuation token (empty context?)")
            out.append(LoglikelihoodResult(float(sum(t[2] for t in cont)), all(t[3] for t in cont), len(cont)))
        return out

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self._need_scores("rolling log-likelihood")
        prompts = [self.score_prefix + r.text for r in requests]
        answers = self._post_all("/completions", [self._echo_payload(p) for p in prompts])
        out = []
        for (url, data), prompt in zip(answers, prompts):
            toks = [t for t in self._prompt_tokens(data, prompt) if t[1] > len(self.score_prefix) and t[2] is not None]
            if not toks and prompt[len(self.score_prefix):]:
                raise BackendError(f"{url}: the server returned no prompt log-probabilities for a rolling request")
            out.append(RollingResult(float(sum(t[2] for t in toks)), len(toks)))
        return out

    # -- generation ---------------------------------------------------------------------------
    def _gen_payload(self, r: GenerateRequest) -> dict:
        if r.max_tokens <= 0:
            raise BackendError(f"max_tokens={r.max_tokens}: the openai backend needs a positive max_tokens")
        p: dict[str, Any] = {
            "model": self.model, "max_tokens": r.max_tokens, "temperature": r.temperature, "top_p": r.top_p,
            "seed": r.sampling_seed if r.temperature > 0 else 0,
        }
        if self.extra_params:
            # llama-cpp-python's server samples with top_k=40, min_p=0.05, repeat_penalty=1.1
            # unless told otherwise; these match the in-process backend. extra_params=false
            # leaves them out, for servers that reject parameters outside OpenAI's API
            p.update({"top_k": r.top_k, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": r.repetition_penalty})
        if r.until:
            p["stop"] = list(r.until)
        if self.chat:
            p["messages"] = [{"role": "user", "content": r.context}]
        else:
            p["prompt"] = r.context
        return p

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        path = "/chat/completions" if self.chat else "/completions"
        answers = self._post_all(path, [self._gen_payload(r) for r in requests])
        out = []
        for r, (url, data) in zip(requests, answers):
            try:
                choice = data["choices"][0]
                text = choice["message"]["content"] if self.chat else choice["text"]
            except (KeyError, IndexError, TypeError) as exc:
                raise BackendError(f"{url}{path}: the server's answer has no choices[0] text") from exc
            text, cut = trim_at_stop(text or "", r.until)
            n = int((data.get("usage") or {}).get("completion_tokens", 0) or 0)
            finish = "stop" if cut or choice.get("finish_reason") == "stop" else "length"
            out.append(GenerateResult(text, n, finish))
        return out

    # -- the rest -----------------------------------------------------------------------------
    def chat_template(self) -> ChatTemplate | None:
        if not self._tokenizer or self.chat:
            return None
        if self._template is None:
            self._template = _gguf_template(str(self._tokenizer))
        return self._template


def _alignment(data: dict) -> str:
    """Whether the top-1 token the server reports at echoed position i is token i (aligned) or
    token i+1 (late); unchecked without top log-probabilities or a clear majority."""
    try:
        lp = data["choices"][0]["logprobs"]
        tokens, tops = lp["tokens"], lp.get("top_logprobs") or []
    except (KeyError, IndexError, TypeError):
        return "unchecked"
    same = late = 0
    for i in range(1, min(len(tokens) - 1, len(tops))):
        top = tops[i]
        if not isinstance(top, dict) or not top:
            continue
        best = max(top, key=lambda t: top[t] if top[t] is not None else float("-inf"))
        same += best == tokens[i]
        late += best == tokens[i + 1]
    if late >= 3 and late > 2 * same:
        return "late"
    if same >= 3 and same > 2 * late:
        return "aligned"
    return "unchecked"


def _gguf_template(name: str) -> ChatTemplate | None:
    """The chat template of a GGUF file or embedded-model alias (vocabulary only, no weights)."""
    path = ALIASES[name].locate() if name in ALIASES else os.path.expanduser(name)
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BackendError("tokenizer=: reading a GGUF chat template needs llama-cpp-python (pip install 'assay[llamacpp]')") from exc
    try:
        llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendError(f"{path}: cannot read this GGUF's vocabulary: {exc}") from exc
    try:
        src = llm.metadata.get("tokenizer.chat_template")
        if not src:
            return None
        piece = lambda t: llm._model.token_get_text(t) if t >= 0 else ""  # noqa: E731
        return ChatTemplate(src, piece(llm.token_bos()), piece(llm.token_eos()))
    finally:
        llm.close()

