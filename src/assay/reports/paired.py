"""Paired comparison of two models on the items they share, and the written summary built on it.

Two models scored on the same items are compared item by item, not by their two means alone: the
per-item differences cancel what makes some items hard for everyone, so a paired test separates
models that an unpaired one would call equal.

- The interval is a paired bootstrap: item indices are resampled with replacement and the mean of
  the per-item differences is taken on each resample; its percentiles bound the difference.
- The p-value comes from the exact McNemar test when every score is 0 or 1 (only the items the two
  models disagree on carry information), otherwise from a sign-flip permutation test of the
  per-item differences. Neither assumes normality, which matters for small families of items.

Only numpy is needed; the binomial tail is computed with exact integers for small counts and in
log space beyond, so scipy stays out of assay's dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MCNEMAR = "McNemar (exact)"
PERMUTATION = "paired permutation"

_EXACT_BINOMIAL_MAX_N = 1000  # exact big-integer sums up to here; log space beyond
_EXACT_PERMUTATION_MAX_K = 16  # 2**16 sign patterns enumerated; Monte Carlo beyond
_CHUNK_ELEMENTS = 1 << 20  # resampled indices (or signs) held at once: a few MiB
_MINUS = "\u2212"


# --------------------------------------------------------------------------------------------
# Tests


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar test on the discordant counts.

    Under the null hypothesis a discordant item is equally likely to favour either model, so
    the smaller count follows Bin(a_only + b_only, 1/2): p = min(1, 2 * P[X <= min]).
    """
    for name, value in (("a_only", a_only), ("b_only", b_only)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    n, k = int(a_only) + int(b_only), int(min(a_only, b_only))
    if n == 0:
        return 1.0
    tail = _binomial_half_cdf(n, k)
    return min(1.0, 2.0 * tail)


def _binomial_half_cdf(n: int, k: int) -> float:
    """P[X <= k] for X ~ Bin(n, 1/2), exact for small n and stable (no overflow) for large n."""
    if n <= _EXACT_BINOMIAL_MAX_N:
        return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # int/int rounds correctly
    return math.exp(_log_binomial_half_cdf(n, k))


def _log_binomial_half_cdf(n: int, k: int) -> float:
    """log P[X <= k] by log-sum-exp over the terms, walking down from i = k.

    For k <= n/2 each step down multiplies the term by i/(n-i+1) <= 1, so the walk stops as soon as
    the terms no longer change the sum in double precision; this keeps large n cheap.
    """
    log_norm = math.lgamma(n + 1) - n * math.log(2.0)
    peak = log_norm - math.lgamma(k + 1) - math.lgamma(n - k + 1)  # the largest term (i = k)
    total = 0.0  # sum of exp(term - peak)
    for i in range(k, -1, -1):
        rel = math.exp(log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1) - peak)
        total += rel
        if rel < total * 1e-17:
            break
    return peak + math.log(total)


