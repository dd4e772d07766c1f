"""What a person sees in the terminal: notes, a live progress bar (requests/s, ETA) and the
leaderboard at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

_PERCENT = {
    "acc", "acc_norm", "exact_match", "f1", "label_acc", "macro_f1", "entity_f1", "entity_precision", "entity_recall", "entity_f1_typed",
    "number_match", "mc2", "vqa_accuracy", "bleu4", "cider", "text_score", "image_score", "group_score",
}  # shown ×100 (CIDEr too, as papers report it)


class _Rate(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} req/s" if speed else "- req/s", style="cyan")


def fmt(metric: str, value: float | None, stderr: float | None) -> str:
    if value is None:
        return "-"
    pct = metric in _PERCENT or metric.startswith("pass@")
    scale = 100.0 if pct else 1.0
    s = f"{value * scale:.1f}" if pct else f"{value:.3f}"
    if stderr is not None:
        s += f" ± {stderr * scale:.1f}" if pct else f" ± {stderr:.3f}"
    return s


class UI:
    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console(stderr=True)
        self.out = Console()
        self.quiet = quiet

    def note(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(msg, highlight=False, soft_wrap=True)

    def error(self, msg: str) -> None:
        self.console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)

    @contextmanager
    def status(self, msg: str) -> Iterator[None]:
        if self.quiet or not self.console.is_terminal:
            self.note(msg)
            yield
            return
        with self.console.status(msg):
            yield

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, disable=self.quiet, transient=False) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)

    def leaderboard(self, doc: dict[str, Any]) -> None:
        if self.quiet:
            return
        self.out.print(leaderboard_table(doc))


def leaderboard_table(doc: dict[str, Any]) -> Table:
    models = list(doc["results"])
    table = Table(title="assay leaderboard", show_lines=False)
    table.add_column("task", style="bold")
    table.add_column("metric")
    table.add_column("n", justify="right")
    for m in models:
        table.add_column(m, justify="right")
    tasks = list(doc["tasks"])
    grouped: dict[str, list[str]] = {}
    for t in tasks:
        grouped.setdefault((doc["tasks"][t].get("group") or [""])[0], []).append(t)
    for group, members in grouped.items():
        for t in members:
            first = doc["results"][models[0]].get(t) if models else None
            primary = first["primary"] if first else "-"
            n = str(first["n_items"]) if first else "-"
            cells = []
            for m in models:
                r = doc["results"][m].get(t)
                mm = r["metrics"].get(primary, {}) if r else {}
                cells.append(fmt(primary, mm.get("value"), mm.get("stderr")))
            table.add_row(f"  {t}" if group else t, primary, n, *cells)
        if group and any(group in doc["groups"].get(m, {}) for m in models):
            cells = []
            for m in models:
                g = doc["groups"].get(m, {}).get(group)
                cells.append(fmt("acc", g["value"], g["stderr"]) if g else "-")
            table.add_row(Text(f"{group} (mean of {len(members)})", style="bold magenta"), "", "", *cells, end_section=True)
    return table
