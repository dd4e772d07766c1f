"""What a run is asked to do (``RunConfig``), and where its folder goes by default.

The folder's default name is derived from the settings that decide its content, so the same
command always finds the same folder and resumes there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.requests import canonical_json

SANDBOX_MODES = ("strict", "auto", "off")
# model arguments that say where a model runs, not what it computes: they never reach the
# backend, and a run folder's identity leaves them out (the same folder resumes with any
# number of replicas)
PLACEMENT_KEYS: tuple[str, ...] = ("replicas", "num_cpus", "num_gpus")


def without_placement(model: str, keys: tuple[str, ...] = PLACEMENT_KEYS) -> str:
    """A model as the user wrote it, less its placement arguments (``replicas=``, ...). (For a
    server's model, ``replicas=`` lists its servers, which do not change its numbers either.)"""
    return re.sub(r",\s*(?:" + "|".join(keys) + r")\s*=[^,]*", "", model)


@dataclass(frozen=True)
class RunConfig:
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    limit: int | None = None
    output: Path | None = None
    data_dir: Path | None = None
    batch_size: int = 64
    prompts: tuple[str, ...] = ()
    chat_format: str | None = None
    system_prompt: str | None = None
    sandbox: str = "auto"  # code tasks: strict (namespaces required), auto, off (unsandboxed)
    cache: str = "auto"  # the shared response cache: auto ($ASSAY_CACHE or ~/.cache/assay), off, or a path
    executor: str = "local"  # where requests are computed: local (this process), ray, ray:ADDRESS
    judges: tuple[str, ...] = ()  # models that grade the generated answers (--judge)

    def identity(self) -> dict[str, Any]:
        """What decides the content of a run folder (the folder's name is derived from it)."""
        d = asdict(self)
        for k in ("output", "data_dir", "batch_size", "sandbox", "cache", "executor"):
            d.pop(k)
        d["models"] = tuple(without_placement(m) for m in self.models)
        if self.judges:  # left out when none: the folders of runs without judges keep their names
            d["judges"] = tuple(without_placement(m) for m in self.judges)
        else:
            d.pop("judges")
        return d

    def check(self) -> None:
        """Settings that are wrong whatever the tasks and models: one line each."""
        if not self.models:
            raise ConfigError("name at least one model (--model)")
        if not self.tasks:
            raise ConfigError("name at least one task (--tasks)")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if self.executor != "local" and self.executor != "ray" and not (self.executor.startswith("ray:") and len(self.executor) > 4):
            raise ConfigError(f"--executor {self.executor}: expected local, ray, or ray:ADDRESS (a cluster's head, e.g. ray:127.0.0.1:6379, or ray:auto)")
        if self.sandbox not in SANDBOX_MODES:
            raise ConfigError(f"--sandbox {self.sandbox}: expected one of {', '.join(SANDBOX_MODES)}")


def default_run_dir(cfg: RunConfig, labels: list[str]) -> Path:
    digest = hashlib.sha256(canonical_json(cfg.identity()).encode()).hexdigest()[:8]
    tasks = "+".join(cfg.tasks)
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{'+'.join(labels)}__{tasks}")[:80]
    return Path("runs") / f"{slug}-{digest}"


def unique_labels(names: list[str]) -> list[str]:
    """Each model's label in the run: its name, with -2, -3 … where two models share one."""
    out: list[str] = []
    for name in names:
        lbl = name
        n = 2
        while lbl in out:
            lbl = f"{name}-{n}"
            n += 1
        out.append(lbl)
    return out

