"""A first task file for a user's own data: ``assay new-task DATA_FILE``.

Pure functions, in the order the command uses them: :func:`read_data` reads the file with the
readers a run uses (``data.sources.load_local``, so the rows are the ones a run will see),
:func:`inspect_columns` describes each column (kind, distinct values, an example),
:func:`guess_layout` picks one of a few layouts from the column names and values, and
:func:`render_task` writes the task YAML as text, every guess marked ``# GUESS:`` with what to
check. The layouts:

- ``options``: a question, a list of options and an answer key (a letter, an index or the
  option's text) → multiple choice, the options lettered (ARC, MMLU, AGIEval);
- ``choice_columns``: a premise, several choice columns (``choice1``, ``choice2``…, ``A``…``D``)
  and a label → multiple choice over the columns (COPA, PIQA, WinoGrande);
- ``classification``: text and a label with a few distinct values → multiple choice over the
  label set (SST-2, AG News, BoolQ);
- ``qa``: a question, a context and its answers (a string, a list, or SQuAD's ``{text: [...]}``)
  → generate, scored by exact match and F1 (SQuAD; SQuAD-style nested JSON is read as
  ``format: squad``);
- ``generate``: anything else: a generate task on the first text column, with TODOs.

The command (``cli._cmd_new_task``) writes the text and validates it with the loader and the
planner, as ``assay validate`` does.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import AssayError, DataError

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")

# column names by role, most telling first (compared lower-cased, without '_' and ' ')
_STEM = ("premise", "question", "query", "goal", "stem", "problem", "prompt", "instruction", "sentence", "ctx", "context", "text", "input")
_OPTIONS = ("options", "choices", "endings", "candidates", "alternatives", "choice", "option")
_KEY = ("answerkey", "answer", "answeridx", "answerindex", "label", "gold", "target", "correct", "correctanswer", "key", "labels")
_CHOICE_PREFIX = ("choice", "option", "opt", "ending", "sol", "solution", "answer", "alternative", "alt", "candidate", "cand", "")
_LABEL = ("label", "labels", "class", "category", "sentiment", "emotion", "topic", "intent", "stance", "gold", "target", "y", "answer")
_TEXT = ("text", "sentence", "review", "content", "document", "tweet", "body", "premise", "hypothesis", "sentence1", "sentence2", "question", "passage", "title", "input")
_QUESTION = ("question", "query", "q", "questiontext")
_CONTEXT = ("context", "passage", "paragraph", "article", "document", "story", "text", "evidence")
_ANSWERS = ("answers", "answer", "answertext", "answertexts", "gold", "goldanswers", "target", "targets", "label")
_ID = ("id", "idx", "uid", "qid", "guid", "key", "exampleid", "questionid", "docid", "index", "ind")

_JINJA_RESERVED = {"doc", "vars", "letters", "loop", "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                   "else", "elif", "for", "endfor", "endif", "set", "block", "macro", "import", "include", "with", "without", "recursive"}


@dataclass(frozen=True)
class Source:
    """A data file as a run reads it."""

    path: Path
    rows: list[dict[str, Any]]
    sha256: str
    format: str  # the format it was read as
    format_key: str | None  # what to write as dataset.local.format (None: the name tells it)
    json_field: str | None = None
    columns: list[str] | None = None  # names given to a CSV/TSV without a header row


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str | intstr (digits as text, CSV) | int | float | bool | list | dict | mixed | null
    values: tuple[Any, ...]  # the non-null values, in row order
    missing: int
    distinct: int  # distinct values (lists and dicts compared as JSON)
    mean_len: float  # of str values (0 otherwise)

    @property
    def key(self) -> str:
        return re.sub(r"[\s_\-]", "", self.name.lower())

    @property
    def scalar(self) -> bool:
        return self.kind in ("str", "intstr", "int", "bool")

    @property
    def text(self) -> bool:
        """Free text: strings, not digits."""
        return self.kind == "str"

    def example(self, width: int = 60) -> str:
        v = self.values[0] if self.values else None
        s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        s = " ".join(s.split())
        return s if len(s) <= width else s[: width - 1] + "…"


@dataclass
class Guess:
    """What the data looks like, as the pieces of a task file."""

    layout: str  # options | choice_columns | classification | qa | generate
    summary: str  # one line for the user
    output_type: str
    prompts: list[dict[str, Any]]  # {id, template, choices?, description}
    metrics: list[str]
    choices: str | None = None
    target: str | None = None
    target_type: str | None = None
    extract: str | None = None
    generation: str | None = None  # a YAML flow mapping
    vars: dict[str, Any] = field(default_factory=dict)
    id_field: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # key -> "GUESS: …" / "TODO: …" comment
    unused: list[str] = field(default_factory=list)  # columns no template or expression reads


# --------------------------------------------------------------------------- reading


def default_stem(path: Path) -> str:
    """The data file's name without ``.gz``/``.zip`` and its format's extension."""
    name = path.name
    for suffix in (".gz", ".zip"):
        name = name.removesuffix(suffix)
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem else name


def task_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")
    return name or "my_task"


def read_data(path: Path, fmt: str | None = None) -> Source:
    """The file's rows, read by ``data.sources.load_local`` as a run reads them.

    A ``.json`` file holding one list of rows under a key is read with ``json_field``; one in
    SQuAD's nesting (``data`` → ``paragraphs`` → ``qas``) as ``format: squad``. Every failure
    is one ``DataError`` naming the file."""
    from assay.data.sources import _decode, _format, _read_bytes, load_local
    from assay.tasks.spec import LocalSource

    if not path.exists():
        raise DataError(f"{path}: no such data file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    by_name: str | None
    try:
        by_name = _format(LocalSource.model_validate({"path": str(path)}), path)
    except DataError:
        by_name = None
    fmt = fmt or by_name
    if fmt is None:
        raise DataError(f"{path}: cannot tell the data format from the file name; pass --format ({', '.join(FORMATS)})")
    json_field = None
    if fmt == "json":
        try:
            data = json.loads(_decode(path, _read_bytes(path)))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc}") from None
        if isinstance(data, dict):
            arts = data.get("data")
            if isinstance(arts, list) and arts and isinstance(arts[0], dict) and "paragraphs" in arts[0]:
                fmt = "squad"
            else:
                lists = [k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
                if len(lists) != 1:
                    raise DataError(f"{path}: expected a list of rows, or an object with one list of rows under a key (found {len(lists)} such keys)")
                json_field = lists[0]
    src = LocalSource.model_validate({"path": str(path.resolve()), "format": fmt, "json_field": json_field})
    try:
        docs = load_local(src, Path("."))
    except AssayError:
        raise
    except Exception as exc:  # a reader's own error (pyarrow on a file that is not parquet)
        raise DataError(f"{path}: cannot read as {fmt}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not docs.rows:
        raise DataError(f"{path}: no rows in the file")
    columns = None
    if fmt in ("csv", "tsv") and _header_is_data(list(docs.rows[0])):
        columns = [f"column{i}" for i in range(1, len(docs.rows[0]) + 1)]
        docs = load_local(src.model_copy(update={"columns": columns}), Path("."))
    return Source(path, docs.rows, docs.revision, fmt, None if fmt == by_name else fmt, json_field, columns)


def _header_is_data(names: list[str]) -> bool:
    """A CSV's first row that reads as data, not column names: a number, a sentence, a blank."""
    return any(not n.strip() or re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", n) or (len(n) > 40 and " " in n) for n in names)


# --------------------------------------------------------------------------- columns


def _kind(values: list[Any]) -> str:
    if not values:
        return "null"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "intstr" if all(re.fullmatch(r"\s*-?\d+\s*", v) for v in values) else "str"
    if all(isinstance(v, (list, tuple)) for v in values):
        return "list"
    if all(isinstance(v, dict) for v in values):
        return "dict"
    return "mixed"


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, (list, dict, tuple)) else v


