"""The task spec: what a task YAML file may say, validated by pydantic.

A task is one YAML file. Unknown keys are errors (``extra="forbid"``), and every spec carries a
``version`` that is recorded with its results. Templates are Jinja2 source (rendered in a
sandbox, see ``render.py``); ``choices`` and ``target`` are Jinja2 *expressions* evaluated
against the document, so they may return lists and integers.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

from assay.errors import UnknownNameError
from assay.scoring.extract import STEPS as EXTRACT_STEPS
from assay.scoring.extract import check_pipeline
from assay.tasks.card import default_task_type

SPEC_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _sha256_hex(v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise ValueError("write the sha256 in quotes: YAML read this one as a number")
    if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower())):
        raise ValueError("a sha256 is 64 hexadecimal characters")
    return v.lower() if v else v


class ConllOptions(_Strict):
    """For ``format: conll``: one token per line with its IOB tag, blank lines between sentences."""

    tag_column: int = Field(-1, description="the column holding the tag, 0-based; -1 is the last")
    token_prefix: str | None = Field(None, description="a prefix every token carries, removed (WikiANN's 'en:')")
    # entity type as tagged -> type the rows carry; when given, every tagged type must be listed
    types: dict[str, str] = Field(default_factory=dict)
    detokenize: bool = Field(True, description="no space before closing punctuation/after opening; else one space between tokens")


class ParallelFile(_Strict):
    """For ``format: lines``: another file with one value per line of the main file."""

    path: str
    sha256: str | None = None
    column: str

    _hex = field_validator("sha256", mode="before")(lambda v: _sha256_hex(v))


class LocalSource(_Strict):
    """A local data file, resolved against the data directory when relative.

    Formats: jsonl, json, csv, tsv, parquet; ``squad`` (SQuAD-style nested JSON, one row per
    question); ``conll`` (token-per-line NER files, one row per sentence); ``lines`` (one row per
    line, with ``parallel`` files adding columns). A ``.gz`` or single-member ``.zip`` is read
    through; the sha256 pin is of the file on disk.
    """

    path: str
    sha256: str | None = None

    @field_validator("sha256", mode="before")
    @classmethod
    def _hex(cls, v: Any) -> Any:
        return _sha256_hex(v)
    format: Literal["jsonl", "json", "csv", "tsv", "parquet", "squad", "conll", "lines"] | None = None
    json_field: str | None = Field(None, description="for .json files: the key holding the list of rows")
    columns: list[str] | None = Field(None, description="for csv/tsv files without a header row: the column names; for lines: the one column name")
    conll: ConllOptions | None = None
    parallel: list[ParallelFile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _format_options(self) -> LocalSource:
        if self.conll is not None and self.format != "conll":
            raise ValueError("'conll' options need format: conll")
        if self.parallel and self.format != "lines":
            raise ValueError("'parallel' files need format: lines")
        if self.format == "lines" and self.columns is not None and len(self.columns) != 1:
            raise ValueError("format lines takes one column name in 'columns'")
        if self.format in ("squad", "conll", "lines") and self.json_field is not None:
            raise ValueError(f"json_field does not apply to format {self.format}")
        if self.format in ("squad", "conll") and self.columns is not None:
            raise ValueError(f"columns does not apply to format {self.format}")
        return self


class HubSource(_Strict):
    """A Hugging Face dataset, loaded through ``datasets`` (needs the network the first time)."""

    id: str
    name: str | None = None
    revision: str | None = None
    split: str | None = None


class DatasetSpec(_Strict):
    local: LocalSource | None = None
    hub: HubSource | None = None
    # rename source columns to the names templates use: {template_name: source_name}
    fields: dict[str, str] = Field(default_factory=dict)
    id_field: str | None = None
    where: str | None = Field(None, description="an expression that keeps only the rows where it is true")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if self.local is None and self.hub is None:
            raise ValueError("give a data source: 'local' (a file) or 'hub' (a Hugging Face dataset)")
        return self


# What a multiple-choice target names: a choice's position or a choice's text. Unset: an int
# is an index; a string equal to a choice's text is that choice; any other digit string is an
# index (CSV labels); a digit string that names one choice as text and another as an index is
# refused (``instances._target``), so that choices such as ["3", "2", "1", "0"] cannot get
# silently wrong golds.
TargetType = Literal["index", "text"]


def _without_unset_target_type(out: Any) -> Any:
    """Dumps (and so content and template hashes) leave out an unset ``target_type`` and
    ``primary``: the hashes of tasks that do not set them are the ones they had before the
    fields existed."""
    if isinstance(out, dict):
        for key in ("target_type", "primary"):
            if key in out and out[key] is None:
                del out[key]
    return out


class PromptSpec(_Strict):
    """One prompt template; a task may have several, each with a stable id."""

    id: str
    template: str
    choices: str | list[str] | None = None  # expression, or a list of templates (one per choice)
    target: str | None = None  # expression; overrides the task's target
    target_type: TargetType | None = None  # overrides the task's
    preamble: str | None = None  # template shown once before the few-shot examples (e.g. MMLU's subject line)
    # template of a few-shot example's answer (default: its target), e.g. a worked solution
    # or a written rationale ending in the answer (GSM8K, BBH chain of thought)
    shot_answer: str | None = None
    language: str | None = None  # language the prompt is written in
    translation: Literal["original", "human", "machine", "machine-checked"] | None = None
    chat: str | None = None  # auto | never | always | a chat format name (overrides the task's)
    choice_mode: Literal["continuation", "context"] | None = None  # overrides the task's
    description: str = ""

    _dump = model_serializer(mode="wrap")(lambda self, handler: _without_unset_target_type(handler(self)))

    @field_validator("chat")
    @classmethod
    def _chat_ok(cls, v: Any) -> Any:
        return _chat_policy(v)

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v):
            raise ValueError("prompt ids use letters, digits, '-', '_' and '.'")
        return v


class FewShotSpec(_Strict):
    k: int = Field(0, ge=0)
    # random: k rows drawn per document with a generator seeded by (seed, document id);
    # first_n: the first k rows of the source in file order (MMLU's dev examples);
    # rices: the k rows whose first image is most similar to the document's (retrieval-based
    # in-context example selection), the most similar one last, next to the question
    sampler: Literal["random", "first_n", "rices"] = "random"
    split: str | None = None  # a split name in `splits`, or None for the evaluation split itself
    seed: int = 1234
    separator: str = "\n\n"
    # rices: the image embedding, a built-in name (`pixels`) or "package.module:function"
    # taking a list of RGB Pillow images and returning one vector per image
    embedding: str = "pixels"
    # examples show the format without their images (IDEFICS' "0-shot": two text-only examples)
    text_only: bool = False


class GenerationSpec(_Strict):
    until: list[str] = Field(default_factory=list)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    n: int = Field(1, ge=1, description="samples per prompt (for pass@k)")
    seed: int = 1234
    stop_token_ids: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list, description="token ids that end a reply (model-specific)")


def _chat_policy(v: Any) -> Any:
    from assay.prompts.formats import check_policy

    if isinstance(v, str):
        try:
            check_policy(v)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
    return v


class MetricSpec(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


def metric_display_name(name: str, args: dict[str, Any]) -> str:
    """A metric's name as results show it: ``pass@10``, ``entity_f1[PER]``, else its name."""
    if name == "pass_at_k":
        return f"pass@{args.get('k', 1)}"
    if name.startswith("entity_") and args.get("type"):
        return f"{name}[{args['type']}]"
    return name


