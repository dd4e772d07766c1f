"""Where documents come from: local files pinned by sha256, or a Hugging Face dataset.

Local paths that are relative resolve against the data directory (``--data-dir``, else the
``ASSAY_DATA_DIR`` environment variable, else ``./data``); built-in tasks that ship their own
data use paths starting with ``builtin:``. When a local file is absent and the spec also
names a hub dataset, the hub copy is loaded through ``datasets`` (online users).

Besides the table formats (jsonl, json, csv, tsv, parquet) three formats turn benchmark
distributions into rows:

- ``squad``: SQuAD-style JSON (``data`` → ``paragraphs`` → ``qas``, also XQuAD) → one row per
  question: ``id``, ``title``, ``context``, ``question``, ``answers`` (the gold answer texts, in
  file order, duplicates kept) and ``is_impossible`` (SQuAD 2.0; false otherwise).
- ``conll``: one token per line (columns split on tabs, else on spaces; the tag column is
  ``conll.tag_column``), blank lines between sentences, ``-DOCSTART-`` lines skipped → one row per
  sentence: ``id`` (sentence number), ``line`` (its first line), ``tokens``, ``tags`` (as
  written), ``text`` and ``entities`` (``[{text, type}]``). Tags are IOB1, IOB2/BIO or BIOES:
  ``B-`` and ``S-`` start an entity, ``I-``/``E-`` continue one of the same type (or start one,
  IOB1), ``O`` ends it. ``conll.types`` renames entity types (WNUT-17's ``person`` → ``PER``).
  ``text`` joins the tokens with spaces, except none before closing punctuation and none after
  opening brackets and quotes (``conll.detokenize: false`` keeps every space); an entity's text
  is the same join of its tokens, so it is always a substring of ``text``. Stray U+FEFF
  characters (WNUT-17's dev file has some) are dropped.
- ``lines``: one row per line of the file (the column is ``columns[0]``, default ``text``);
  each ``parallel`` file adds a column from its line of the same number (TweetEval's
  ``test_text.txt`` + ``test_labels.txt``). Every file must have the same number of lines, and
  each is pinned by its own sha256; the revision is then the sha256 of the files' sha256s.

A ``.gz`` file, or a ``.zip`` holding exactly one file, is read through (the pin is of the file
on disk). Malformed input is a one-line ``DataError`` naming the file and line (or JSON path).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import DataError, MissingDependency
from assay.tasks import render
from assay.tasks.spec import ConllOptions, DatasetSpec, HubSource, LocalSource

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "tasks" / "builtin"


@dataclass(frozen=True)
class Documents:
    rows: list[dict[str, Any]]
    revision: str  # sha256 of the file, or the hub revision/fingerprint
    origin: str  # the path or hub id it came from


def data_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("ASSAY_DATA_DIR")
    if env:
        return Path(env)
    # a checkout's own data/ folder, else the benchmark data beside the checkout
    return next((p for p in (Path("data"), Path("..") / "shared" / "data") if p.is_dir()), Path("data"))


def synthetic_dir(name: str) -> Path:
    """The folder of a generated data set (``synthetic:NAME/…`` paths), written on first use.

    ``shapes`` is the Pillow image set of ``assay.data.synthetic``: deterministic, so every
    machine evaluates the same pictures; it lives under $ASSAY_CACHE_DIR (~/.cache/assay)."""
    if name != "shapes":
        raise DataError(f"synthetic:{name}: no such generated data set (known: shapes)")
    from assay.data import synthetic

    cache = Path(os.environ.get("ASSAY_CACHE_DIR", Path.home() / ".cache" / "assay"))
    target = cache / "synthetic" / f"shapes-v{synthetic.VERSION}"
    if (target / ".complete").is_file():
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    synthetic.write_shapes(tmp)
    (tmp / ".complete").write_text("ok")
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: its copy is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _resolve(path: str, root: Path, base: Path | None = None) -> Path:
    """Where a task's data path points: ``builtin:``/``synthetic:`` names, an absolute path, or
    a relative one, found beside the task file (``base``, its folder) first, else in the data
    directory ``root`` (the path returned when it is in neither)."""
    if path.startswith("builtin:"):
        return BUILTIN_DIR / path.removeprefix("builtin:")
    if path.startswith("synthetic:"):
        name, _, rest = path.removeprefix("synthetic:").partition("/")
        return synthetic_dir(name) / rest
    p = Path(os.path.expanduser(path))
    if p.is_absolute():
        return p
    if base is not None and (base / p).exists():
        return base / p
    return root / p


def _looked(path: str, root: Path, base: Path | None) -> str:
    """Where a missing relative data path was looked for, for the error."""
    places = ([base / path] if base is not None else []) + [root / path]
    return " and ".join(str(p.absolute()) for p in places)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _format(src: LocalSource, path: Path) -> str:
    if src.format:
        return src.format
    suffixes = [s for s in path.suffixes if s not in (".gz", ".zip")]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if ext in ("jsonl", "json", "csv", "tsv", "parquet"):
        return ext
    raise DataError(f"{path}: cannot tell the file format from its name; set dataset.local.format")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, through a ``.gz`` or a single-member ``.zip``."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file: {exc}") from None
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                members = [m for m in z.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise DataError(f"{path}: a .zip must hold exactly one file, this one holds {len(members)}")
                return z.read(members[0])
        except (zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable zip file: {exc}") from None
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None


def _parse(path: Path, fmt: str, src: LocalSource) -> list[dict[str, Any]]:
    json_field, columns = src.json_field, src.columns
    raw = _read_bytes(path)
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingDependency("reading parquet files", "parquet", "pyarrow") from None
        return pq.read_table(io.BytesIO(raw)).to_pylist()
    text = _decode(path, raw)
    if fmt == "squad":
        return _parse_squad(path, text)
    if fmt == "conll":
        return _parse_conll(path, text, src.conll or ConllOptions())
    if fmt == "lines":
        return [{(columns or ["text"])[0]: line} for line in _lines(text)]
    if fmt == "jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: malformed JSON line: {exc.msg}") from None
        return rows
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
        if json_field:
            if not isinstance(data, dict) or json_field not in data:
                raise DataError(f"{path}: no key '{json_field}' at the top level")
            data = data[json_field]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of rows (set dataset.local.json_field for a nested list)")
        return data
    delim = "\t" if fmt == "tsv" else ","
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(io.StringIO(text), fieldnames=columns, delimiter=delim, quoting=quoting)
    rows = []
    for row in reader:
        extra = row.pop(None, None) or []
        missing = sum(v is None for v in row.values())
        if extra or missing:
            width = len(reader.fieldnames or [])
            raise DataError(f"{path}:{reader.line_num}: row has {width + len(extra) - missing} columns, the header has {width}")
        rows.append(row)
    return rows


def load_local(src: LocalSource, root: Path, base: Path | None = None) -> Documents:
    """Rows of a local data file; ``base``: the task file's folder, where relative paths are
    looked for first."""
    path = _resolve(src.path, root, base)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (data dir: {root}; set --data-dir or ASSAY_DATA_DIR)")
    digest = _check_pin(path, src.sha256)
    rows = _parse(path, _format(src, path), src)
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {n} is not an object")
    if src.parallel:
        digests = [digest]
        for par in src.parallel:
            ppath = _resolve(par.path, root, base)
            if not ppath.is_file():
                raise DataError(f"parallel data file not found: {ppath} (data dir: {root}; set --data-dir or ASSAY_DATA_DIR)")
            pdigest = _check_pin(ppath, par.sha256)
            values = _lines(_decode(ppath, _read_bytes(ppath)))
            if len(values) != len(rows):
                raise DataError(f"{ppath}:{min(len(values), len(rows)) + 1}: has {len(values)} lines, {path} has {len(rows)}; parallel files need one line per row")
            for row, value in zip(rows, values):
                if par.column in row:
                    raise DataError(f"{ppath}: column '{par.column}' is already taken (parallel columns need distinct names)")
                row[par.column] = value
            digests.append(pdigest)
        digest = hashlib.sha256(" ".join(digests).encode()).hexdigest()
    return Documents(rows, digest, str(path))


def _check_pin(path: Path, sha256: str | None) -> str:
    digest = sha256_file(path)
    if sha256 and digest != sha256:
        raise DataError(f"{path}: sha256 is {digest[:12]}…, the task pins {sha256[:12]}…: the file changed")
    return digest


def _lines(text: str) -> list[str]:
    """Lines split on \\n only (a tweet may hold U+2028), without \\r; no row after a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


