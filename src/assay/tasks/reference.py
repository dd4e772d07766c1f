"""The reference of task files, generated from the task spec's models so that it cannot drift.

``python -m assay.tasks.reference [DOCS_DIR]`` (``make docs``) writes ``docs/tasks.md`` (every
key with its type, default and meaning, from the pydantic models' field descriptions, plus the
hand-written sections below) and ``docs/task.schema.json`` (the JSON Schema of a task file, for
editors: ``assay schema task`` prints it). ``tests/tasks/test_reference.py`` fails when the
checked-in files differ from what this module generates, or when a field has no description.

Tables that other registries own are generated from them too: the extraction steps
(``scoring.extract.STEPS``), the metrics (``scoring.metrics.METRICS``) and the Jinja filters
assay adds (``tasks.render.ENV``). Their one-line descriptions live here only where the
registry has none (steps, filters); a new step or filter without one fails the generator.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from jinja2.defaults import DEFAULT_FILTERS
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from assay.tasks.spec import SPEC_VERSION, ExtractSpec, TaskSpec

SCHEMA_ID = "https://assay.invalid/task.schema.json"  # a name, not a location: editors read the file

# ----------------------------------------------------------------------------------------------
# the models


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in get_args(annotation) for m in _models_in(a)]


def models() -> list[type[BaseModel]]:
    """Every model reachable from TaskSpec through its fields, in the order the reference
    shows them (depth first, fields in declaration order)."""
    out: list[type[BaseModel]] = []

    def walk(m: type[BaseModel]) -> None:
        if m in out:
            return
        out.append(m)
        for f in m.model_fields.values():
            for sub in _models_in(f.annotation):
                walk(sub)

    walk(TaskSpec)
    return out


def _paths() -> dict[type[BaseModel], list[str]]:
    """Where each model sits in a task file: ``dataset``, ``splits.NAME``, ``prompts[]``."""
    out: dict[type[BaseModel], list[str]] = {TaskSpec: []}

    def walk(m: type[BaseModel], prefix: str) -> None:
        for name, f in m.model_fields.items():
            path = f"{prefix}{name}"
            for sub, suffix in _placed(f.annotation):
                where = path + suffix
                if where not in out.setdefault(sub, []):
                    out[sub].append(where)
                    walk(sub, where + ".")

    walk(TaskSpec, "")
    return out


def _placed(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """The models an annotation holds and how a path reaches them: directly, ``[]`` (list
    items), ``.NAME`` (mapping values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple):
        return [(m, "[]" + s) for a in args if a is not Ellipsis for m, s in _placed(a)]
    if origin is dict:
        return [(m, ".NAME" + s) for m, s in _placed(args[1])]
    return [p for a in args for p in _placed(a)]


# ----------------------------------------------------------------------------------------------
# the JSON Schema


def task_schema() -> dict[str, Any]:
    """The JSON Schema of a task file: ``TaskSpec.model_json_schema()`` with what the loader
    accepts on top: ``include`` (popped before validation), ``task`` optional (the file's name),
    and the short forms the models' before-validators expand (``group: NAME``, a metric as its
    name, ``extract`` as a step name, one step or a list). A file with ``include`` needs no other
    key: what it lacks comes from the files it includes. Step and metric names are listed, so
    editors complete them (the models check steps on load, metrics when the task is planned)."""
    from assay.scoring.extract import STEPS
    from assay.scoring.metrics import METRICS

    schema = TaskSpec.model_json_schema()
    defs = schema["$defs"]
    props = schema["properties"]
    step_names = list(STEPS)
    defs["ExtractStep"]["properties"]["name"]["enum"] = step_names
    defs["MetricSpec"]["properties"]["name"]["enum"] = list(METRICS)
    step = {"anyOf": [{"type": "string", "enum": step_names}, {"$ref": "#/$defs/ExtractStep"}]}
    pipeline = defs.pop("ExtractSpec")
    defs["ExtractSpec"] = {
        "title": pipeline["title"],
        "description": pipeline["description"],
        "anyOf": [
            step["anyOf"][0],
            step["anyOf"][1],
            {"type": "array", "items": step, "minItems": 1},
            {k: v for k, v in pipeline.items() if k not in ("title", "description")},
        ],
    }
    metrics = props["metrics"]
    metrics["items"] = {"anyOf": [{"type": "string", "enum": list(METRICS)}, {"$ref": "#/$defs/MetricSpec"}]}
    group = props["group"]
    props["group"] = {k: v for k, v in group.items() if k not in ("type", "items")} | {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    props["include"] = {
        "title": "Include",
        "description": "a task file (or a list of them, merged in order) this file builds on, relative to this file; its keys merge under this file's (see docs/tasks.md)",
        "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}}],
    }
    schema["required"] = [r for r in schema["required"] if r != "task"]
    defs["TaskSpec"] = {k: v for k, v in schema.items() if k != "$defs"}
    # a file with include: may leave out anything, at any depth, that the files it includes give
    for name in list(defs):
        defs["Partial" + name] = _partial(defs[name])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "assay task file",
        "description": f"A task file of assay (spec version {SPEC_VERSION}); generated by assay.tasks.reference, see docs/tasks.md. "
        "A file with `include` is checked as a partial task (no key required).",
        "type": "object",
        "if": {"required": ["include"]},
        "then": {"$ref": "#/$defs/PartialTaskSpec"},
        "else": {"$ref": "#/$defs/TaskSpec"},
        "$defs": dict(sorted(defs.items())),
    }