class ExtractStep(_Strict):
    """One extraction step: a name from ``scoring.extract.STEPS`` and its arguments (checked by
    ``scoring.extract.check_extract``)."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EXTRACT_STEPS:
            raise ValueError(str(UnknownNameError("extraction step", v, EXTRACT_STEPS)))
        return v


class ExtractSpec(_Strict):
    """How a free-form answer becomes the thing a metric compares: a pipeline of steps.

    YAML may give a name (``extract: number``), one step (``{name: regex, args: {...}}``) or a
    list of steps applied in order, each to the previous one's output (``[{name: regex, args:
    ...}, number, majority]``). ``majority`` (last step only) votes across the samples of an item.
    A one-step pipeline dumps as that step, so its hash is what it was before pipelines existed.
    """

    steps: tuple[ExtractStep, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _as_steps(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"steps": [{"name": v}]}
        if isinstance(v, (list, tuple)):
            return {"steps": [{"name": s} if isinstance(s, str) else s for s in v]}
        if isinstance(v, dict) and "steps" not in v:
            return {"steps": [v]}
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        out = handler(self)
        return out["steps"][0] if len(self.steps) == 1 else out

    @property
    def output_step(self) -> ExtractStep:
        """The step whose output a metric compares (the last one that is not ``majority``)."""
        return next((s for s in reversed(self.steps) if s.name != "majority"), self.steps[-1])

    @property
    def name(self) -> str:
        return self.output_step.name

    @property
    def args(self) -> dict[str, Any]:
        return self.output_step.args

    @property
    def majority(self) -> bool:
        return self.steps[-1].name == "majority"

    def step(self, name: str) -> ExtractStep | None:
        return next((s for s in self.steps if s.name == name), None)


def _metric(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


def _extract(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


class CardSpec(_Strict):
    """How the task appears in model-card ``model-index`` metadata (defaults are derived)."""

    type: str | None = None  # dataset id, e.g. xnli
    name: str | None = None  # display name, e.g. "XNLI (en)"
    config: str | None = None
    task_type: str | None = Field(None, description="model-index task.type, a Hugging Face task id (text-classification, question-answering, "
                                  "multiple-choice, text-generation, token-classification, translation, ...); default: from output_type and metrics")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        out = handler(self)  # an unset task_type is left out: content hashes stay those from before it existed
        if isinstance(out, dict) and out.get("task_type") is None:
            out.pop("task_type", None)
        return out


class TaskSpec(_Strict):
    version: int = SPEC_VERSION
    task: str
    group: list[str] = Field(default_factory=list)
    family: str | None = None  # e.g. "classification", "code", "Natural language inference"
    description: str = ""
    language: str | None = None
    dataset: DatasetSpec
    split: str = "test"
    splits: dict[str, DatasetSpec] = Field(default_factory=dict)  # extra splits (few-shot sources)
    # match: image–text matching (Winoground): each of the document's N images with each of
    # its N captions (`choices`), caption i belonging to image i; N×N log-likelihoods
    output_type: Literal["multiple_choice", "loglikelihood", "generate", "rolling", "match"]
    # an expression giving the document's image(s): a path relative to the data file, bytes,
    # or a picture (hub Image features); each one fills an <image> placeholder of the prompt
    images: str | None = None
    prompts: list[PromptSpec] = Field(min_length=1)
    choices: str | list[str] | None = None
    target: str | None = None
    target_type: TargetType | None = None  # multiple choice: index | text (see TargetType)
    target_delimiter: str = " "
    # continuation: `choices` are continuations scored after the prompt (the usual case);
    # context: `choices` are contexts (e.g. a sentence filled in with each option up to the
    # blank) and the prompt is the shared continuation scored after each (Winograd partial
    # scoring, as the established harnesses score WinoGrande and XWinograd)
    choice_mode: Literal["continuation", "context"] = "continuation"
    vars: dict[str, Any] = Field(default_factory=dict)
    # auto | never | always, or a chat format name (none, model, chatml, alpaca, …: `assay ls formats`)
    chat: str = "auto"
    metrics: list[Annotated[MetricSpec, Field()]] = Field(min_length=1)
    # the headline metric (a metric's name as results show it: acc, pass@1, entity_f1[PER]);
    # default: the first of `metrics`
    primary: str | None = None
    extract: ExtractSpec = ExtractSpec(name="none")
    fewshot: FewShotSpec = FewShotSpec()
    generation: GenerationSpec = GenerationSpec()
    card: CardSpec = CardSpec()

    _norm_metrics = field_validator("metrics", mode="before")(lambda v: [_metric(m) for m in v] if isinstance(v, list) else v)
    _norm_extract = field_validator("extract", mode="before")(_extract)
    _dump = model_serializer(mode="wrap")(lambda self, handler: _without_unset_target_type(handler(self)))

    @field_validator("extract")
    @classmethod
    def _extract_pipeline(cls, v: ExtractSpec, info: ValidationInfo) -> ExtractSpec:
        check_pipeline(v, info.data.get("task", "?"))
        return v

    @field_validator("chat")
    @classmethod
    def _chat_ok(cls, v: Any) -> Any:
        return _chat_policy(v)

    @field_validator("group", mode="before")
    @classmethod
    def _group_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("task")
    @classmethod
    def _task_name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v):
            raise ValueError("task names use letters, digits, '-', '_' and '.'")
        return v

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        ids = [p.id for p in self.prompts]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate prompt ids: {', '.join(sorted(dup))}")
        if self.output_type == "multiple_choice":
            for p in self.prompts:
                if (p.choices or self.choices) is None:
                    raise ValueError(f"multiple_choice needs 'choices' (task or prompt '{p.id}')")
                if (p.target or self.target) is None:
                    raise ValueError(f"multiple_choice needs 'target' (task or prompt '{p.id}')")
        elif self.target_type is not None or any(p.target_type is not None for p in self.prompts):
            raise ValueError(f"task {self.task}: target_type applies to multiple_choice tasks only")
        if self.output_type in ("generate", "loglikelihood"):
            for p in self.prompts:
                if (p.target or self.target) is None:
                    raise ValueError(
                        f"task {self.task}: {self.output_type} needs 'target', the answer its metrics compare with (task or prompt '{p.id}')"
                    )
        if self.output_type == "match":
            if self.images is None:
                raise ValueError("match needs 'images' (the document's images, one per caption)")
            if any((p.choices or self.choices) is None for p in self.prompts):
                raise ValueError("match needs 'choices' (the document's captions, caption i for image i)")
            if self.fewshot.k:
                raise ValueError("match tasks take no few-shot examples")
        if self.fewshot.sampler == "rices" and self.images is None:
            raise ValueError("fewshot.sampler 'rices' picks examples by image similarity: the task needs 'images'")
        if self.fewshot.k and self.fewshot.split and self.fewshot.split not in self.splits:
            raise ValueError(f"fewshot.split '{self.fewshot.split}' is not declared under 'splits'")
        if self.primary is not None and self.primary not in self.metric_names():
            raise ValueError(f"task {self.task}: primary '{self.primary}' is not one of its metrics ({', '.join(self.metric_names())})")
        for m in self.metrics:
            k = m.args.get("k", 1) if m.name == "pass_at_k" else None
            if isinstance(k, int) and k > self.generation.n:
                raise ValueError(f"metric pass@{k} needs at least {k} samples per problem: set generation.n >= {k} (it is {self.generation.n})")
        return self

    def metric_names(self) -> list[str]:
        """The task's metrics as results name them (``pass@1``, ``entity_f1[PER]``)."""
        return [metric_display_name(m.name, m.args) for m in self.metrics]

    def headline(self) -> str:
        """The headline metric's name: ``primary``, else the first metric."""
        return self.primary or self.metric_names()[0]

    def prompt(self, prompt_id: str) -> PromptSpec:
        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise KeyError(prompt_id)

    def card_info(self) -> dict[str, str]:
        """model-index identity: dataset type, display name, config (the card's, or the hub
        dataset's; never the language label) and task type (see ``tasks.card``)."""
        hub = self.dataset.hub
        dtype = self.card.type or (hub.id.rsplit("/", 1)[-1].lower() if hub else self.task.split("_")[0])
        config = self.card.config or (hub.name if hub and hub.name else None) or ""
        name = self.card.name or (f"{dtype.upper()} ({config or self.language})" if config or self.language else dtype.upper())
        task_type = self.card.task_type or default_task_type(self.output_type, [m.name for m in self.metrics], self.images is not None)
        return {"type": dtype, "name": name, "config": config, "task_type": task_type}

    def content_hash(self) -> str:
        """Hash of everything that decides the task's requests and scores."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def template_hash(p: PromptSpec) -> str:
    return hashlib.sha256(p.model_dump_json().encode()).hexdigest()[:12]
