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
    types: dict[str, str] = Field(
        default_factory=dict,
        description="entity type as tagged → the type the rows carry (WNUT-17's person → PER); when given, every tagged type must be listed",
    )
    detokenize: bool = Field(
        True, description="true: no space before closing punctuation or after opening brackets and quotes in `text`; false: one space between all tokens"
    )


class ParallelFile(_Strict):
    """For ``format: lines``: another file with one value per line of the main file."""

    path: str = Field(description="the file, resolved as `local.path` is (`builtin:`, absolute, or relative)")
    sha256: str | None = Field(None, description="the file's sha256 (64 hex digits, in quotes); when given, a file that differs is refused")
    column: str = Field(description="the column its lines fill (a name no other column has)")

    _hex = field_validator("sha256", mode="before")(lambda v: _sha256_hex(v))


class LocalSource(_Strict):
    """A local data file; a relative path is looked up against the task file's folder, then the data directory.

    Formats: jsonl, json, csv, tsv, parquet; ``squad`` (SQuAD-style nested JSON, one row per
    question); ``conll`` (token-per-line NER files, one row per sentence); ``lines`` (one row per
    line, with ``parallel`` files adding columns). A ``.gz`` or single-member ``.zip`` is read
    through; the sha256 pin is of the file on disk.
    """

    path: str = Field(
        description="the data file: relative (to the task file's folder, else the data directory), absolute, `~/…`, or `builtin:…` (data shipped with assay)"
    )
    sha256: str | None = Field(
        None, description="the file's sha256 (64 hex digits, in quotes); when given, a file that differs is refused. Recorded as the data revision either way"
    )

    @field_validator("sha256", mode="before")
    @classmethod
    def _hex(cls, v: Any) -> Any:
        return _sha256_hex(v)
    format: Literal["jsonl", "json", "csv", "tsv", "parquet", "squad", "conll", "lines"] | None = Field(
        None, description="the file's format; default: from its extension (.jsonl, .json, .csv, .tsv, .parquet, under any .gz/.zip)"
    )
    json_field: str | None = Field(None, description="for .json files: the key holding the list of rows")
    columns: list[str] | None = Field(None, description="for csv/tsv files without a header row: the column names; for lines: the one column name")
    conll: ConllOptions | None = Field(None, description="options of `format: conll`")
    parallel: list[ParallelFile] = Field(default_factory=list, description="for `format: lines`: more files, one value per line, each adding a column")

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

    id: str = Field(description="the dataset's hub id, e.g. `cambridgeltl/xcopa`")
    name: str | None = Field(None, description="the dataset's configuration (subset) name, e.g. `it`")
    revision: str | None = Field(None, description="a git revision (commit, tag or branch) of the dataset repository; recorded as the data revision")
    split: str | None = Field(None, description="the hub split to load; default: the task's `split` (or, under `splits`, the split's key)")


class DatasetSpec(_Strict):
    """Where a split's rows come from: a local file, a hub dataset, or both (the hub copy is
    loaded when the local file is absent), with column renames, row ids and a row filter."""

    local: LocalSource | None = Field(None, description="a local data file")
    hub: HubSource | None = Field(None, description="a Hugging Face dataset; with `local`, the fallback when the file is absent")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="renames for templates: {name templates use: source column}; the row keeps its source columns too",
    )
    id_field: str | None = Field(
        None, description="the column whose value is each row's id, named as the source has it or as `fields` renames it; ids must be unique. Default: the row number (0, 1, …)"
    )
    where: str | None = Field(None, description="an expression that keeps only the rows where it is true (sees the row after `fields`, no `vars`)")

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
        for key in ("target_type", "primary", "judge", "turns"):
            if key in out and out[key] is None:
                del out[key]
    return out