def inspect_columns(rows: list[dict[str, Any]]) -> list[Column]:
    """Every column of the rows, in the order they first appear."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    out = []
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        strs = [v for v in present if isinstance(v, str)]
        out.append(Column(name, _kind(present), tuple(present), len(values) - len(present),
                          len({_hashable(v) for v in present}), sum(map(len, strs)) / len(strs) if strs else 0.0))
    return out


def describe(src: Source, columns: list[Column], most: int = 30) -> list[str]:
    """A few lines about the file and its columns, for stderr."""
    how = src.format + (f", rows under '{src.json_field}'" if src.json_field else "")
    lines = [f"{src.path}: {len(src.rows)} rows ({how}), {len(columns)} columns"]
    width = min(max((len(c.name) for c in columns), default=0), 24)
    for c in columns[:most]:
        what = {"intstr": "int (as text)"}.get(c.kind, c.kind)
        if c.kind == "list":
            lens = [len(v) for v in c.values]
            what += f" of {min(lens)}" + (f"-{max(lens)}" if max(lens) != min(lens) else "")
        extra = f", {c.missing} missing" if c.missing else ""
        lines.append(f"  {c.name:<{width}}  {what}, {c.distinct} distinct{extra}  e.g. {c.example()}")
    if len(columns) > most:
        lines.append(f"  … and {len(columns) - most} more columns")
    return lines


# --------------------------------------------------------------------------- guessing


def ref(name: str) -> str:
    """A column as a Jinja expression: its name, or ``doc['name']`` when that is not a name."""
    if name.isidentifier() and not keyword.iskeyword(name) and name not in _JINJA_RESERVED:
        return name
    return "doc[" + "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'" + "]"


def _by_role(columns: list[Column], names: tuple[str, ...], ok: Any = None, exclude: set[str] | frozenset[str] = frozenset()) -> Column | None:
    """The column whose name comes first in ``names`` among those that pass ``ok``."""
    cands = [c for c in columns if c.name not in exclude and c.key in names and (ok is None or ok(c))]
    return min(cands, key=lambda c: names.index(c.key), default=None)


def _stem(columns: list[Column], exclude: set[str]) -> Column | None:
    """The question or premise: by name, else the longest free text."""
    col = _by_role(columns, _STEM, lambda c: c.text, exclude)
    if col is None:
        texts = [c for c in columns if c.text and c.name not in exclude]
        col = max(texts, key=lambda c: c.mean_len, default=None)
    return col


def _id_field(columns: list[Column], n_rows: int) -> Column | None:
    return _by_role(columns, _ID, lambda c: c.scalar and c.kind != "bool" and not c.missing and c.distinct == n_rows)


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    return None


def _key_target(key: Column, options: list[list[Any]], opts_expr: str) -> tuple[str, str] | None:
    """How the answer key picks an option in every row: (target expression, what to check),
    or None when it does not. ``options`` holds each row's options (rows with a key)."""
    k = ref(key.name)
    keys = list(key.values)
    if len(keys) != len(options):
        return None
    ints = [_as_int(v) for v in keys]
    if all(i is not None for i in ints):
        expr = k if key.kind == "int" else f"{k} | int"
        if all(0 <= i < len(o) for i, o in zip(ints, options)):  # type: ignore[operator]
            return expr, f"'{key.name}' is read as the 0-based index of the right option (if it counts from 1, write \"{expr} - 1\")"
        if all(1 <= i <= len(o) for i, o in zip(ints, options)):  # type: ignore[operator]
            return f"{expr} - 1", f"'{key.name}' counts the options from 1 (1 = the first): check with a row or two"
        return None
    if not all(isinstance(v, str) for v in keys):
        return None
    if all(re.fullmatch(r"\s*[A-Z]\s*", v) and letter_index(v) < len(o) for v, o in zip(keys, options)):
        return f"letters.index({k} | trim)", f"'{key.name}' holds the letter of the right option (A = the first)"
    if all(re.fullmatch(r"\s*[a-z]\s*", v) and letter_index(v.upper()) < len(o) for v, o in zip(keys, options)):
        return f"letters.index({k} | trim | upper)", f"'{key.name}' holds the letter of the right option (a = the first)"
    if all(v in [str(x) for x in o] for v, o in zip(keys, options)):
        return f"{opts_expr}.index({k})", f"'{key.name}' holds the text of the right option"
    return None


