"""Built-in tasks and groups by name, and resolution of ``--tasks`` arguments.

Task names follow ``<dataset>_<config>`` (``xcopa_it``); a group name (``xcopa``, ``core``)
stands for all its tasks; an argument ending in ``.yaml``/``.yml`` is a task file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assay.errors import TaskError, UnknownNameError
from assay.tasks.loader import load_raw, load_task
from assay.tasks.spec import TaskSpec

BUILTIN = Path(__file__).resolve().parent / "builtin"


@dataclass(frozen=True)
class Index:
    tasks: dict[str, Path]
    groups: dict[str, tuple[str, ...]]
    descriptions: dict[str, str]


@lru_cache(maxsize=1)
def builtin_index() -> Index:
    tasks: dict[str, Path] = {}
    groups: dict[str, list[str]] = {}
    desc: dict[str, str] = {}
    for path in sorted(BUILTIN.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue
        raw = load_raw(path)
        name = raw.get("task", path.stem)
        if name in tasks:
            raise TaskError(f"{path}: task '{name}' is also defined in {tasks[name]}")
        tasks[name] = path
        desc[name] = str(raw.get("description", ""))
        g = raw.get("group", [])
        for grp in [g] if isinstance(g, str) else g:
            groups.setdefault(grp, []).append(name)
    return Index(tasks, {k: tuple(v) for k, v in groups.items()}, desc)


def resolve(names: list[str]) -> list[tuple[TaskSpec, Path]]:
    """Task specs for the given names, groups and files, in order, without duplicates.

    A file named twice counts once; two files that define the same task name are an error
    (results are keyed by task name, so one would silently replace the other)."""
    idx = builtin_index()
    out: list[tuple[TaskSpec, Path]] = []
    seen: dict[str, Path] = {}  # task name -> the file that defines it

    def add(path: Path) -> None:
        spec = load_task(path)
        first = seen.get(spec.task)
        if first is not None:
            if first.resolve() == path.resolve():  # the same file named twice (a task and its group)
                return
            raise TaskError(f"task '{spec.task}' is defined twice: in {first} and in {path}; rename one (task: NAME)")
        seen[spec.task] = path
        out.append((spec, path))

    for name in names:
        name = name.strip()
        if not name:
            continue
        if name.endswith((".yaml", ".yml")) or Path(name).is_file():
            add(Path(name))
        elif name in idx.tasks:
            add(idx.tasks[name])
        elif name in idx.groups:
            for t in idx.groups[name]:
                add(idx.tasks[t])
        else:
            raise UnknownNameError("task or group", name, list(idx.tasks) + list(idx.groups))
    if not out:
        raise TaskError("no tasks given (--tasks)")
    return out