class PromptSpec(_Strict):
    """One prompt template; a task may have several, each with a stable id."""

    id: str = Field(description="the prompt's stable id (letters, digits, '-', '_', '.'), unique in the task; `--prompt ID` selects by it")
    template: str = Field(description="Jinja2 template of the document's prompt")
    choices: str | list[str] | None = Field(None, description="overrides the task's `choices`: an expression, or a list of templates (one per choice)")
    target: str | None = Field(None, description="overrides the task's `target` (an expression)")
    target_type: TargetType | None = Field(None, description="overrides the task's `target_type`")
    preamble: str | None = Field(None, description="template shown once, before the few-shot examples (e.g. MMLU's subject line)")
    shot_answer: str | None = Field(
        None,
        description="template of a few-shot example's answer (default: its target, or for multiple choice the gold choice's text), e.g. a worked solution ending in the answer (GSM8K, BBH chain of thought)",
    )
    language: str | None = Field(None, description="the language the prompt is written in (e.g. `it`)")
    translation: Literal["original", "human", "machine", "machine-checked"] | None = Field(
        None, description="how the prompt was made: written in its language, or translated by people, by a machine, or by a machine and checked"
    )
    chat: str | None = Field(None, description="overrides the task's `chat`: auto | never | always | a chat format name")
    choice_mode: Literal["continuation", "context"] | None = Field(None, description="overrides the task's `choice_mode`")
    description: str = Field("", description="what the prompt is, for people (e.g. where it comes from)")

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
    """Few-shot examples: k solved rows shown before each document."""

    k: int = Field(0, ge=0, description="examples per document; 0: zero-shot")
    sampler: Literal["random", "first_n", "rices"] = Field(
        "random",
        description=(
            "random: k rows drawn per document with a generator seeded by (seed, document id); first_n: the first k rows of the source "
            "in file order (MMLU's dev examples); rices: the k rows whose first image is most similar to the document's, the most similar last"
        ),
    )
    split: str | None = Field(None, description="a split name declared in `splits`; default: the evaluation split itself (a document is never its own example)")
    seed: int = Field(1234, description="seed of the random sampler")
    separator: str = Field("\n\n", description="text between examples and before the document (plain-text prompts; in chat, examples are earlier turns)")
    embedding: str = Field(
        "pixels",
        description="rices: the image embedding, a built-in name (`pixels`) or `package.module:function` taking a list of RGB Pillow images and returning one vector per image",
    )
    text_only: bool = Field(False, description="examples show the format without their images (IDEFICS' \"0-shot\": text-only examples)")


class GenerationSpec(_Strict):
    """Decoding settings of `generate` tasks."""

    until: list[str] = Field(default_factory=list, description="stop strings; the reply ends before the first one (the chat format adds its own)")
    max_tokens: int = Field(256, ge=1, description="the most tokens generated")
    temperature: float = Field(0.0, ge=0.0, description="0: greedy decoding; above 0: sampling")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling: the smallest set of tokens whose probability reaches top_p")
    top_k: int = Field(0, ge=0, description="sample among the k most likely tokens; 0: no limit")
    repetition_penalty: float = Field(1.0, gt=0.0, description="1.0: none; above 1 discourages repeated tokens")
    n: int = Field(1, ge=1, description="samples per prompt (for pass@k and `majority`); sample i is seeded with (seed, i)")
    seed: int = Field(1234, description="seed of sampled generation")
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
    """One metric; YAML may give just its name (``metrics: [acc, acc_norm]``)."""

    name: str = Field(description="a metric name (see Metrics)")
    args: dict[str, Any] = Field(default_factory=dict, description="the metric's arguments (`k` of pass_at_k, `type` of the entity metrics)")


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

    name: str = Field(description="an extraction step (see Extraction steps)")
    args: dict[str, Any] = Field(default_factory=dict, description="the step's arguments")

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

    steps: tuple[ExtractStep, ...] = Field(min_length=1, description="the steps, applied in order, each to the previous one's output")

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

    type: str | None = Field(None, description="the dataset id, e.g. `xnli`; default: the hub id's last part, else the task name before its first `_`")
    name: str | None = Field(None, description="the display name, e.g. `XNLI (en)`; default: TYPE (CONFIG)")
    config: str | None = Field(None, description="the dataset configuration; default: the hub `name` (never the task's language label)")
    task_type: str | None = Field(None, description="model-index `task.type`: the human task type model cards publish (`Natural language inference`, "
                                  "`Sentence completion`, `Program synthesis`) or a Hugging Face task id (text-classification, question-answering, ...); "
                                  "default: a task id from output_type and metrics (never the task's family label)")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        out = handler(self)  # an unset task_type is left out: content hashes stay those from before it existed
        if isinstance(out, dict) and out.get("task_type") is None:
            out.pop("task_type", None)
        return out


class JudgeSpec(_Strict):
    """How a judge model grades this task's generated answers (``assay run --judge MODEL``)."""

    mode: Literal["auto", "single", "pairwise", "both"] = Field(
        "auto", description="single: each answer graded on its own; pairwise: two models' answers compared, asked in both orders; "
        "both; auto: single where the task has a reference answer (`target`) or only one model runs, else pairwise"
    )
    scale: Literal["1-10", "pass/fail"] | None = Field(None, description="single grading's scale; default: pass/fail with a reference answer, else 1-10")
    template: str | None = Field(None, description="single grading's judge prompt: `single-v1` (built-in, the default), or a Jinja template of your own")
    pairwise_template: str | None = Field(None, description="pairwise grading's judge prompt: `pairwise-v1` (built-in, the default), or a Jinja template of your own")
    reference: str | None = Field(None, description="an expression giving the reference answer shown to the judge; default: the task's `target`; `none` for no reference")
    max_tokens: int = Field(512, ge=1, description="the judge's answer's length limit, in tokens")


