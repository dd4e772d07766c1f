"""One error tree for assay.

    AssayError                  anything assay reports to a user (printed as one line, exit 2)
    ├── ConfigError             bad command-line options, model arguments or run configuration
    │   └── UnknownOptionError  an unknown model argument (key=value), did-you-mean
    ├── TaskError               a task spec that does not load, validate or render
    ├── DataError               a data file that is missing, corrupt or lacks a field
    ├── BackendError            a model that does not load or a backend call that fails
    ├── StoreError              a run store or run folder that cannot be opened, locked or written
    ├── UnknownNameError        an unknown name (task, model alias, backend, metric, chat format,
    │                           extraction step, prompt id), with close matches suggested
    └── MissingDependency       an optional extra is not installed (names the pip line)

The CLI raises ``AssayError`` itself for a mistake in its own arguments that fits none of these.
Foreign errors are translated where they occur (``raise TaskError(...) from exc``) so the
CLI never prints a bare traceback for a user's mistake.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AssayError(Exception):
    """Base class: a message meant for the user, one line."""


def did_you_mean(name: str, known: Iterable[str], list_up_to: int = 12) -> str:
    """" Did you mean: a, b?" with the close matches of ``name``, else " Known: ..." when
    there are at most ``list_up_to`` known names, else ""."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    if known and len(known) <= list_up_to:
        return f" Known: {', '.join(known)}."
    return ""


class ConfigError(AssayError):
    pass


class UnknownOptionError(ConfigError):
    """An unknown ``key=value`` model argument, with close matches suggested."""

    def __init__(self, model: str, backend: str, name: str, known: Iterable[str]):
        known = sorted(set(known))
        super().__init__(f"model '{model}': unknown {backend} argument '{name}'." + did_you_mean(name, known, list_up_to=len(known)))
        self.name = name
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)


class TaskError(AssayError):
    pass


class DataError(AssayError):
    pass


class BackendError(AssayError):
    pass


class StoreError(AssayError):
    pass


class UnknownNameError(AssayError):
    """An unknown name, with close matches suggested."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = ""):
        known = sorted(set(known))
        super().__init__(f"unknown {kind} '{name}'{hint}." + did_you_mean(name, known))
        self.kind, self.name = kind, name
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)


class MissingDependency(AssayError):
    """An optional dependency is missing; the message names the install line."""

    def __init__(self, what: str, extra: str, module: str):
        super().__init__(
            f"{what} needs the '{module}' package, which is not installed: "
            f"pip install 'assay[{extra}]'"
        )