# --------------------------------------------------------------------------- squad


def _parse_squad(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{path}: not SQuAD-style JSON: no 'data' list at the top level")

    def need(obj: Any, key: str, kind: type, where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise DataError(f"{path}: {where}: no '{key}'")
        if not isinstance(obj[key], kind):
            raise DataError(f"{path}: {where}.{key}: expected a {kind.__name__}, got {type(obj[key]).__name__}")
        return obj[key]

    rows: list[dict[str, Any]] = []
    for i, article in enumerate(data["data"]):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for j, para in enumerate(need(article, "paragraphs", list, f"data[{i}]")):
            where = f"data[{i}].paragraphs[{j}]"
            context = need(para, "context", str, where)
            for k, qa in enumerate(need(para, "qas", list, where)):
                at = f"{where}.qas[{k}]"
                answers = [need(a, "text", str, f"{at}.answers[{n}]") for n, a in enumerate(need(qa, "answers", list, at))]
                impossible = bool(qa.get("is_impossible", False))
                if not answers and not impossible:
                    raise DataError(f"{path}: {at}: no answers and not marked is_impossible")
                rows.append({"id": str(need(qa, "id", str, at)), "title": str(title), "context": context,
                             "question": need(qa, "question", str, at), "answers": answers, "is_impossible": impossible})
    return rows


# --------------------------------------------------------------------------- conll

_TAG = re.compile(r"([BIES])-(\S+)")
_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", "%", ")", "]", "}", "...", "'s", "'S", "n't", "N'T", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "£", "€"}