def _partial(node: Any) -> Any:
    """A schema node with no key required and its references to the partial models."""
    if isinstance(node, dict):
        out = {k: _partial(v) for k, v in node.items() if not (k == "required" and isinstance(v, list))}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace("#/$defs/", "#/$defs/Partial")
        return out
    if isinstance(node, list):
        return [_partial(v) for v in node]
    return node


def schema_text() -> str:
    return json.dumps(task_schema(), indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------------
# the Markdown reference


def _rst(text: str) -> str:
    """Docstrings' ``code`` as Markdown's `code`, paragraphs joined."""
    return " ".join(text.replace("``", "`").split())


def _cell(text: str) -> str:
    return _rst(text).replace("|", "\\|")


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{_title(annotation)}](#{_anchor(annotation)})"
    if annotation in (str, int, float, bool):
        return {str: "string", int: "integer", float: "number", bool: "boolean"}[annotation]
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(_type(a) for a in kept)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (list, tuple):
        return f"list of {_type(args[0])}"
    if origin is dict:
        return "mapping" if args[1] is Any else f"mapping of string → {_type(args[1])}"
    raise TypeError(f"no reference type for {annotation!r}")


def _constraints(f: FieldInfo) -> str:
    out = []
    for m in f.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sign} {getattr(m, attr)}")
        if getattr(m, "min_length", None):
            out.append(f"at least {m.min_length}")
    return f" ({', '.join(out)})" if out else ""


_DEFAULT_NOTES: dict[tuple[type[BaseModel], str], str] = {(TaskSpec, "task"): "the file's name"}


def _default(model: type[BaseModel], name: str, f: FieldInfo) -> str:
    if (model, name) in _DEFAULT_NOTES:
        return _DEFAULT_NOTES[(model, name)]
    if f.is_required():
        return "**required**"
    value = f.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, ExtractSpec):
        return f"`{value.name}`"
    if isinstance(value, BaseModel):
        return "its defaults"
    return "`" + json.dumps(value, ensure_ascii=False).replace("|", "\\|") + "`"


def _title(model: type[BaseModel]) -> str:
    paths = _paths()[model]
    return "top level" if not paths else paths[0]


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


# YAML examples of the key tables: changes to the complete example (capitals.yaml), which the
# tests apply through include: and load
EXAMPLES: dict[type[BaseModel], tuple[str, str]] = {}


def _example(model_name: str, intro: str, yaml_text: str) -> None:
    from assay.tasks import spec

    EXAMPLES[getattr(spec, model_name)] = (intro, yaml_text.strip("\n"))


