"""The results contract: what a run's ``results.json`` holds, typed and versioned.

- ``model``: the pydantic models (``RunResults`` and its parts); ``assay schema results``
  prints their JSON Schema.
- ``aggregate``: group means, one per metric name, never across metrics.
- ``io``: ``read_results`` / ``parse_results`` for every reader (score, report, export, the
  terminal, ``assay.evaluate``), with version-1 files upgraded on read.

The scoring stage builds ``RunResults`` (``scoring.run``); the orchestrator writes it.
"""

from assay.results.aggregate import group_members, group_scores
from assay.results.io import parse_results, read_results, schema
from assay.results.model import (
    READABLE_VERSIONS,
    RESULTS_NAME,
    RESULTS_VERSION,
    ChatFormatUsed,
    DatasetInfo,
    GroupMetric,
    GroupResult,
    JudgeRecord,
    JudgeScore,
    MetricResult,
    ModelRecord,
    PairResult,
    PromptInfo,
    PromptScore,
    Ratings,
    RunResults,
    SandboxRecord,
    Strength,
    TaskInfo,
    TaskResult,
)

__all__ = [
    "READABLE_VERSIONS", "RESULTS_NAME", "RESULTS_VERSION", "ChatFormatUsed", "DatasetInfo", "GroupMetric", "GroupResult",
    "MetricResult", "ModelRecord", "PromptInfo", "PromptScore", "RunResults", "SandboxRecord", "TaskInfo", "TaskResult",
    "JudgeRecord", "JudgeScore", "PairResult", "Ratings", "Strength",
    "group_members", "group_scores", "parse_results", "read_results", "schema",
]
