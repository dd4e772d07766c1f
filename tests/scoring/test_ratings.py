"""Tests for assay.scoring.ratings: pairwise verdicts, Bradley-Terry, length adjustment, kappa, position bias."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.scoring.ratings import (
    ELO_SCALE,
    Verdict,
    binomial_test_half,
    bradley_terry,
    cohen_kappa,
    fleiss_kappa,
    length_adjusted_win_rate,
    position_bias,
    reconcile,
    win_tie_loss,
)

# --------------------------------------------------------------------------------------------
# Verdict


def test_verdict_validates():
    with pytest.raises(ValueError, match="two different models"):
        Verdict("q1", "m", "m", 1.0)
    for bad in (1.5, -0.1, math.nan, "win"):
        with pytest.raises(ValueError, match="outcome"):
            Verdict("q1", "m", "n", bad)  # type: ignore[arg-type]
    v = Verdict("q1", "m", "n", 0.25)
    assert v.oriented("m") == 0.25 and v.oriented("n") == 0.75
    with pytest.raises(ValueError):
        v.oriented("other")


# --------------------------------------------------------------------------------------------
# win_tie_loss


def _hand_built() -> list[Verdict]:
    return [
        Verdict("q1", "A", "B", 1.0),  # A wins
        Verdict("q2", "B", "A", 0.0),  # stored the other way round: A wins
        Verdict("q3", "A", "B", 0.5),  # tie
        Verdict("q4", "B", "A", 1.0),  # B wins
        Verdict("q5", "A", "B", 1.0),  # A wins
        Verdict("q1", "A", "C", 0.0),  # another pair: ignored
        Verdict("q2", "C", "B", 1.0),  # ignored
    ]


def test_win_tie_loss_counts_by_hand():
    r = win_tie_loss(_hand_built(), "A", "B", n_boot=500, seed=3)
    assert (r["n"], r["items"], r["wins"], r["ties"], r["losses"]) == (5, 5, 3, 1, 1)
    assert r["win_share"] == pytest.approx(3 / 5)
    assert r["tie_share"] == pytest.approx(1 / 5)
    assert r["loss_share"] == pytest.approx(1 / 5)
    assert r["win_rate"] == pytest.approx((3 + 0.5) / 5)
    assert 0.0 <= r["low"] <= r["win_rate"] <= r["high"] <= 1.0
    assert r["low"] < r["high"]
    # seen from B: the mirror image, and the same resamples give the mirrored interval
    s = win_tie_loss(_hand_built(), "B", "A", n_boot=500, seed=3)
    assert (s["wins"], s["ties"], s["losses"]) == (1, 1, 3)
    assert s["win_rate"] == pytest.approx(1 - r["win_rate"])
    assert (s["low"], s["high"]) == pytest.approx((1 - r["high"], 1 - r["low"]))


def test_win_tie_loss_empty_and_same_model():
    r = win_tie_loss(_hand_built(), "A", "Z")
    assert (r["n"], r["wins"], r["ties"], r["losses"]) == (0, 0, 0, 0)
    assert math.isnan(r["win_rate"]) and math.isnan(r["low"])
    with pytest.raises(ValueError):
        win_tie_loss(_hand_built(), "A", "A")


def test_win_tie_loss_interval_matches_binomial_width():
    rng = np.random.default_rng(7)
    n = 400
    wins = rng.random(n) < 0.6
    vs = [Verdict(f"q{i}", "A", "B", float(w)) for i, w in enumerate(wins)]
    r = win_tie_loss(vs, "A", "B", n_boot=2000, seed=1)
    p = r["win_rate"]
    normal_half_width = 1.96 * math.sqrt(p * (1 - p) / n)
    assert (r["high"] - r["low"]) / 2 == pytest.approx(normal_half_width, rel=0.15)
    assert r["low"] < p < r["high"]


def test_win_tie_loss_resamples_items_not_records():
    # 40 items, each judged 10 times with the same outcome: only 40 independent observations
    clustered = [Verdict(f"q{i}", "A", "B", float(i % 2 == 0 or i % 5 == 1)) for i in range(40) for _ in range(10)]
    # the same 400 outcomes as 400 separate items
    separate = [Verdict(f"q{k}", "A", "B", v.outcome) for k, v in enumerate(clustered)]
    rc = win_tie_loss(clustered, "A", "B", n_boot=2000, seed=0)
    rs = win_tie_loss(separate, "A", "B", n_boot=2000, seed=0)
    assert rc["win_rate"] == rs["win_rate"]
    assert rc["items"] == 40 and rs["items"] == 400
    # sqrt(10) times wider in theory
    assert (rc["high"] - rc["low"]) / (rs["high"] - rs["low"]) == pytest.approx(math.sqrt(10), rel=0.25)


# --------------------------------------------------------------------------------------------
# Bradley-Terry


def _simulate_bt(true: dict[str, float], n_items: int, seed: int) -> list[Verdict]:
    """Every pair once per item, outcome drawn from the Bradley-Terry model on the Elo scale."""
    rng = np.random.default_rng(seed)
    names = list(true)
    out = []
    for item in range(n_items):
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                a, b = names[x], names[y]
                p_a = 1.0 / (1.0 + 10 ** ((true[b] - true[a]) / 400))
                if rng.random() < 0.5:  # store half of them the other way round
                    out.append(Verdict(f"q{item}", b, a, float(rng.random() >= p_a)))
                else:
                    out.append(Verdict(f"q{item}", a, b, float(rng.random() < p_a)))
    return out


def test_bradley_terry_recovers_planted_strengths():
    true = {"big": 1250.0, "mid": 1100.0, "small": 1000.0, "tiny": 850.0}
    centre = sum(true.values()) / len(true)
    truth = {m: 1000.0 + r - centre for m, r in true.items()}  # the scale's mean is 1000
    res = bradley_terry(_simulate_bt(true, 300, seed=11), n_boot=200, seed=0)
    assert list(res) == ["big", "mid", "small", "tiny"]  # ordered by rank
    assert [res[m]["rank"] for m in true] == [1, 2, 3, 4]
    assert sum(r["strength"] for r in res.values()) / 4 == pytest.approx(1000.0)
    for m, r in res.items():
        assert r["low"] < r["strength"] < r["high"]
        assert r["low"] <= truth[m] <= r["high"], (m, r, truth[m])
        assert abs(r["strength"] - truth[m]) < 40
    # the intervals keep the order (true gaps of 100-150 points): each lies wholly above the next one
    names = list(res)
    for upper, lower in zip(names, names[1:]):
        assert res[upper]["low"] > res[lower]["high"], (upper, lower)


def test_bradley_terry_two_models_closed_form():
    # 3 wins, 2 ties, 1 loss on distinct items: A's score 4 of 6, so p = 2/3 and the odds are 2:1
    outcomes = [1.0, 1.0, 1.0, 0.5, 0.5, 0.0]
    vs = [Verdict(f"q{i}", "A", "B", o) for i, o in enumerate(outcomes)]
    res = bradley_terry(vs, n_boot=0)
    gap = 400 * math.log10(2.0)
    assert res["A"]["strength"] == pytest.approx(1000 + gap / 2, abs=1e-3)
    assert res["B"]["strength"] == pytest.approx(1000 - gap / 2, abs=1e-3)
    assert math.isnan(res["A"]["low"]) and math.isnan(res["A"]["high"])


def _mm_reference(wins: np.ndarray, iters: int = 20000) -> np.ndarray:
    """Hunter's MM updates p_i <- W_i / sum_j N_ij / (p_i + p_j), written independently, no ridge."""
    n_games = wins + wins.T
    p = np.ones(wins.shape[0])
    for _ in range(iters):
        denom = (n_games / (p[:, None] + p[None, :])).sum(axis=1)
        p = wins.sum(axis=1) / denom
        p /= np.exp(np.log(p).mean())
    return np.log(p)


