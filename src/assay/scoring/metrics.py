"""Metrics: a per-item value and an aggregation that returns (score, standard error).

Means get the analytic standard error; corpus-level scores (micro/macro F1, perplexity) a
bootstrap over items. Every metric declares the output types it applies to, so a task that
names a metric it cannot compute fails at validation time, not after inference.

Every metric also states the facts the rest of assay needs to show and combine its values,
in one place (``METRICS``): its scale (a fraction of 1, shown ×100 as a percentage, or a raw
value shown as computed), whether higher is better, and how it aggregates over items (a mean
of per-item values, a corpus-level score, or a perplexity from summed log-likelihoods). The
terminal, the reports and the model-card export all format through ``fmt_score``/``facts``;
group means average one metric name at a time (``results.aggregate``), never across scales.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.errors import TaskError, UnknownNameError
from assay.scoring import stats, text, vision
from assay.scoring.answers import extract_number, normalize_number
from assay.scoring.entities import entity_counts, prf
from assay.scoring.code import pass_at_k
from assay.tasks.spec import metric_display_name


@dataclass(frozen=True)
class Item:
    """What a metric sees of one instance after extraction."""

    output_type: str
    target: Any
    choices: tuple[str, ...] = ()
    logprobs: tuple[float, ...] = ()  # multiple choice: one per choice
    extracted: tuple[Any, ...] = ()  # generation: one per sample
    passed: tuple[bool, ...] = ()  # code: one per sample
    rolling: tuple[float, int, int] = (0.0, 0, 0)  # logprob, tokens, bytes
    greedy: bool = False  # loglikelihood: every continuation token was the argmax
    labels: tuple[str, ...] = ()  # label set for macro F1


FRACTION, RAW = "fraction", "raw"  # scales: a fraction of 1 (shown ×100, %), or a raw value
MEAN, CORPUS, PERPLEXITY = "mean", "corpus", "perplexity"  # how items aggregate


@dataclass(frozen=True)
class Metric:
    name: str
    output_types: tuple[str, ...]
    item: Callable[[Item, dict[str, Any]], Any]
    aggregate: Callable[[list[Any], dict[str, Any]], tuple[float, float]]
    description: str = ""
    args: tuple[str, ...] = field(default_factory=tuple)
    scale: str = FRACTION
    higher_is_better: bool = True
    aggregation: str = MEAN
    card_type: str = ""  # the model-index ``metrics[].type`` (default: the name)

    @property
    def percent(self) -> bool:
        """Shown ×100 as a percentage (a fraction of 1)."""
        return self.scale == FRACTION

    def fmt(self, value: float | None, stderr: float | None = None) -> str:
        """``61.2 ± 1.4`` for a fraction, ``40.132 ± 2.051`` for a raw value, ``-`` for none."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        f = 100.0 if self.percent else 1.0
        digits = 1 if self.percent else 3
        out = f"{value * f:.{digits}f}"
        if stderr is not None and not (isinstance(stderr, float) and math.isnan(stderr)):
            out += f" ± {stderr * f:.{digits}f}"
        return out

    def card_value(self, value: float) -> float:
        """The value a model card shows: percentages with two decimals, raw values with four."""
        return round(100.0 * value, 2) if self.percent else round(value, 4)


def _mean(values: list[Any], _: dict[str, Any]) -> tuple[float, float]:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan")
    return stats.mean_stderr(vals)


def _pred_choice(it: Item, norm: bool) -> int:
    lp = np.array(it.logprobs)
    if norm:
        lp = lp / np.array([max(len(c), 1) for c in it.choices])
    return int(lp.argmax())


def _correct(it: Item, pred: int) -> bool:
    return bool(it.target[pred]) if isinstance(it.target, (list, tuple)) else pred == it.target


def _acc(it: Item, _: dict) -> float:
    if it.output_type == "loglikelihood":
        return float(it.greedy)
    return float(_correct(it, _pred_choice(it, False)))


def _acc_norm(it: Item, _: dict) -> float:
    return float(_correct(it, _pred_choice(it, True)))


def _mc2(it: Item, _: dict) -> float:
    """Probability mass on the true answers, normalised over all answers (TruthfulQA MC2)."""
    lp = np.array(it.logprobs)
    p = np.exp(lp - lp.max())
    labels = np.array(it.target, dtype=bool)
    return float(p[labels].sum() / p.sum())


def _item_logprob(it: Item, _: dict) -> float:
    return it.logprobs[0]


