"""Where a batch was computed: host, process, device and the versions that compute it. The
run store keeps these facts per compute session (``worker:<session>`` in its meta), beside the
compute log's rows of that session."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

from assay.backends.base import Backend

_VERSION_ARGS = ("llama_cpp_python", "transformers", "torch", "vllm")


def _assay_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("assay")
    except PackageNotFoundError:
        return "unknown"


def worker_facts(backend: Backend, node: str = "local", node_ip: str | None = None, gpus: list[Any] | None = None) -> dict[str, Any]:
    """The facts of the process that runs ``backend``: ``node`` is "local" for the run's own
    process, else the Ray node id."""
    args = backend.info.args
    device = args.get("device") or args.get("device_map")
    if device is None:
        device = "gpu" if (args.get("n_gpu_layers") or 0) != 0 or backend.info.backend == "vllm" else "cpu"
    versions = {"python": platform.python_version(), "assay": _assay_version()}
    versions.update({k: str(args[k]) for k in _VERSION_ARGS if k in args})
    facts: dict[str, Any] = {
        "node": node,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(device),
        "backend": backend.info.backend,
        "versions": versions,
    }
    if node_ip is not None:
        facts["node_ip"] = node_ip
    if gpus:
        facts["gpus"] = [str(g) for g in gpus]
    return facts