def test_bradley_terry_matches_mm_reference():
    true = {"w": 1150.0, "x": 1050.0, "y": 1000.0, "z": 950.0}
    vs = _simulate_bt(true, 60, seed=5)
    vs += [Verdict("extra", "z", "w", 0.5), Verdict("extra2", "y", "x", 0.5)]  # ties count half each way
    names = sorted(true)
    idx = {m: k for k, m in enumerate(names)}
    wins = np.zeros((4, 4))
    for v in vs:
        wins[idx[v.a], idx[v.b]] += v.outcome
        wins[idx[v.b], idx[v.a]] += 1 - v.outcome
    theta = _mm_reference(wins)
    expected = 1000 + ELO_SCALE * (theta - theta.mean())
    res = bradley_terry(vs, n_boot=0)
    for m in names:
        assert res[m]["strength"] == pytest.approx(expected[idx[m]], abs=0.01)


def test_bradley_terry_symmetric_data_gives_equal_strengths():
    names = ["p", "q", "r"]
    vs = []
    for item in range(20):
        for x in range(3):
            for y in range(x + 1, 3):
                vs.append(Verdict(f"q{item}", names[x], names[y], [1.0, 0.0, 0.5, 0.5][item % 4]))
    res = bradley_terry(vs, n_boot=100, seed=2)
    for r in res.values():
        assert r["strength"] == pytest.approx(1000.0, abs=1e-6)
        assert r["low"] <= 1000.0 <= r["high"]
    assert sorted(r["rank"] for r in res.values()) == [1, 2, 3]
    assert list(res) == ["p", "q", "r"]  # equal strengths: ranked by name