_example("DatasetSpec", "A CSV file without a header row, a hub copy to fall back on, and only some rows:", """
dataset:
  local:
    path: capitals.csv
    columns: [id, q, a, b, c, d, answer]
  hub: {id: my-org/capitals, split: test}
  fields: {question: q}
  id_field: id
  where: "answer | int < 4"
choices: "[a, b, c, d]"
""")
_example("HubSource", "A Hugging Face dataset (loaded through `datasets`, which needs the network the first time; with `local`, it is the fallback when the file is absent):", """
dataset:
  hub: {id: cambridgeltl/xcopa, name: it, revision: main}
""")
_example("PromptSpec", "One more prompt, written in Italian:", """
prompts:
  - id: italian
    template: "Domanda: {{ question }}\\nRisposta:"
    language: it
    translation: human
    description: the plain prompt, translated by hand
""")
_example("FewShotSpec", "Two examples from a dev split, the same two for every document:", """
splits:
  dev:
    local: {path: capitals_dev.jsonl}
    fields: {question: q}
fewshot:
  k: 2
  split: dev
  sampler: first_n
""")
_example("GenerationSpec", "A generation task: the model writes the answer, its first line is compared with the target:", """
output_type: generate
target: "options[answer]"
generation:
  until: ["\\n\\n"]
  max_tokens: 32
extract: first_line
metrics: [exact_match, f1]
""")
_example("MetricSpec", "Metrics by name, or with arguments:", """
metrics:
  - acc
  - {name: acc_norm}
primary: acc_norm
""")
_example("ExtractSpec", "For a task whose `answer` column holds a number: the last match of a regular expression, read as a number, then a vote over 5 samples:", """
output_type: generate
target: "answer"
extract:
  - {name: regex, args: {pattern: "answer is (.*)", all: true}}
  - number
  - majority
generation: {n: 5, temperature: 0.7}
metrics: [number_match]
""")
_example("CardSpec", "", """
card: {type: capitals, name: Capitals (en), config: en}
""")

EXAMPLE_TASK = """
# yaml-language-server: $schema=task.schema.json
# file: capitals.yaml
task: capitals
description: Capital cities, four choices
family: knowledge
language: en
dataset:
  local:
    path: capitals.jsonl     # next to this file, else in the data directory
  fields:
    question: q              # templates say {{ question }}; the file's column is q
  id_field: id               # a column of the file (or a name fields gives one)
output_type: multiple_choice
choices: options             # an expression: the row's list of options
target: answer               # an expression: the index of the right one
prompts:
  - id: plain
    template: "Question: {{ question }}\\nAnswer:"
  - id: letters              # the options listed, the letters scored
    template: |-
      {{ question }}
      {% for o in options %}{{ letters[loop.index0] }}. {{ o }}
      {% endfor %}Answer:
    choices: "letters[:options | length] | list"
metrics: [acc, acc_norm]
"""

EXAMPLE_DATA = """
{"id": "fr", "q": "What is the capital of France?", "options": ["Lyon", "Paris", "Marseille", "Nice"], "answer": 1}
{"id": "it", "q": "What is the capital of Italy?", "options": ["Rome", "Milan", "Naples", "Turin"], "answer": 0}
{"id": "jp", "q": "What is the capital of Japan?", "options": ["Osaka", "Kyoto", "Tokyo", "Nagoya"], "answer": 2}
{"id": "ca", "q": "What is the capital of Canada?", "options": ["Toronto", "Vancouver", "Montreal", "Ottawa"], "answer": 3}
{"id": "au", "q": "What is the capital of Australia?", "options": ["Sydney", "Canberra", "Melbourne", "Perth"], "answer": 1}
"""

EXAMPLE_INCLUDE = """
# file: capitals_2shot.yaml
include: capitals.yaml       # relative to this file
task: capitals_2shot         # replaces the included value
fewshot: {k: 2}              # mappings merge key by key
prompts:
  - id: plain                # redefines the included prompt of this id; 'letters' is kept
    template: "Q: {{ question }}\\nA:"
"""

FILTERS = {
    "lcfirst": "the first character lower-cased (`{{ choice1 | lcfirst }}`)",
    "ucfirst": "the first character upper-cased",
    "rstrip_punct": "trailing `.!?。` removed; `rstrip_punct(chars)` names other characters",
    "regex_replace": "`regex_replace(pattern, repl='')`: Python's `re.sub` (`{{ text | regex_replace('\\\\s+', ' ') }}`)",
    "fromjson": "a JSON string parsed (a column that holds JSON text)",
    "winograd": "an XWinograd row (sentence, tokens, pronoun, candidates) → {prefix, options, contexts, rest, blanked, answer} for partial scoring",
}

