"""assay: an evaluation workbench for instruction-following language models.

The public API is small and imports nothing heavy until it is used:

    import assay
    res = assay.evaluate(models=["smollm2-135m-instruct"], tasks=["copa"], limit=20)

    from assay import RunConfig, run, score_run, read_results, RunResults, load_task
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunConfig", "RunResults", "evaluate", "load_task", "read_results", "run", "score_run"]

_WHERE = {
    "evaluate": "assay.api",
    "RunConfig": "assay.config",
    "run": "assay.pipeline",
    "score_run": "assay.pipeline",
    "RunResults": "assay.results",
    "read_results": "assay.results",
    "load_task": "assay.tasks.loader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