def test_bradley_terry_unbeaten_and_winless_models_stay_finite():
    vs = []
    for item in range(10):
        vs.append(Verdict(f"q{item}", "champ", "mid", 1.0))
        vs.append(Verdict(f"q{item}", "low", "champ", 0.0))
        vs.append(Verdict(f"q{item}", "mid", "low", 1.0 if item % 3 else 0.0))
        vs.append(Verdict(f"q{item}", "mid", "floor", 1.0))
    res = bradley_terry(vs, n_boot=50, seed=0)
    assert list(res) == ["champ", "mid", "low", "floor"]
    for r in res.values():
        assert all(math.isfinite(r[k]) for k in ("strength", "low", "high"))
    assert res["champ"]["strength"] - res["mid"]["strength"] > 400  # far ahead, but a number


def test_bradley_terry_disconnected_raises_naming_groups():
    vs = [Verdict("q1", "A", "B", 1.0), Verdict("q2", "B", "A", 0.5), Verdict("q1", "C", "D", 0.0), Verdict("q3", "E", "D", 1.0)]
    with pytest.raises(ValueError, match=r"\{A, B\} \| \{C, D, E\}"):
        bradley_terry(vs)
    # a listed model with no verdicts is a group of its own
    with pytest.raises(ValueError, match=r"\{Z\}"):
        bradley_terry(vs[:2], models=["A", "B", "Z"])
    # restricting to a connected group fits it
    res = bradley_terry(vs, models=["C", "D", "E"], n_boot=10)
    assert set(res) == {"C", "D", "E"}
    with pytest.raises(ValueError, match="two models"):
        bradley_terry(vs, models=["A"])


@st.composite
def _verdict_sets(draw):
    models = ["m0", "m1", "m2"]
    n_items = draw(st.integers(min_value=2, max_value=8))
    vs, swap = [], []
    for item in range(n_items):
        for a, b in (("m0", "m1"), ("m1", "m2"), ("m0", "m2")):  # every pair on every item: connected
            vs.append(Verdict(f"q{item}", a, b, draw(st.sampled_from([0.0, 0.5, 1.0]))))
            swap.append(draw(st.booleans()))
    return models, vs, swap


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_verdict_sets())
def test_bradley_terry_invariant_to_storing_pairs_swapped(data):
    models, vs, swap = data
    swapped = [Verdict(v.item, v.b, v.a, 1.0 - v.outcome) if s else v for v, s in zip(vs, swap)]
    r1 = bradley_terry(vs, n_boot=20, seed=4)
    r2 = bradley_terry(swapped, n_boot=20, seed=4)
    for m in models:
        for key in ("strength", "low", "high"):
            assert r1[m][key] == pytest.approx(r2[m][key], abs=1e-5)
        assert math.isfinite(r1[m]["strength"])
    assert sum(r["strength"] for r in r1.values()) / 3 == pytest.approx(1000.0)