def _spaces(tokens: list[str], detokenize: bool) -> list[str]:
    """The separator written before each token ("" before the first)."""
    if not detokenize:
        return [""] + [" "] * (len(tokens) - 1)
    out, quotes = [], 0
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        if prev is None:
            sep = ""
        elif tok in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER:
            sep = ""
        elif tok == '"' and quotes % 2 == 1:  # a closing quote
            sep = ""
        elif prev == '"' and quotes % 2 == 1:  # right after an opening quote
            sep = ""
        else:
            sep = " "
        if tok == '"':
            quotes += 1
        out.append(sep)
    return out


def _parse_conll(path: Path, text: str, opts: ConllOptions) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sent: list[tuple[int, str, str]] = []  # (line, token, tag)
    width: int | None = None

    def flush() -> None:
        if sent:
            rows.append(_conll_row(path, len(rows), sent, opts))
            sent.clear()

    for n, line in enumerate(_lines(text), 1):
        line = line.replace("\ufeff", "")
        if not line.strip():
            flush()
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if cols[0] == "-DOCSTART-":
            flush()
            continue
        if len(cols) < 2:
            raise DataError(f"{path}:{n}: expected a token and a tag, got {line.strip()!r}")
        if width is None:
            width = len(cols)
        elif len(cols) != width:
            raise DataError(f"{path}:{n}: {len(cols)} columns, the file's first token line has {width}")
        try:
            tag = cols[opts.tag_column].strip()
        except IndexError:
            raise DataError(f"{path}:{n}: no column {opts.tag_column} for the tag (the line has {len(cols)})") from None
        token = cols[0]
        if opts.token_prefix is not None:
            if not token.startswith(opts.token_prefix):
                raise DataError(f"{path}:{n}: token {token!r} does not start with the prefix {opts.token_prefix!r}")
            token = token[len(opts.token_prefix):]
        sent.append((n, token, tag))
    flush()
    return rows


def _conll_row(path: Path, index: int, sent: list[tuple[int, str, str]], opts: ConllOptions) -> dict[str, Any]:
    tokens = [t for _, t, _ in sent]
    seps = _spaces(tokens, opts.detokenize)
    spans: list[tuple[int, int, str]] = []  # [start, end) token positions and type
    open_: tuple[int, str] | None = None
    for i, (n, _tok, tag) in enumerate(sent):
        if tag == "O":
            if open_:
                spans.append((open_[0], i, open_[1]))
            open_ = None
            continue
        m = _TAG.fullmatch(tag)
        if not m:
            raise DataError(f"{path}:{n}: tag {tag!r} is not O or B-/I-/E-/S-TYPE")
        kind, raw_type = m.groups()
        if opts.types:
            if raw_type not in opts.types:
                raise DataError(f"{path}:{n}: entity type {raw_type!r} is not in dataset.local.conll.types ({', '.join(opts.types)})")
            etype = opts.types[raw_type]
        else:
            etype = raw_type
        continues = open_ is not None and open_[1] == etype and kind in ("I", "E")
        if not continues:
            if open_:
                spans.append((open_[0], i, open_[1]))
            open_ = (i, etype)
        if kind in ("E", "S"):
            spans.append((open_[0], i + 1, etype))
            open_ = None
    if open_:
        spans.append((open_[0], len(sent), open_[1]))

    def join(a: int, b: int) -> str:
        return "".join((seps[i] if i > a else "") + tokens[i] for i in range(a, b))

    return {
        "id": str(index),
        "line": sent[0][0],
        "tokens": tokens,
        "tags": [tag for _, _, tag in sent],
        "text": join(0, len(tokens)),
        "entities": [{"text": join(a, b), "type": t} for a, b, t in spans],
    }


