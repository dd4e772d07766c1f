"""Vision-language models through transformers' processor API: IDEFICS first
(``IdeficsForVisionText2Text`` + ``AutoProcessor``), and the processor-based image-text-to-text
models (LLaVA and its kin) where the same code serves.

A request's context is text with ``<image>`` placeholders; its ``images`` (ids, see
``assay.data.images``) fill them in order. The processor turns the interleaved sequence into
token ids, pixel values and (IDEFICS) the image attention mask, exactly as a user of the model
would prepare it. Log-likelihood: the processor prepares the context and context+continuation;
the continuation's tokens are those after the context's, scored in one forward pass with
images in the context — so answer options of image classification and multiple-choice VQA are
scored, not generated. Rows of a batch are right-padded (IDEFICS derives positions from the
attention mask), so a row's numbers do not depend on its batch. Generation left-pads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import torch
    import transformers
    from transformers import AutoConfig, AutoProcessor
except ImportError as exc:  # pragma: no cover - guarded by the registry
    from assay.errors import MissingDependency

    raise MissingDependency("the 'hf' backend", "hf", "transformers") from exc

from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import fingerprint, local_fingerprint
from assay.backends.hf_common import DTYPES, LOAD_OPTIONS, OPTIONS, HFGeneration, load_error, set_threads
from assay.backends.hf_load import LoadOptions, check_gpu_needs
from assay.backends.options import Option
from assay.backends.registry import ModelSpec, resolve_path
from assay.data import images as image_store
from assay.errors import BackendError, ConfigError
from assay.prompts.chat import ChatTemplate
from assay.requests import (
    IMAGE,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

class HFVisionBackend(HFGeneration, Backend):
    """``hf:MODEL[,dtype=float32,max_length=N,revision=R,batch_size=N,n_threads=N,device_map=…]``
    for a vision-language checkpoint (chosen automatically from its config)."""

    options = {**OPTIONS, "batch_size": Option(int, 8, "rows of one scoring pass", min=1), **LOAD_OPTIONS}
    unsupported_options = dict.fromkeys(["batch_tokens", "gen_batch_tokens", "share_context"], "for a vision-language model")

    def __init__(self, spec: ModelSpec):
        args = self.parse_options(spec)
        dtype_name = args["dtype"]
        set_threads(args["n_threads"])
        self.batch_size = args["batch_size"]
        opts = LoadOptions.parse(spec.text, args)
        if opts.adapter is not None:
            raise ConfigError(f"model '{spec.text}': adapters are supported for causal models; merge the adapter into the vision-language checkpoint first")
        path = resolve_path(spec)
        where = str(path) if path is not None else spec.target
        revision = None if path is not None else args["revision"]
        trust = args["trust_remote_code"]
        check_gpu_needs(spec.target, opts, None)
        try:
            config = AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust)
            self.processor = AutoProcessor.from_pretrained(where, revision=revision, trust_remote_code=trust)
            self.model = self._model_class(config).from_pretrained(
                where, revision=revision, dtype=DTYPES[dtype_name], trust_remote_code=trust, **opts.model_kwargs()
            )
        except (OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
            raise load_error(spec, exc, "this vision-language model") from exc
        self.model.eval()
        self.idefics = config.model_type == "idefics"
        self.tok = self.processor.tokenizer
        self.device = self.model.device
        text_cfg = getattr(config, "text_config", None) or config
        n_pos = getattr(text_cfg, "max_position_embeddings", None) or 2048
        self.max_length = min(args["max_length"] or 2048, int(n_pos))
        eos = self.tok.eos_token_id
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (eos or 0)
        # IDEFICS' image marker tokens must never be generated (the model card's advice)
        self.bad_words = [[t] for t in self.tok.convert_tokens_to_ids(["<image>", "<fake_token_around_image>"]) if t is not None and t != self.tok.unk_token_id] if self.idefics else []
        self.capabilities = Capabilities(loglikelihood=True, rolling=False, generate=True, images=True, max_length=self.max_length)
        identity = ("folder", local_fingerprint(Path(where))) if path is not None else ("hub", spec.target, revision, getattr(config, "_commit_hash", None))
        extra = {"device_map": opts.device_map} if opts.device_map is not None else {}
        self.info = ModelInfo(
            name=spec.target,
            backend="hf",
            fingerprint=fingerprint("hf-vision", identity, dtype_name, transformers.__version__, torch.__version__, *([extra] if extra else [])),
            args={"source": where, "dtype": dtype_name, "model_type": config.model_type, "transformers": transformers.__version__, "torch": torch.__version__, **spec.args},
        )

    @staticmethod
    def _model_class(config: Any) -> Any:
        if config.model_type == "idefics":
            return transformers.IdeficsForVisionText2Text
        return getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq

    # -- preparing inputs with the processor --------------------------------------------------
    def _pictures(self, images: Sequence[str]) -> list[Any]:
        return [image_store.load(ref) for ref in images]

    def _prepare(self, texts: list[str], images: list[Sequence[str]], padding: bool = False) -> Any:
        """The processor's inputs for contexts with ``<image>`` placeholders."""
        for t, imgs in zip(texts, images):
            if t.count(IMAGE) != len(imgs):
                raise BackendError(f"a context has {t.count(IMAGE)} {IMAGE} placeholder(s) for {len(imgs)} image(s)")
        kw: dict[str, Any] = {"return_tensors": "pt"}
        if padding:
            kw["padding"] = True
        if self.idefics:
            prompts = []
            for t, imgs in zip(texts, images):
                pics = iter(self._pictures(imgs))
                items: list[Any] = []
                for j, chunk in enumerate(t.split(IMAGE)):
                    if j:
                        items.append(next(pics))
                    if chunk:
                        items.append(chunk)
                prompts.append(items)
            return self.processor(text=prompts, **kw)
        token = getattr(self.processor, "image_token", IMAGE)
        pics = [self._pictures(imgs) for imgs in images]
        if not any(pics):
            return self.processor(text=[t.replace(IMAGE, token) for t in texts], **kw)
        return self.processor(text=[t.replace(IMAGE, token) for t in texts], images=pics, **kw)

    # -- log-likelihood -------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        rows = []
        for r in requests:
            full = self._prepare([r.context + r.continuation], [r.images])
            ctx_ids = self._prepare([r.context], [r.images])["input_ids"][0].tolist()
            ids = full["input_ids"][0].tolist()
            common = 0
            while common < min(len(ids), len(ctx_ids)) and ids[common] == ctx_ids[common]:
                common += 1
            n_cont = len(ids) - common
            if n_cont == 0:
                raise BackendError(f"the continuation {r.continuation!r} adds no token after its context")
            if len(ids) > self.max_length:
                raise BackendError(f"a prompt of {len(ids)} tokens (images included) exceeds the context window of {self.max_length}; contexts with images are never cut")
            rows.append((full, n_cont))
        out: list[LoglikelihoodResult | None] = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: -rows[i][0]["input_ids"].shape[1])
        for b in range(0, len(order), self.batch_size):
            group = order[b : b + self.batch_size]
            for i, res in zip(group, self._score([rows[i] for i in group])):
                out[i] = res
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _score(self, rows: list[tuple[Any, int]]) -> list[LoglikelihoodResult]:
        batch = self._right_pad([r[0] for r in rows])
        logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        results = []
        for j, (enc, n_cont) in enumerate(rows):
            ids = enc["input_ids"][0]
            n = ids.shape[0]
            tgt = ids[n - n_cont :]
            lp = logp[j, n - n_cont - 1 : n - 1]
            results.append(LoglikelihoodResult(lp.gather(-1, tgt[:, None]).sum().item(), bool((lp.argmax(-1) == tgt).all()), n_cont))
        return results

    def _right_pad(self, encs: list[Any]) -> dict[str, torch.Tensor]:
        """One batch from single-row processor outputs: ids and masks right-padded, pixel
        values and the image mask padded with empty image slots."""
        width = max(e["input_ids"].shape[1] for e in encs)
        out: dict[str, torch.Tensor] = {}
        ids = torch.full((len(encs), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for j, e in enumerate(encs):
            n = e["input_ids"].shape[1]
            ids[j, :n] = e["input_ids"][0]
            mask[j, :n] = e["attention_mask"][0]
        out["input_ids"], out["attention_mask"] = ids, mask
        if "image_attention_mask" in encs[0]:  # IDEFICS: (rows, tokens, images)
            n_img = max(e["pixel_values"].shape[1] for e in encs)
            pix = torch.zeros((len(encs), n_img, *encs[0]["pixel_values"].shape[2:]), dtype=encs[0]["pixel_values"].dtype)
            iam = torch.zeros((len(encs), width, n_img), dtype=encs[0]["image_attention_mask"].dtype)
            for j, e in enumerate(encs):
                k, n = e["pixel_values"].shape[1], e["input_ids"].shape[1]
                pix[j, :k] = e["pixel_values"][0]
                iam[j, :n, : e["image_attention_mask"].shape[2]] = e["image_attention_mask"][0]
            out["pixel_values"], out["image_attention_mask"] = pix.to(self.model.dtype), iam
        else:  # LLaVA-style: the images of all rows, stacked in order
            for key in encs[0].keys():
                if key not in ("input_ids", "attention_mask") and encs[0][key] is not None:
                    parts = [e[key] for e in encs if key in e and e[key] is not None]
                    out[key] = torch.cat(parts, dim=0)
        return out

    def loglikelihood_rolling(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        raise BackendError("the vision-language backend does not compute rolling log-likelihoods (perplexity tasks): use the model's text backbone with hf")

    # -- generation (settings, stops, trimming: HFGeneration) -----------------------------------
    @torch.inference_mode()
    def _generate_group(self, reqs: list[GenerateRequest]) -> list[GenerateResult]:
        r0 = reqs[0]
        side = self.tok.padding_side
        self.tok.padding_side = "left"
        try:
            enc = self._prepare([r.context for r in reqs], [r.images for r in reqs], padding=len(reqs) > 1)
        finally:
            self.tok.padding_side = side
        width = enc["input_ids"].shape[1]
        if width + r0.max_tokens > self.max_length:
            raise BackendError(f"a prompt of {width} tokens plus max_tokens={r0.max_tokens} exceeds the context window of {self.max_length}")
        stop_ids = self._stop_ids(r0)
        kwargs = self._generate_kwargs(r0, stop_ids, width)
        if self.bad_words:
            kwargs["bad_words_ids"] = self.bad_words
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in enc.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        try:
            out = self.model.generate(**inputs, **kwargs).cpu()
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"transformers generation failed: {exc}") from exc
        return self._results(reqs, [out[j, width:].tolist() for j in range(len(reqs))], stop_ids)

    def chat_template(self) -> ChatTemplate | None:
        src = getattr(self.processor, "chat_template", None) or getattr(self.tok, "chat_template", None)
        if not src or not isinstance(src, str):
            return None
        return ChatTemplate(src, self.tok.bos_token or "", self.tok.eos_token or "")

    def close(self) -> None:
        self.model = None
