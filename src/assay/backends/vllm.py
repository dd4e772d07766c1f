"""Causal language models through vLLM's in-process engine (``vllm.LLM``), for CUDA GPUs.

Why a third local backend: on a GPU, vLLM's paged attention, continuous batching and prefix
caching score and generate many times faster than transformers. The numbers must still mean
the same thing as the ``hf`` backend's, so this backend

* tokenises with the checkpoint's own transformers tokenizer and reuses ``TokenScoring``
  (the same context/continuation split, BOS rule and rolling windows as ``hf``/``llamacpp``);
* scores a row (input ids, target ids) by sending ``input ids + [last target]`` as a
  token-id prompt with ``prompt_logprobs=1`` and one generated token, and reading the
  targets' log-probabilities at the prompt's last ``len(targets)`` positions;
* generates with every sampling setting explicit, ``ignore_eos`` and the same stop token ids
  as ``hf`` (the generation config's end-of-generation ids, stop strings that are one added
  token, and the request's ``until_ids``), and decodes and trims the new tokens itself.

vLLM is imported only inside the constructor, after the CUDA check, so that this module (its
pure conversion functions, the argument checks and the "needs a GPU" error) works on any
machine. The vLLM API used here was read in vllm 0.33.0: ``vllm/entrypoints/llm.py`` (LLM),
``vllm/sampling_params.py`` (SamplingParams), ``vllm/outputs.py`` (RequestOutput,
CompletionOutput), ``vllm/logprobs.py`` (Logprob, PromptLogprobs) and ``vllm/inputs/llm.py``
(TokensPrompt).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assay.backends import options
from assay.backends.base import Backend, Capabilities, ModelInfo
from assay.backends.common import HFTokens, TokenScoring, chat_template_of, fingerprint, keep_last, local_fingerprint, trim_at_stop
from assay.backends.options import Option
from assay.backends.registry import ModelSpec, resolve_path
from assay.errors import BackendError, ConfigError, MissingDependency
from assay.prompts.chat import ChatTemplate
from assay.requests import GenerateRequest, GenerateResult

NO_GPU = "the vllm backend needs a CUDA GPU; use hf or llamacpp on this machine"

_DTYPES = ("auto", "float32", "float16", "bfloat16")
# the backend's arguments; those given (and dtype) go to vllm.LLM, but max_length
OPTIONS: dict[str, Option] = {
    "dtype": Option(str, "auto", "weights' dtype", choices=_DTYPES),
    "tensor_parallel_size": Option(int, None, "GPUs the model is split over", min=1),
    "gpu_memory_utilization": Option(float, None, "the share of GPU memory vLLM may take, in (0, 1]"),
    "max_model_len": Option(int, None, "the engine's context in tokens", min=1),
    "max_length": Option(int, 2048, "scoring window in tokens (capped at max_model_len minus two)", min=1),
    "revision": Option(str, None, "hub revision (branch, tag or commit)"),
    "trust_remote_code": Option(bool, None, "run the checkpoint's own modelling code"),
    "seed": Option(int, None, "vLLM's seed"),
    "quantization": Option(str, None, "awq, gptq, ... (vLLM's names)"),
    "enforce_eager": Option(bool, None, "no CUDA graphs"),
}
# vLLM refuses a prompt of max_model_len tokens (vllm/v1/engine/input_processor.py,
# _validate_prompt_len: the prompt plus at least one output token must fit), and a scoring
# prompt is the window plus the last target token: two positions beyond the window.
_SCORING_EXTRA = 2


# --------------------------------------------------------------------------- options (plain data)


def require_cuda() -> None:
    """Raise the clear BackendError unless torch sees a CUDA GPU; never imports vLLM."""
    try:
        import torch
    except ImportError as exc:
        raise BackendError(NO_GPU) from exc
    if not torch.cuda.is_available():
        raise BackendError(NO_GPU)


def engine_options(text: str, args: Mapping[str, Any], raw: Mapping[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """The keyword arguments for ``vllm.LLM`` (model and tokenizer not included) and the
    requested scoring window (``max_length``, 2048 by default as in ``hf``).

    Unknown keys and bad values raise ConfigError naming the model as written."""
    spec = SimpleNamespace(text=text, backend="vllm", args=dict(args), raw=dict(raw or {}))
    values = options.parse(spec, OPTIONS)
    opts = {k: values[k] for k in args if k != "max_length" and values[k] is not None}  # seed= (empty): vLLM's default
    opts["dtype"] = values["dtype"]
    max_length = values["max_length"]
    if "gpu_memory_utilization" in opts and not 0.0 < opts["gpu_memory_utilization"] <= 1.0:
        raise ConfigError(f"model '{text}': gpu_memory_utilization must be in (0, 1]")
    # prefix caching helps generation (shared few-shot prefixes); vLLM skips reading the cache
    # for requests with prompt_logprobs (vllm/sampling_params.py, __post_init__), so scores
    # never depend on what was computed before
    opts["enable_prefix_caching"] = True
    return opts, max_length


def scoring_window(max_length: int, max_model_len: int) -> int:
    """The longest row of input ids a scoring prompt may carry in an engine of
    ``max_model_len`` tokens."""
    window = min(max_length, max_model_len - _SCORING_EXTRA)
    if window < 1:
        raise BackendError(f"max_model_len={max_model_len} leaves no room to score a token")
    return window


# --------------------------------------------------------------------------- scoring (plain data)


def scoring_prompt(ids: Sequence[int], targets: Sequence[int]) -> list[int]:
    """The token-id prompt that scores one ``TokenScoring`` row.

    A row's targets are predicted by the last len(targets) positions of ``ids`` (common.py:
    ``fit_window`` and ``rolling_windows``), so ``ids + [targets[-1]]`` ends with the targets
    and vLLM's prompt log-probabilities at its last len(targets) positions are theirs."""
    if not targets:
        raise ValueError("a scoring row has no target tokens")
    prompt = list(ids) + [targets[-1]]
    if len(targets) >= len(prompt) or prompt[-len(targets):] != list(targets):
        raise ValueError("the row's targets are not the tokens that follow its input ids")
    return prompt


