"""``assay.evaluate``: a whole run from Python, for notebooks and scripts.

    import assay
    res = assay.evaluate(models=["smollm2-135m-instruct"], tasks=["copa"], limit=20, output="runs/copa")
    res.results["smollm2-135m-instruct"]["copa"].metrics["acc"].value

The same run as ``assay run`` (the same folder, resume and lock), with no terminal output
unless ``progress`` or ``notes`` callbacks are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from assay.config import RunConfig
from assay.events import Callbacks, ProgressCallback
from assay.results import RunResults, read_results


def _names(x: str | Sequence[str]) -> tuple[str, ...]:
    return (x,) if isinstance(x, str) else tuple(x)


def evaluate(
    models: str | Sequence[str],
    tasks: str | Sequence[str],
    *,
    limit: int | None = None,
    output: str | Path | None = None,
    data_dir: str | Path | None = None,
    batch_size: int = 64,
    prompts: str | Sequence[str] = (),
    chat_format: str | None = None,
    system_prompt: str | None = None,
    sandbox: str = "auto",
    cache: str | Path = "auto",
    executor: str = "local",
    progress: ProgressCallback | None = None,
    notes: Callable[[str], None] | None = None,
) -> RunResults:
    """Evaluate ``models`` on ``tasks`` (names as ``assay run`` takes them) and return the typed
    results; they are also in ``output``/results.json (default: ``runs/<models>__<tasks>-<hash>``).
    ``progress(model, done, total)`` is called as requests finish; ``notes(line)`` gets what the
    terminal would print. ``cache``: the shared response cache (``auto``, ``off`` or a path);
    ``executor``: ``local``, ``ray`` or ``ray:ADDRESS`` (``assay run --executor``).
    A bad argument raises ``assay.errors.AssayError`` with one line."""
    from assay.pipeline import run

    cfg = RunConfig(
        models=_names(models), tasks=_names(tasks), limit=limit,
        output=Path(output) if output is not None else None,
        data_dir=Path(data_dir) if data_dir is not None else None,
        batch_size=batch_size, prompts=_names(prompts), chat_format=chat_format, system_prompt=system_prompt, sandbox=sandbox,
        cache=str(cache), executor=executor,
    )
    run_dir = run(cfg, Callbacks(progress, notes))
    return read_results(run_dir)