def letter_index(v: str) -> int:
    return ord(v.strip()) - ord("A")


_LETTER_PREFIX = re.compile(r"[(]?([A-Z])[).:]\s*")


def _lettered(options: list[list[Any]]) -> bool:
    """Every option already starts with its letter: "(A) …", "A. …", "A) …"."""
    for opts in options:
        for i, o in enumerate(opts):
            m = _LETTER_PREFIX.match(str(o))
            if not m or letter_index(m.group(1)) != i:
                return False
    return True


def _mc_prompts(stem: Column | None, opts_expr: str, lettered: bool, cloze_first: bool) -> list[dict[str, Any]]:
    s = f"{ref(stem.name)} | trim" if stem else "''"
    shown = "o | regex_replace('^[(]?[A-Z][).:] *', '')" if lettered else "o"
    letters_prompt = {
        "id": "letters",
        "description": "the options lettered A, B, C…; scores the letter",
        "template": (f"{{% set opts = {opts_expr} -%}}\n"
                     f"Question: {{{{ {s} }}}}\n"
                     f"{{% for o in opts %}}{{{{ letters[loop.index0] }}}}. {{{{ {shown} }}}}\n"
                     "{% endfor %}Answer:"),
        "choices": f"letters[:({opts_expr} | length)] | list",
    }
    cloze = {"id": "cloze", "description": "scores each option's text right after the question; options not shown",
             "template": f"{{{{ {s} }}}}" if cloze_first else f"Question: {{{{ {s} }}}}\nAnswer:"}
    return [cloze, letters_prompt] if cloze_first else [letters_prompt, cloze]


