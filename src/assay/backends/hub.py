"""The Hugging Face hub, reachable or not: loads fail at once instead of retrying.

When the hub cannot be reached, huggingface_hub retries every file request five times with
backoff (1 min 40 s here) before transformers or datasets give up. Before the first hub load
of a process (a model by hub id, a hub dataset), ``offline_unless_reachable`` opens one TCP
connection to the hub's endpoint (3 s at most); when that fails, it switches the process to
offline mode (``HF_HUB_OFFLINE=1``, which the hub clients read at call time), so a model or
dataset in the local cache still loads and anything else fails in seconds, with one line
saying what to do (``offline_hint``). With a proxy configured the probe is skipped (the
proxy, not this machine, reaches the hub).
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from functools import lru_cache
from urllib.parse import urlsplit

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_TRUE = ("1", "ON", "YES", "TRUE")
_state = {"probed_offline": False}  # this module found the hub unreachable and went offline


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline() -> bool:
    """Whether hub loads are offline in this process (set by the user, or by this module)."""
    if any(os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    consts = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(consts, "HF_HUB_OFFLINE", False))


@lru_cache(maxsize=4)
def reachable(url: str, timeout: float = 3.0) -> bool:
    """One TCP connection to the endpoint's host and port (a name that does not resolve, a
    refused or silent port: unreachable)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def go_offline() -> None:
    """Offline mode for this process and the processes it starts, for the hub clients loaded
    now or later (each reads the flag when it makes a request)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    for module in ("huggingface_hub.constants", "datasets.config"):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, "HF_HUB_OFFLINE"):
            mod.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def offline_unless_reachable(what: str) -> bool:
    """Before ``what`` is loaded from the hub: True when loads are (now) offline."""
    if offline():
        return True
    if any(os.environ.get(v) for v in PROXY_VARS) or reachable(endpoint()):
        return False
    go_offline()
    _state["probed_offline"] = True
    warnings.warn(f"the Hugging Face hub ({endpoint()}) cannot be reached: {what} and anything else from the hub load from the local cache only (as with HF_HUB_OFFLINE=1)",
                  stacklevel=2)
    return True


def offline_hint(name: str, kind: str = "model") -> str:
    """What to do when ``name`` is not in the local cache and the hub is offline."""
    how = f"the hub ({endpoint()}) cannot be reached" if _state["probed_offline"] else "HF_HUB_OFFLINE is set"
    if kind == "dataset":
        return f"hub dataset {name} is not in the local Hugging Face cache and {how}: load it once where the hub can be reached, or give the task a local copy (dataset.local)"
    return f"{name} is not in the local Hugging Face cache and {how}: download it where the hub can be reached (hf download {name}), or give a local folder or GGUF file"


def not_cached(exc: BaseException | None) -> bool:
    """Whether a load failed for want of files the hub would have sent (offline)."""
    while exc is not None:
        if type(exc).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or "couldn't find them in the cached files" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
