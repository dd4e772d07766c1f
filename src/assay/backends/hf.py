"""Causal language models through transformers (a hub id, a local folder, or a GGUF file
loaded with ``gguf_file``, which transformers de-quantises).

Batches are left-padded with explicit position ids, so a row's numbers do not depend on
what else is in its batch; only the positions that predict continuation tokens go through
the output head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'hf' backend", "hf", "transformers") from exc

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import HFTokens, TokenScoring, cache_dir, chat_template_of, file_sha256, fingerprint, fit_window, keep_last, local_fingerprint, n_cut
from assay.backends.hf_common import BATCH_TOKENS, DTYPES, LOAD_OPTIONS, OPTIONS, HFGeneration, load_error, set_threads
from assay.backends.hf_load import LoadOptions, attach_adapter, check_gpu_needs, checkpoint_quant_method, quantization
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

# the largest logits tensor one forward pass may return (floats): ~1 GB in float32
_LOGITS_BUDGET = 1 << 28
# rows of one pass are at least this share of its longest row (less padding, more passes),
# or at most _SLACK tokens shorter: a forward pass has a fixed cost (~0.1 s for a 30-layer model
# on CPU) that outweighs a few padding tokens per row when rows are short
_BUCKET = 0.8
_SLACK = 16
# greedy generation computes a prompt prefix shared by every row once when it is this long
_MIN_SHARED_PREFIX = 32
# generation runs a batch in passes of at most this many rows × (prompt + max_tokens) tokens:
# the key/value cache those rows hold (~46 kB a token for SmolLM2-135M in float32) is the
# memory generation needs, and it no longer grows with the scheduler's batch size
_GEN_BATCH_TOKENS = 16384


def _fits(length: int, longest: int) -> bool:
    """A row of ``length`` tokens may share a pass whose longest row has ``longest``."""
    return longest - length <= max(_SLACK, (1 - _BUCKET) * longest)


_CACHE_NAMES: dict[type, str] = {}  # model class -> the keyword its forward takes a cache by


def _forward_cache_name(cls: type) -> str:
    if cls not in _CACHE_NAMES:
        import inspect

        _CACHE_NAMES[cls] = "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"
    return _CACHE_NAMES[cls]


def _pass_cache(model: Any, cache: Any) -> dict[str, Any]:
    """Forward-pass arguments that hand ``model`` a key/value cache and ask for it back.

    transformers 5 takes the cache as ``cache`` and warns (a FutureWarning on every call) on
    the old ``past_key_values``; earlier releases, and remote code written for them, take only
    ``past_key_values`` and would silently ignore ``cache``. So the name comes from the model's
    own ``forward`` (a PEFT wrapper passes keywords through to the model it wraps)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {_forward_cache_name(type(inner)): cache, "use_cache": True}


def _returned_cache(out: Any) -> Any:
    """The key/value cache a forward pass returned (``cache``; ``past_key_values`` before
    transformers 5 renamed it, where reading the old name now logs a deprecation)."""
    cache = out.get("cache")
    return cache if cache is not None else out.get("past_key_values")