class TaskSpec(_Strict):
    """A task: its data, its prompt templates, how a model is asked, and how answers score."""

    version: int = Field(SPEC_VERSION, description="the task's version, recorded with its results; raise it when the task changes meaning")
    task: str = Field(description="the task's name (letters, digits, '-', '_', '.'); default: the file name without .yaml. Results are keyed by it")
    group: list[str] = Field(default_factory=list, description="groups the task belongs to (a name or a list); `--tasks GROUP` runs them all")
    family: str | None = Field(None, description="the kind of task, for reports (e.g. `classification`, `code`, `Natural language inference`)")
    description: str = Field("", description="one line for people (`assay ls tasks` shows it)")
    language: str | None = Field(None, description="the language of the data (e.g. `it`)")
    dataset: DatasetSpec = Field(description="where the evaluation split's rows come from")
    split: str = Field("test", description="the evaluation split's name (the hub split to load; recorded with the results)")
    splits: dict[str, DatasetSpec] = Field(default_factory=dict, description="more splits by name (few-shot sources, `fewshot.split`)")
    output_type: Literal["multiple_choice", "loglikelihood", "generate", "rolling", "match"] = Field(
        description="how the model is asked (see Output types)"
    )
    images: str | None = Field(
        None,
        description="an expression giving the document's image(s): a path relative to the data file, bytes, or a picture (hub Image features); each fills an `<image>` placeholder of the prompt",
    )
    prompts: list[PromptSpec] = Field(min_length=1, description="the prompt templates, at least one; the task's score is the median over them")
    choices: str | list[str] | None = Field(
        None, description="multiple_choice/match: an expression giving the list of choices, or a list of templates (one per choice)"
    )
    target: str | None = Field(
        None,
        description="an expression giving the gold answer: for multiple choice a choice's index or text (or a 0/1 list, one per choice); for generation the answer or a list of answers",
    )
    target_type: TargetType | None = Field(None, description="multiple choice: what a string target names, a choice's `index` or its `text`; default: decided per row, refusing ambiguity")
    target_delimiter: str = Field(" ", description="text between the prompt and each choice (or a few-shot example's answer)")
    choice_mode: Literal["continuation", "context"] = Field(
        "continuation",
        description=(
            "continuation: `choices` are scored after the prompt (the usual case); context: each choice is a context and the prompt "
            "is the shared continuation scored after each (Winograd partial scoring, as WinoGrande and XWinograd)"
        ),
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="constants templates and expressions see as `vars` (and `label` extraction as `labels_var`)")
    chat: str = Field("auto", description="auto | never | always, or a chat format name (none, model, chatml, alpaca, …: `assay ls formats`)")
    metrics: list[Annotated[MetricSpec, Field()]] = Field(min_length=1, description="the metrics, each a name or {name, args}")
    primary: str | None = Field(
        None, description="the headline metric, as results name it (acc, pass@1, entity_f1[PER]); default: the first of `metrics`"
    )
    extract: ExtractSpec = Field(ExtractSpec(name="none"), description="generate: how an answer becomes what the metrics compare (a step name, a step, or a list of steps)")
    fewshot: FewShotSpec = Field(FewShotSpec(), description="few-shot examples")
    generation: GenerationSpec = Field(GenerationSpec(), description="decoding settings of `generate` tasks")
    card: CardSpec = Field(CardSpec(), description="how the task appears in model-card metadata")
    judge: JudgeSpec | None = Field(None, description="generation tasks: how `--judge MODEL` grades the answers (default: the judge's defaults)")
    turns: str | None = Field(
        None, description="generation tasks: an expression giving the conversation's later user messages (a list of strings); the prompt is the first "
        "message, and each later one is sent after the model's own answer to the one before (a multi-turn chat); metrics and judges score the last answer"
    )

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
        if self.turns is not None and (self.output_type != "generate" or self.generation.n != 1 or self.images is not None):
            raise ValueError(f"task {self.task}: turns: a conversation is a generation task with one sample per turn (generation.n: 1) and no images")
        if self.judge is not None and self.output_type != "generate":
            raise ValueError(f"task {self.task}: judge: grades generated answers; this task's output_type is {self.output_type}")
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