def _perplexity_of_items(values: list[Any], _: dict) -> tuple[float, float]:
    arr = np.array(values, dtype=float)
    stat = lambda a: math.exp(-a.mean())  # noqa: E731
    return stat(arr), stats.bootstrap_stderr(stat, arr, iters=500)


def _golds(target: Any) -> list[str]:
    if isinstance(target, (list, tuple)):
        return [str(t) for t in target]
    return [str(target)]


_LETTER_FORM = re.compile(r"^\s*[(\[]?\s*([A-Z])\s*[)\]]?\s*$")


def _letter(s: Any) -> str | None:
    """"B", "(B)", "[B]" → "B": a choice letter, which SQuAD normalisation would mangle ("A" is an article)."""
    m = _LETTER_FORM.match(str(s)) if s is not None else None
    return m.group(1) if m else None


def _em(it: Item, _: dict) -> float:
    x = it.extracted[0]
    if x is None:  # nothing extracted never matches (not even a gold that normalises to "")
        return 0.0
    golds = _golds(it.target)
    if _letter(x) is not None and any(_letter(g) is not None for g in golds):
        return float(any(_letter(x) == _letter(g) for g in golds))
    return text.exact_match(str(x), golds)


def _number_golds(target: Any) -> list[str]:
    golds = target if isinstance(target, (list, tuple)) else [target]
    out = []
    for g in golds:
        n = normalize_number(str(g)) if isinstance(g, (int, float)) else extract_number(str(g), "gsm8k")
        if n is not None:
            out.append(n)
    return out


def _number_match(it: Item, _: dict) -> float:
    """Numeric equality of the extracted number and the target's (GSM8K: the number after ####)."""
    x = it.extracted[0]
    pred = normalize_number(str(x)) if x is not None else None
    if pred is None and x is not None:
        pred = extract_number(str(x), "gsm8k")
    return float(pred is not None and pred in _number_golds(it.target))


def _f1(it: Item, _: dict) -> float:
    return text.token_f1(str(it.extracted[0] or ""), _golds(it.target))


def _label_acc(it: Item, _: dict) -> float:
    x = it.extracted[0]
    if x is None:
        return 0.0
    return float(str(x) == str(it.target) or (_letter(x) is not None and _letter(x) == _letter(it.target)))


def _label_pair(it: Item, _: dict) -> tuple[str | None, str, tuple[str, ...]]:
    if it.output_type == "multiple_choice":
        return it.choices[_pred_choice(it, False)], it.choices[it.target], it.choices
    return (None if it.extracted[0] is None else str(it.extracted[0])), str(it.target), it.labels


def _macro_f1_agg(values: list[Any], _: dict) -> tuple[float, float]:
    labels = sorted({lab for v in values for lab in v[2]} | {v[1] for v in values})
    preds = [v[0] for v in values]
    golds = [v[1] for v in values]
    score = stats.macro_f1(preds, golds, labels)
    idx = np.arange(len(values))
    se = stats.bootstrap_stderr(lambda s: stats.macro_f1([preds[i] for i in s], [golds[i] for i in s], labels), idx, iters=500)
    return score, se


def _entity_list(v: Any) -> list[tuple[str, str]]:
    out = []
    for e in v or []:
        if isinstance(e, dict):
            out.append((str(e.get("text", "")), str(e.get("type", ""))))
        else:
            out.append((str(e[0]), str(e[1]) if len(e) > 1 else ""))
    return out


def _entity_counts(typed: bool) -> Callable[[Item, dict], tuple[int, int, int]]:
    def item(it: Item, args: dict) -> tuple[int, int, int]:
        pred, gold = _entity_list(it.extracted[0]), _entity_list(it.target)
        if args.get("type"):  # one type only (per-type scores): both sides keep that type's entities
            want = str(args["type"]).strip().upper()
            pred, gold = ([e for e in side if e[1].strip().upper() == want] for side in (pred, gold))
        return entity_counts(pred, gold, typed=typed)

    return item


def _prf_agg(which: int) -> Callable[[list[Any], dict], tuple[float, float]]:
    def agg(values: list[Any], _: dict) -> tuple[float, float]:
        counts = np.array(values, dtype=float).reshape(-1, 3)
        stat = lambda c: prf(*(int(x) for x in c.sum(axis=0)))[which]  # noqa: E731
        return stat(counts), stats.bootstrap_stderr(stat, counts, iters=500)

    return agg


def _words(it: Item, _: dict) -> float:
    x = it.extracted[0] if it.extracted else None
    return float(len(str(x).split())) if x is not None else 0.0


