"""Reading and checking ``results.json``: every reader gets ``RunResults`` or one line naming
the file and the field that is wrong. Version-1 files are read with their group means
recomputed by metric name (``results.aggregate``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assay.errors import AssayError
from assay.results.aggregate import group_scores
from assay.results.model import READABLE_VERSIONS, RESULTS_NAME, RESULTS_VERSION, RunResults


def schema() -> dict[str, Any]:
    """The JSON Schema of ``results.json`` (``assay schema results``)."""
    return RunResults.model_json_schema()


def parse_results(doc: Any, where: str) -> RunResults:
    """A results document (as loaded from JSON) as ``RunResults``; one line naming the field
    when it is not one."""
    if not isinstance(doc, dict):
        raise AssayError(f"{where}: not an assay results file (a JSON {type(doc).__name__}, not an object)")
    version = doc.get("assay_results_version")
    if version not in READABLE_VERSIONS:
        raise AssayError(f"{where}: assay_results_version {version!r} is not one this assay reads ({', '.join(map(str, READABLE_VERSIONS))})")
    try:
        if version == 1:  # read as version 2, then group means recomputed by metric name
            res = RunResults.model_validate({**doc, "assay_results_version": RESULTS_VERSION, "groups": {}})
            res.groups = group_scores(res.results, res.tasks)
            return res
        return RunResults.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise AssayError(f"{where}: field '{loc}': {err['msg']}") from None


def read_results(run_dir: Path) -> RunResults:
    """A run folder's ``results.json``; a missing or unreadable file is one line naming it."""
    path = Path(run_dir) / RESULTS_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssayError(f"{path}: no results yet (run `assay score {run_dir}` first)") from None
    except (OSError, ValueError) as exc:
        raise AssayError(f"{path}: cannot read results: {exc}") from None
    if not isinstance(doc, dict):
        raise AssayError(f"{path}: not an assay results file (a JSON {type(doc).__name__}, not an object); `assay score {run_dir}` rewrites it from the run store")
    return parse_results(doc, str(path))
