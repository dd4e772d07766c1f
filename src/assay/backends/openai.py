"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp's and llama-cpp-python's servers):
``openai:MODEL,base_url=http://127.0.0.1:8000/v1[,api_key_env=OPENAI_API_KEY,concurrency=8,
rate=R,timeout=S,max_retries=N,chat=false,score_prefix=TEXT,tokenizer=ALIAS_OR_GGUF,
extra_params=true]``

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
  requests in flight, at most ``rate`` requests per second when given); 429, 5xx, timeouts
  and connection errors are retried ``max_retries`` times with exponential backoff and
  jitter, honouring ``Retry-After``. The API key is read from the environment variable named
  by ``api_key_env`` and sent as a Bearer token; it is never recorded.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
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


class OpenAIBackend(Backend):
    """Talks to an OpenAI-compatible HTTP server; see the module docstring."""

    options = {
        "base_url": Option(str, None, "the server's API root, http://HOST:PORT/v1 (required)"),
        "api_key_env": Option(str, None, "the environment variable holding the API key (default OPENAI_API_KEY)"),
        "concurrency": Option(int, 8, "requests in flight at once"),
        "rate": Option(float, None, "at most this many requests a second (0 or empty: no limit)"),
        "timeout": Option(float, 120.0, "seconds a request may take"),
        "max_retries": Option(int, 8, "retries of a request after 429, 5xx, a timeout or a dropped connection"),
        "backoff": Option(float, 0.5, "seconds before the first retry (doubled each time, with jitter)"),
        "max_backoff": Option(float, 30.0, "the longest wait between retries, in seconds"),
        "chat": Option(bool, False, "send prompts as one user turn to /chat/completions"),
        "score_prefix": Option(str, "", "text sent before every scored prompt (e.g. the model's BOS text)"),
        "tokenizer": Option(str, None, "a GGUF or alias whose chat template assay applies"),
        "max_length": Option(int, 2048, "the model's context window in tokens"),
        "probe": Option(bool, True, "check at start-up whether the server echoes prompt log-probabilities"),
        "extra_params": Option(bool, True, "send top_k, min_p, typical_p and repeat_penalty (llama.cpp servers)"),
    }

    def __init__(self, spec: ModelSpec, transport: httpx.AsyncBaseTransport | None = None):
        args = self.parse_options(spec)
        if args["base_url"] is None:
            raise ConfigError(f"model '{spec.text}': the openai backend needs base_url=http://HOST:PORT/v1")
        self.model = spec.target
        self.base_url = args["base_url"].rstrip("/")
        self.concurrency = args["concurrency"]
        self.rate = args["rate"] or None
        self.timeout = args["timeout"]
        self.max_retries = args["max_retries"]
        self.backoff = args["backoff"]
        self.max_backoff = args["max_backoff"]
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
        self.requests_sent = 0  # HTTP attempts, for tests and progress

        models = self._run([self._call("GET", "/models", None)])[0]
        ids = sorted(str(m.get("id")) for m in (models.get("data") or []) if isinstance(m, dict))
        self.echo_logprobs, why_not = (
            self._probe_logprobs() if args["probe"]
            else ("unchecked", f"{self.base_url}: probe=false, so prompt log-probabilities were not checked")
        )
        can_score = not why_not
        self.capabilities = Capabilities(
            loglikelihood=can_score, rolling=can_score, generate=True,
            max_length=args["max_length"], why_not=why_not,
        )
        numeric = {k: v for k, v in sorted(spec.args.items()) if k in _NUMERIC_ARGS}
        numeric["echo_logprobs"] = self.echo_logprobs
        self.info = ModelInfo(
            name=spec.target,
            backend="openai",
            fingerprint=fingerprint("openai", spec.target, ids, numeric),
            args={**{k: v for k, v in spec.args.items()}, "server_models": ids, "echo_logprobs": self.echo_logprobs},
        )

    # -- HTTP ---------------------------------------------------------------------------------
    def _run(self, calls: list[Callable[[httpx.AsyncClient, asyncio.Semaphore, _RateLimit], Awaitable[dict]]]) -> list[dict]:
        async def main() -> list[dict]:
            sem = asyncio.Semaphore(self.concurrency)
            limit = _RateLimit(self.rate)
            async with httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self.timeout, transport=self._transport
            ) as client:
                return list(await asyncio.gather(*(c(client, sem, limit) for c in calls)))

        return asyncio.run(main())

    def _call(self, method: str, path: str, payload: dict | None):
        async def go(client: httpx.AsyncClient, sem: asyncio.Semaphore, limit: _RateLimit) -> dict:
            last = ""
            for attempt in range(self.max_retries + 1):
                wait: float | None = None
                async with sem:
                    await limit.wait()
                    self.requests_sent += 1
                    try:
                        resp = await client.request(method, path, json=payload)
                    except httpx.TimeoutException as exc:
                        last = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
                    except httpx.TransportError as exc:
                        last = f"connection failed ({type(exc).__name__}: {_short(str(exc), 120)})"
                    else:
                        if resp.status_code == 429 or resp.status_code >= 500:
                            last = f"HTTP {resp.status_code}: {_short(resp.text)}"
                            wait = _retry_after(resp)
                        elif resp.status_code >= 400:
                            raise BackendError(f"{self.base_url}{path}: HTTP {resp.status_code}: {_short(resp.text)}")
                        else:
                            try:
                                data = resp.json()
                            except ValueError as exc:
                                raise BackendError(f"{self.base_url}{path}: the server's answer is not JSON: {_short(resp.text)}") from exc
                            if not isinstance(data, dict):
                                raise BackendError(f"{self.base_url}{path}: the server's answer is not a JSON object")
                            return data
                if attempt == self.max_retries:
                    break
                if wait is None:
                    wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
                await asyncio.sleep(wait)
            raise BackendError(f"{self.base_url}{path}: gave up after {self.max_retries + 1} attempts: {last}")

        return go

    def _post_all(self, path: str, payloads: list[dict]) -> list[dict]:
        return self._run([self._call("POST", path, p) for p in payloads])

    # -- scoring ------------------------------------------------------------------------------
    def _echo_payload(self, prompt: str) -> dict:
        return {"model": self.model, "prompt": prompt, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}

    def _probe_logprobs(self) -> tuple[str, str]:
        """(where echoed log-probabilities sit: aligned, late or unchecked; why the server cannot
        score, empty when it can), from one echo request."""
        no_logprobs = f"{self.base_url}: this server does not return prompt log-probabilities (echo+logprobs)"
        try:
            data = self._post_all("/completions", [self._echo_payload(self.score_prefix + _PROBE)])[0]
        except BackendError:
            return "unchecked", no_logprobs
        if len(self._prompt_tokens(data, self.score_prefix + _PROBE)) <= 1:
            return "unchecked", no_logprobs
        where = _alignment(data)
        if where == "late":
            return where, (
                f"{self.base_url}: this server reports echoed prompt log-probabilities one position late (each token's value is "
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
        datas = self._post_all("/completions", [self._echo_payload(p) for p in prompts])
        out = []
        for data, prompt, bound in zip(datas, prompts, bounds):
            toks = self._prompt_tokens(data, prompt)
            if not toks:
                raise BackendError(f"{self.base_url}: the server returned no prompt log-probabilities for a log-likelihood request")
            cont = [t for t in toks if t[1] > bound]
            if not cont:
                cont = toks[-1:]
            if any(t[2] is None for t in cont):
                raise BackendError(f"{self.base_url}: the server gave no log-probability for a continuation token (empty context?)")
            out.append(LoglikelihoodResult(float(sum(t[2] for t in cont)), all(t[3] for t in cont), len(cont)))
        return out

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self._need_scores("rolling log-likelihood")
        prompts = [self.score_prefix + r.text for r in requests]
        datas = self._post_all("/completions", [self._echo_payload(p) for p in prompts])
        out = []
        for data, prompt in zip(datas, prompts):
            toks = [t for t in self._prompt_tokens(data, prompt) if t[1] > len(self.score_prefix) and t[2] is not None]
            if not toks and prompt[len(self.score_prefix):]:
                raise BackendError(f"{self.base_url}: the server returned no prompt log-probabilities for a rolling request")
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
        datas = self._post_all(path, [self._gen_payload(r) for r in requests])
        out = []
        for r, data in zip(requests, datas):
            try:
                choice = data["choices"][0]
                text = choice["message"]["content"] if self.chat else choice["text"]
            except (KeyError, IndexError, TypeError) as exc:
                raise BackendError(f"{self.base_url}{path}: the server's answer has no choices[0] text") from exc
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