def load_hub(src: HubSource, split: str) -> Documents:
    try:
        import datasets
    except ImportError:
        raise MissingDependency(f"loading '{src.id}' from the Hugging Face hub", "datasets", "datasets") from None
    from assay.backends import hub

    hub.offline_unless_reachable(f"dataset {src.id}")
    try:
        ds = datasets.load_dataset(src.id, src.name, revision=src.revision, split=src.split or split)
    except Exception as exc:  # network, missing config, auth: all one line for the user
        if hub.offline():  # nothing can be fetched: say so, with what datasets said
            raise DataError(f"{hub.offline_hint(src.id, 'dataset')} ({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__})") from exc
        raise DataError(f"cannot load hub dataset '{src.id}' ({src.name or 'default'}): {exc}".splitlines()[0]) from exc
    return Documents([dict(r) for r in ds], src.revision or ds._fingerprint, f"hub:{src.id}")


def _missing_local(spec: DatasetSpec, split: str, root: Path, path: Path, what: str, base: Path | None = None) -> Documents:
    """A local data file that is not there: the hub copy where the spec names one and
    ``datasets`` can load it; else one line naming the file and how to point at the data."""
    assert spec.local is not None
    rel = spec.local.path
    in_root = not rel.startswith(("builtin:", "synthetic:")) and not Path(os.path.expanduser(rel)).is_absolute()
    if in_root:
        where = f"data file {rel} not found: looked in {_looked(rel, root, base)}"
        how = ("a relative path is read beside the task file, else in the data directory: "
               "set --data-dir or ASSAY_DATA_DIR to the folder holding the benchmark data")
    else:  # an absolute path: the data directory plays no part
        where, how = f"data file not found: {path}", "the task names this path"
    if spec.hub is None:
        raise DataError(f"{what}: {where} ({how})")
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise DataError(f"{what}: {where} ({how}; or install 'assay[datasets]' to read it from the hub)") from None
    try:
        return load_hub(spec.hub, split)
    except DataError as exc:
        raise DataError(f"{what}: {where} ({how}); the hub copy was tried instead: {exc}") from exc


def load_documents(spec: DatasetSpec, split: str, root: Path, what: str, base: Path | None = None) -> Documents:
    """Rows of one split with fields renamed, each with ``_id`` (the id field or the row number).
    ``base``: the task file's folder, where relative data paths are looked for first."""
    if spec.local is not None:
        path = _resolve(spec.local.path, root, base)
        docs = load_local(spec.local, root, base) if path.is_file() else _missing_local(spec, split, root, path, what, base)
    else:
        assert spec.hub is not None
        docs = load_hub(spec.hub, split)
    if not docs.rows:
        raise DataError(f"{what}: {docs.origin} has no rows")
    rows = []
    first_row: dict[str, int] = {}  # document id -> its row number: ids key instances and stored responses
    for n, row in enumerate(docs.rows):
        out = dict(row)
        for new, old in spec.fields.items():
            if old not in row:
                raise DataError(f"{docs.origin}: row {n + 1} has no field '{old}' (needed as '{new}' by {what})")
            out[new] = row[old]
        if spec.id_field:  # a source column, or the name `fields:` gives one
            if spec.id_field not in out:
                raise DataError(f"{docs.origin}: row {n + 1} has no id field '{spec.id_field}' (dataset.id_field; its columns: {', '.join(map(str, row))})")
            out["_id"] = str(out[spec.id_field])
        else:
            out["_id"] = str(n)
        if spec.where is None or render.evaluate(spec.where, out, {}, f"{what}, row {n + 1}, dataset.where"):
            if out["_id"] in first_row:
                raise DataError(
                    f"{what}: {docs.origin}: rows {first_row[out['_id']]} and {n + 1} have the same id {out['_id']!r} "
                    f"(dataset.id_field '{spec.id_field}'); document ids must be unique"
                )
            first_row[out["_id"]] = n + 1
            rows.append(out)
    if not rows:
        raise DataError(f"{what}: no row of {docs.origin} matches dataset.where ({spec.where})")
    return Documents(rows, docs.revision, docs.origin)