def _options_layout(columns: list[Column], n_rows: int) -> Guess | None:
    """(a) a question, a list of options, an answer key."""
    def is_options(c: Column) -> bool:
        return c.kind == "list" and not c.missing and all(len(v) >= 2 and all(isinstance(x, (str, int, float)) for x in v) for v in c.values)

    def is_dict_options(c: Column) -> bool:  # the hub's ARC: {text: [...], label: [...]}
        return c.kind == "dict" and not c.missing and all(isinstance(v.get("text"), list) and isinstance(v.get("label"), list) and len(v["text"]) >= 2 for v in c.values)

    cands = [c for c in columns if is_options(c) or is_dict_options(c)]
    cands.sort(key=lambda c: _OPTIONS.index(c.key) if c.key in _OPTIONS else len(_OPTIONS))
    for opts_col in cands:
        as_dict = opts_col.kind == "dict"
        opts_expr = f"{ref(opts_col.name)}.text" if as_dict else ref(opts_col.name)
        options = [list(v["text"]) if as_dict else list(v) for v in opts_col.values]
        keys = [c for c in columns if c.name != opts_col.name and c.scalar and not c.missing]
        keys.sort(key=lambda c: _KEY.index(c.key) if c.key in _KEY else len(_KEY))
        for key in keys:
            found = None
            if as_dict and key.kind in ("str", "intstr") and all(str(k) in [str(x) for x in v["label"]] for k, v in zip(key.values, opts_col.values)):
                found = (f"{ref(opts_col.name)}.label.index({ref(key.name)})", f"'{key.name}' holds the label of the right option, as in '{opts_col.name}.label'")
            found = found or _key_target(key, options, opts_expr)
            if found is None:
                continue
            stem = _stem(columns, {opts_col.name, key.name})
            lettered = _lettered(options)
            g = Guess("options", f"multiple choice: question '{stem.name if stem else '?'}', options '{opts_col.name}', answer '{key.name}'",
                      "multiple_choice", _mc_prompts(stem, opts_expr, lettered, cloze_first=False), ["acc", "acc_norm"],
                      choices=opts_expr, target=found[0])
            g.notes["output_type"] = f"GUESS: a question ('{stem.name if stem else 'none found'}'), a list of options ('{opts_col.name}') and an answer key ('{key.name}')"
            g.notes["target"] = "GUESS: " + found[1]
            if lettered:
                g.notes["prompts"] = "GUESS: the options already start with their letter: the letters prompt takes it off (regex_replace) and writes its own"
            g.unused = [c.name for c in columns if c.name not in {opts_col.name, key.name} | ({stem.name} if stem else set())]
            return g
    return None


