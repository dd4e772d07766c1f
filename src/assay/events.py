"""What a run tells whoever watches it: notes, a status while a model loads, progress over
the requests, the leaderboard at the end. Every method is optional: ``Observer()`` itself
does nothing, so ``assay.run`` needs no terminal (the CLI passes ``reports.terminal.UI``;
``assay.evaluate`` passes callbacks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay.results import RunResults

Advance = Callable[[int], None]
ProgressCallback = Callable[[str, int, int], None]  # (model label, done, total)


class Observer:
    def note(self, msg: str) -> None:
        """A line for the user (may hold rich markup such as ``[yellow]``)."""

    def error(self, msg: str) -> None:
        """A problem that does not stop the run (e.g. a report that could not be written)."""

    @contextmanager
    def status(self, msg: str) -> Iterator[None]:
        yield

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Advance]:
        yield lambda n: None

    def leaderboard(self, results: RunResults) -> None:
        """The scores, once every task is scored."""


class Callbacks(Observer):
    """An observer made of plain functions (``assay.evaluate(progress=..., notes=...)``)."""

    def __init__(self, progress: ProgressCallback | None = None, notes: Callable[[str], None] | None = None):
        self._progress = progress
        self._notes = notes

    def note(self, msg: str) -> None:
        if self._notes is not None:
            from rich.text import Text

            self._notes(Text.from_markup(msg).plain)

    def error(self, msg: str) -> None:
        self.note(f"error: {msg}")

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Advance]:
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if self._progress is not None:
                self._progress(label, done, total)

        if self._progress is not None:
            self._progress(label, 0, total)
        yield advance