def _pass_at_k(it: Item, args: dict) -> float:
    k = int(args.get("k", 1))
    n = len(it.passed)
    if n < k:
        raise TaskError(f"pass@{k} needs at least {k} samples per problem; set generation.n >= {k}")
    return pass_at_k(n, sum(it.passed), k)


def _rolling_item(it: Item, _: dict) -> tuple[float, int, int]:
    return it.rolling


def _perplexity_item(it: Item, args: dict) -> Any:
    return _item_logprob(it, args) if it.output_type == "loglikelihood" else it.rolling


def _perplexity(values: list[Any], args: dict) -> tuple[float, float]:
    if values and not isinstance(values[0], (tuple, list)):  # loglikelihood items
        return _perplexity_of_items(values, args)
    arr = np.array(values, dtype=float).reshape(-1, 3)
    stat = lambda a: math.exp(-a[:, 0].sum() / max(a[:, 1].sum(), 1))  # noqa: E731
    return stat(arr), stats.bootstrap_stderr(stat, arr, iters=500)


def _bits_per_byte(values: list[Any], _: dict) -> tuple[float, float]:
    arr = np.array(values, dtype=float).reshape(-1, 3)
    stat = lambda a: -a[:, 0].sum() / max(a[:, 2].sum(), 1) / math.log(2)  # noqa: E731
    return stat(arr), stats.bootstrap_stderr(stat, arr, iters=500)


def _text_or_none(x: Any) -> str | None:
    return None if x is None else str(x)


def _vqa_accuracy(it: Item, _: dict) -> float:
    return vision.vqa_accuracy(_text_or_none(it.extracted[0]), _golds(it.target))


def _caption_pair(it: Item, _: dict) -> tuple[str | None, list[str]]:
    return _text_or_none(it.extracted[0]), _golds(it.target)


def _cider_agg(values: list[Any], _: dict) -> tuple[float, float]:
    """Corpus CIDEr-D; the bootstrap recomputes the document frequencies on every resample."""
    preds, refs = [v[0] for v in values], [v[1] for v in values]
    score = vision.cider_d(preds, refs)[0]
    se = stats.bootstrap_stderr(lambda idx: vision.cider_d_resample(preds, refs, idx), np.arange(len(values)), iters=100)
    return score, se


def _bleu4_item(it: Item, _: dict) -> tuple[int, ...]:
    return vision.bleu4_item_stats(_text_or_none(it.extracted[0]), _golds(it.target))


def _bleu4_agg(values: list[Any], _: dict) -> tuple[float, float]:
    arr = np.array(values, dtype=float)
    return vision.bleu4_from_stats(arr), stats.bootstrap_stderr(vision.bleu4_from_stats, arr, iters=500)


def _match_matrix(it: Item) -> np.ndarray:
    n = len(it.choices)
    return np.array(it.logprobs, dtype=float).reshape(n, n)


def _match(fn: Callable[[np.ndarray], float]) -> Callable[[Item, dict], float]:
    return lambda it, _: float(fn(_match_matrix(it)))