# --------------------------------------------------------------------------------------------
# Length-adjusted win rate


def _length_verdicts(d: np.ndarray, y: np.ndarray, swap_every: int = 0) -> list[Verdict]:
    out = []
    for k, (di, yi) in enumerate(zip(d, y)):
        la, lb = 500 + int(di), 500
        if swap_every and k % swap_every == 0:
            out.append(Verdict(f"q{k}", "B", "A", 1.0 - float(yi), len_a=lb, len_b=la))
        else:
            out.append(Verdict(f"q{k}", "A", "B", float(yi), len_a=la, len_b=lb))
    return out


def test_length_explains_the_wins():
    # a's answers are usually longer and the judge prefers whichever answer it sees as longer
    adjusted, raws = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        d = np.round(rng.normal(150, 200, size=300))
        y = (d + rng.normal(0, 60, size=300) > 0).astype(float)
        r = length_adjusted_win_rate(_length_verdicts(d, y, swap_every=3), "A", "B")
        assert r["raw_win_rate"] > 0.7
        assert abs(r["adjusted_win_rate"] - 0.5) < 0.15
        assert r["beta1"] > 3
        adjusted.append(r["adjusted_win_rate"])
        raws.append(r["raw_win_rate"])
    assert abs(float(np.median(adjusted)) - 0.5) < 0.05
    shares = [(raw - adj) / (raw - 0.5) for raw, adj in zip(raws, adjusted)]
    assert float(np.median(shares)) > 0.75


def test_a_wins_iff_longer():
    # the outcome is a step in the length difference: the intercept is least determined here
    adjusted = []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        d = np.round(rng.normal(150, 200, size=300))
        y = (d > 0).astype(float)
        r = length_adjusted_win_rate(_length_verdicts(d, y), "A", "B")
        assert r["raw_win_rate"] > 0.7
        assert abs(r["adjusted_win_rate"] - 0.5) < 0.15
        assert r["share_explained"] > 0.4
        adjusted.append(r["adjusted_win_rate"])
    assert abs(float(np.median(adjusted)) - 0.5) < 0.06


def test_length_independent_of_outcome_leaves_win_rate():
    for seed in range(5):
        rng = np.random.default_rng(200 + seed)
        d = np.round(rng.normal(150, 200, size=300))
        y = rng.choice([0.0, 0.5, 1.0], p=[0.2, 0.1, 0.7], size=300)
        r = length_adjusted_win_rate(_length_verdicts(d, y), "A", "B")
        assert r["raw_win_rate"] == pytest.approx(float(y.mean()))
        assert abs(r["adjusted_win_rate"] - r["raw_win_rate"]) < 0.05
        assert abs(r["share_explained"]) < 0.25


def test_length_fit_solves_its_equations():
    # the returned coefficients zero the penalised score equations, recomputed here from the formula
    rng = np.random.default_rng(3)
    d = rng.integers(-200, 400, size=80).astype(float)
    y = np.where(rng.random(80) < 1 / (1 + np.exp(-d / 150)), 1.0, 0.0)
    y[::7] = 0.5
    r = length_adjusted_win_rate(_length_verdicts(d, y, swap_every=2), "A", "B")
    s = float(np.std(d))
    assert r["scale"] == pytest.approx(s)
    x = np.tanh(d / s)
    p = 1 / (1 + np.exp(-(r["beta0"] + r["beta1"] * x)))
    assert float(np.sum(y - p)) - 1e-6 * r["beta0"] == pytest.approx(0.0, abs=1e-7)
    assert float(np.sum(x * (y - p))) - 0.1 * r["beta1"] == pytest.approx(0.0, abs=1e-7)
    assert r["adjusted_win_rate"] == pytest.approx(1 / (1 + math.exp(-r["beta0"])))
    assert r["share_explained"] == pytest.approx((r["raw_win_rate"] - r["adjusted_win_rate"]) / (r["raw_win_rate"] - 0.5))
    # stored the other way round, the same answer
    assert length_adjusted_win_rate(_length_verdicts(d, y), "A", "B") == pytest.approx(r)
    flipped = length_adjusted_win_rate(_length_verdicts(d, y), "B", "A")
    assert flipped["adjusted_win_rate"] == pytest.approx(1 - r["adjusted_win_rate"], abs=1e-6)


