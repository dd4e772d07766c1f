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

from assay.events import Observer
from assay.results import RunResults
from assay.scoring.metrics import fmt_score

class _Rate(ProgressColumn):
    """Requests finished per second since the bar started: the measure of the run's final
    line ("computed N requests in S s = R req/s"), not rich's 30-second moving window."""

    def render(self, task: Any) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.completed / elapsed if elapsed and task.completed else None
        return Text(f"{speed:.1f} req/s" if speed else "- req/s", style="cyan")


class UI(Observer):
    """The terminal's observer of a run (``events.Observer``)."""

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

    def leaderboard(self, results: RunResults) -> None:
        if self.quiet:
            return
        self.out.print(leaderboard_table(results))


def leaderboard_table(doc: RunResults) -> Table:
    """One row per (task, metric): a task's headline metric first, then every other metric
    it declares; under each group, one row per headline metric of its tasks, averaged over
    the tasks that report that metric (never across metrics). ``n`` counts documents."""
    models = list(doc.results)
    table = Table(title="assay leaderboard", show_lines=False)
    table.add_column("task", style="bold")
    table.add_column("metric")
    table.add_column("n", justify="right")
    for m in models:
        table.add_column(m, justify="right")
    grouped: dict[str, list[str]] = {}
    for t, info in doc.tasks.items():
        grouped.setdefault((info.group or [""])[0], []).append(t)
    for group, members in grouped.items():
        for t in members:
            first = next((doc.results[m][t] for m in models if t in doc.results[m]), None)
            if first is None:
                continue
            names = [first.primary] + [n for n in first.metrics if n != first.primary]
            for k, name in enumerate(names):
                cells = []
                for m in models:
                    r = doc.results[m].get(t)
                    mm = r.metrics.get(name) if r else None
                    cells.append(fmt_score(name, mm.value, mm.stderr) if mm else "-")
                label = (f"  {t}" if group else t) if k == 0 else ""
                table.add_row(label, name if k == 0 else Text(name, style="dim"), str(first.documents) if k == 0 else "", *cells)
        if not group:
            continue
        per_model = {m: doc.groups.get(m, {}).get(group) for m in models}
        heads: list[str] = []
        for g in per_model.values():
            if g is not None:
                heads += [h for h in [g.primary, *g.other_headlines] if h not in heads]
        for k, name in enumerate(heads):
            cells, n_tasks = [], 0
            for m in models:
                gr = per_model[m]
                gm = gr.metrics.get(name) if gr is not None else None
                cells.append(fmt_score(name, gm.value, gm.stderr) if gm else "-")
                n_tasks = max(n_tasks, gm.n_tasks if gm else 0)
            title = f"{group} (mean of {n_tasks})" if k == 0 else f"{group} · {name} (mean of {n_tasks})"
            table.add_row(Text(title, style="bold magenta"), name, "", *cells, end_section=k == len(heads) - 1)
    return table
