"""YAML → TaskSpec, with ``include:`` inheritance and errors that cite file, line and field.

A file may start with ``include: base.yaml`` (a path relative to the file). The included
mapping is merged under the file's own keys: mappings merge key by key, ``prompts`` merge by
id (a file adds prompts or redefines one by its id), everything else is replaced. Files whose name starts with ``_`` are bases, never tasks by themselves.
Duplicate keys are errors (a silently dropped key is a silently wrong task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from assay.errors import TaskError
from assay.tasks.spec import TaskSpec

Marks = dict[tuple, tuple[str, int]]


# libyaml's parser when PyYAML was built with it (about 10x faster: the built-in index reads
# several hundred task files at start-up); both give the same nodes and line marks
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _to_python(loader: _Loader, node: yaml.Node, file: str, path: tuple, marks: Marks) -> Any:
    marks.setdefault(path, (file, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise TaskError(f"{file}:{key_node.start_mark.line + 1}: duplicate key '{key}'")
            marks[path + (key,)] = (file, key_node.start_mark.line + 1)
            out[key] = _to_python(loader, value_node, file, path + (key,), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, n, file, path + (i,), marks) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _read_yaml(path: Path, marks: Marks) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskError(f"{path}: no such task file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read: {exc}") from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise TaskError(f"{path}: the file is empty")
        data = _to_python(loader, node, str(path), (), marks)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TaskError(f"{where}: YAML error: {problem}") from None
    except ValueError as exc:  # e.g. an impossible date
        raise TaskError(f"{path}: YAML value error: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise TaskError(f"{path}:1: a task file must be a mapping of keys to values")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif k == "prompts" and _by_id(v) and _by_id(out.get(k)):
            out[k] = _merge_prompts(out[k], v)
        else:
            out[k] = v
    return out


def _by_id(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in v)


def _merge_prompts(base: list[dict[str, Any]], over: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompts merge by id: an including file adds prompts, or redefines one it names."""
    out = [dict(p) for p in base]
    index = {p["id"]: i for i, p in enumerate(out)}
    for p in over:
        if p["id"] in index:
            out[index[p["id"]]] = p
        else:
            index[p["id"]] = len(out)
            out.append(p)
    return out


def load_raw(path: Path, marks: Marks | None = None, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged mapping of a task file and everything it includes."""
    marks = {} if marks is None else marks
    path = path.resolve()
    if path in _seen:
        raise TaskError(f"{path}: include cycle through {' -> '.join(p.name for p in _seen)}")
    own_marks: Marks = {}
    data = _read_yaml(path, own_marks)
    inc = data.pop("include", None)
    if inc is not None:
        bases = [inc] if isinstance(inc, str) else inc
        merged: dict[str, Any] = {}
        if not isinstance(bases, list) or not all(isinstance(b, str) and b.strip() for b in bases):
            raise TaskError(f"{path}:{own_marks[('include',)][1]}: include takes a file name or a list of them, not {inc!r}")
        for b in bases:
            merged = _merge(merged, load_raw(path.parent / b, marks, _seen + (path,)))
        own = data
        data = _merge(merged, own)
        if _by_id(own.get("prompts")) and _by_id(merged.get("prompts")):
            own_marks = _remap_prompt_marks(own_marks, own["prompts"], data["prompts"], marks)
    # the including file's lines win; below a value it replaced, the base's lines are gone
    for p in own_marks:
        if p and p != ("prompts",) and not isinstance(_get(data, p), dict):
            for q in [q for q in marks if len(q) > len(p) and q[: len(p)] == p]:
                del marks[q]
    marks.update(own_marks)
    return data


def _remap_prompt_marks(own_marks: Marks, own: list[dict[str, Any]], merged: list[dict[str, Any]], base_marks: Marks) -> Marks:
    """After prompts merged by id, point the file's own prompt lines at their merged index,
    and forget the base's lines for the prompts the file redefined."""
    where = {p["id"]: i for i, p in enumerate(merged)}
    moved = {i: where[p["id"]] for i, p in enumerate(own)}
    for j in moved.values():
        for q in [q for q in base_marks if len(q) > 1 and q[:2] == ("prompts", j)]:
            del base_marks[q]
    out: Marks = {}
    for q, v in own_marks.items():
        if len(q) > 1 and q[0] == "prompts" and isinstance(q[1], int):
            q = ("prompts", moved[q[1]]) + q[2:]
        out[q] = v
    return out


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _where(marks: Marks, loc: tuple, default: str) -> str:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            f, line = marks[loc[:n]]
            return f"{f}:{line}"
    return default


def load_task(path: str | Path, overrides: dict[str, Any] | None = None) -> TaskSpec:
    """Load and validate one task file. Raises TaskError naming file:line and field."""
    path = Path(path)
    marks: Marks = {}
    data = load_raw(path, marks)
    if overrides:
        data = _merge(data, overrides)
    data.setdefault("task", path.stem)
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-after")))
        field = ".".join(str(x) for x in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise TaskError(f"{_where(marks, loc, str(path))}: field '{field}': {msg}{more}") from None