MC, GEN, ROLL, LL, MATCH = ("multiple_choice",), ("generate",), ("rolling",), ("loglikelihood",), ("match",)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc", MC + LL, _acc, _mean, "accuracy: the choice with the highest log-likelihood (for a single continuation: greedy decoding would produce it)", card_type="Accuracy"),
        Metric("mc2", MC, _mc2, _mean, "normalised probability of the true answers (TruthfulQA MC2)", card_type="MC2"),
        Metric("acc_norm", MC, _acc_norm, _mean, "accuracy with log-likelihood divided by the choice's length in characters", card_type="Accuracy (length-normalised)"),
        Metric("exact_match", GEN, _em, _mean, "SQuAD exact match after normalisation, best over gold answers", card_type="Exact Match"),
        Metric("f1", GEN, _f1, _mean, "SQuAD token F1, best over gold answers", card_type="F1"),
        Metric("number_match", GEN, _number_match, _mean, "the extracted number equals the target's (GSM8K: after ####), compared as numbers", card_type="Exact Match (number)"),
        Metric("label_acc", GEN, _label_acc, _mean, "accuracy of the label mapped from a free-text answer", card_type="Accuracy"),
        Metric("macro_f1", MC + GEN, _label_pair, _macro_f1_agg, "macro-averaged F1 over labels", aggregation=CORPUS, card_type="Macro F1"),
        Metric("entity_f1", GEN, _entity_counts(False), _prf_agg(2), "entity-level micro F1 on spans (args.type: that type's entities only)", ("type",), aggregation=CORPUS, card_type="F1"),
        Metric("entity_precision", GEN, _entity_counts(False), _prf_agg(0), "entity-level micro precision on spans (args.type: that type's entities only)", ("type",), aggregation=CORPUS, card_type="Precision"),
        Metric("entity_recall", GEN, _entity_counts(False), _prf_agg(1), "entity-level micro recall on spans (args.type: that type's entities only)", ("type",), aggregation=CORPUS, card_type="Recall"),
        Metric("entity_f1_typed", GEN, _entity_counts(True), _prf_agg(2), "entity-level micro F1, span and type must match", ("type",), aggregation=CORPUS, card_type="F1 (typed)"),
        Metric("words", GEN, _words, _mean, "the answer's length in words (open-ended tasks: read beside a judge's verdicts, which favour long answers)",
               scale=RAW, card_type="Answer length (words)"),
        Metric("pass_at_k", GEN, _pass_at_k, _mean, "unbiased pass@k over n samples per problem", ("k",)),
        Metric("perplexity", ROLL + LL, _perplexity_item, _perplexity, "rolling: token perplexity; loglikelihood: exp(-mean item log-likelihood), as lm-evaluation-harness reports LAMBADA",
               scale=RAW, higher_is_better=False, aggregation=PERPLEXITY, card_type="Perplexity"),
        Metric("bits_per_byte", ROLL, _rolling_item, _bits_per_byte, "bits per UTF-8 byte", scale=RAW, higher_is_better=False, aggregation=PERPLEXITY, card_type="Bits per Byte"),
        Metric("vqa_accuracy", GEN, _vqa_accuracy, _mean, "VQA accuracy: official answer normalisation, min(#matching humans / 3, 1) averaged over the leave-one-out subsets", card_type="VQA Accuracy"),
        Metric("cider", GEN, _caption_pair, _cider_agg, "CIDEr-D (COCO caption protocol; document frequencies from this set's references), as the toolkit returns it (papers print it ×100)",
               scale=RAW, aggregation=CORPUS, card_type="CIDEr"),
        Metric("bleu4", GEN, _bleu4_item, _bleu4_agg, "corpus BLEU-4 against all references (closest reference length), as the COCO caption toolkit", aggregation=CORPUS, card_type="BLEU-4"),
        Metric("text_score", MATCH, _match(vision.match_text_score), _mean, "image-text matching: every image scores its own caption highest (Winoground text score)", card_type="Text Score"),
        Metric("image_score", MATCH, _match(vision.match_image_score), _mean, "image-text matching: every caption scores highest with its own image (Winoground image score)", card_type="Image Score"),
        Metric("group_score", MATCH, _match(vision.match_group_score), _mean, "image-text matching: text and image score both (Winoground group score)", card_type="Group Score"),
    )
}


def metric(name: str) -> Metric:
    if name not in METRICS:
        raise UnknownNameError("metric", name, METRICS)
    return METRICS[name]


def facts(display: str) -> Metric:
    """The metric behind a name as results show it (``pass@10``, ``entity_f1[PER]``, ``acc``).
    A name assay does not know (a results file from elsewhere) reads as a raw value where
    higher is better, so it is shown as stored and never averaged with known metrics."""
    base = "pass_at_k" if display.startswith("pass@") else display.split("[", 1)[0]
    m = METRICS.get(base)
    if m is None:
        return Metric(display, (), _item_logprob, _mean, "a metric this version of assay does not know", scale=RAW)
    return m


def fmt_score(display: str, value: float | None, stderr: float | None = None) -> str:
    """A value (and its standard error) as every view shows it: see ``Metric.fmt``."""
    return facts(display).fmt(value, stderr)


def card_type(display: str) -> str:
    """The model-index metric type of a metric as results name it."""
    if display.startswith("pass@"):
        return "Pass@" + display.removeprefix("pass@")
    m = facts(display)
    kind = m.card_type or display
    return f"{kind} [{display.split('[', 1)[1]}" if "[" in display and m.card_type else kind


display_name = metric_display_name


def check_metrics(task: str, output_type: str, specs: Sequence[Any]) -> None:
    for m in specs:
        met = metric(m.name)
        if output_type not in met.output_types:
            raise TaskError(f"task {task}: metric '{m.name}' does not apply to {output_type} tasks")
        extra = set(m.args) - set(met.args)
        if extra:
            raise TaskError(f"task {task}: metric '{m.name}' takes no argument(s) {', '.join(sorted(extra))}")