_SUFFIX = re.compile(r"^(.*?)[_ \-]?(\d+|[A-Ea-e])$")


def _choice_groups(columns: list[Column]) -> list[tuple[str, list[Column]]]:
    """Columns that are numbered or lettered choices of one prefix: choice1, choice2; A…D."""
    groups: dict[str, list[tuple[Any, Column]]] = {}
    for c in columns:
        if not (c.scalar or c.kind == "float") or c.missing:
            continue
        m = _SUFFIX.match(c.name)
        if not m:
            continue
        prefix, suffix = m.group(1), m.group(2)
        pkey = re.sub(r"[\s_\-]", "", prefix.lower())
        if pkey not in _CHOICE_PREFIX:
            continue
        if not suffix.isdigit() and prefix and not (c.name[len(prefix):].startswith(("_", " ", "-")) or suffix.isupper()):
            continue  # "optiona" is a word, not option a
        order = int(suffix) if suffix.isdigit() else letter_index(suffix.upper())
        groups.setdefault(f"{prefix}|{'n' if suffix.isdigit() else 'l'}", []).append((order, c))
    out = []
    for gkey, members in groups.items():
        members.sort(key=lambda t: t[0])
        orders = [o for o, _ in members]
        if len(members) >= 2 and orders == list(range(orders[0], orders[0] + len(orders))) and orders[0] in (0, 1):
            out.append((gkey.split("|")[0], [c for _, c in members]))
    out.sort(key=lambda g: _CHOICE_PREFIX.index(re.sub(r"[\s_\-]", "", g[0].lower())))
    return out


def _choice_columns_layout(columns: list[Column], n_rows: int) -> Guess | None:
    """(b) a premise, several choice columns, a label (COPA-like)."""
    for _prefix, group in _choice_groups(columns):
        names = {c.name for c in group}
        opts_expr = "[" + ", ".join(ref(c.name) for c in group) + "]"
        options = [list(row) for row in zip(*(c.values for c in group))]
        keys = [c for c in columns if c.name not in names and c.scalar and not c.missing]
        keys.sort(key=lambda c: _KEY.index(c.key) if c.key in _KEY else len(_KEY))
        for key in keys:
            found = _key_target(key, options, opts_expr)
            if found is None:
                continue
            stem = _stem(columns, names | {key.name})
            g = Guess("choice_columns", f"multiple choice: premise/question '{stem.name if stem else '?'}', choices {', '.join(c.name for c in group)}, label '{key.name}'",
                      "multiple_choice", _mc_prompts(stem, opts_expr, False, cloze_first=True), ["acc", "acc_norm"],
                      choices=opts_expr, target=found[0])
            g.notes["output_type"] = (f"GUESS: a premise or question ('{stem.name if stem else 'none found'}'), one column per choice "
                                      f"({', '.join(c.name for c in group)}) and a label ('{key.name}')")
            g.notes["target"] = "GUESS: " + found[1]
            g.unused = [c.name for c in columns if c.name not in names | {key.name} | ({stem.name} if stem else set())]
            return g
    return None


def _label_values(col: Column) -> list[Any]:
    vals = sorted({_as_int(v) if col.kind == "intstr" else v for v in col.values}, key=lambda v: (str(type(v)), v))
    return vals