STEP_TEXT = {
    "none": "the answer as it is (the default)",
    "strip": "whitespace removed at both ends",
    "first_line": "the first non-empty line, stripped",
    "span": "a short answer cut from a verbose one (\"The answer is Paris.\" → \"Paris\")",
    "regex": (
        "the match of `pattern`: `group` (default 1 when the pattern has groups, else 0), `all: true` the last match (chain of thought),"
        " `flags` (`imsx` or names such as `[IGNORECASE, DOTALL]`); no match gives \"\""
    ),
    "number": "a normalised number (\"1,234.0\" → \"1234\"): `mode` `last` (default), `first` or `gsm8k` (after ####); None when there is none",
    "letter": "the chosen option letter: `letters` (default \"ABCD\") or `n` options, `format` (\"({})\" reads \"(B)\"); None when there is none",
    "label": "a label from free text: `labels` (label → words), `labels_var` (a task var holding such a mapping), `preset` (built-in words, e.g. `sentiment2`), `rename` (preset label → your label)",
    "entities": "`[[surface, TYPE], …]` from a list of entities in the answer: `types` (TYPE → words; default PER/LOC/ORG/MISC)",
    "code": "the program in the answer, for `pass_at_k` to run against the target's tests (a pipeline of its own)",
    "majority": "last step only: the most common answer over the item's samples (`generation.n`); ties go to the earliest sample",
}

OUTPUT_TYPES = {
    "multiple_choice": "one log-likelihood request per choice: the context, then `target_delimiter` + the choice; the choice scored highest is the answer",
    "loglikelihood": "one request: the context, then `target_delimiter` + the target; its log-likelihood and whether greedy decoding would produce it (LAMBADA)",
    "generate": "the model writes a reply (`generation` settings, `n` samples); `extract` turns it into what the metrics compare with the target",
    "rolling": "the log-likelihood of the rendered prompt itself, in windows of the model's context (perplexity of a text); no target",
    "match": "image–text matching (Winoground): each of the document's N images (`images`) with each of its N captions (`choices`), caption i belonging to image i; N×N log-likelihoods",
}


def _key_table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        lines.append(f"| `{name}` | {_type(f.annotation)}{_constraints(f)} | {_default(model, name, f)} | {_cell(f.description or '')} |")
    return lines


def _yaml_block(text: str) -> list[str]:
    return ["```yaml", text.strip("\n"), "```"]


def _keys_section() -> list[str]:
    paths = _paths()
    out = ["## Keys", ""]
    for m in models():
        where = paths[m]
        heading = "Top level" if not where else f"`{where[0]}`"
        out += [f'<a id="{_anchor(m)}"></a>', "", f"### {heading}", ""]
        if len(where) > 1:
            out += ["Also at " + ", ".join(f"`{w}`" for w in where[1:]) + ".", ""]
        out += [_rst(m.__doc__ or ""), ""]
        if m is ExtractSpec:
            out += [
                "The short forms `extract: NAME` (one step without arguments), `extract: {name: …, args: …}` (one step) and a list of steps"
                " (names or mappings) are what YAML files write; `steps` is the long form.",
                "",
            ]
        out += _key_table(m) + [""]
        if m in EXAMPLES:
            intro, text = EXAMPLES[m]
            out += ([intro, ""] if intro else []) + _yaml_block(text) + [""]
    return out


def _filters_list() -> list[str]:
    from assay.tasks.render import ENV

    added = sorted(n for n in ENV.filters if n not in DEFAULT_FILTERS)
    missing = [n for n in added if n not in FILTERS]
    if missing:
        raise KeyError(f"assay.tasks.reference.FILTERS: describe the template filter(s) {', '.join(missing)}")
    return [f"- `{n}`: {FILTERS[n]}" for n in added]


def _steps_table() -> list[str]:
    from assay.scoring.extract import STEPS

    missing = [n for n in STEPS if n not in STEP_TEXT]
    if missing:
        raise KeyError(f"assay.tasks.reference.STEP_TEXT: describe the extraction step(s) {', '.join(missing)}")
    lines = ["| step | arguments | gives |", "|---|---|---|"]
    for name, s in STEPS.items():
        args = ", ".join(f"`{a}`" for a in s.args) or "none"
        lines.append(f"| `{name}` | {args} | {_cell(STEP_TEXT[name])}{' (' + s.gives + ': no text step may follow)' if s.gives else ''} |")
    return lines


