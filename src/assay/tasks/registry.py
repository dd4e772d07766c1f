"""Built-in tasks and groups by name, and resolution of ``--tasks`` arguments.

Task names follow ``<dataset>_<config>`` (``xcopa_it``); a group name (``xcopa``, ``core``)
stands for all its tasks; an argument ending in ``.yaml``/``.yml`` is a task file, and a folder
stands for every task file under it (bases, named ``_*.yaml``, left out). The ``group:`` of
the user's files named in the same list works like a built-in one: ``-t mytasks/,core`` runs a
folder and a built-in group, ``-t a.yaml,b.yaml,mine`` names a group of those files (joining a
built-in group of the same name).
"""

from __future__ import annotations

import os
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


def _task_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and not p.name.startswith("_") and p.is_file())
    if not files:
        raise TaskError(f"{folder}: a folder given in --tasks holds no task files (*.yaml, *.yml)")
    return files


def _is_file_arg(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or Path(name).is_file()


def _user_groups(names: list[str]) -> dict[str, list[Path]]:
    """Groups declared by the user's task files named (or held by folders named) in the list."""
    groups: dict[str, list[Path]] = {}
    for name in names:
        p = Path(name)
        files = _task_files(p) if p.is_dir() else [p] if _is_file_arg(name) and p.is_file() else []
        for f in files:
            g = load_raw(f).get("group", [])
            for grp in [g] if isinstance(g, str) else g if isinstance(g, list) else []:
                if isinstance(grp, str):
                    groups.setdefault(grp, []).append(f)
    return groups


def resolve(names: list[str]) -> list[tuple[TaskSpec, Path]]:
    """Task specs for the given names, groups, files and folders, in order, without duplicates.

    A file named twice counts once; two files that define the same task name are an error
    (results are keyed by task name, so one would silently replace the other)."""
    idx = builtin_index()
    names = [n.strip() for n in names if n.strip()]
    mine = _user_groups(names)
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
        if Path(name).is_dir():
            for f in _task_files(Path(name)):
                add(f)
        elif _is_file_arg(name):
            add(Path(name))
        elif name in idx.tasks:
            add(idx.tasks[name])
        elif name in idx.groups or name in mine:
            for t in idx.groups.get(name, ()):
                add(idx.tasks[t])
            for f in mine.get(name, ()):
                add(f)
        elif "/" in name or os.sep in name:
            raise TaskError(f"--tasks {name}: no such task file or folder")
        else:
            hint = "" if mine else " (for a group of your own task files, name the files or their folder in --tasks too: -t my_tasks/ or -t a.yaml,b.yaml,GROUP)"
            raise UnknownNameError("task or group", name, list(idx.tasks) + list(idx.groups) + list(mine), hint)
    if not out:
        raise TaskError("no tasks given (--tasks)")
    return out
