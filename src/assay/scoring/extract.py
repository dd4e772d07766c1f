"""Free-form answer → the thing a metric compares (declared per task as ``extract:``).

``extract:`` is a pipeline of steps (see ``ExtractSpec``); each step reads the previous step's
output text. Steps and their ``args``:

* ``none`` (the answer as is), ``strip``, ``first_line`` (first non-empty line, stripped),
  ``span`` (a short answer cut from a verbose one, :func:`text.extract_span_answer`);
* ``regex``: ``pattern``, ``group`` (default 1 when the pattern has groups, else 0), ``all``
  (true: the last match, for chain-of-thought answers that restate "the answer is"), ``flags``
  (letters ``imsx`` or names such as ``[IGNORECASE, DOTALL]``), ``dotall`` (legacy); no match
  gives "";
* ``number``: ``mode`` = ``gsm8k`` | ``last`` (default) | ``first`` (:func:`answers.extract_number`);
  gives a normalised number ("1234", "-3.5") or None;
* ``letter``: ``letters`` ("ABCDE", default "ABCD") or ``n`` (the number of options), ``format``
  (default "{}"; "({})" gives BBH's "(B)"); gives the chosen letter or None;
* ``label``: ``labels`` (label → words), ``labels_var`` (a task var holding such a mapping),
  ``preset`` (built-in words, :data:`labels.LABEL_PRESETS`: ``sentiment2``, ``sentiment3``,
  ``tweeteval_sentiment``, ``xlmt``, ``agnews``, ``emotion4``, ``tweeteval_emotion``, ``hate``,
  ``irony``, ``offensive`` and their ``tweeteval_`` names); ``labels`` words add to a preset's;
  ``rename`` (preset label → the label your targets use, e.g. ``{Sci/Tech: sci_tech}``);
* ``entities``: ``types`` (TYPE → words; default PER/LOC/ORG/MISC), gives ``[[surface, TYPE]]``;
* ``code``: the program in the answer (``assay.scoring.code.extract_code``); a step of its own;
* ``majority`` (last step only): the item's answer is the most common one over its samples
  (ties: the earliest sample's; None answers do not vote unless all are None). The vote is
  taken in ``score.py``, which keeps every sample's answer in the sample file.

A step that receives None (nothing found) passes None on. Each step is one entry of
:data:`STEPS` (what it does, the arguments it takes, their check, what it gives when that is
not text); the task spec checks its pipeline against that table when the task loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import TaskError, UnknownNameError
from assay.scoring import text
from assay.scoring.answers import NUMBER_MODES, choice_letters, extract_letter, extract_number
from assay.scoring.code import extract_code
from assay.scoring.entities import parse_entities
from assay.scoring.labels import LABEL_PRESETS, map_label

if TYPE_CHECKING:  # types only: tasks.spec imports this module to check pipelines when a task loads
    from assay.tasks.spec import ExtractSpec, ExtractStep

_FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}


@dataclass(frozen=True)
class Context:
    """What a step may read besides the answer."""

    task_vars: dict[str, Any]
    target: Any
    task: str


@dataclass(frozen=True)
class Step:
    """One kind of extraction step."""

    name: str
    # (step, the answer as text, context) -> its output; None: the answer passes as it is,
    # None included
    run: Callable[[ExtractStep, str, Context], Any] | None
    args: tuple[str, ...] = ()  # the arguments it takes
    # (step, "task T: extract step N 'name'", task vars, task) -> raises TaskError
    check: Callable[[ExtractStep, str, dict[str, Any], str], None] | None = None
    gives: str | None = None  # what it gives when that is not text: it cannot feed a text step


def _words(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(w) for w in v]


def label_map(spec: ExtractSpec | ExtractStep, task_vars: dict[str, Any], task: str) -> dict[str, list[str]]:
    """Label → its words, from ``preset``, ``labels`` and ``labels_var`` (merged in that order)."""
    args = spec.args
    out: dict[str, list[str]] = {}
    if "preset" in args:
        preset = LABEL_PRESETS.get(str(args["preset"]))
        if preset is None:
            raise TaskError(f"task {task}: unknown label preset '{args['preset']}' (known: {', '.join(sorted(LABEL_PRESETS))})")
        rename = args.get("rename") or {}
        if not isinstance(rename, dict) or set(rename) - set(preset):
            raise TaskError(f"task {task}: extract 'label' rename maps preset labels ({', '.join(preset)}) to your labels")
        for label, words in preset.items():
            out[str(rename.get(label, label))] = [label, *words]
    labels = args.get("labels")
    if labels is None and "labels_var" in args:
        labels = task_vars.get(args["labels_var"])
        if labels is None:
            raise TaskError(f"task {task}: extract 'label' names labels_var '{args['labels_var']}', which is not in vars")
    if labels is not None:
        if not isinstance(labels, dict):
            raise TaskError(f"task {task}: extract 'label' labels must map each label to its words")
        for k, v in labels.items():
            out.setdefault(str(k), []).extend(_words(v))
    if not out:
        raise TaskError(f"task {task}: extract 'label' needs args.labels, args.labels_var (a var mapping each label to its words) or args.preset")
    return out


def _regex_flags(step: ExtractStep, task: str) -> int:
    flags = re.DOTALL if step.args.get("dotall") else 0
    raw = step.args.get("flags")
    if raw is None:
        return flags
    names = list(raw) if isinstance(raw, str) and raw and all(c in _FLAG_LETTERS for c in raw) else _words(raw)
    for f in names:
        if f in _FLAG_LETTERS:
            flags |= _FLAG_LETTERS[f]
        elif isinstance(getattr(re, str(f).upper(), None), re.RegexFlag):
            flags |= getattr(re, str(f).upper())
        else:
            raise TaskError(f"task {task}: extract regex flag '{f}' is not one of i, m, s, x, a or a re flag name")
    return flags


# -- each step's check (before any model runs) and run ----------------------------------------


def _check_label(step: ExtractStep, where: str, task_vars: dict[str, Any], task: str) -> None:
    label_map(step, task_vars, task)


def _check_regex(step: ExtractStep, where: str, task_vars: dict[str, Any], task: str) -> None:
    a = step.args
    if "pattern" not in a:
        raise TaskError(f"{where} needs args.pattern")
    try:
        rx = re.compile(a["pattern"], _regex_flags(step, task))
    except (re.error, TypeError) as exc:
        raise TaskError(f"{where}: the pattern does not compile: {exc}") from None
    group = a.get("group")
    if group is not None and (not isinstance(group, (int, str)) or (isinstance(group, int) and not 0 <= group <= rx.groups)):
        raise TaskError(f"{where}: group {group!r} is not a group of the pattern ({rx.groups} groups)")


def _run_regex(step: ExtractStep, answer: str, ctx: Context) -> str:
    rx = re.compile(step.args["pattern"], _regex_flags(step, ctx.task))
    if step.args.get("all"):
        matches = list(rx.finditer(answer))
        m = matches[-1] if matches else None
    else:
        m = rx.search(answer)
    if m is None:
        return ""
    group = step.args.get("group", 1 if m.re.groups else 0)
    return (m.group(group) or "").strip()


def _check_number(step: ExtractStep, where: str, task_vars: dict[str, Any], task: str) -> None:
    if step.args.get("mode", "last") not in NUMBER_MODES:
        raise TaskError(f"{where}: mode must be one of {', '.join(NUMBER_MODES)}, not {step.args.get('mode')!r}")


def _check_letter(step: ExtractStep, where: str, task_vars: dict[str, Any], task: str) -> None:
    a = step.args
    if "letters" in a and "n" in a:
        raise TaskError(f"{where}: give letters or n, not both")
    try:
        choice_letters(a.get("letters"), a.get("n"))
    except ValueError as exc:
        raise TaskError(f"{where}: {exc}") from None
    fmt = a.get("format", "{}")
    if not isinstance(fmt, str) or fmt.count("{}") != 1:
        raise TaskError(f"{where}: format must be a string with one '{{}}' for the letter, such as '({{}})'")


def _run_letter(step: ExtractStep, answer: str, ctx: Context) -> str | None:
    letter = extract_letter(answer, choice_letters(step.args.get("letters"), step.args.get("n")))
    return None if letter is None else str(step.args.get("format", "{}")).replace("{}", letter)


def _check_entities(step: ExtractStep, where: str, task_vars: dict[str, Any], task: str) -> None:
    types = step.args.get("types")
    if "types" in step.args and (not isinstance(types, dict) or not types):
        raise TaskError(f"{where}: types must map each entity type to its words")


def _run_code(step: ExtractStep, answer: str, ctx: Context) -> str:
    target = ctx.target
    ep = target.get("entry_point") if isinstance(target, dict) else None
    prefix = (target.get("prompt_prefix") or "") if isinstance(target, dict) else ""
    return extract_code(answer, entry_point=ep, prompt_prefix=prefix)


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("none", None),
        Step("strip", lambda step, answer, ctx: answer.strip()),
        Step("first_line", lambda step, answer, ctx: next((ln.strip() for ln in answer.splitlines() if ln.strip()), "")),
        Step("span", lambda step, answer, ctx: text.extract_span_answer(answer)),
        Step("regex", _run_regex, ("pattern", "group", "all", "flags", "dotall"), _check_regex),
        Step("number", lambda step, answer, ctx: extract_number(answer, step.args.get("mode", "last")), ("mode",), _check_number),
        Step("letter", _run_letter, ("letters", "n", "format"), _check_letter),
        Step(
            "label",
            lambda step, answer, ctx: map_label(answer, label_map(step, ctx.task_vars, ctx.task)),
            ("labels", "labels_var", "preset", "rename"),
            _check_label,
            gives="a label",
        ),
        Step(
            "entities",
            lambda step, answer, ctx: [list(e) for e in parse_entities(answer, types=step.args.get("types"))],
            ("types",),
            _check_entities,
            gives="a list of entities",
        ),
        Step("code", _run_code, gives="code"),
        Step("majority", None),  # the vote over an item's samples is taken in score.py
    )
}


def check_pipeline(spec: ExtractSpec, task: str) -> None:
    """Raise ValueError for an unknown step or one that cannot read what the step before it
    gives (the task spec calls this when a task loads)."""
    names = [s.name for s in spec.steps]
    for i, name in enumerate(names):
        if name not in STEPS:
            raise ValueError(f"task {task}: extract step {i + 1}: {UnknownNameError('extraction step', name, STEPS)}")
    for i, name in enumerate(names):
        if name == "majority" and i != len(names) - 1:
            raise ValueError(f"task {task}: extract step {i + 1} 'majority' must be the last step")
        if name == "majority" and "code" in names:
            raise ValueError(f"task {task}: extract 'majority' cannot vote over 'code' (use pass_at_k over the samples)")
        if name == "code" and len(names) > 1:
            raise ValueError(f"task {task}: extract 'code' runs the raw answer and cannot be part of a pipeline")
        gives = STEPS[names[i - 1]].gives if i else None
        if name != "majority" and gives is not None:
            raise ValueError(f"task {task}: extract step {i + 1} '{name}' reads text, but step {i} '{names[i - 1]}' gives {gives}")


def check_extract(spec: ExtractSpec, task_vars: dict[str, Any], task: str) -> None:
    """Validate the pipeline and every step's arguments against :data:`STEPS` (before any
    model runs)."""
    try:
        check_pipeline(spec, task)
    except ValueError as exc:
        raise TaskError(str(exc)) from None
    for i, step in enumerate(spec.steps, 1):
        kind = STEPS[step.name]
        where = f"task {task}: extract step {i} '{step.name}'"
        extra = set(step.args) - set(kind.args)
        if extra:
            raise TaskError(f"{where} takes no argument(s) {', '.join(sorted(extra))} (it takes: {', '.join(kind.args) or 'none'})")
        if kind.check is not None:
            kind.check(step, where, task_vars, task)


def run_step(step: ExtractStep, answer: Any, *, task_vars: dict[str, Any], target: Any, task: str) -> Any:
    """One step on one answer (None passes through every step)."""
    kind = STEPS.get(step.name)
    if kind is None:
        raise TaskError(f"task {task}: {UnknownNameError('extraction step', step.name, STEPS)}")
    if kind.run is None or answer is None:
        return answer
    return kind.run(step, str(answer), Context(task_vars, target, task))


def extract(spec: ExtractSpec, answer: str, *, task_vars: dict[str, Any], target: Any, task: str) -> Any:
    """Run the pipeline on one sample's answer (``majority`` is left to :func:`vote`)."""
    value: Any = answer
    for step in spec.steps:
        value = run_step(step, value, task_vars=task_vars, target=target, task=task)
    return value


def _vote_key(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_vote_key(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), _vote_key(x)) for k, x in v.items()))
    return v


def vote(answers: Sequence[Any]) -> Any:
    """The most common answer; ties go to the earliest; None votes only when all are None."""
    counts: dict[Any, int] = {}
    first: dict[Any, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        k = _vote_key(a)
        counts[k] = counts.get(k, 0) + 1
        first.setdefault(k, i)
    if not counts:
        return None
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return answers[first[best]]
