"""Statistics for pairwise verdicts between models: win rates, Bradley-Terry ratings, length
adjustment, rater agreement and a judge's position bias.

Everything here is a pure function of its arguments (plus a seed where there is resampling); the
only dependency is numpy. scipy is deliberately not used (it is not one of assay's dependencies):
the two fits are small Newton iterations written out below, and the binomial test is exact.

A :class:`Verdict` is one judged comparison of model ``a``'s answer with model ``b``'s on one
item, already reconciled over both presentation orders (see :func:`reconcile`): ``outcome`` is 1.0
when ``a`` is better, 0.5 for a tie and 0.0 when ``b`` is better (values in between are accepted
and count fractionally). Every interval is a percentile bootstrap over *items*: all the records of
an item are drawn together (a cluster bootstrap), because verdicts on the same prompt are not
independent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Verdict",
    "win_tie_loss",
    "bradley_terry",
    "length_adjusted_win_rate",
    "cohen_kappa",
    "fleiss_kappa",
    "reconcile",
    "position_bias",
    "binomial_test_half",
    "ELO_BASE",
    "ELO_SCALE",
    "BT_RIDGE",
    "LENGTH_RIDGE",
]

ELO_BASE = 1000.0  # the mean rating
ELO_SCALE = 400.0 / math.log(10.0)  # rating = ELO_BASE + 400 * log10(strength), strength = e**theta
BT_RIDGE = 1e-6  # penalty (BT_RIDGE / 2) * sum(theta**2): keeps unbeaten / winless models finite
LENGTH_RIDGE = 0.1  # penalty (LENGTH_RIDGE / 2) * beta1**2 in the length regression: a N(0, 10) prior on beta1
_INTERCEPT_RIDGE = 1e-6  # (and a tiny one on beta0, so that a clean sweep stays finite)
_BLOCK_ENTRIES = 2_000_000  # bootstrap weight matrices are drawn in blocks of at most this many entries


@dataclass(frozen=True)
class Verdict:
    """One comparison of ``a``'s answer with ``b``'s on ``item``: 1.0 = a wins, 0.5 = tie, 0.0 = b wins.

    ``len_a`` / ``len_b`` are the answers' lengths (any consistent unit: characters, tokens), needed
    only by :func:`length_adjusted_win_rate`.
    """

    item: str
    a: str
    b: str
    outcome: float
    len_a: int | None = None
    len_b: int | None = None

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise ValueError(f"a verdict compares two different models, got {self.a!r} twice (item {self.item!r})")
        try:
            value = float(self.outcome)
        except (TypeError, ValueError):
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"outcome must be a number in [0, 1] (1 = a wins), got {self.outcome!r} (item {self.item!r})")

    def oriented(self, model: str) -> float:
        """The outcome from ``model``'s side (which must be ``a`` or ``b``)."""
        if model == self.a:
            return float(self.outcome)
        if model == self.b:
            return 1.0 - float(self.outcome)
        raise ValueError(f"{model!r} is not in the verdict {self.a!r} vs {self.b!r}")


# --------------------------------------------------------------------------------------------
# Cluster bootstrap weights


