"""The results contract's types: ``results.json`` as typed, versioned pydantic models.

Everything that writes or reads a run's results goes through ``RunResults``: the scoring
stage builds one, ``write_results`` stores it (atomically), ``read_results`` opens it for
``assay score``, ``report`` and ``export`` and for the terminal leaderboard, and
``assay schema results`` prints its JSON Schema for other tools.

Versions: 2 (this one) keeps one group value per metric name (``GroupResult.metrics``) and
counts documents (``n_docs``) beside instances (``n_items`` = documents × prompts). Files of
version 1 still open: their group means, which averaged every task's headline metric
whatever its scale, are recomputed by metric name from the task results they hold.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESULTS_NAME = "results.json"
RESULTS_VERSION = 2
READABLE_VERSIONS = (1, 2)


class _Model(BaseModel):
    # unknown keys are kept (a newer assay's extra fields survive a read-modify-write)
    model_config = ConfigDict(extra="allow")


class PromptScore(_Model):
    value: float | None = None
    stderr: float | None = None
    n: int = 0


class MetricResult(_Model):
    """One metric of one task: the median over prompts (``value``, the paper's protocol), with
    the spread over prompts and each prompt's own value."""

    value: float | None = None
    stderr: float | None = None
    mean: float | None = None
    max: float | None = None
    min: float | None = None
    std: float | None = None
    n_prompts: int | None = None
    per_prompt: dict[str, PromptScore] = Field(default_factory=dict)


class SandboxRecord(_Model):
    mode: str
    isolation: list[str] = Field(default_factory=list)


class JudgeScore(_Model):
    """A judge's single grading of one model's answers to one task: the mean rating (1–10) or
    the pass rate (pass/fail), over the answers it gave a verdict on."""

    scale: str  # "1-10" | "pass/fail"
    value: float | None = None
    stderr: float | None = None
    n: int = 0  # answers with a verdict
    n_unparseable: int = 0  # replies without a verdict: counted, never scored
    n_missing: int = 0  # judge requests not computed yet (an interrupted run)
    per_prompt: dict[str, PromptScore] = Field(default_factory=dict)
    template: dict[str, Any] = Field(default_factory=dict)  # the judge prompt's name, version and hash
    # pass/fail verdicts against the task's automatic verdict (its primary metric), where both exist:
    # {"metric", "n", "agree" (the share equal), "kappa" (Cohen's)}
    agreement: dict[str, Any] = Field(default_factory=dict)


class TaskResult(_Model):
    primary: str  # the headline metric, as its name is shown (pass@1, entity_f1[PER])
    metrics: dict[str, MetricResult]
    n_items: int  # instances scored: documents × prompts
    n_docs: int | None = None  # documents scored (None in files of version 1)
    n_incomplete: int = 0  # instances whose responses are not all stored yet
    n_truncated: int = 0  # instances whose prompt was cut to fit the model's window
    sandbox: SandboxRecord | None = None
    judged: dict[str, JudgeScore] = Field(default_factory=dict)  # judge label -> its single grading

    @property
    def documents(self) -> int:
        """The item count to show: documents, not documents × prompts."""
        return self.n_docs if self.n_docs is not None else self.n_items


class GroupMetric(_Model):
    """One metric name averaged over the group's tasks that report it."""

    value: float
    stderr: float | None = None
    best_prompt: float  # the mean of the tasks' best prompts (the model cards' protocol)
    n_tasks: int
    tasks: list[str]
    by_language: dict[str, float] = Field(default_factory=dict)


class GroupResult(_Model):
    primary: str  # the headline metric: the one most of its tasks lead with
    metrics: dict[str, GroupMetric]
    # tasks whose headline metric is another one (LAMBADA's perplexity beside accuracies):
    # shown in their own row, never averaged into the headline
    other_headlines: dict[str, list[str]] = Field(default_factory=dict)


class PairResult(_Model):
    """Model ``a`` against model ``b`` by a judge's pairwise verdicts, each reconciled over both
    presentation orders (orders that disagree are a tie)."""

    a: str
    b: str
    n: int
    wins: int
    ties: int
    losses: int
    win_rate: float  # ties count half
    low: float | None = None  # 95% bootstrap interval over items
    high: float | None = None
    length_adjusted: float | None = None  # the win rate at equal answer lengths (DESIGN.md)


class Strength(_Model):
    strength: float  # Bradley–Terry, on an Elo-like scale (mean 1000)
    low: float | None = None
    high: float | None = None
    rank: int


class Ratings(_Model):
    """A judge's pairwise verdicts over some tasks (one task, or all of them)."""

    tasks: list[str]
    pairs: list[PairResult] = Field(default_factory=list)
    bradley_terry: dict[str, Strength] = Field(default_factory=dict)
    position_bias: dict[str, Any] = Field(default_factory=dict)  # how often the order decided; flagged when significant
    n_judged: int = 0  # item pairs with a verdict in both orders
    n_unparseable: int = 0  # replies without a verdict
    n_missing: int = 0


class JudgeRecord(_Model):
    fingerprint: str
    name: str = ""
    backend: str = "?"
    args: dict[str, Any] = Field(default_factory=dict)
    ratings: dict[str, Ratings] = Field(default_factory=dict)  # "all" and each task -> ratings


class DatasetInfo(_Model):
    origin: str | None = None
    revision: str | None = None
    split: str | None = None
    n_docs: int | None = None  # documents in the task's data (its split, after where:), before --limit cuts them


class PromptInfo(_Model):
    hash: str = "?"
    language: str | None = None


class ChatFormatUsed(_Model):
    name: str
    template_hash: str = "-"
    reason: str = ""


class TaskInfo(_Model):
    version: int | str = 1
    hash: str = "?"
    file: str = ""
    family: str | None = None
    group: list[str] = Field(default_factory=list)
    language: str | None = None
    description: str = ""
    dataset: DatasetInfo = Field(default_factory=DatasetInfo)
    prompts: dict[str, PromptInfo] = Field(default_factory=dict)
    chat_format: dict[str, dict[str, ChatFormatUsed]] = Field(default_factory=dict)  # model -> prompt -> format
    fewshot: dict[str, Any] = Field(default_factory=dict)
    card: dict[str, Any] | None = None
    # scored with its task file as re-read by `assay score --reload-tasks`, not as stored at run time
    reloaded: bool = False


class ModelRecord(_Model):
    fingerprint: str
    name: str = ""
    backend: str = "?"
    args: dict[str, Any] = Field(default_factory=dict)


class RunResults(_Model):
    assay_results_version: Literal[2] = 2
    created: float | None = None
    scored: float | None = None
    config: dict[str, Any] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    models: dict[str, ModelRecord] = Field(default_factory=dict)
    compute: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tasks: dict[str, TaskInfo] = Field(default_factory=dict)
    results: dict[str, dict[str, TaskResult]]  # model label -> task -> result
    groups: dict[str, dict[str, GroupResult]] = Field(default_factory=dict)  # model -> group -> result
    truncation: str = ""
    sandbox: SandboxRecord | None = None
    judges: dict[str, JudgeRecord] = Field(default_factory=dict)  # judge label -> its record and pairwise ratings

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2, ensure_ascii=False)
