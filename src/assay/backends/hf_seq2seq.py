"""Encoder-decoder language models through transformers (mT0/mT5, T5, BART, ...).

``hf:MODEL`` lands here when the checkpoint's config says ``is_encoder_decoder`` (the registry
peeks at it); the arguments are those of the causal ``hf`` backend.

What is scored, following lm-evaluation-harness's seq2seq path:

- ``loglikelihood(context, continuation)``: the encoder reads the context, tokenised with the
  tokenizer's special tokens (T5 appends ``</s>``, BART wraps in ``<s> ... </s>``) and cut from
  the left to ``max_length``; the decoder scores the continuation tokenised on its own, without
  special tokens and without an added EOS, after the decoder start token. Trailing spaces of
  the context move to the continuation, as in the harness (SentencePiece folds them into the
  word-start marker). The continuation is never cut.
- ``loglikelihood_rolling(text)``: the encoder reads the empty string (its special tokens
  only, or EOS if it has none); the decoder scores every token of the text once, in windows of
  ``max_length`` decoder tokens that carry as much preceding text as fits
  (``common.rolling_windows`` with the decoder start token in place of BOS).
- ``generate``: ``model.generate`` on the encoded context, one call per decoding setting.

Batches are right-padded on both sides with attention masks; decoder positions start at 0 in
every row, so a row's numbers do not depend on what else is in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

try:
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'hf' backend", "hf", "transformers") from exc

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import chat_template_of, fingerprint, keep_last, local_fingerprint, rolling_windows
from assay.backends.hf_common import BATCH_TOKENS, DTYPES, LOAD_OPTIONS, OPTIONS, HFGeneration, load_error, set_threads
from assay.backends.registry import ModelSpec, resolve_path
from assay.errors import BackendError
from assay.prompts.chat import ChatTemplate
from assay.requests import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

Row = tuple[list[int], list[int], list[int]]  # encoder ids, decoder input ids, targets


class HFSeq2SeqBackend(HFGeneration, Backend):
    """``hf:MODEL[,dtype=float32,max_length=N,revision=R,n_threads=N,batch_tokens=N]`` for an
    encoder-decoder checkpoint."""

    # the causal backend's loading options (adapters, quantisation, device maps) are not served here
    options = {**OPTIONS, "batch_tokens": BATCH_TOKENS}
    unsupported_options = dict.fromkeys(["gen_batch_tokens", "share_context", *LOAD_OPTIONS], "for an encoder-decoder model")

    def __init__(self, spec: ModelSpec):
        args = self.parse_options(spec)
        dtype_name = args["dtype"]
        set_threads(args["n_threads"])
        self.batch_tokens = args["batch_tokens"]
        path = resolve_path(spec)
        kwargs: dict = {}
        if path is not None and path.is_file():
            raise BackendError(f"{path}: an encoder-decoder model loads from a folder or a hub id")
        if path is not None:
            where = str(path)
            identity: tuple = ("folder", local_fingerprint(path))
        else:
            where = spec.target
            kwargs["revision"] = args["revision"]
            identity = ("hub", spec.target, args["revision"])
        trust = args["trust_remote_code"]
        try:
            self.tok = AutoTokenizer.from_pretrained(where, trust_remote_code=trust, **kwargs)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(where, dtype=DTYPES[dtype_name], trust_remote_code=trust, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise load_error(spec, exc) from exc
        self.model.eval()
        if identity[0] == "hub":
            identity = identity + (getattr(self.model.config, "_commit_hash", None),)
        cfg = self.model.config
        limit = getattr(cfg, "max_position_embeddings", None)  # absolute positions (BART); T5's are relative
        self.max_length = args["max_length"] or int(limit or getattr(cfg, "n_positions", None) or 512)
        if limit:
            self.max_length = min(self.max_length, int(limit))
        self.eos = self.tok.eos_token_id
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (self.eos or 0)
        start = getattr(self.model.generation_config, "decoder_start_token_id", None)
        self.start = start if start is not None else cfg.decoder_start_token_id
        if self.start is None:
            raise BackendError(f"{spec.target}: the model config names no decoder_start_token_id")
        self.capabilities = Capabilities(max_length=self.max_length)
        self.info = ModelInfo(
            name=spec.target,
            backend="hf",
            fingerprint=fingerprint("hf-seq2seq", identity, dtype_name, transformers.__version__, torch.__version__),
            args={"source": where, **kwargs, "architecture": "encoder-decoder", "dtype": dtype_name,
                  "transformers": transformers.__version__, "torch": torch.__version__, **spec.args},
        )

    # -- tokens -------------------------------------------------------------------------------
    def _encode(self, text: str, special: bool, add_special: bool) -> list[int]:
        if not text and not add_special:
            return []
        return self.tok(text, add_special_tokens=add_special, split_special_tokens=not special)["input_ids"]

    def _encoder_ids(self, context: str, special: bool) -> list[int]:
        return self._encoder_cut(context, special)[0]

    def _encoder_cut(self, context: str, special: bool) -> tuple[list[int], int]:
        """The encoder's input ids, cut from the left to the window, and how many were cut."""
        ids = self._encode(context, special, True)
        if not ids:
            ids = [self.eos if self.eos is not None else self.pad]
        return keep_last(ids, self.max_length)

    # -- scoring ------------------------------------------------------------------------------
    def _batches(self, lengths: list[tuple[int, int]]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i][0], -lengths[i][1]))
        out: list[list[int]] = []
        cur: list[int] = []
        enc_w = dec_w = 0
        for i in order:
            e, d = max(enc_w, lengths[i][0]), max(dec_w, lengths[i][1])
            if cur and (e + d) * (len(cur) + 1) > self.batch_tokens:
                out.append(cur)
                cur, e, d = [], lengths[i][0], lengths[i][1]
            cur.append(i)
            enc_w, dec_w = e, d
        if cur:
            out.append(cur)
        return out

    @staticmethod
    def _pad(seqs: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), value, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[j, : len(s)] = 1
        return ids, mask

    @torch.inference_mode()
    def _score_rows(self, rows: list[Row]) -> list[tuple[float, bool]]:
        """For each row, the summed log-probability of its targets, predicted by the last
        len(targets) decoder positions, and whether each target was the argmax."""
        out: list[tuple[float, bool] | None] = [None] * len(rows)
        for group in self._batches([(len(r[0]), len(r[1])) for r in rows]):
            enc, enc_mask = self._pad([rows[i][0] for i in group], self.pad)
            dec, dec_mask = self._pad([rows[i][1] for i in group], self.pad)
            logits = self.model(input_ids=enc, attention_mask=enc_mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask).logits
            for j, i in enumerate(group):
                n_dec, targets = len(rows[i][1]), rows[i][2]
                lp = torch.log_softmax(logits[j, n_dec - len(targets): n_dec].float(), dim=-1)
                tgt = torch.tensor(targets, dtype=torch.long)
                out[i] = (lp.gather(-1, tgt[:, None]).sum().item(), bool((lp.argmax(-1) == tgt).all()))
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        rows: list[Row] = []
        cuts: list[int] = []
        for r in requests:
            context, continuation = r.context, r.continuation
            n_spaces = len(context) - len(context.rstrip(" "))
            if n_spaces:
                context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
            cont = self._encode(continuation, False, False)
            if not cont:
                raise BackendError(f"the continuation {continuation!r} has no tokens")
            if len(cont) > self.max_length:
                raise BackendError(f"a continuation of {len(cont)} tokens does not fit a {self.max_length}-token window")
            enc, cut = self._encoder_cut(context, r.special)
            rows.append((enc, [self.start] + cont[:-1], cont))
            cuts.append(cut)
        return [LoglikelihoodResult(lp, g, len(row[2]), c) for (lp, g), row, c in zip(self._score_rows(rows), rows, cuts)]

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        empty = self._encoder_ids("", False)
        rows: list[Row] = []
        owner: list[int] = []
        for i, r in enumerate(requests):
            for dec, targets in rolling_windows(self._encode(r.text, False, False), self.start, self.max_length):
                rows.append((empty, dec, targets))
                owner.append(i)
        sums, counts = [0.0] * len(requests), [0] * len(requests)
        for (lp, _), i, row in zip(self._score_rows(rows), owner, rows):
            sums[i] += lp
            counts[i] += len(row[2])
        return [RollingResult(s, c) for s, c in zip(sums, counts)]

    # -- generation (batching, stops and decoding: HFGeneration) --------------------------------
    def _generate_group(self, reqs: list[GenerateRequest]) -> list[GenerateResult]:
        r0 = reqs[0]
        encoded = [self._encoder_cut(r.context, r.special) for r in reqs]
        ids, mask = self._pad([e for e, _ in encoded], self.pad)
        stop_ids = self._stop_ids(r0)
        kwargs = self._generate_kwargs(r0, stop_ids, 1) | {"decoder_start_token_id": self.start}
        try:
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"transformers generation failed: {exc}") from exc
        results = self._results(reqs, [out[j, 1:].tolist() for j in range(len(reqs))], stop_ids)  # after the decoder start
        return [replace(res, truncated=cut) for res, (_, cut) in zip(results, encoded)]

    def chat_template(self) -> ChatTemplate | None:
        return chat_template_of(self.tok)

    def close(self) -> None:
        self.model = None
