"""Aggregation above the task: a group's score per model, like with like.

A group reports one value per metric name, averaged over the member tasks that report that
metric; values of different metrics (an accuracy and a perplexity, a CIDEr and an accuracy)
are never averaged together. The group's headline metric is the one most of its tasks lead
with (ties: the first task's); a task that leads with another metric keeps its own row under
``other_headlines`` instead of disappearing into, or distorting, the headline.

Each value averages the tasks' medians over prompts (the paper's protocol: median per
dataset, then the mean); ``best_prompt`` averages their best prompts (the model cards'
protocol); ``by_language`` lists each task's value under its language.
"""

from __future__ import annotations

import math
from collections import Counter

from assay.results.model import GroupMetric, GroupResult, TaskInfo, TaskResult


def group_members(tasks: dict[str, TaskInfo]) -> dict[str, list[str]]:
    """Group name -> its tasks, in the run's task order."""
    out: dict[str, list[str]] = {}
    for name, info in tasks.items():
        for g in info.group:
            out.setdefault(g, [])
            if name not in out[g]:
                out[g].append(name)
    return out


def group_scores(results: dict[str, dict[str, TaskResult]], tasks: dict[str, TaskInfo]) -> dict[str, dict[str, GroupResult]]:
    """model -> group -> ``GroupResult`` (groups where the model scored no task are left out)."""
    out: dict[str, dict[str, GroupResult]] = {}
    for label, by_task in results.items():
        for g, members in group_members(tasks).items():
            ran = [t for t in members if t in by_task]
            metrics: dict[str, GroupMetric] = {}
            names = list(dict.fromkeys(n for t in ran for n in by_task[t].metrics))
            for name in names:
                rows = [(t, by_task[t].metrics[name]) for t in ran if name in by_task[t].metrics]
                vals = [(t, m.value, m.stderr, m.max) for t, m in rows if m.value is not None and not math.isnan(m.value)]
                if not vals:
                    continue
                k = len(vals)
                ses = [se for _, _, se, _ in vals if se is not None and not math.isnan(se)]
                by_language = {lang: v for t, v, _, _ in vals if (lang := tasks[t].language)}
                metrics[name] = GroupMetric(
                    value=sum(v for _, v, _, _ in vals) / k,
                    stderr=math.sqrt(sum(se * se for se in ses)) / k if len(ses) == k else None,
                    best_prompt=sum(hi if hi is not None and not math.isnan(hi) else v for _, v, _, hi in vals) / k,
                    n_tasks=k,
                    tasks=[t for t, *_ in vals],
                    by_language=by_language,
                )
            heads = [by_task[t].primary for t in ran if by_task[t].primary in metrics]
            if not heads:
                continue
            counts = Counter(heads)
            primary = max(dict.fromkeys(heads), key=lambda n: counts[n])  # most common; ties: first
            others: dict[str, list[str]] = {}
            for t in ran:
                p = by_task[t].primary
                if p != primary and p in metrics:
                    others.setdefault(p, []).append(t)
            out.setdefault(label, {})[g] = GroupResult(primary=primary, metrics=metrics, other_headlines=others)
    return out
