"""GGUF models through llama-cpp-python, in process.

Scoring has a llama.cpp context of its own (flash attention off, as in generation and in
llama-cpp-python's server by default) and cuts every request the same way: the context in one
``llama_decode`` call, then the continuation but its last token in the next, reading the
context's cells, which are removed before the next continuation. llama.cpp's numbers depend on
that cut, so it is part of the fingerprint (``SCORING``); requests whose contexts tokenise the
same decode the context once (``share_context``, the default), with the same numbers. Rolling
log-likelihoods decode one window per call unless ``max_seqs=N`` packs up to N windows into
one (faster, but then a score depends on its neighbours).

Generation runs one request at a time through llama-cpp-python's sampler, seeded per request.
The prompt is decoded in chunks of 128 tokens from position 0, and the whole chunks it shares
with the previous prompt stay cached. A reply ends at an end-of-generation token, one of the
request's stop token ids (or a stop string that is one special token), a stop string or
``max_tokens``. Prompts longer than the window are cut from the left, and results say by how
many tokens (``truncated``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

import numpy as np

try:
    import llama_cpp
    from llama_cpp import Llama
    from llama_cpp import _internals as internals
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'llamacpp' backend", "llamacpp", "llama_cpp") from exc

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import TokenScoring, file_sha256, fingerprint, keep_last, n_cut, trim_at_stop
from assay.backends.cpus import N_THREADS, available_cpus, free_cpus
from assay.backends.options import Option
from assay.backends.registry import ModelSpec, resolve_path
from assay.errors import BackendError
from assay.prompts.chat import ChatTemplate
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

# How a log-likelihood is computed, part of the fingerprint: llama.cpp's numbers depend on how
# a sequence is cut into decode calls, so the cut is fixed (the context, then the continuation;
# a generation prompt in chunks of _GEN_CHUNK tokens from position 0)
# flash attention off in scoring, as in generation (llama-cpp-python's Llama) and in its
# server's defaults: a server on the same GGUF then scores what this backend scores
SCORING = "context-then-continuation-v1;prompt-chunks-128;flash-attn-off"
# Generation prompts are decoded in chunks that start at multiples of this. A chunk computes
# the same whatever request it came from, so the whole chunks a prompt shares with the
# previous one (a few-shot prefix) are kept in the cache, not recomputed, and every result
# still equals the one computed from an empty cache.
_GEN_CHUNK = 128


def _quiet_logs() -> None:
    # llama.cpp prints through a C callback; silence it unless the user asks for it
    if os.environ.get("ASSAY_LLAMA_VERBOSE"):
        return

    @llama_cpp.llama_log_callback
    def _sink(level, text, user_data):  # noqa: ARG001
        return None

    _quiet_logs.cb = _sink  # keep a reference alive
    llama_cpp.llama_log_set(_sink, ctypes.c_void_p(0))


class LlamaCppBackend(TokenScoring, Backend):
    """``llamacpp:FILE.gguf[,n_ctx=N,max_length=N,n_threads=N,pack_tokens=N,max_seqs=N,seed=N,share_context=false]``

    ``max_seqs`` > 1 packs rolling-log-likelihood windows into one decode: faster, but not
    batch-invariant.
    """

    options = {
        "n_ctx": Option(int, None, "llama.cpp's context for generation (default: max_length + 512)", min=1),
        "max_length": Option(int, 2048, "scoring window in tokens (capped by the model's training context)", min=1),
        "n_threads": Option(int, None, N_THREADS + " that other processes leave free", min=1),
        "pack_tokens": Option(int, 2048, "tokens of one scoring decode (at least max_length)", min=1),
        "max_seqs": Option(int, 1, "sequences packed into one decode (> 1: faster, not batch-invariant)", min=1),
        "seed": Option(int, 0, "llama.cpp's sampler seed"),
        "share_context": Option(bool, True, "decode a context shared by several continuations once"),
    }

    def __init__(self, spec: ModelSpec):
        args = self.parse_options(spec)
        path = resolve_path(spec)
        if path is None or not path.is_file():
            raise BackendError(f"model file not found: {spec.target}")
        _quiet_logs()
        # threads: the CPUs this process may use (affinity, cgroup quota) that other processes
        # leave free; llama.cpp's threads wait for each other at every operation, so one thread
        # too many stalls every decode on a busy machine. Numbers do not depend on it.
        n_threads = args["n_threads"] or free_cpus(available_cpus())
        self.max_length = args["max_length"]
        self.pack_tokens = args["pack_tokens"]
        # llama.cpp's CPU kernels round differently for different batch shapes, so packing
        # several sequences into one decode changes scores slightly (~1e-2 on Q4_K models).
        # One sequence per decode (the default) keeps scores independent of batching.
        self.max_seqs = args["max_seqs"]
        self.share_context = args["share_context"]
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=args["n_ctx"] or self.max_length + 512,
                n_batch=_GEN_CHUNK,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                logits_all=False,
                verbose=False,
                seed=args["seed"],
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"{path}: llama.cpp cannot load this GGUF: {exc}") from exc
        n_train = self.llm._model.n_ctx_train()
        self.max_length = min(self.max_length, n_train) if n_train > 0 else self.max_length
        self.pack_tokens = max(self.pack_tokens, self.max_length)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.pack_tokens
        params.n_batch = self.pack_tokens
        params.n_ubatch = min(512, self.pack_tokens)
        params.n_seq_max = self.max_seqs
        params.kv_unified = True
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        self._score_ctx = internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._batch = llama_cpp.llama_batch_init(self.pack_tokens, 0, 1)
        self.n_vocab = self.llm.n_vocab()
        self.bos = self.llm.token_bos()
        self.eos = self.llm.token_eos()
        self.add_bos = bool(self.llm._model.add_bos_token())
        self.capabilities = Capabilities(max_length=self.max_length)
        digest = file_sha256(path)
        self.info = ModelInfo(
            name=spec.target,
            backend="llamacpp",
            fingerprint=fingerprint("llamacpp", digest, llama_cpp.__version__, SCORING),
            args={"path": str(path), "sha256": digest, "llama_cpp_python": llama_cpp.__version__, "n_threads": n_threads, **spec.args},
        )

    # -- tokens ---------------------------------------------------------------------------
    def _encode(self, text: str, special: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special) if text else []

    def _prefix(self, first: list[int]) -> list[int]:
        if self.add_bos and not (first and first[0] == self.bos):
            return [self.bos]
        return []

    def _start(self) -> int:
        return self.bos if self.bos >= 0 else self.eos

    # -- scoring ----------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Each context is decoded in one call, then each continuation (but its last token) in
        one call after it, reading the context's cache; the continuation's cells are removed
        before the next one. llama.cpp's numbers depend on where a sequence is cut into decode
        calls, so this cut is the same whether contexts are shared or not: the shared path
        (requests with the same context tokens decode it once) equals the plain one exactly."""
        pairs, cuts = [], []
        for r in requests:
            ctx, cont = self._pair(r)
            if len(cont) > self.max_length:
                raise BackendError(f"a continuation of {len(cont)} tokens does not fit a {self.max_length}-token window")
            cuts.append(n_cut(ctx, cont, self.max_length))
            pairs.append((ctx[-(self.max_length - len(cont) + 1):], cont))
        groups: dict[object, list[int]] = {}
        for i, (ctx, _) in enumerate(pairs):
            groups.setdefault(tuple(ctx) if self.share_context else i, []).append(i)
        out: list[LoglikelihoodResult | None] = [None] * len(requests)
        for members in groups.values():
            ctx = pairs[members[0]][0]
            for i, (lp, greedy) in zip(members, self._score_group(ctx, [pairs[i][1] for i in members])):
                out[i] = LoglikelihoodResult(lp, greedy, len(pairs[i][1]), cuts[i])
        return out  # type: ignore[return-value]

    def _decode(self, tokens: list[int], start: int, logits_from: int) -> None:
        b = self._batch
        for k, tok in enumerate(tokens):
            b.token[k] = tok
            b.pos[k] = start + k
            b.n_seq_id[k] = 1
            b.seq_id[k][0] = 0
            b.logits[k] = k >= logits_from
        b.n_tokens = len(tokens)
        rc = llama_cpp.llama_decode(self._score_ctx.ctx, b)
        if rc != 0:
            raise BackendError(f"llama_decode failed with code {rc}")

    def _logprobs(self, i: int) -> np.ndarray:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._score_ctx.ctx, i), shape=(self.n_vocab,)).astype(np.float64)
        m = logits.max()
        return logits - (m + np.log(np.exp(logits - m).sum()))

    def _score_group(self, ctx: list[int], conts: list[list[int]]) -> list[tuple[float, bool]]:
        mem = llama_cpp.llama_get_memory(self._score_ctx.ctx)
        llama_cpp.llama_memory_clear(mem, True)
        self._decode(ctx, 0, len(ctx) - 1)
        first = self._logprobs(len(ctx) - 1)
        out = []
        for cont in conts:
            total, greedy = float(first[cont[0]]), int(first.argmax()) == cont[0]
            if len(cont) > 1:
                self._decode(cont[:-1], len(ctx), 0)
                for k, tgt in enumerate(cont[1:]):
                    lp = self._logprobs(k)
                    total += float(lp[tgt])
                    greedy = greedy and int(lp.argmax()) == tgt
                llama_cpp.llama_memory_seq_rm(mem, 0, len(ctx), -1)
            out.append((total, greedy))
        return out

    def _score_rows(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """Each row is (input ids, target ids); the targets are predicted by the last
        len(targets) positions of the input. Returns (sum logprob, all greedy) per row."""
        out: list[tuple[float, bool] | None] = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        i = 0
        while i < len(order):
            group, used = [], 0
            while i < len(order) and len(group) < self.max_seqs and used + len(rows[order[i]][0]) <= self.pack_tokens:
                group.append(order[i])
                used += len(rows[order[i]][0])
                i += 1
            if not group:
                raise BackendError(f"a sequence of {len(rows[order[i]][0])} tokens exceeds the packing budget")
            for idx, res in zip(group, self._decode_group([rows[g] for g in group])):
                out[idx] = res
        return out  # type: ignore[return-value]

    def _decode_group(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        ctx = self._score_ctx.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        b = self._batch
        n = 0
        wanted: list[list[int]] = []  # batch positions whose logits we read, per row
        for seq, (ids, targets) in enumerate(rows):
            first_out = len(ids) - len(targets)
            pos_list = []
            for p, tok in enumerate(ids):
                b.token[n] = tok
                b.pos[n] = p
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = seq
                flag = p >= first_out
                b.logits[n] = flag
                if flag:
                    pos_list.append(n)
                n += 1
            wanted.append(pos_list)
        b.n_tokens = n
        rc = llama_cpp.llama_decode(ctx, b)
        if rc != 0:
            raise BackendError(f"llama_decode failed with code {rc}")
        results = []
        for (_ids, targets), pos_list in zip(rows, wanted):
            total, greedy = 0.0, True
            for bpos, tgt in zip(pos_list, targets):
                lp = self._logprobs(bpos)
                total += float(lp[tgt])
                greedy = greedy and int(lp.argmax()) == tgt
            results.append((total, greedy))
        return results

    # -- generation ---------------------------------------------------------------------------
    def _special_token(self, text: str) -> int | None:
        """The id of ``text`` when it is one special (control) token of this vocabulary."""
        if not text:
            return None
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(ids) == 1 and len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) > 1:
            return ids[0]
        return None

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """One request at a time. The prompt is decoded in chunks of ``_GEN_CHUNK`` tokens
        from position 0; the chunks it shares whole with the previous prompt stay in the
        cache. llama-cpp-python on its own would reuse any shared prefix, and the decode of the
        rest would then start mid-chunk and round differently, so a result would depend on the
        order of requests; reusing whole chunks only, it does not."""
        return [self._generate_one(r) for r in requests]

    def _reuse_prefix(self, prompt: list[int]) -> None:
        """Keep the cached whole chunks ``prompt`` starts with (at least one token is left to
        decode, whose logits give the first new token); the rest is dropped by ``generate``."""
        same = len(os.path.commonprefix([self.llm.input_ids[: self.llm.n_tokens].tolist(), prompt[:-1]]))
        self.llm.n_tokens = same - same % _GEN_CHUNK

    def _generate_one(self, r: GenerateRequest) -> GenerateResult:
        prompt = self._encode(r.context, r.special)
        prompt = self._prefix(prompt) + prompt
        room = self.llm.n_ctx() - r.max_tokens
        if room <= 0:
            raise BackendError(f"max_tokens={r.max_tokens} does not fit the context window of {self.llm.n_ctx()}")
        prompt, cut = keep_last(prompt, room)
        vocab = self.llm._model.vocab
        stop_ids = set(r.until_ids) | {t for t in map(self._special_token, r.until) if t is not None}
        out: list[int] = []
        finish = "length"
        self._reuse_prefix(prompt)
        self.llm.set_seed(r.sampling_seed if r.temperature > 0 else 0)
        try:
            for tok in self.llm.generate(
                prompt, top_k=r.top_k, top_p=r.top_p, min_p=0.0, typical_p=1.0, temp=r.temperature,
                repeat_penalty=r.repetition_penalty, reset=True,
            ):
                if tok in stop_ids or llama_cpp.llama_vocab_is_eog(vocab, tok):
                    finish = "stop"
                    break
                out.append(tok)
                if r.until and trim_at_stop(self._detok(out, prompt), r.until)[1]:
                    finish = "stop"
                    break
                if len(out) >= r.max_tokens:
                    break
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"llama.cpp generation failed: {exc}") from exc
        text, _ = trim_at_stop(self._detok(out, prompt), r.until)
        return GenerateResult(text, len(out), finish, cut)

    def _detok(self, tokens: list[int], prompt: list[int]) -> str:
        # special tokens are kept as text, as the hf backend decodes them
        return self.llm.detokenize(tokens, prev_tokens=prompt, special=True).decode("utf-8", errors="ignore")

    def chat_template(self) -> ChatTemplate | None:
        src = self.llm.metadata.get("tokenizer.chat_template")
        if not src:
            return None
        piece = lambda t: self.llm._model.token_get_text(t) if t >= 0 else ""  # noqa: E731
        return ChatTemplate(src, piece(self.bos), piece(self.eos))

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_score_ctx", None) is not None:
            self._score_ctx.close()
            self._score_ctx = None
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None