def _left_pad(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows right-aligned in a batch as wide as the longest: input ids filled with ``pad``,
    and the attention mask of the real tokens."""
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for j, x in enumerate(seqs):
        if x:
            ids[j, width - len(x):] = torch.tensor(x)
            mask[j, width - len(x):] = 1
    return ids, mask


def _save_dequantised(model: object, tok: object, target: Path) -> None:
    """Keep transformers' de-quantisation of a GGUF (slow) as a checkpoint for next time."""
    import shutil

    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    # after loading, the weights are plain float tensors; only the marker says "gguf"
    quantizer = getattr(model, "hf_quantizer", None)
    qconfig = getattr(model.config, "quantization_config", None)  # type: ignore[attr-defined]
    try:
        model.hf_quantizer = None  # type: ignore[attr-defined]
        if qconfig is not None:
            del model.config.quantization_config  # type: ignore[attr-defined]
        model.save_pretrained(tmp)  # type: ignore[attr-defined]
        tok.save_pretrained(tmp)  # type: ignore[attr-defined]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(target)
    except (OSError, ValueError, RuntimeError, TypeError):  # a cache: never fail the load
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        model.hf_quantizer = quantizer  # type: ignore[attr-defined]
        if qconfig is not None:
            model.config.quantization_config = qconfig  # type: ignore[attr-defined]


class HFBackend(HFGeneration, HFTokens, TokenScoring, Backend):
    """``hf:MODEL[,dtype=float32,max_length=N,revision=R,n_threads=N,batch_tokens=N,adapter=PEFT,
    merge=true,device_map=auto|cpu|cuda:N,load_in_8bit=true,load_in_4bit=true]``"""

    options = {
        **OPTIONS,
        "batch_tokens": BATCH_TOKENS,
        "gen_batch_tokens": Option(int, _GEN_BATCH_TOKENS, "tokens of one generation pass (rows × (prompt + max_tokens))", min=1),
        "share_context": Option(bool, True, "score the continuations of a shared context from one pass over it"),
        **LOAD_OPTIONS,
    }
    # what the vision-language backend adds (load_backend checks names against both)
    unsupported_options = {"batch_size": "for a text-only model (it sets the batch of a vision-language model)"}

    def __init__(self, spec: ModelSpec):
        args = self.parse_options(spec)
        dtype_name = args["dtype"]
        set_threads(args["n_threads"])
        self.batch_tokens = args["batch_tokens"]
        self.gen_batch_tokens = args["gen_batch_tokens"]
        # score the continuations of a shared context from one pass over it (see _score_shared)
        self.share_context = args["share_context"]
        opts = LoadOptions.parse(spec.text, args)
        path = resolve_path(spec)
        kwargs: dict = {}
        gguf_cache: Path | None = None
        if path is not None and path.is_file():
            if path.suffix != ".gguf":
                raise BackendError(f"{path}: the hf backend loads a folder, a hub id or a .gguf file")
            digest = file_sha256(path)
            identity = ("gguf", digest)
            gguf_cache = cache_dir() / "hf-gguf" / digest[:24]
            if (gguf_cache / "config.json").is_file():
                where, gguf_cache = str(gguf_cache), None  # de-quantised once already
            else:
                where, kwargs["gguf_file"] = str(path.parent), path.name
        elif path is not None:
            where = str(path)
            identity = ("folder", local_fingerprint(path))
        else:
            where = spec.target
            kwargs["revision"] = args["revision"]
            identity = ("hub", spec.target, args["revision"])
        trust = args["trust_remote_code"]
        quant_method = None if "gguf_file" in kwargs else checkpoint_quant_method(where, path, kwargs.get("revision"), trust)
        check_gpu_needs(spec.target, opts, quant_method)  # before any weights are read
        try:
            self.tok = AutoTokenizer.from_pretrained(where, trust_remote_code=trust, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(
                where, dtype=DTYPES[dtype_name], trust_remote_code=trust, **kwargs, **opts.model_kwargs()
            )
        except (OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
            raise load_error(spec, exc) from exc
        self.model.eval()
        extra: dict = {}
        if opts.adapter is not None:
            self.model, extra = attach_adapter(self.model, where if path is not None else spec.target, opts)
        quant = quantization(opts, quant_method)
        if quant is not None:
            extra["quantization"] = quant
        if opts.device_map is not None:
            extra["device_map"] = opts.device_map
        self.device = self.model.device
        if gguf_cache is not None:
            _save_dequantised(self.model, self.tok, gguf_cache)
        if identity[0] == "hub":
            identity = identity + (getattr(self.model.config, "_commit_hash", None),)
        n_pos = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.max_length = min(args["max_length"] or 2048, int(n_pos))
        self.bos = self.tok.bos_token_id
        self.eos = self.tok.eos_token_id
        self.add_bos = bool(getattr(self.tok, "add_bos_token", False)) and self.bos is not None
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (self.eos or 0)
        self.capabilities = Capabilities(max_length=self.max_length)
        self.info = ModelInfo(
            name=spec.target,
            backend="hf",
            # plain loads keep their old fingerprint; an adapter or quantisation adds to it
            fingerprint=fingerprint("hf", identity, dtype_name, transformers.__version__, torch.__version__, *([extra] if extra else [])),
            args={"source": where, **kwargs, "dtype": dtype_name, "transformers": transformers.__version__, "torch": torch.__version__, "n_threads": torch.get_num_threads(), **spec.args, **extra},
        )

    # -- scoring ----------------------------------------------------------------------------
    def _batches(self, lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        out, cur, width = [], [], 0
        for i in order:
            w = max(width, lengths[i])
            if cur and w * (len(cur) + 1) > self.batch_tokens:
                out.append(cur)
                cur, w = [], lengths[i]
            cur.append(i)
            width = w
        if cur:
            out.append(cur)
        return out

    @torch.inference_mode()
    def _score_rows(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        out: list[tuple[float, bool] | None] = [None] * len(rows)
        for group in self._batches([len(r[0]) for r in rows]):
            keep = max(len(rows[i][1]) for i in group)
            ids, mask = _left_pad([rows[i][0] for i in group], self.pad)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            dev = self.device
            logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), logits_to_keep=keep).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for j, i in enumerate(group):
                targets = rows[i][1]
                lp = logp[j, keep - len(targets):]
                tgt = torch.tensor(targets)
                total = lp.gather(-1, tgt[:, None]).sum().item()
                greedy = bool((lp.argmax(-1) == tgt).all())
                out[i] = (total, greedy)
        return out  # type: ignore[return-value]

    # -- shared-context scoring ------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Requests whose contexts tokenise the same (the choices of a multiple-choice item)
        are scored from one pass over the context: its key/value cache is copied to each
        continuation, which then reads only its own tokens. Scores equal the plain path's
        (one full pass per request) to float rounding; ``share_context=false`` turns it off."""
        pairs = [self._pair(r) for r in requests]
        groups: dict[tuple[int, ...], list[int]] = {}
        plain: list[int] = []
        for i, (ctx, cont) in enumerate(pairs):
            fits = len(ctx) + len(cont) - 1 <= self.max_length
            if self.share_context and fits:
                groups.setdefault(tuple(ctx), []).append(i)
            else:
                plain.append(i)
        shared = [g for g in groups.values() if len(g) > 1]
        plain += [g[0] for g in groups.values() if len(g) == 1]
        out: list[LoglikelihoodResult | None] = [None] * len(requests)
        if plain:
            rows = [(fit_window(*pairs[i], self.max_length)[0], pairs[i][1]) for i in plain]
            for i, (lp, g) in zip(plain, self._score_rows(rows)):
                out[i] = LoglikelihoodResult(lp, g, len(pairs[i][1]), n_cut(*pairs[i], self.max_length))
        for chunk in self._shared_chunks(shared, pairs):
            results = self._score_shared([(pairs[g[0]][0], [pairs[i][1] for i in g]) for g in chunk])
            for g, res in zip(chunk, results):
                for i, (lp, greedy) in zip(g, res):
                    out[i] = LoglikelihoodResult(lp, greedy, len(pairs[i][1]))
        return out  # type: ignore[return-value]

    def _shared_chunks(self, groups: list[list[int]], pairs: list[tuple[list[int], list[int]]]) -> list[list[list[int]]]:
        """Groups in passes whose context batch and continuation logits fit the budgets."""
        vocab = int(self.model.config.get_text_config().vocab_size)
        out, cur, ctx_w, rows, suf_w = [], [], 0, 0, 0
        for g in sorted(groups, key=lambda g: -len(pairs[g[0]][0])):
            cw = max(ctx_w, len(pairs[g[0]][0]))
            sw = max(suf_w, max(len(pairs[i][1]) for i in g))
            n = rows + len(g)
            # a pass holds contexts of similar length: padding is computed like real tokens
            short = not _fits(len(pairs[g[0]][0]), ctx_w)
            if cur and (short or cw * (len(cur) + 1) > self.batch_tokens or n * sw * vocab > _LOGITS_BUDGET):
                out.append(cur)
                cur, cw, n, sw = [], len(pairs[g[0]][0]), len(g), max(len(pairs[i][1]) for i in g)
            cur.append(g)
            ctx_w, rows, suf_w = cw, n, sw
        if cur:
            out.append(cur)
        return out

    @torch.inference_mode()
    def _score_shared(self, groups: list[tuple[list[int], list[list[int]]]]) -> list[list[tuple[float, bool]]]:
        """One pass over the (left-padded) contexts, keeping their cache and the logits of
        their last position (which predict every continuation's first token); then one pass
        over every continuation but its last token, right-padded, each row reading its
        context's cache, with positions continuing the context's."""
        dev = self.device
        ids, mask = _left_pad([ctx for ctx, _ in groups], self.pad)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        first = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True, logits_to_keep=1)
        first_lp = torch.log_softmax(first.logits[:, -1].float(), dim=-1).cpu()
        owner = [j for j, (_, conts) in enumerate(groups) for _ in conts]
        conts = [c for _, cs in groups for c in cs]
        tail: dict[int, tuple[float, bool]] = {}
        ctx_len = mask.sum(-1)
        # continuations longer than one token: their tokens but the last, in passes of rows of
        # similar length, each row with its own copy of its context's cache
        longer = sorted((r for r, c in enumerate(conts) if len(c) > 1), key=lambda r: -len(conts[r]))
        vocab = first.logits.shape[-1]
        b = 0
        while b < len(longer):
            sw = len(conts[longer[b]]) - 1
            n = max(1, min(self.batch_tokens // max(sw, 1), _LOGITS_BUDGET // (sw * vocab)))
            chunk = [r for r in longer[b : b + n] if _fits(len(conts[r]) - 1, sw)]
            b += len(chunk)
            own = torch.tensor([owner[r] for r in chunk])
            sids = torch.full((len(chunk), sw), self.pad, dtype=torch.long)
            smask = torch.zeros((len(chunk), sw), dtype=torch.long)
            for k, r in enumerate(chunk):
                c = conts[r]
                sids[k, : len(c) - 1] = torch.tensor(c[:-1])
                smask[k, : len(c) - 1] = 1
            full_mask = torch.cat([mask[own], smask], dim=1)
            spos = ctx_len[own][:, None] + torch.arange(sw)[None, :]
            cache = self._select_cache(_returned_cache(first), own.to(dev))
            logits = self.model(input_ids=sids.to(dev), attention_mask=full_mask.to(dev), position_ids=spos.to(dev), **_pass_cache(self.model, cache)).logits
            lps = torch.log_softmax(logits.float(), dim=-1).cpu()
            for k, r in enumerate(chunk):
                c = conts[r]
                lp = lps[k, : len(c) - 1]
                tgt = torch.tensor(c[1:])
                tail[r] = (lp.gather(-1, tgt[:, None]).sum().item(), bool((lp.argmax(-1) == tgt).all()))
        results: list[list[tuple[float, bool]]] = [[] for _ in groups]
        for r, (j, c) in enumerate(zip(owner, conts)):
            lp0 = first_lp[j]
            total, greedy = lp0[c[0]].item(), int(lp0.argmax()) == c[0]
            if r in tail:
                total, greedy = total + tail[r][0], greedy and tail[r][1]
            results[j].append((total, greedy))
        return results

    def _select_cache(self, cache: Any, rows: torch.Tensor) -> Any:
        """A new cache holding, for each of ``rows``, a copy of that context's keys and values."""
        from transformers import DynamicCache

        out = DynamicCache(config=self.model.config)
        for i, layer in enumerate(cache.layers):
            out.update(layer.keys.index_select(0, rows), layer.values.index_select(0, rows), i)
        return out

    # -- generation (batching, stops and decoding: HFGeneration) --------------------------------
    def _generate_group(self, reqs: list[GenerateRequest]) -> list[GenerateResult]:
        r0 = reqs[0]
        room = self.max_length - r0.max_tokens
        if room <= 0:
            raise BackendError(f"max_tokens={r0.max_tokens} does not fit the context window of {self.max_length}")
        seqs, cuts = [], []
        for r in reqs:
            toks = self._encode(r.context, r.special)
            seq, cut = keep_last(self._prefix(toks) + toks, room)
            seqs.append(seq)
            cuts.append(cut)
        stop_ids = self._stop_ids(r0)
        fast = r0.temperature == 0 and r0.repetition_penalty == 1.0 and self.share_context and self._plain_greedy()
        new: list[list[int]] = [[] for _ in seqs]
        try:
            for part in self._gen_passes([len(x) for x in seqs], r0.max_tokens):
                rows = [seqs[i] for i in part]
                if fast:
                    out = self._greedy(rows, r0, stop_ids)
                else:
                    ids, mask = _left_pad(rows, self.pad)
                    kwargs = self._generate_kwargs(r0, stop_ids, ids.shape[1])
                    gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs).cpu()
                    out = [gen[j, ids.shape[1]:].tolist() for j in range(len(rows))]
                    del gen
                for i, toks in zip(part, out):
                    new[i] = toks
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"transformers generation failed: {exc}") from exc
        return [replace(res, truncated=cut) for res, cut in zip(self._results(reqs, new, stop_ids), cuts)]

    def _gen_passes(self, lengths: list[int], max_tokens: int) -> list[list[int]]:
        """Rows (longest first) in generation passes of at most ``gen_batch_tokens`` rows ×
        (longest prompt + max_tokens): the most key/value cache a pass can hold. A row's tokens
        do not depend on the others of its pass (left padding with explicit positions)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        out: list[list[int]] = []
        for i in order:
            if out and (len(out[-1]) + 1) * (lengths[out[-1][0]] + max_tokens) <= self.gen_batch_tokens:
                out[-1].append(i)
            else:
                out.append([i])
        return out

    def _plain_greedy(self) -> bool:
        """Greedy decoding is a plain argmax for this model: its generation config adds no
        logits processor (n-gram bans, suppressed or forced tokens, biases, a minimum length)."""
        gc = self.model.generation_config
        off = (None, 0, [], {})
        names = ("no_repeat_ngram_size", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "forced_bos_token_id",
                 "forced_eos_token_id", "sequence_bias", "min_length", "min_new_tokens", "exponential_decay_length_penalty")
        return all(getattr(gc, name, None) in off for name in names)

    @torch.inference_mode()
    def _greedy(self, seqs: list[list[int]], r0: GenerateRequest, stop_ids: list[int]) -> list[list[int]]:
        """Greedy decoding of a batch, faster than ``model.generate`` on the same arithmetic:
        the prompt prefix every row shares (a few-shot prefix) is computed once and its cache
        copied to each row, and a row that has stopped leaves the batch instead of being
        computed as padding until the longest row ends. Each row gets the tokens
        ``generate`` would give it (tests compare the two)."""
        dev = self.device
        n = len(seqs)
        # every row keeps at least one token of its own, whose logits give its first new token
        shared = min(len(os.path.commonprefix(seqs)), min(len(x) for x in seqs) - 1)
        if n == 1 or shared < _MIN_SHARED_PREFIX:
            shared = 0
        cache = None
        if shared:
            first = self.model(input_ids=torch.tensor([seqs[0][:shared]], device=dev), use_cache=True, logits_to_keep=1)
            cache = self._select_cache(_returned_cache(first), torch.zeros(n, dtype=torch.long, device=dev))
            del first
        ids, rest_mask = _left_pad([x[shared:] for x in seqs], self.pad)
        mask = torch.cat([torch.ones((n, shared), dtype=torch.long), rest_mask], dim=1)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        out = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), **_pass_cache(self.model, cache), logits_to_keep=1)
        cache, mask, last = _returned_cache(out), mask.to(dev), pos[:, -1].to(dev)
        logits = out.logits[:, -1]
        del out  # it holds the cache too: rows that stop must leave the only reference to it
        stops = set(stop_ids)
        until = [u for u in r0.until if u]
        tail = 2 * max((len(u) for u in until), default=0) + 8  # tokens that can hold a stop string
        new: list[list[int]] = [[] for _ in range(n)]
        active = list(range(n))  # row of the batch -> request
        for step in range(r0.max_tokens):
            tokens = logits.float().argmax(-1).tolist()
            keep = []
            for k, (row, t) in enumerate(zip(active, tokens)):
                new[row].append(t)
                done = t in stops or (until and any(u in self.tok.decode(new[row][-tail:], skip_special_tokens=False) for u in until))
                if not done:
                    keep.append(k)
            if not keep or step == r0.max_tokens - 1:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=dev)
                cache.batch_select_indices(sel)  # in place, a layer at a time
                mask, last = mask[sel], last[sel]
                active = [active[k] for k in keep]
            nxt = torch.tensor([[new[row][-1]] for row in active], device=dev)
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=dev)], dim=1)
            last = last + 1
            logits = self.model(input_ids=nxt, attention_mask=mask, position_ids=last[:, None], **_pass_cache(self.model, cache)).logits[:, -1]
        return new

    def chat_template(self) -> ChatTemplate | None:
        return chat_template_of(self.tok)

    def close(self) -> None:
        self.model = None


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