def _metrics_table() -> list[str]:
    from assay.scoring.metrics import METRICS

    lines = ["| metric | output types | arguments | scale | better | meaning |", "|---|---|---|---|---|---|"]
    for name, m in METRICS.items():
        scale = "fraction, shown ×100" if m.percent else "raw"
        args = ", ".join(f"`{a}`" for a in m.args) or "none"
        lines.append(f"| `{name}` | {', '.join(f'`{t}`' for t in m.output_types)} | {args} | {scale} | {'higher' if m.higher_is_better else 'lower'} | {_cell(m.description)} |")
    return lines


def _output_types_table() -> list[str]:
    from assay.scoring.metrics import METRICS

    declared = get_args(TaskSpec.model_fields["output_type"].annotation)
    missing = [t for t in declared if t not in OUTPUT_TYPES]
    if missing:
        raise KeyError(f"assay.tasks.reference.OUTPUT_TYPES: describe the output type(s) {', '.join(missing)}")
    lines = ["| output_type | what the model is asked | metrics |", "|---|---|---|"]
    for t in declared:
        names = ", ".join(f"`{n}`" for n, m in METRICS.items() if t in m.output_types)
        lines.append(f"| `{t}` | {_cell(OUTPUT_TYPES[t])} | {names} |")
    return lines


