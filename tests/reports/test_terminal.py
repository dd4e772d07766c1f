"""The terminal's progress bar: its rate is the run's final rate (requests finished / seconds
since compute began), not a moving window that ends on the last batch's speed."""

from __future__ import annotations

from rich.progress import Progress

from assay.reports.terminal import _Rate


def test_the_bar_rate_is_requests_per_second_since_the_start():
    clock = [0.0]
    with Progress(get_time=lambda: clock[0], disable=True) as bar:
        task = bar.add_task("m", total=100)
        col = _Rate()
        assert col.render(bar.tasks[0]).plain == "- req/s"
        clock[0] = 10.0
        bar.advance(task, 50)  # 50 in 10 s
        assert col.render(bar.tasks[0]).plain == "5.0 req/s"
        clock[0] = 11.0
        bar.advance(task, 50)  # a fast last batch: 50 in 1 s; the whole run: 100 in 11 s
        assert bar.tasks[0].finished
        clock[0] = 30.0  # time after the end does not dilute it
        assert col.render(bar.tasks[0]).plain == "9.1 req/s"