def test_length_edge_cases():
    ties = [Verdict(f"q{k}", "A", "B", 0.5, len_a=10 + k, len_b=10) for k in range(6)]
    r = length_adjusted_win_rate(ties, "A", "B")
    assert r["adjusted_win_rate"] == pytest.approx(0.5) and math.isnan(r["share_explained"])
    same_length = [Verdict(f"q{k}", "A", "B", float(k % 3 != 0), len_a=10, len_b=10) for k in range(6)]
    r = length_adjusted_win_rate(same_length, "A", "B")
    assert r["scale"] == 1.0
    assert r["adjusted_win_rate"] == pytest.approx(4 / 6, abs=1e-4)
    sweep = [Verdict(f"q{k}", "A", "B", 1.0, len_a=10 + k, len_b=12) for k in range(6)]
    assert math.isfinite(length_adjusted_win_rate(sweep, "A", "B")["beta0"])
    with pytest.raises(ValueError, match="len_a and len_b"):
        length_adjusted_win_rate([*same_length, Verdict("q9", "B", "A", 1.0)], "A", "B")
    with pytest.raises(ValueError, match="no verdicts"):
        length_adjusted_win_rate(same_length, "A", "C")


# --------------------------------------------------------------------------------------------
# Kappa


def test_cohen_kappa_textbook():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    p_o = (20 + 15) / 50
    p_e = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    assert cohen_kappa(a, b) == pytest.approx((p_o - p_e) / (1 - p_e))
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_special_values():
    assert cohen_kappa([1, 2, 3, 1], [1, 2, 3, 1]) == 1.0
    assert cohen_kappa(["x", "x", "y", "y"], ["x", "y", "x", "y"]) == 0.0  # chance agreement
    assert cohen_kappa(["x", "y"], ["y", "x"]) == -1.0
    assert cohen_kappa(["x"] * 5, ["x"] * 5) == 1.0  # expected agreement 1, observed 1
    # any hashable labels: p_o = 1/2, p_e = (1 * 1) / 4 (only ("t", 1) is used by both), kappa = (1/2 - 1/4) / (3/4)
    assert cohen_kappa([("t", 1), None], [("t", 1), 0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError):
        cohen_kappa([], [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abcd")), min_size=1, max_size=30))
def test_cohen_kappa_symmetric_and_bounded(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    k = cohen_kappa(a, b)
    assert k == pytest.approx(cohen_kappa(b, a))
    assert -1.0 - 1e-12 <= k <= 1.0 + 1e-12
    assert cohen_kappa(a, a) == 1.0


def test_fleiss_kappa_textbook():
    # Fleiss' example as tabulated on Wikipedia: 10 items, 14 raters, 5 categories; P = 0.378, P_e = 0.213, kappa = 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    ratings = [[k for k, c in enumerate(row) for _ in range(c)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_two_raters_is_scotts_pi():
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    p_o = 35 / 50
    pooled_yes = (25 + 30) / 100
    p_e = pooled_yes**2 + (1 - pooled_yes) ** 2
    assert fleiss_kappa(list(zip(a, b))) == pytest.approx((p_o - p_e) / (1 - p_e))
    assert fleiss_kappa([["x", "x"], ["x", "x"]]) == 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([["x", "y"], ["x"]])


# --------------------------------------------------------------------------------------------
# Presentation order


def test_reconcile():
    assert reconcile(1.0, 1.0) == 1.0
    assert reconcile(0.0, 0.0) == 0.0
    assert reconcile(0.5, 0.5) == 0.5
    assert reconcile(1.0, 0.0) == 0.5  # each order preferred a different answer
    assert reconcile(0.0, 1.0) == 0.5
    assert reconcile(1.0, 0.5) == 0.5
    assert reconcile(None, 1.0) is None
    assert reconcile(0.0, None) is None


def _scipy_style_two_sided(k: int, n: int) -> Fraction:
    """Sum of the Bin(n, 1/2) probabilities no larger than P[X = k] (scipy.stats.binomtest's definition)."""
    pmf = [Fraction(math.comb(n, i), 2**n) for i in range(n + 1)]
    return min(Fraction(1), sum((q for q in pmf if q <= pmf[k]), Fraction(0)))


def test_binomial_test_half_exact():
    for n in range(0, 41):
        for k in range(n + 1):
            assert binomial_test_half(k, n) == pytest.approx(float(_scipy_style_two_sided(k, n)), rel=1e-9), (k, n)
    assert binomial_test_half(1, 10) == pytest.approx(22 / 1024)
    # large n: exact big-integer tail
    n, k = 3000, 1420
    exact = Fraction(2 * sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    assert binomial_test_half(k, n) == pytest.approx(float(exact), rel=1e-9)
    assert 0.0 <= binomial_test_half(0, 5000) < 1e-300  # below the smallest double: 0, no error
    with pytest.raises(ValueError):
        binomial_test_half(5, 3)


def test_position_bias_flags_a_first_position_judge():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(200):
        truth = rng.choice([0.0, 0.5, 1.0])
        # with A first the judge says A; with B first it says B (from A's side: 0) -- unless the answers tie
        pairs.append((1.0, 0.0) if truth != 0.5 or rng.random() < 0.8 else (0.5, 0.5))
    pairs += [(None, 1.0), (1.0, None)]
    r = position_bias(pairs)
    assert r["n"] == 202 and r["unparsed"] == 2 and r["parsed"] == 200
    assert r["first_won"] == r["order_decided"] > 150 and r["second_won"] == 0
    assert r["first_position_share"] == 1.0
    assert r["order_decided_share"] == r["order_decided"] / 200
    assert r["p_value"] < 1e-30
    assert r["flagged"] is True
    assert reconcile(*pairs[0]) == 0.5


def test_position_bias_unbiased_judges_not_flagged():
    rng = np.random.default_rng(1)
    consistent = [(t, t) for t in rng.choice([0.0, 0.5, 1.0], size=300)]
    r = position_bias(consistent)
    assert r["consistent"] == 300 and r["order_decided"] == 0
    assert r["p_value"] == 1.0 and r["flagged"] is False
    assert math.isnan(r["first_position_share"])
    # a noisy judge whose mistakes do not depend on the order: many order flips, no lean
    noisy = []
    for _ in range(400):
        truth = float(rng.random() < 0.5)
        noisy.append(tuple(truth if rng.random() < 0.7 else 1.0 - truth for _ in range(2)))
    r = position_bias(noisy)
    assert r["order_decided_share"] > 0.3
    assert r["first_won"] + r["second_won"] == r["order_decided"]
    assert r["p_value"] > 0.01 and r["flagged"] is False


def test_position_bias_needs_a_large_share_too():
    # 60 of 1000 pairs decided by the order, all for the first position: significant but a small share
    pairs = [(1.0, 0.0)] * 60 + [(1.0, 1.0)] * 940
    r = position_bias(pairs)
    assert r["p_value"] < 1e-10
    assert r["order_decided_share"] == pytest.approx(0.06)
    assert r["flagged"] is False
    r = position_bias(pairs[:60] + pairs[60:240])  # the same 60 among 240: a quarter
    assert r["flagged"] is True
    assert position_bias([])["flagged"] is False
    assert position_bias([(1.0, 0.5), (0.5, 0.0)])["other"] == 2