def markdown() -> str:
    """docs/tasks.md."""
    out: list[str] = [
        "# Task files",
        "",
        "<!-- generated by `python -m assay.tasks.reference` (make docs) from the task spec's models (src/assay/tasks/spec.py);"
        " edit those or src/assay/tasks/reference.py, not this file -->",
        "",
        "A task is one YAML file: where its rows come from, one or more prompt templates, how a model is asked"
        " (`output_type`) and how its answers score (`metrics`). `assay validate FILE` loads it, renders every prompt on"
        " its data and checks its metrics; `assay run -m MODEL -t FILE` runs it; `assay run -m mock:try -t FILE` runs it"
        f" end to end in seconds without a model. Unknown keys are errors. This is spec version {SPEC_VERSION}.",
        "",
        "Contents: [from a data file to a score](#from-a-data-file-to-a-score) · [a complete example](#a-complete-example) · [keys](#keys) ·"
        " [templates and expressions](#templates-and-expressions) · [output types](#output-types) ·"
        " [how a multiple-choice request is formed](#how-a-multiple-choice-request-is-formed) ·"
        " [data files and paths](#data-files-and-paths) · [row ids](#row-ids) ·"
        " [include and merge rules](#include-and-merge-rules) · [extraction steps](#extraction-steps) ·"
        " [metrics](#metrics) · [editor completion](#editor-completion)",
        "",
        "## From a data file to a score",
        "",
        "```sh",
        "assay new-task my_data.csv -o my_tasks/mine.yaml   # columns, a guessed layout, a commented task file that validates",
        "assay validate my_tasks/ --show 2 -m MODEL        # the requests a run sends, chat format applied where it would be",
        "assay run -m MODEL -t my_tasks/ --dry-run          # the plan: requests per task, what is stored or cached already",
        "assay run -m MODEL -t my_tasks/ --limit 20         # a first score; without --limit, the rest (the first 20 are kept)",
        "assay score RUN_DIR --reload-tasks                 # after editing metrics, primary, extract or card: no model runs",
        "assay export model-index RUN_DIR                   # the headline (median over prompts) for a model card",
        "```",
        "",
        "`new-task` reads jsonl, json, csv, tsv or parquet, guesses one of four layouts (a question, a list of options"
        " and an answer key; a premise with one column per choice and a label; a text and a label; a question, a context"
        " and answers) and marks each guess `# GUESS:`; check those lines. `-t` takes task files, folders of them"
        " (every `*.yaml` under it, bases `_*.yaml` left out), built-in names, and the `group:` names of the files named"
        " in the same list, in any mix: `-t my_tasks/,xcopa,mine`. `--reload-tasks` refuses edits to what decides the"
        " requests (data, prompts, choices, targets, generation), naming the keys: run the tasks again for those"
        " (stored responses are reused). `export` refuses a run made with `--limit` or with items missing unless"
        " `--allow-partial`, and then writes the item counts.",
        "",
        "## A complete example",
        "",
        "`capitals.yaml`, a multiple-choice task with two prompts:",
        "",
        *_yaml_block(EXAMPLE_TASK),
        "",
        "and its data, `capitals.jsonl` beside it (one JSON object per line):",
        "",
        "```json",
        EXAMPLE_DATA.strip("\n"),
        "```",
        "",
        "`assay validate capitals.yaml` checks both; `assay run -m smollm2-135m-instruct -t capitals.yaml` scores a model"
        " on it. The `plain` prompt scores the option texts after `Question: …\\nAnswer:`; the `letters` prompt lists"
        " the options and scores the letters `A`–`D`. The task's score is the median over its prompts; every prompt's"
        " own score is in the results too. The YAML examples below are changes to this file"
        " (as if written in a file that starts with `include: capitals.yaml`).",
        "",
        *_keys_section(),
        "## Templates and expressions",
        "",
        "`template`, `preamble`, `shot_answer` and the entries of a `choices` list are Jinja2 templates; `choices`"
        " (a string), `target`, `images` and `dataset.where` are Jinja2 expressions, evaluated to a Python value"
        " (a list, an int, a string). Both see:",
        "",
        "- every field of the row by its name: the file's columns (or the hub dataset's features), plus the names"
        " `dataset.fields` gives them, plus `_id` (the row's id);",
        "- `doc`: the whole row as a mapping (`doc['a column with spaces']`);",
        "- `vars`: the task's `vars` (empty in `dataset.where`);",
        "- `letters`: the string `ABCDEFGHIJKLMNOPQRSTUVWXYZ` (`letters[loop.index0]`, `letters[:4] | list`).",
        "",
        "A name the row does not have is an error that lists the row's fields, never an empty string. Templates run in"
        " Jinja2's immutable sandbox (unsafe attributes are refused, and lists and mappings cannot be changed in place). A template's trailing newline"
        " is kept: YAML's `|` block ends its text with a newline, `|-` does not. Besides Jinja2's own filters"
        " (`trim`, `lower`, `join`, `length`, `replace`, …) assay adds:",
        "",
        *_filters_list(),
        "",
        "## Output types",
        "",
        *_output_types_table(),
        "",
        "## How a multiple-choice request is formed",
        "",
        "For each document and prompt: the prompt's `template` is rendered (the query), `choices` evaluated (a list),"
        " and `target` evaluated to a choice (see `target_type`). The context is then, in plain text:",
        "",
        "```text",
        "preamble + example_1 + separator + … + example_k + separator + query",
        "```",
        "",
        "where each few-shot example is its own query + `target_delimiter` + its answer (`shot_answer`, else the text of"
        " its gold choice), and `separator` is `fewshot.separator`. Each choice is one request: the log-likelihood of"
        " the continuation `target_delimiter + choice` after that context. With the example above and the"
        " default delimiter `\" \"`, the `plain` prompt asks for",
        "",
        "```text",
        "context:      \"Question: What is the capital of France?\\nAnswer:\"",
        "continuation: \" Lyon\" | \" Paris\" | \" Marseille\" | \" Nice\"",
        "```",
        "",
        "Word-boundary spaces belong to the continuation, so a template should not end with a space when the delimiter"
        " is one. `acc` takes the choice with the highest log-likelihood, `acc_norm` divides each by the choice's"
        " length in characters first. Multiple-choice prompts are scored on plain text unless the prompt's or task's"
        " `chat` asks for a chat format (or `--chat-format` does); in a chat format the few-shot examples become"
        " earlier user/assistant turns, the preamble starts the first user turn, and the continuation is still"
        " `target_delimiter + choice` after the formatted context.",
        "",
        "With `choice_mode: context` the roles swap: each choice is rendered as the context (with the few-shot"
        " examples and preamble, as a query would be) and the rendered `template` is the shared continuation,"
        " `target_delimiter + query`, scored after each. This is Winograd partial scoring: the sentence up to the"
        " blank filled in with each option, then the rest of the sentence (WinoGrande, XWinograd; the `winograd`"
        " filter computes the pieces).",
        "",
        "## Data files and paths",
        "",
        "`dataset.local.path` (and each `parallel` file's `path`) is one of:",
        "",
        "- a relative path: looked up against the task file's folder first, then the data directory (`--data-dir`,"
        " else `$ASSAY_DATA_DIR`, else `./data`);",
        "- an absolute path, or one starting with `~`;",
        "- `builtin:…`: data shipped with assay (the `core` suite's files).",
        "",
        "When the file is not there and the dataset also names `hub`, the hub copy is loaded (`pip install"
        " 'assay[datasets]'`); otherwise the error names the file and where it was looked for. Give `sha256` to pin"
        " the file: a different file is refused (the file's sha256 is recorded with the results either way). The"
        " format comes from the extension (`.jsonl`, `.json`, `.csv`, `.tsv`, `.parquet`, also inside `.gz` or a"
        " one-file `.zip`) unless `format` says it: `squad` (SQuAD-style JSON, one row per question), `conll`"
        " (token-per-line NER, one row per sentence with `tokens`, `tags`, `text`, `entities`), `lines` (one row per"
        " line, `parallel` files adding columns). Relative image paths (`images`) resolve against the data file's"
        " folder.",
        "",
        "## Row ids",
        "",
        "Every row gets an id, `_id`: the value of the column `dataset.id_field`, as a string, or else the row's"
        " number in the file (0, 1, …, counted before `where` drops any). Ids key the stored responses and the"
        " few-shot draw, and must be unique among the rows kept. `id_field` names a column as the source has it or"
        " as `fields` renames it: with `fields: {qid: id}`, `id_field: id` and `id_field: qid` are the same.",
        "",
        "## include and merge rules",
        "",
        "`include: FILE` (or a list of files) makes a file build on others; paths are relative to the including file."
        " The included files are read (themselves with their includes), merged in order, and the file's own keys are"
        " merged over them:",
        "",
        "- mappings merge key by key, at every depth (`fewshot: {k: 2}` keeps the included `fewshot.seed`);",
        "- `prompts` merge by `id`: a prompt with a new id is added, one with an included id replaces that prompt"
        " whole (its keys do not merge);",
        "- everything else is replaced, lists included (`metrics`, `group`, a `choices` list).",
        "",
        "`task` defaults to the name of the file being loaded, not the included one's. A file whose name starts with"
        " `_` is a base: the built-in index never lists it as a task. Include cycles and duplicate keys are errors,"
        " and errors name the file and line of the key, whichever file it came from.",
        "",
        *_yaml_block(EXAMPLE_INCLUDE),
        "",
        "## Extraction steps",
        "",
        "`extract` turns a generated answer into what the metrics compare: one step, or a list applied in order, each"
        " reading the previous one's output. A step that finds nothing gives None, and the steps after it pass None"
        " on. Arguments go in `args` (`{name: regex, args: {pattern: …}}`).",
        "",
        *_steps_table(),
        "",
        "## Metrics",
        "",
        "A metric applies to the output types it lists; a task naming another is refused when it is validated. Results"
        " name `pass_at_k` as `pass@K` and the entity metrics with `args.type` as `entity_f1[TYPE]`; `primary` uses"
        " those names. A fraction is shown ×100 as a percentage.",
        "",
        *_metrics_table(),
        "",
        "## Editor completion",
        "",
        "`docs/task.schema.json` (also printed by `assay schema task`) is the JSON Schema of a task file. With the"
        " YAML language server (VS Code's YAML extension, and others), a first line",
        "",
        "```yaml",
        "# yaml-language-server: $schema=task.schema.json",
        "```",
        "",
        "(a path relative to the task file, or a URL) gives completion, the descriptions above on hover, and errors"
        " for unknown keys as you type: `assay schema task > task.schema.json` puts it beside your tasks. The schema"
        " checks the file's shape; `assay validate` checks the rest (the data, the templates on it, the metrics).",
        "",
    ]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------


def write(docs: Path) -> list[Path]:
    docs.mkdir(parents=True, exist_ok=True)
    md, js = docs / "tasks.md", docs / "task.schema.json"
    md.write_text(markdown(), encoding="utf-8")
    js.write_text(schema_text(), encoding="utf-8")
    return [md, js]


def default_docs_dir() -> Path:
    """docs/ of the checkout this module is in."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise SystemExit("not in a checkout of assay: give the folder to write to (python -m assay.tasks.reference DOCS_DIR)")
    return root / "docs"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    docs = Path(argv[0]) if argv else default_docs_dir()
    for p in write(docs):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