def paired_permutation_p(d: np.ndarray, *, n_perm: int = 10_000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation test of mean(d) = 0 for paired differences ``d``.

    Under the null hypothesis each difference is as likely to have the opposite sign, so the
    observed |sum(d)| is ranked among the sums with every sign pattern. Zero differences do not
    change any sum and are dropped. All 2**k patterns are enumerated for k <= 16 non-zero
    differences; beyond that ``n_perm`` random patterns are drawn and the (count + 1) / (n_perm + 1)
    correction keeps the estimate a valid p-value.
    """
    diffs = _as_vector(d, "d")
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    nonzero = diffs[diffs != 0.0]
    if nonzero.size == 0:
        return 1.0
    observed = abs(float(nonzero.sum()))
    tol = 1e-9 * float(np.abs(nonzero).sum())  # sums in another order differ by rounding only
    if nonzero.size <= _EXACT_PERMUTATION_MAX_K:
        return _exact_sign_flip_p(nonzero, observed, tol)
    return _monte_carlo_sign_flip_p(nonzero, observed, tol, n_perm, np.random.default_rng(seed))


def _exact_sign_flip_p(d: np.ndarray, observed: float, tol: float) -> float:
    """Share of all 2**k sign patterns whose |sum| reaches the observed one."""
    k = d.size
    patterns = np.arange(1 << k, dtype=np.int64)[:, None]
    bits = (patterns >> np.arange(k, dtype=np.int64)) & 1
    sums = np.abs((1 - 2 * bits).astype(np.float64) @ d)
    return float(np.count_nonzero(sums >= observed - tol)) / float(1 << k)


def _monte_carlo_sign_flip_p(d: np.ndarray, observed: float, tol: float, n_perm: int, rng: np.random.Generator) -> float:
    """(count + 1) / (n_perm + 1) over random sign patterns, drawn in chunks to bound memory.

    With bits in {0, 1}, sum(s * d) for s = 2 * bit - 1 is 2 * (bits @ d) - sum(d): one matrix
    product per chunk.
    """
    k, total = d.size, float(d.sum())
    rows = max(1, min(n_perm, _CHUNK_ELEMENTS // k))
    hits = 0
    for start in range(0, n_perm, rows):
        m = min(rows, n_perm - start)
        bits = rng.integers(0, 2, size=(m, k), dtype=np.int8)
        sums = np.abs(2.0 * (bits.astype(np.float64) @ d) - total)
        hits += int(np.count_nonzero(sums >= observed - tol))
    return (hits + 1) / (n_perm + 1)


# --------------------------------------------------------------------------------------------
# Paired comparison


@dataclass(frozen=True)
class Paired:
    """Model a against model b on their shared items; ``diff`` and the interval are a minus b.

    ``a_only``/``b_only`` are the discordant counts (items only one model got right) for 0/1
    scores, and the counts of items where a > b / b > a otherwise. ``alpha`` is kept so the
    summary can name the interval's level; it is not part of ``as_dict``.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    a_only: int
    b_only: int
    significant: bool
    alpha: float = 0.05

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON types (no numpy scalars), for results files."""
        return {
            "n": int(self.n),
            "mean_a": float(self.mean_a),
            "mean_b": float(self.mean_b),
            "diff": float(self.diff),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "p_value": float(self.p_value),
            "test": self.test,
            "significant": bool(self.significant),
            "a_only": int(self.a_only),
            "b_only": int(self.b_only),
        }


def paired_compare(
    a: Sequence[float], b: Sequence[float], *, n_boot: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> Paired:
    """Compare two models' per-item scores on the same items (``a[i]`` and ``b[i]`` are item i).

    The same ``seed`` gives the same interval and p-value. ``n_boot`` is also the number of
    random sign patterns when the permutation test falls back to Monte Carlo.
    """
    x, y = _as_vector(a, "a"), _as_vector(b, "b")
    if x.size == 0 or y.size == 0:
        raise ValueError(f"paired_compare needs at least one item, got {x.size} scores in a and {y.size} in b")
    if x.size != y.size:
        raise ValueError(f"a and b must score the same items: a has {x.size} scores, b has {y.size}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    d = x - y
    ci_low, ci_high = _bootstrap_interval(d, int(n_boot), alpha, np.random.default_rng(seed))
    binary = _is_binary(x) and _is_binary(y)
    a_only, b_only = int(np.count_nonzero(x > y)), int(np.count_nonzero(y > x))
    if binary:
        test, p = MCNEMAR, mcnemar_exact(a_only, b_only)
    else:
        test, p = PERMUTATION, paired_permutation_p(d, n_perm=int(n_boot), seed=seed)
    mean_a, mean_b = float(x.mean()), float(y.mean())
    return Paired(
        n=int(x.size), mean_a=mean_a, mean_b=mean_b, diff=mean_a - mean_b, ci_low=ci_low, ci_high=ci_high,
        p_value=p, test=test, a_only=a_only, b_only=b_only, significant=bool(p < alpha), alpha=float(alpha),
    )


def _as_vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """A 1-d float array; NaN or infinite scores are refused by index, since they mean a scoring bug."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of per-item scores, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        what = "NaN" if math.isnan(arr[i]) else "infinite"
        raise ValueError(f"{name}[{i}] is {what}: every item needs a finite score")
    return arr


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0.0) | (x == 1.0)))