def _classification_layout(columns: list[Column], n_rows: int, id_col: Column | None) -> Guess | None:
    """(c) text and a label with a few distinct values."""
    def is_label(c: Column) -> bool:
        # a few distinct values, named like a label or numbers (a string column with a few
        # values and another name is more often a source, a split or a title)
        if not c.scalar or c.missing or c is id_col or not 2 <= c.distinct <= min(50, max(2, n_rows // 2)):
            return False
        if c.kind == "str" and c.mean_len > 30:
            return False
        return c.key in _LABEL or c.kind != "str"

    label = _by_role(columns, _LABEL, is_label) or next((c for c in columns if is_label(c) and c.kind != "str"), None) \
        or next((c for c in columns if is_label(c)), None)
    if label is None:
        return None
    texts = [c for c in columns if c.text and c is not label and c is not id_col and c.distinct > max(2, n_rows // 2) and c.mean_len > 0]
    if not texts:
        return None
    texts.sort(key=lambda c: (_TEXT.index(c.key) if c.key in _TEXT else len(_TEXT), columns.index(c)))
    texts = sorted(texts[:3], key=columns.index)
    lab = ref(label.name)
    values = _label_values(label)
    g = Guess("classification", f"classification: text {', '.join(repr(c.name) for c in texts)}, label '{label.name}' ({len(values)} values)",
              "multiple_choice", [], ["acc", "macro_f1"], choices="vars.labels")
    if label.kind == "bool":
        g.vars["labels"] = ["no", "yes"]
        g.target = f"{lab} | int"
        g.notes["vars"] = f"GUESS: '{label.name}' is true or false: the choices are 'no' (false) and 'yes' (true); any two words in that order will do"
        g.notes["target"] = "GUESS: false picks the first label, true the second"
    elif label.kind in ("int", "intstr"):
        g.vars["labels"] = [str(v) for v in values]
        expr = lab if label.kind == "int" else f"{lab} | int"
        if values == list(range(len(values))):
            g.target = expr
            g.notes["target"] = f"GUESS: '{label.name}' is the index of its label in vars.labels"
        elif values == list(range(1, len(values) + 1)):
            g.target = f"{expr} - 1"
            g.notes["target"] = f"GUESS: '{label.name}' counts the labels from 1: label 1 is the first of vars.labels"
        else:
            g.target = f"{values}.index({expr})"
            g.notes["target"] = f"GUESS: the position of '{label.name}' among its values picks the label in vars.labels"
        g.notes["vars"] = (f"GUESS: '{label.name}' holds numbers ({', '.join(map(str, values))}); replace them with the label names, in the same order, "
                           "so that the model scores words (e.g. [negative, positive] for 0, 1)")
    else:
        g.vars["labels"] = [str(v) for v in values]
        g.target = lab
        g.target_type = "text"
        g.notes["vars"] = f"GUESS: the label set is the {len(values)} distinct values of '{label.name}' in the file; check none is missing"
        g.notes["target"] = f"GUESS: '{label.name}' holds the label's text (target_type text below)"
    g.notes["output_type"] = f"GUESS: text ({', '.join(c.name for c in texts)}) and a label with a few values ('{label.name}'): the model picks a label"
    if len(texts) == 1:
        body = f"{{{{ {ref(texts[0].name)} | trim }}}}"
    else:
        body = "\n".join(f"{c.name.replace('_', ' ').capitalize()}: {{{{ {ref(c.name)} | trim }}}}" for c in texts)
    word = label.name.replace("_", " ").capitalize()
    g.prompts = [{"id": "label", "description": "the text, then the label set; scores each label word",
                  "template": f"{body}\n{word} ({{{{ vars.labels | join(', ') }}}}):"}]
    g.unused = [c.name for c in columns if c not in texts and c is not label]
    return g


def _answers_expr(col: Column) -> str | None:
    """The gold answers as an expression: a string, a list of strings, or SQuAD's dict."""
    r = ref(col.name)
    if col.kind == "str":
        return r
    if col.kind == "list" and all(all(isinstance(x, str) for x in v) and v for v in col.values):
        return r
    if col.kind == "dict" and all(isinstance(v.get("text"), (str, list)) and v.get("text") for v in col.values):
        return f"{r}.text"
    return None


def _qa_layout(columns: list[Column], n_rows: int) -> Guess | None:
    """(d) a question, a context and its answers (extractive QA)."""
    question = _by_role(columns, _QUESTION, lambda c: c.text)
    if question is None:
        return None
    context = _by_role(columns, _CONTEXT, lambda c: c.text, {question.name})
    if context is None:
        return None
    answers = _by_role(columns, _ANSWERS, lambda c: _answers_expr(c) is not None and not c.missing, {question.name, context.name})
    if answers is None:
        return None
    target = _answers_expr(answers)
    assert target is not None
    g = Guess("qa", f"extractive QA: question '{question.name}', context '{context.name}', answers '{answers.name}'",
              "generate", [{"id": "passage", "description": "the passage, then the question; the answer is generated",
                            "template": (f"Read the passage and answer the question with a short phrase from the passage.\n\n"
                                         f"Passage: {{{{ {ref(context.name)} | trim }}}}\n\n"
                                         f"Question: {{{{ {ref(question.name)} | trim }}}}\nAnswer:")}],
              ["f1", "exact_match"], target=target, extract="span", generation='{until: ["\\n\\n"], max_tokens: 32}')
    g.notes["output_type"] = f"GUESS: a question ('{question.name}'), a context ('{context.name}') and its answers ('{answers.name}'): the answer is generated"
    g.notes["target"] = f"GUESS: the gold answers ({'each row has one' if answers.kind == 'str' else 'a list: the best match counts'}); exact match and F1 as SQuAD scores them"
    g.unused = [c.name for c in columns if c.name not in (question.name, context.name, answers.name)]
    return g


def _generate_layout(columns: list[Column]) -> Guess:
    texts = [c for c in columns if c.text]
    inp = _by_role(texts, _STEM + _TEXT) or next((c for c in texts if c.distinct > 1), None) or (texts[0] if texts else None)
    inp = inp or next((c for c in columns if c.scalar), columns[0])
    rest = [c for c in columns if c is not inp and (c.scalar or _answers_expr(c))]
    tgt = _by_role(rest, _ANSWERS + _LABEL) or (rest[0] if rest else None)
    g = Guess("generate", f"no layout recognised: a generate task on '{inp.name}' (edit the TODOs)", "generate",
              [{"id": "plain", "description": "TODO: describe the prompt",
                "template": f"{{{{ {ref(inp.name)} }}}}\nAnswer:"}], ["exact_match"],
              target=(_answers_expr(tgt) or ref(tgt.name)) if tgt else "''", generation='{until: ["\\n\\n"], max_tokens: 64}')
    g.notes["output_type"] = "TODO: no layout was recognised; this is a generate task on the first text column: write the prompt, the target and the metrics"
    g.notes["target"] = f"TODO: the gold answer; {'guessed as ' + repr(tgt.name) if tgt else 'no column was left for it'}"
    g.unused = [c.name for c in columns if c is not inp and c is not tgt]
    return g


def guess_layout(columns: list[Column], n_rows: int) -> Guess:
    """The first layout that fits: choice columns, an options list, classification, QA; else a
    generate task with TODOs. The id field is guessed for all of them."""
    id_col = _id_field(columns, n_rows)
    g = (_choice_columns_layout(columns, n_rows) or _options_layout(columns, n_rows)
         or _classification_layout(columns, n_rows, id_col) or _qa_layout(columns, n_rows) or _generate_layout(columns))
    if id_col is not None:
        g.id_field = id_col.name
        g.notes["id_field"] = f"GUESS: '{id_col.name}' is unique in every row: it names the documents in results and stored responses"
        g.unused = [u for u in g.unused if u != id_col.name]
    return g


# --------------------------------------------------------------------------- writing


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is YAML's)."""
    return json.dumps(s, ensure_ascii=False)


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "|-\n" + "\n".join(pad + line if line else "" for line in text.split("\n"))


def _comment(note: str, indent: int = 0) -> list[str]:
    return [" " * indent + "# " + note]


def _unused(c: Column) -> str:
    """A column's name, with its values when it has a few (COPA's question: cause, effect)."""
    if c.scalar and 1 <= c.distinct <= 5:
        return f"{c.name} ({', '.join(sorted({str(v) for v in c.values}))})"
    return c.name


def render_task(g: Guess, src: Source, data_path: str, name: str, columns: list[Column], file_name: str | None = None) -> str:
    """The task file's text: every key a task needs, each guess marked ``# GUESS:``."""
    out = [
        f"# Task file written by `assay new-task` from {src.path.name} ({len(src.rows)} rows).",
        "# Lines marked GUESS are guesses from the data: check each, then remove the mark. Lines marked TODO need you.",
        f"# See it: assay validate {file_name or name + '.yaml'} --show 2    Try it: assay run -m mock:m -t {file_name or name + '.yaml'} --limit 5",
        f"# Columns: {', '.join(c.name for c in columns)}",
    ]
    if g.unused:
        by_name = {c.name: c for c in columns}
        out.append(f"# GUESS: not read by the prompts: {', '.join(_unused(by_name[u]) for u in g.unused)} (add them to a template where they matter)")
    out += ["version: 1", f"task: {name}", f"description: {_q(f'{name}, from {src.path.name}')}"]
    out += _comment(g.notes["output_type"]) + [f"output_type: {g.output_type}", "dataset:", "  local:"]
    where = "" if Path(data_path).is_absolute() else ", relative to this file's folder"
    out.append(f"    # the data file{where}; the sha256 pins its bytes (a changed file is an error)")
    out += [f"    path: {_q(data_path)}", f"    sha256: {_q(src.sha256)}"]
    if src.format_key:
        out.append(f"    format: {src.format_key}")
    if src.json_field:
        out.append(f"    json_field: {_q(src.json_field)}")
    if src.columns:
        out.append("    # GUESS: the first row reads as data, not column names: the columns are named here (rename them, and their uses below)")
        out.append(f"    columns: [{', '.join(src.columns)}]")
    if g.id_field:
        out += _comment(g.notes["id_field"], 2) + [f"  id_field: {_q(g.id_field)}"]
    else:
        out.append("  # no unique id column: documents are numbered by row (0, 1, …); set id_field to a column of unique ids if there is one")
    if g.vars:
        out += _comment(g.notes["vars"]) if "vars" in g.notes else []
        out.append("vars:")
        for k, v in g.vars.items():
            out.append(f"  {k}: [{', '.join(_q(str(x)) for x in v)}]")
    if g.choices is not None:
        out += ["# the options of each document: a Jinja expression giving a list", f"choices: {_q(g.choices)}"]
    if g.target is not None:
        if "target" in g.notes:
            out += _comment(g.notes["target"])
        out.append(f"target: {_q(g.target)}")
    if g.target_type:
        out += ["# the target is a choice's text (not its index)", f"target_type: {g.target_type}"]
    if "prompts" in g.notes:
        out += _comment(g.notes["prompts"])
    out.append("# prompt templates (Jinja): the row's columns by name, `doc` (the row), `vars`, `letters`; keep the ones you want" if len(g.prompts) > 1
               else "# the prompt template (Jinja): the row's columns by name, `doc` (the row), `vars`, `letters`")
    out.append("prompts:")
    for p in g.prompts:
        out.append(f"  - id: {p['id']}")
        out.append(f"    description: {_q(p['description'])}")
        out.append(f"    template: {_block(p['template'], 6)}")
        if p.get("choices"):
            out.append(f"    choices: {_q(p['choices'])}")
    out.append(f"metrics: [{', '.join(g.metrics)}]")
    if g.extract:
        out += ["# takes the short answer out of a longer reply", f"extract: {g.extract}"]
    if g.generation:
        out.append(f"generation: {g.generation}")
    return "\n".join(out) + "\n"