def _item_codes(items: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each record's item as an index 0..k-1 (first-seen order) and the number k of items."""
    codes: dict[str, int] = {}
    out = np.fromiter((codes.setdefault(it, len(codes)) for it in items), dtype=np.int64, count=len(items))
    return out, len(codes)


def _boot_item_weights(n_items: int, n_boot: int, seed: int) -> Iterable[np.ndarray]:
    """Blocks of rows; each row says how many times each item is drawn in one resample.

    Drawing ``n_items`` items with replacement is a multinomial with equal probabilities, so one
    resample's weights come from one multinomial draw; the rows over all blocks number ``n_boot``.
    """
    if n_items == 0 or n_boot <= 0:
        return
    rng = np.random.default_rng(seed)
    probs = np.full(n_items, 1.0 / n_items)
    block = max(1, _BLOCK_ENTRIES // n_items)
    done = 0
    while done < n_boot:
        k = min(block, n_boot - done)
        yield rng.multinomial(n_items, probs, size=k)
        done += k


def _percentiles(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# Win / tie / loss


def _pair_records(verdicts: Iterable[Verdict], a: str, b: str) -> list[tuple[Verdict, float]]:
    """The verdicts between ``a`` and ``b`` with the outcome from ``a``'s side."""
    if a == b:
        raise ValueError(f"compare two different models, got {a!r} twice")
    return [(v, v.oriented(a)) for v in verdicts if {v.a, v.b} == {a, b}]


def win_tie_loss(verdicts: Iterable[Verdict], a: str, b: str, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Wins, ties and losses of ``a`` against ``b`` and ``a``'s win rate with a 95% interval.

    Records stored as ``b`` vs ``a`` are flipped to ``a``'s side. An outcome above 0.5 is a win,
    exactly 0.5 a tie, below 0.5 a loss. ``win_rate`` is the mean outcome, i.e. for the usual
    outcomes ``(wins + ties / 2) / n``; ``low`` / ``high`` are the 2.5th / 97.5th percentiles of the
    win rate over ``n_boot`` resamples of the items (all records of an item together). With no
    records the counts are 0 and the rates ``nan``.

    Keys: ``a``, ``b``, ``n``, ``items``, ``wins``, ``ties``, ``losses``, ``win_share``,
    ``tie_share``, ``loss_share``, ``win_rate``, ``low``, ``high``.
    """
    records = _pair_records(verdicts, a, b)
    outcomes = np.array([o for _, o in records], dtype=float)
    codes, n_items = _item_codes([v.item for v, _ in records])
    n = int(outcomes.size)
    wins, ties = int(np.sum(outcomes > 0.5)), int(np.sum(outcomes == 0.5))
    losses = n - wins - ties
    out: dict[str, Any] = {"a": a, "b": b, "n": n, "items": n_items, "wins": wins, "ties": ties, "losses": losses}
    if n == 0:
        nan = math.nan
        out.update(win_share=nan, tie_share=nan, loss_share=nan, win_rate=nan, low=nan, high=nan)
        return out
    sums = np.bincount(codes, weights=outcomes, minlength=n_items)  # per item: outcome total and count
    counts = np.bincount(codes, minlength=n_items).astype(float)
    rates = [(w @ sums) / (w @ counts) for w in _boot_item_weights(n_items, n_boot, seed)]
    low, high = _percentiles(np.concatenate(rates)) if rates else (math.nan, math.nan)
    out.update(win_share=wins / n, tie_share=ties / n, loss_share=losses / n, win_rate=float(outcomes.mean()), low=low, high=high)
    return out


# --------------------------------------------------------------------------------------------
# Bradley-Terry


def _components(m: int, edges: np.ndarray) -> list[list[int]]:
    """Connected components of the graph on 0..m-1 whose adjacency (m x m, > 0 = edge) is ``edges``."""
    seen = [False] * m
    comps: list[list[int]] = []
    for start in range(m):
        if seen[start]:
            continue
        seen[start] = True
        stack, comp = [start], []
        while stack:
            u = stack.pop()
            comp.append(u)
            for v in np.flatnonzero(edges[u]):
                if not seen[v]:
                    seen[v] = True
                    stack.append(int(v))
        comps.append(sorted(comp))
    return comps


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(z))


def _bt_fit(wins: np.ndarray, theta0: np.ndarray, ridge: float = BT_RIDGE, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """Maximise the ridge-penalised Bradley-Terry log-likelihood in the log-strengths ``theta``.

    ``wins[i, j]`` is how much ``i`` beat ``j`` (a tie gives each side 1/2). The objective

        f(theta) = sum_ij wins[i, j] * log sigmoid(theta_i - theta_j) - (ridge / 2) * |theta|^2

    is strictly concave, so Newton's method with a backtracking line search converges to its unique
    maximum. Its gradient is ``W_i - sum_j N_ij sigmoid(theta_i - theta_j) - ridge * theta_i`` with
    ``W_i`` the row sums of ``wins`` and ``N = wins + wins.T``; summed over the models the likelihood
    part cancels, so at the maximum ``sum(theta) = 0``: the ridge also fixes the scale's origin.
    """
    n_games = wins + wins.T
    m = wins.shape[0]
    total_wins = wins.sum(axis=1)

    def objective(th: np.ndarray) -> float:
        return float(np.sum(wins * _log_sigmoid(th[:, None] - th[None, :])) - 0.5 * ridge * th @ th)

    theta = theta0.astype(float).copy()
    f = objective(theta)
    for _ in range(max_iter):
        p = _sigmoid(theta[:, None] - theta[None, :])
        grad = total_wins - np.sum(n_games * p, axis=1) - ridge * theta
        c = n_games * p * (1.0 - p)
        neg_hess = np.diag(c.sum(axis=1)) - c + ridge * np.eye(m)  # a weighted graph Laplacian + ridge
        step = np.linalg.solve(neg_hess, grad)
        t = 1.0
        while True:
            candidate = theta + t * step
            f_new = objective(candidate)
            if f_new >= f - 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        theta, f = candidate, f_new
        if np.max(np.abs(t * step)) < tol:
            break
    return theta


def _win_matrix(m: int, i: np.ndarray, j: np.ndarray, o: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``wins[x, y]``: weighted outcome mass of x over y (records i vs j with i's outcome o, weight w)."""
    flat = np.bincount(i * m + j, weights=w * o, minlength=m * m) + np.bincount(j * m + i, weights=w * (1.0 - o), minlength=m * m)
    return flat.reshape(m, m)


def _to_rating(theta: np.ndarray) -> np.ndarray:
    return ELO_BASE + ELO_SCALE * (theta - theta.mean())


def bradley_terry(
    verdicts: Iterable[Verdict], models: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Bradley-Terry ratings of any number of models from their pairwise verdicts.

    Model ``i`` has strength ``exp(theta_i)`` and beats ``j`` with probability
    ``sigmoid(theta_i - theta_j)``. A verdict's outcome counts as that much of a win for ``a`` and
    ``1 - outcome`` for ``b`` (a tie is half a win each way). ``theta`` maximises the log-likelihood
    less a ridge ``(1e-6 / 2) * sum(theta**2)`` (Newton's method), which keeps a model that won or lost
    every comparison finite. Reported on an Elo-like scale::

        rating_i = 1000 + 400 * log10(exp(theta_i - mean(theta)))

    so 400 points are 10:1 odds, and the ratings average 1000. ``low`` / ``high`` are the 2.5th /
    97.5th percentiles of each rating over ``n_boot`` resamples of the items (all the records of an
    item together); a resample whose comparisons no longer connect all the models is skipped.
    ``rank`` is 1 for the strongest (by the point estimate; ties broken by name).

    ``models`` restricts the fit to those models (verdicts involving others are dropped); by default
    every model that appears. The comparisons must connect all the models: otherwise ratings in
    different groups are not comparable and a ValueError names the groups.

    Returns ``{model: {"strength", "low", "high", "rank"}}`` ordered by rank.
    """
    verdicts = list(verdicts)
    names = sorted({v.a for v in verdicts} | {v.b for v in verdicts}) if models is None else list(dict.fromkeys(models))
    index = {name: k for k, name in enumerate(names)}
    kept = [v for v in verdicts if v.a in index and v.b in index]
    m = len(names)
    if m < 2:
        raise ValueError(f"Bradley-Terry needs at least two models, got {names}")
    i = np.array([index[v.a] for v in kept], dtype=np.int64)
    j = np.array([index[v.b] for v in kept], dtype=np.int64)
    o = np.array([float(v.outcome) for v in kept], dtype=float)
    codes, n_items = _item_codes([v.item for v in kept])
    wins = _win_matrix(m, i, j, o, np.ones_like(o))
    comps = _components(m, wins + wins.T)
    if len(comps) > 1:
        groups = " | ".join("{" + ", ".join(names[k] for k in comp) + "}" for comp in comps)
        raise ValueError(f"the comparisons do not connect all the models, so their ratings are not comparable; separate groups: {groups}")
    theta = _bt_fit(wins, np.zeros(m))
    rating = _to_rating(theta)

    boot: list[np.ndarray] = []
    for block in _boot_item_weights(n_items, n_boot, seed):
        for item_w in block:
            w = item_w[codes].astype(float)
            bw = _win_matrix(m, i, j, o, w)
            if len(_components(m, bw + bw.T)) > 1:
                continue
            boot.append(_to_rating(_bt_fit(bw, theta)))
    samples = np.array(boot).reshape(-1, m)

    order = sorted(range(m), key=lambda k: (-rating[k], names[k]))
    result: dict[str, dict[str, float]] = {}
    for rank, k in enumerate(order, start=1):
        low, high = _percentiles(samples[:, k])
        result[names[k]] = {"strength": float(rating[k]), "low": low, "high": high, "rank": rank}
    return result


# --------------------------------------------------------------------------------------------
# Length-adjusted win rate


def _logistic_fit(x: np.ndarray, y: np.ndarray, ridge: np.ndarray, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """``beta`` maximising sum(y log p + (1 - y) log(1 - p)) - sum(ridge * beta**2) / 2, p = sigmoid(X beta).

    ``X = [1, x]``; ``y`` may be fractional (a tie is 0.5). Concave, so Newton with backtracking.
    """
    design = np.column_stack([np.ones_like(x), x])

    def objective(beta: np.ndarray) -> float:
        z = design @ beta
        return float(np.sum(y * _log_sigmoid(z) + (1.0 - y) * _log_sigmoid(-z)) - 0.5 * np.sum(ridge * beta**2))

    beta = np.zeros(2)
    f = objective(beta)
    for _ in range(max_iter):
        p = _sigmoid(design @ beta)
        grad = design.T @ (y - p) - ridge * beta
        neg_hess = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(ridge)
        step = np.linalg.solve(neg_hess, grad)
        t = 1.0
        while True:
            candidate = beta + t * step
            f_new = objective(candidate)
            if f_new >= f - 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        beta, f = candidate, f_new
        if np.max(np.abs(t * step)) < tol:
            break
    return beta


def length_adjusted_win_rate(verdicts: Iterable[Verdict], a: str, b: str) -> dict[str, Any]:
    """How much of ``a``'s win rate against ``b`` is explained by answer length.

    Records stored as ``b`` vs ``a`` are flipped to ``a``'s side (outcome ``1 - outcome``, lengths
    swapped). For record ``r`` with outcome ``y_r`` (1 = a wins, 0.5 = tie, 0 = b wins)::

        d_r = len_a_r - len_b_r
        s   = std(d)  (population standard deviation over the records; 1 if it is 0)
        x_r = tanh(d_r / s)                                   (in (-1, 1); 0 at equal length)
        p_r = sigmoid(beta0 + beta1 * x_r)
        (beta0, beta1) = argmax  sum_r [y_r log p_r + (1 - y_r) log(1 - p_r)]
                                 - (0.1 / 2) beta1^2 - (1e-6 / 2) beta0^2

    a logistic regression with fractional targets (the binomial log-likelihood, so a tie counts as
    half a win), fitted by Newton's method. The ridges keep the fit finite when length separates
    the outcomes perfectly or ``a`` wins every time; the one on ``beta1`` is a weak prior (normal,
    variance 10: a full length advantage may still move the log-odds by several units) that also
    steadies ``beta0`` when the outcome is a step in the length difference, where the intercept of an
    unpenalised fit would be arbitrary. Then::

        raw_win_rate      = mean(y)
        adjusted_win_rate = sigmoid(beta0)                     (predicted win rate at equal length)
        share_explained   = (raw_win_rate - adjusted_win_rate) / (raw_win_rate - 0.5)

    ``share_explained`` is the part of ``a``'s distance from an even 0.5 that the length difference
    accounts for: about 1 when ``a`` wins only by being longer, about 0 when length is unrelated to
    the outcome; it is ``nan`` when the raw win rate is 0.5, and can leave [0, 1] (negative when
    equal lengths would favour ``a`` even more). ``beta1 > 0`` means the longer answer tends to win.

    Every record between the two models needs ``len_a`` and ``len_b``, else ValueError; so does
    having no record at all. Keys: ``a``, ``b``, ``n``, ``scale`` (s), ``raw_win_rate``,
    ``adjusted_win_rate``, ``beta0``, ``beta1``, ``share_explained``.
    """
    records = _pair_records(verdicts, a, b)
    if not records:
        raise ValueError(f"no verdicts between {a!r} and {b!r}")
    diffs: list[float] = []  # len(a's answer) - len(b's answer)
    missing: list[str] = []
    for v, _ in records:
        if v.len_a is None or v.len_b is None:
            missing.append(v.item)
        else:
            diffs.append(float(v.len_a - v.len_b) if v.a == a else float(v.len_b - v.len_a))
    if missing:
        raise ValueError(f"the length adjustment needs len_a and len_b on every verdict; {len(missing)} lack them (first: item {missing[0]!r})")
    y = np.array([o for _, o in records], dtype=float)
    d = np.array(diffs, dtype=float)
    s = float(np.std(d))
    if s == 0.0:
        s = 1.0
    x = np.tanh(d / s)
    beta0, beta1 = (float(c) for c in _logistic_fit(x, y, np.array([_INTERCEPT_RIDGE, LENGTH_RIDGE])))
    raw = float(y.mean())
    adjusted = float(_sigmoid(np.array(beta0)))
    share = (raw - adjusted) / (raw - 0.5) if abs(raw - 0.5) > 1e-12 else math.nan
    return {
        "a": a, "b": b, "n": int(y.size), "scale": s,
        "raw_win_rate": raw, "adjusted_win_rate": adjusted, "beta0": beta0, "beta1": beta1, "share_explained": share,
    }


# --------------------------------------------------------------------------------------------
# Agreement between raters


def cohen_kappa(labels_a: Sequence[Hashable], labels_b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters who labelled the same items (any hashable labels).

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of items they label alike and
    ``p_e = sum_k p_a(k) p_b(k)`` the agreement expected from their label frequencies alone. When
    ``p_e = 1`` (both raters always use the same single label) kappa is undefined; it is then 1.0
    if they agree on everything and 0.0 otherwise. Computed in exact integer arithmetic.
    """
    if len(labels_a) != len(labels_b):
        raise ValueError(f"the raters labelled different numbers of items: {len(labels_a)} and {len(labels_b)}")
    n = len(labels_a)
    if n == 0:
        raise ValueError("kappa needs at least one item")
    agree = sum(1 for x, y in zip(labels_a, labels_b) if x == y)
    count_a, count_b = Counter(labels_a), Counter(labels_b)
    chance = sum(c * count_b.get(k, 0) for k, c in count_a.items())  # n^2 * p_e
    if chance == n * n:
        return 1.0 if agree == n else 0.0
    return (n * agree - chance) / (n * n - chance)  # (p_o - p_e) / (1 - p_e), times n^2 / n^2


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa: agreement of several raters, ``ratings[i]`` being the labels item ``i`` got.

    Every item needs the same number ``r >= 2`` of labels (the raters need not be the same people).
    With ``n_ik`` the number of labels ``k`` on item ``i``, ``N`` items::

        P_i  = (sum_k n_ik^2 - r) / (r (r - 1))      (agreeing pairs of labels on item i)
        P    = mean_i P_i
        p_k  = sum_i n_ik / (N r),   P_e = sum_k p_k^2
        kappa = (P - P_e) / (1 - P_e)

    with the same convention as :func:`cohen_kappa` when ``P_e = 1``.
    """
    if not ratings:
        raise ValueError("kappa needs at least one item")
    r = len(ratings[0])
    if r < 2 or any(len(row) != r for row in ratings):
        raise ValueError("every item needs the same number (at least 2) of labels")
    n_items = len(ratings)
    totals: Counter[Hashable] = Counter()
    pairs = 0  # sum_i (sum_k n_ik^2 - r)
    for row in ratings:
        counts = Counter(row)
        totals.update(counts)
        pairs += sum(c * c for c in counts.values()) - r
    p_bar = pairs / (n_items * r * (r - 1))
    p_e = sum(c * c for c in totals.values()) / (n_items * r) ** 2
    if math.isclose(p_e, 1.0):
        return 1.0 if math.isclose(p_bar, 1.0) else 0.0
    return (p_bar - p_e) / (1.0 - p_e)


# --------------------------------------------------------------------------------------------
# Presentation order


def reconcile(first: float | None, second_swapped: float | None) -> float | None:
    """One verdict from the judge's two presentation orders.

    ``first`` is the outcome with A shown first (1 = A better, 0.5 = tie, 0 = B better);
    ``second_swapped`` the outcome with B shown first, already mapped back to A's side. The same
    outcome in both orders is kept; any disagreement (including a win against a tie) becomes a tie,
    0.5, since the order and not the answers decided it. ``None`` (an unparseable judgement) in
    either order gives ``None``.
    """
    if first is None or second_swapped is None:
        return None
    return float(first) if float(first) == float(second_swapped) else 0.5


def binomial_test_half(k: int, n: int) -> float:
    """Two-sided exact binomial test of ``k`` successes in ``n`` trials against probability 1/2.

    The outcomes at least as unlikely as ``k`` are those at least as far from ``n / 2``, so
    ``p = min(1, 2 * P[X <= min(k, n - k)])`` for ``X ~ Bin(n, 1/2)`` (the same value as
    ``scipy.stats.binomtest(k, n).pvalue``). The tail is a log-sum-exp of
    ``log C(n, i) - n log 2``, exact to rounding for any ``n``.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    low = min(k, n - k)
    t = np.arange(1, low + 1, dtype=float)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(n - t + 1.0) - np.log(t))])  # log C(n, i), i = 0..low
    peak = float(log_comb.max())
    log_tail = peak + math.log(float(np.sum(np.exp(log_comb - peak)))) - n * math.log(2.0)
    return min(1.0, 2.0 * math.exp(log_tail))


def position_bias(pairs: Sequence[tuple[float | None, float | None]], alpha: float = 0.01, min_share: float = 0.2) -> dict[str, Any]:
    """Whether a judge prefers an answer for where it is shown rather than for what it says.

    Each pair is ``(outcome with A shown first, outcome with B shown first)``, both from A's side
    (1 = A better). A pair with ``None`` in either order is counted as ``unparsed`` and left out.
    Among the rest:

    - ``consistent``: the same outcome in both orders;
    - ``first_won``: the first-shown answer won both times (A with A first, B with B first: 1 then 0);
    - ``second_won``: the second-shown answer won both times (0 then 1);
    - ``other``: the remaining disagreements (a win in one order, a tie in the other);
    - ``order_decided = first_won + second_won``, ``order_decided_share`` its share of the parsed
      pairs, and ``first_position_share = first_won / order_decided`` (nan when 0);
    - ``p_value``: two-sided exact binomial test of ``first_won`` out of ``order_decided`` against
      1/2 (an unbiased judge's order flips favour either position equally).

    ``flagged`` is ``p_value < alpha and order_decided_share >= min_share`` (0.01 and 0.2 by
    default): a significant lean that also decides a fifth of the verdicts.
    """
    parsed = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    n_valid = len(parsed)
    consistent = sum(1 for x, y in parsed if x == y)
    first_won = sum(1 for x, y in parsed if x == 1.0 and y == 0.0)
    second_won = sum(1 for x, y in parsed if x == 0.0 and y == 1.0)
    decided = first_won + second_won
    share = decided / n_valid if n_valid else math.nan
    p_value = binomial_test_half(first_won, decided)
    return {
        "n": len(pairs),
        "unparsed": len(pairs) - n_valid,
        "parsed": n_valid,
        "consistent": consistent,
        "first_won": first_won,
        "second_won": second_won,
        "other": n_valid - consistent - decided,
        "order_decided": decided,
        "order_decided_share": share,
        "first_position_share": first_won / decided if decided else math.nan,
        "p_value": p_value,
        "flagged": bool(n_valid > 0 and p_value < alpha and share >= min_share),
    }