def _logprob(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def target_scores(prompt_logprobs: Sequence[Mapping[int, Any] | None], targets: Sequence[int]) -> tuple[float, bool]:
    """(sum of the targets' log-probabilities, whether each target was an argmax) from one
    RequestOutput's ``prompt_logprobs``.

    Shape assumed (vllm/logprobs.py ``PromptLogprobs``, filled in vllm/v1/engine/logprobs.py
    ``_update_prompt_logprobs``): one entry per prompt token, the first ``None``, entry k a dict
    {token id: Logprob(logprob, rank, decoded_token)} holding prompt token k and, with
    ``prompt_logprobs=1``, the top-1 token. ``FlatLogprobs`` indexes the same way. A target
    is greedy when no entry beats its log-probability (ties count as greedy, like an argmax
    that may pick either; vLLM's rank would call a tie rank 2)."""
    n = len(prompt_logprobs)
    if n < len(targets) + 1:
        raise BackendError(f"vLLM returned {n} prompt log-probabilities for {len(targets)} target tokens")
    total, greedy = 0.0, True
    for k, target in enumerate(targets):
        pos = n - len(targets) + k
        entry = prompt_logprobs[pos]
        if not entry or target not in entry:
            raise BackendError(f"vLLM returned no log-probability for token {target} at prompt position {pos}")
        lp = _logprob(entry[target])
        total += lp
        greedy = greedy and lp >= max(_logprob(v) for v in entry.values())
    return total, greedy


# --------------------------------------------------------------------------- generation (plain data)


def stop_token_ids(eos_ids: Sequence[int], added_vocab: Mapping[str, int], request: GenerateRequest) -> list[int]:
    """The ids that end a reply, as the hf backend computes them: the model's
    end-of-generation ids, stop strings that are one added token of the tokenizer (so that
    ``<|end_of_turn|>`` stops where decoding would hide it), and the request's ``until_ids``."""
    ids = list(eos_ids)
    ids += [added_vocab[s] for s in request.until if s in added_vocab]
    ids += list(request.until_ids)
    return list(dict.fromkeys(ids))


def sampling_options(request: GenerateRequest, stop_ids: Sequence[int]) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for one generation request.

    Every setting is explicit so that the checkpoint's generation config never adds its own;
    ``top_k=0`` means "off" in vLLM 0.33 (vllm/sampling_params.py: "Set to 0 (or -1) to
    consider all tokens"); ``ignore_eos`` leaves ending to ``stop_token_ids`` alone, which
    holds the model's end-of-generation ids (vllm/v1/core/sched/utils.py ``check_stop``).
    Stop strings are matched on text with special tokens kept, as hf's stopping criterion
    decodes; the returned text is decoded and trimmed here, not taken from vLLM."""
    greedy = request.temperature <= 0
    return dict(
        n=1,
        max_tokens=request.max_tokens,
        temperature=0.0 if greedy else request.temperature,
        top_p=1.0 if greedy else request.top_p,
        top_k=0 if greedy else max(request.top_k, 0),
        min_p=0.0,
        repetition_penalty=request.repetition_penalty,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        seed=None if greedy else request.sampling_seed,
        stop=[s for s in request.until if s],  # vLLM refuses empty stop strings
        stop_token_ids=list(stop_ids),
        ignore_eos=True,
        skip_special_tokens=False,
        include_stop_str_in_output=False,
    )


def generation_result(
    token_ids: Sequence[int],
    finish_reason: str | None,
    stop_ids: Sequence[int],
    until: Sequence[str],
    decode: Callable[[list[int]], str],
) -> GenerateResult:
    """A CompletionOutput's ``token_ids`` and ``finish_reason`` (vllm/outputs.py) as assay's
    result: the new tokens up to the first stop id (vLLM keeps the stop token in
    ``token_ids``), decoded by ``decode`` and cut at the first stop string. The token count,
    like hf's, excludes the stop token and includes the token that completed a stop string."""
    if finish_reason not in ("stop", "length"):
        raise BackendError(f"vLLM ended a generation with finish_reason={finish_reason!r}")
    ids = list(token_ids)
    stops = set(stop_ids)
    n = next((k for k, t in enumerate(ids) if t in stops), len(ids))
    text, trimmed = trim_at_stop(decode(ids[:n]), until)
    stopped = trimmed or n < len(ids) or finish_reason == "stop"
    return GenerateResult(text, n, "stop" if stopped else "length")


# --------------------------------------------------------------------------- the backend


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependency("the 'vllm' backend", "vllm", "vllm") from exc
    return vllm


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


def _eos_ids(where: str, hub: dict[str, Any], config: Any) -> list[int]:
    """The end-of-generation ids transformers would use for this checkpoint: its
    generation_config.json, else the model config's."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(where, **hub)
    except (OSError, ValueError):
        gen = GenerationConfig.from_model_config(config)
    eos = gen.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])]


class VLLMBackend(HFTokens, TokenScoring, Backend):
    """``vllm:MODEL[,dtype=auto|float32|float16|bfloat16,tensor_parallel_size=N,
    gpu_memory_utilization=F,max_model_len=N,max_length=N,revision=R,trust_remote_code=true,
    seed=N,quantization=awq|gptq|...,enforce_eager=true]``

    MODEL is a hub id or a local checkpoint folder. ``max_length`` is the scoring window
    (2048 by default, as in hf), capped at the engine's ``max_model_len`` minus two.
    """

    options = OPTIONS

    def __init__(self, spec: ModelSpec):
        opts, max_length = engine_options(spec.text, spec.args, spec.raw)
        path = resolve_path(spec)
        if path is not None and path.is_file():
            raise BackendError(f"{path}: the vllm backend loads a checkpoint folder or a hub id")
        require_cuda()  # before vLLM is imported or touches anything
        vllm = _import_vllm()
        import torch
        from transformers import AutoConfig, AutoTokenizer

        where = str(path) if path is not None else spec.target
        trust = bool(opts.get("trust_remote_code", False))
        hub = {"revision": opts.get("revision")} if path is None else {}
        try:
            config = AutoConfig.from_pretrained(where, trust_remote_code=trust, **hub)
            self.tok = AutoTokenizer.from_pretrained(where, trust_remote_code=trust, **hub)
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"{spec.target}: cannot read the checkpoint's config or tokenizer: {_first_line(exc)}") from exc
        self.eos_ids = _eos_ids(where, hub, config)
        try:
            self.llm = vllm.LLM(model=where, tokenizer=where, tokenizer_revision=opts.get("revision"), **opts)
        except (OSError, ValueError, RuntimeError, KeyError, ImportError, AssertionError) as exc:
            raise BackendError(f"{spec.target}: vLLM cannot load this model: {_first_line(exc)}") from exc
        self._vllm = vllm
        mc = self.llm.model_config  # vllm/entrypoints/llm.py: LLM.model_config
        self.max_model_len = int(mc.max_model_len)
        self.max_length = scoring_window(max_length, self.max_model_len)
        self.bos = self.tok.bos_token_id
        self.eos = self.tok.eos_token_id
        self.add_bos = bool(getattr(self.tok, "add_bos_token", False)) and self.bos is not None
        self.capabilities = Capabilities(loglikelihood=True, rolling=True, generate=True, images=False, max_length=self.max_length)
        identity = self._identity(spec, path, config)
        dtype = str(mc.dtype).replace("torch.", "")
        quant = getattr(mc, "quantization", None)
        tp = int(opts.get("tensor_parallel_size", 1))
        eager = bool(opts.get("enforce_eager", False))
        self.info = ModelInfo(
            name=spec.target,
            backend="vllm",
            fingerprint=fingerprint("vllm", identity, dtype, quant, tp, eager, self.max_length, vllm.__version__, torch.__version__),
            args={
                "source": where, **spec.args, "dtype": dtype, "quantization": quant, "max_length": self.max_length,
                "max_model_len": self.max_model_len, "vllm": vllm.__version__, "torch": torch.__version__,
            },
        )

    @staticmethod
    def _identity(spec: ModelSpec, path: Path | None, config: Any) -> tuple:
        if path is not None:
            return ("folder", local_fingerprint(path))  # the same folder identity as hf
        return ("hub", spec.target, spec.args.get("revision"), getattr(config, "_commit_hash", None))

    # -- scoring ------------------------------------------------------------------------------
    def _run(self, prompts: list[list[int]], params: Any) -> list[Any]:
        """One ``LLM.generate`` call over token-id prompts (vllm/inputs/llm.py TokensPrompt);
        outputs come back in the prompts' order."""
        if not prompts:
            return []
        try:
            return self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"vLLM failed: {_first_line(exc)}") from exc

    def _score_rows(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outputs = self._run([scoring_prompt(ids, targets) for ids, targets in rows], params)
        return [target_scores(out.prompt_logprobs or [], targets) for out, (_, targets) in zip(outputs, rows)]

    # -- generation ---------------------------------------------------------------------------
    def _generation_prompt(self, r: GenerateRequest) -> tuple[list[int], int]:
        """The prompt's tokens, cut from the left to leave room for max_tokens, and the cut."""
        room = self.max_length - r.max_tokens
        if room <= 0:
            raise BackendError(f"max_tokens={r.max_tokens} does not fit the context window of {self.max_length}")
        toks = self._encode(r.context, r.special)
        prompt, cut = keep_last(self._prefix(toks) + toks, room)
        return prompt or [self._start()], cut  # vLLM refuses an empty prompt

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """All requests in one engine call, each with its own SamplingParams (and seed, so a
        sample does not depend on what else is in the batch)."""
        added = self.tok.get_added_vocab()
        stops = [stop_token_ids(self.eos_ids, added, r) for r in requests]
        params = [self._vllm.SamplingParams(**sampling_options(r, s)) for r, s in zip(requests, stops)]
        prompts = [self._generation_prompt(r) for r in requests]
        outputs = self._run([p for p, _ in prompts], params)
        decode = lambda ids: self.tok.decode(ids, skip_special_tokens=False)  # noqa: E731 (as hf decodes)
        return [
            replace(generation_result(out.outputs[0].token_ids, out.outputs[0].finish_reason, s, r.until, decode), truncated=cut)
            for out, s, r, (_, cut) in zip(outputs, stops, requests, prompts)
        ]

    def chat_template(self) -> ChatTemplate | None:
        return chat_template_of(self.tok)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):  # ends the engine-core process (vllm/v1/engine/core_client.py)
            shutdown()
        self.llm = None
        del llm
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch comes with vllm
            pass
