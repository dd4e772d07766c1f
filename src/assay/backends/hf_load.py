"""Loading options of the ``hf`` backend beyond a plain checkpoint: a PEFT LoRA adapter on the
base model, ``device_map``, 8-bit and 4-bit loading (bitsandbytes), and AWQ/GPTQ checkpoints.

What needs CUDA is refused before any weights are read, with one line that says what to drop.
Merging an adapter (``merge=true``) folds the LoRA weights into the base for speed; scores
equal the unmerged model's within floating-point tolerance.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import BackendError, ConfigError, MissingDependency

# quant_method values in a checkpoint's config.json whose kernels need a CUDA GPU
_GPU_QUANT = {"awq", "gptq", "bitsandbytes"}


@dataclass(frozen=True)
class LoadOptions:
    adapter: str | None
    adapter_revision: str | None
    merge: bool
    device_map: str | None
    bits: int | None  # 4 or 8: bitsandbytes quantisation at load time

    @staticmethod
    def parse(text: str, args: dict[str, Any]) -> LoadOptions:
        """From a model's arguments (``hf_common.LOAD_OPTIONS``, converted by the backend)."""
        for flag in ("merge", "load_in_8bit", "load_in_4bit"):
            if flag in args and not isinstance(args[flag], bool):
                raise ConfigError(f"model '{text}': {flag} must be true or false")
        if args.get("load_in_8bit") and args.get("load_in_4bit"):
            raise ConfigError(f"model '{text}': load_in_8bit and load_in_4bit exclude each other")
        adapter = args.get("adapter")
        if args.get("merge") and adapter is None:
            raise ConfigError(f"model '{text}': merge=true needs adapter=PATH_OR_HUB_ID")
        device_map = args.get("device_map")
        if device_map is not None:
            device_map = str(device_map)
            if device_map not in ("auto", "cpu") and not device_map.startswith("cuda"):
                raise ConfigError(f"model '{text}': device_map must be auto, cpu or cuda[:N], not '{device_map}'")
        bits = 8 if args.get("load_in_8bit") else 4 if args.get("load_in_4bit") else None
        rev = args.get("adapter_revision")
        return LoadOptions(None if adapter is None else str(adapter), None if rev is None else str(rev),
                           bool(args.get("merge", False)), device_map, bits)

    def model_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``from_pretrained``."""
        kw: dict[str, Any] = {}
        if self.device_map is not None:
            kw["device_map"] = self.device_map
        if self.bits is not None:
            if importlib.util.find_spec("bitsandbytes") is None:
                raise BackendError(f"load_in_{self.bits}bit needs the 'bitsandbytes' package: pip install bitsandbytes")
            from transformers import BitsAndBytesConfig

            kw["quantization_config"] = BitsAndBytesConfig(**{f"load_in_{self.bits}bit": True})
        return kw


def checkpoint_quant_method(where: str, path: Path | None, revision: Any, trust: bool) -> str | None:
    """``quantization_config.quant_method`` of a checkpoint (its config.json), or None."""
    if path is not None:
        cfg_file = path / "config.json" if path.is_dir() else None
        if cfg_file is None or not cfg_file.is_file():
            return None
        try:
            qc = json.loads(cfg_file.read_text(encoding="utf-8")).get("quantization_config")
        except (OSError, ValueError) as exc:
            raise BackendError(f"{cfg_file}: not valid JSON ({exc})") from exc
    else:
        from transformers import AutoConfig

        try:
            qc = getattr(AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust), "quantization_config", None)
        except (OSError, ValueError, KeyError):
            return None  # the load itself reports what is wrong
    if qc is None:
        return None
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    return None if method is None else str(getattr(method, "value", method)).lower()


def check_gpu_needs(target: str, opts: LoadOptions, quant_method: str | None) -> None:
    """Fail before loading weights when the load needs CUDA and this machine has none."""
    import torch

    if torch.cuda.is_available():
        return
    needs = []
    if opts.bits is not None:
        needs.append((f"load_in_{opts.bits}bit (bitsandbytes)", f"drop load_in_{opts.bits}bit"))
    if quant_method in _GPU_QUANT:
        needs.append((f"this {quant_method.upper()}-quantised checkpoint", "use an unquantised checkpoint"))
    if opts.device_map is not None and opts.device_map.startswith("cuda"):
        needs.append((f"device_map={opts.device_map}", "use device_map=cpu or auto"))
    if needs:
        what, fix = needs[0]
        raise BackendError(
            f"{target}: {what} needs a CUDA GPU (torch.cuda.is_available() is False here); "
            f"{fix} or run on a GPU machine"
        )


def quantization(opts: LoadOptions, quant_method: str | None) -> str | None:
    """How the weights are quantised, for the fingerprint: None for plain weights."""
    if opts.bits is not None:
        return f"bitsandbytes-{opts.bits}bit"
    return quant_method


def _adapter_identity(adapter: str, revision: str | None) -> tuple[tuple, Path | None]:
    from assay.backends.common import file_sha256, fingerprint

    p = Path(adapter).expanduser()
    if p.is_dir():
        parts = [(f.name, file_sha256(f)) for f in sorted(p.iterdir()) if f.is_file() and f.suffix in (".json", ".safetensors", ".bin")]
        return ("folder", fingerprint(parts)), p
    if p.exists():
        raise BackendError(f"{adapter}: a PEFT adapter is a folder (adapter_config.json + weights) or a hub id")
    return ("hub", adapter, revision), None


def _adapter_base(adapter: str, folder: Path | None, revision: str | None) -> str | None:
    """``base_model_name_or_path`` from the adapter's adapter_config.json."""
    if folder is not None:
        cfg = folder / "adapter_config.json"
        if not cfg.is_file():
            raise BackendError(f"{folder}: no adapter_config.json; not a PEFT adapter folder")
        try:
            return json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError) as exc:
            raise BackendError(f"{cfg}: not valid JSON ({exc})") from exc
    from peft import PeftConfig

    try:
        return PeftConfig.from_pretrained(adapter, revision=revision).base_model_name_or_path
    except (OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"{adapter}: cannot read the PEFT adapter config: {msg}") from exc


def _same_base(declared: str, given: str) -> bool:
    if declared == given:
        return True
    d, g = Path(declared).expanduser(), Path(given).expanduser()
    if d.exists() and g.exists():
        return d.resolve() == g.resolve()
    return d.name == g.name  # a hub id against a local copy of that model


def attach_adapter(model: Any, base: str, opts: LoadOptions) -> tuple[Any, dict[str, Any]]:
    """The base ``model`` with the PEFT adapter on top (merged when asked), and what
    identifies the adapter (for the fingerprint and ModelInfo args)."""
    assert opts.adapter is not None
    if importlib.util.find_spec("peft") is None:
        raise MissingDependency("adapter= (a PEFT LoRA adapter)", "hf", "peft")
    from peft import PeftModel

    identity, folder = _adapter_identity(opts.adapter, opts.adapter_revision)
    declared = _adapter_base(opts.adapter, folder, opts.adapter_revision)
    if declared and not _same_base(declared, base):
        print(f"assay: warning: adapter {opts.adapter} was trained on '{declared}', loaded here on '{base}'", file=sys.stderr)
    try:
        model = PeftModel.from_pretrained(model, opts.adapter, revision=opts.adapter_revision)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"{opts.adapter}: peft cannot load this adapter: {msg}") from exc
    if opts.merge:
        model = model.merge_and_unload()
    model.eval()
    import peft

    info = {"adapter": opts.adapter, "adapter_identity": list(identity), "adapter_base": declared,
            "merge": opts.merge, "peft": peft.__version__}
    return model, info