def _bootstrap_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """mean(d) over ``n_boot`` resamples of the item indices.

    Resamples are drawn a chunk of rows at a time so that at most about a million indices exist
    at once, whatever the number of items.
    """
    n = d.size
    means = np.empty(n_boot, dtype=np.float64)
    rows = max(1, min(n_boot, _CHUNK_ELEMENTS // n))
    for start in range(0, n_boot, rows):
        m = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(m, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)
        means[start : start + m] = d[idx].mean(axis=1)
    return means


def _bootstrap_interval(d: np.ndarray, n_boot: int, alpha: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of mean(d) over ``n_boot`` resamples of the item indices."""
    low, high = np.quantile(_bootstrap_means(d, n_boot, rng), [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


STRATIFIED = "stratified permutation"


def stratified_compare(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]], *, n_boot: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> Paired:
    """Compare two models over several tasks as a leaderboard does: the score is the mean over
    tasks of each task's mean, so every task weighs the same however many items it has.

    ``groups`` holds, per task, the two models' per-item scores on the items both answered.
    The interval resamples items within each task (a stratified paired bootstrap); the p-value
    is a sign-flip permutation test of the same task-weighted mean difference (each item's
    difference weighted by 1 / (tasks x items of its task)). One task is ``paired_compare``.
    """
    cleaned = [(_as_vector(a, f"groups[{g}] a"), _as_vector(b, f"groups[{g}] b")) for g, (a, b) in enumerate(groups)]
    cleaned = [(x, y) for x, y in cleaned if x.size or y.size]
    if not cleaned:
        raise ValueError("stratified_compare needs at least one task with items")
    for g, (x, y) in enumerate(cleaned):
        if x.size != y.size:
            raise ValueError(f"task {g}: a and b must score the same items: a has {x.size} scores, b has {y.size}")
    if len(cleaned) == 1:
        return paired_compare(cleaned[0][0], cleaned[0][1], n_boot=n_boot, seed=seed, alpha=alpha)
    k = len(cleaned)
    rng = np.random.default_rng(seed)
    boot = sum(_bootstrap_means(x - y, int(n_boot), rng) for x, y in cleaned) / k
    ci_low, ci_high = (float(v) for v in np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0]))
    weighted = np.concatenate([(x - y) / (k * x.size) for x, y in cleaned])
    p = paired_permutation_p(weighted, n_perm=int(n_boot), seed=seed)
    mean_a = float(sum(x.mean() for x, _ in cleaned) / k)
    mean_b = float(sum(y.mean() for _, y in cleaned) / k)
    return Paired(
        n=int(sum(x.size for x, _ in cleaned)), mean_a=mean_a, mean_b=mean_b, diff=mean_a - mean_b, ci_low=ci_low, ci_high=ci_high,
        p_value=p, test=STRATIFIED, a_only=int(sum(np.count_nonzero(x > y) for x, y in cleaned)),
        b_only=int(sum(np.count_nonzero(y > x) for x, y in cleaned)), significant=bool(p < alpha), alpha=float(alpha),
    )


# --------------------------------------------------------------------------------------------
# Written summary


@dataclass(frozen=True)
class Scope:
    """One part of the report: ``kind`` is "overall" or "family"; ``scores`` maps model id to its
    mean score there; ``pairs`` holds (model x, model y, paired_compare(x, y)) comparisons."""

    name: str
    kind: str
    scores: Mapping[str, float]
    pairs: Sequence[tuple[str, str, Paired]]


def summarise(scopes: Sequence[Scope], *, percent: bool = True) -> list[str]:
    """One paragraph (one or two sentences) per scope, overall scopes first, otherwise in the given
    order. Every number comes from the scopes, so the same input always gives the same text."""
    for scope in scopes:
        if scope.kind not in ("overall", "family"):
            raise ValueError(f"scope {scope.name!r}: kind must be 'overall' or 'family', got {scope.kind!r}")
        if not scope.scores:
            raise ValueError(f"scope {scope.name!r} has no model scores")
    ordered = sorted(scopes, key=lambda s: s.kind != "overall")  # stable: keeps the given order otherwise
    return [_summarise_scope(scope, percent) for scope in ordered]


def _summarise_scope(scope: Scope, percent: bool) -> str:
    label = "Overall" if scope.kind == "overall" else f"On {scope.name}"
    models = sorted(scope.scores, key=lambda m: (-scope.scores[m], m))  # best first, ties by name
    if len(models) == 1:
        where = "overall" if scope.kind == "overall" else f"on {scope.name}"
        return f"Only one model: {models[0]} scores {_num(scope.scores[models[0]], percent)} {where}."
    if len(models) == 2:
        return _two_models(label, models[0], models[1], scope, percent)
    return _many_models(label, models, scope, percent)


def _oriented(scope: Scope, x: str, y: str) -> Paired | None:
    """The comparison of x against y (diff = x - y), flipping a stored (y, x) pair if needed."""
    for a, b, p in scope.pairs:
        if (a, b) == (x, y):
            return p
        if (a, b) == (y, x):
            return _flip(p)
    return None


def _two_models(label: str, first: str, second: str, scope: Scope, percent: bool) -> str:
    """Who is ahead on the shared items, by how much, with the interval, p-value and verdict."""
    p = _oriented(scope, first, second)
    if p is None:
        return (f"{label}, {first} scores {_num(scope.scores[first], percent)} and {second} "
                f"{_num(scope.scores[second], percent)}; they were not compared on shared items.")
    if p.diff < 0:
        first, second, p = second, first, _flip(p)
    if p.mean_a == p.mean_b:
        return (f"{label}, {first} and {second} are level at {_num(p.mean_a, percent)} on {p.n} shared items "
                f"({_interval(p, percent)}; {_p_text(p)}): too close to call.")
    verdict = "a significant difference" if p.significant else "too close to call"
    return (f"{label}, {first} is ahead of {second} by {_gap(p.diff, percent)} "
            f"({_num(p.mean_a, percent)} vs {_num(p.mean_b, percent)} on {p.n} shared items; "
            f"{_interval(p, percent)}; {_p_text(p)}): {verdict}.")


def _many_models(label: str, models: list[str], scope: Scope, percent: bool) -> str:
    """Name the leader, group the models it cannot be separated from, list the ones it beats."""
    leader = models[0]
    tied: list[tuple[str, Paired]] = []
    beaten: list[tuple[str, Paired]] = []
    reversed_: list[tuple[str, Paired]] = []  # significantly ahead of the leader on shared items
    missing: list[str] = []
    for other in models[1:]:
        p = _oriented(scope, leader, other)
        if p is None:
            missing.append(other)
        elif not p.significant:
            tied.append((other, p))
        elif p.diff > 0:
            beaten.append((other, p))
        else:
            reversed_.append((other, p))
    sentences = [_top_sentence(label, leader, tied, scope, percent)]
    if beaten:
        details = [f"{other} ({_evidence(p, percent)})" for other, p in beaten]
        sentences.append(f"{leader} is significantly ahead of {_join(details)}.")
    for other, p in reversed_:
        sentences.append(f"But on the items they share, {other} is significantly ahead of {leader} "
                         f"({_evidence(_flip(p), percent)}).")
    if missing:
        verb = "was" if len(missing) == 1 else "were"
        sentences.append(f"{_join(missing)} {verb} not compared with {leader} on shared items.")
    return " ".join(sentences)


def _top_sentence(label: str, leader: str, tied: list[tuple[str, Paired]], scope: Scope, percent: bool) -> str:
    score = _num(scope.scores[leader], percent)
    if not tied:
        return f"{label}, {leader} leads with {score}."
    names = _join([leader] + [other for other, _ in tied])
    noun = "difference is" if len(tied) == 1 else "differences are"
    details = "; ".join(f"{leader} vs {other}: {_evidence(p, percent)}" for other, p in tied)
    return f"{label}, {names} are tied at the top: the {noun} not significant ({details})."


def _flip(p: Paired) -> Paired:
    """The same comparison seen from the other model."""
    return Paired(n=p.n, mean_a=p.mean_b, mean_b=p.mean_a, diff=-p.diff, ci_low=-p.ci_high, ci_high=-p.ci_low,
                  p_value=p.p_value, test=p.test, a_only=p.b_only, b_only=p.a_only, significant=p.significant, alpha=p.alpha)


def _evidence(p: Paired, percent: bool) -> str:
    """One comparison in brief, e.g. "+2.0 points, 95% CI −1.0 to 5.0, p = 0.210, McNemar (exact)"."""
    gap = "level" if p.mean_a == p.mean_b else _gap(p.diff, percent, signed=True)
    return f"{gap}, {_interval(p, percent)}, {_p_text(p)}"


def _interval(p: Paired, percent: bool) -> str:
    level = f"{100.0 * (1.0 - p.alpha):g}%"
    return f"{level} CI {_num(p.ci_low, percent)} to {_num(p.ci_high, percent)}"


def _p_text(p: Paired) -> str:
    value = "p < 0.001" if p.p_value < 0.001 else f"p = {p.p_value:.3f}"
    return f"{value}, {p.test}"


def _gap(diff: float, percent: bool, *, signed: bool = False) -> str:
    """A difference in points (×100, one decimal) or in the metric's units (three decimals);
    a non-zero gap that rounds to zero says "less than" rather than a misleading 0.0."""
    unit = " points" if percent else ""
    step = "0.1" if percent else "0.001"
    text = _num(abs(diff), percent)
    if float(text) == 0.0:
        return f"less than {step}{unit}"
    sign = ("+" if diff > 0 else _MINUS) if signed else ""
    return f"{sign}{text}{unit}"


def _num(value: float, percent: bool) -> str:
    """Scores and bounds: ×100 with one decimal for percent metrics, else three decimals; a true
    minus sign, and no "−0.0"."""
    text = f"{value * 100.0:.1f}" if percent else f"{value:.3f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("-", _MINUS)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
