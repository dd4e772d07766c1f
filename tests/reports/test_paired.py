"""Paired statistics and the written summary: exact McNemar against hand and big-integer sums,
the sign-flip test against brute-force enumeration, the bootstrap interval's behaviour, and the
sentences the summary writes."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.reports import paired
from assay.reports.paired import Paired, Scope, mcnemar_exact, paired_compare, paired_permutation_p, summarise

MINUS = "\u2212"


def _exact_mcnemar(b: int, c: int) -> float:
    """Independent reference: the binomial tail as a Fraction, doubled and capped at 1."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def _brute_force_p(d: list[float]) -> float:
    """Every sign pattern over all entries (zeros included), summed with fsum."""
    observed = abs(math.fsum(d))
    tol = 1e-9 * math.fsum(abs(x) for x in d)
    hits = total = 0
    for signs in itertools.product((1.0, -1.0), repeat=len(d)):
        total += 1
        hits += abs(math.fsum(s * x for s, x in zip(signs, d))) >= observed - tol
    return hits / total


def _binary(n: int, rate: float) -> list[float]:
    """n scores with the first round(rate * n) right: two calls share their right items."""
    right = round(rate * n)
    return [1.0] * right + [0.0] * (n - right)


# ---------------------------------------------------------------------------------------------
# mcnemar_exact


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 5, 2 * (1 / 32)),
        (1, 9, 2 * (1 + 10) / 1024),
        (2, 8, 2 * (1 + 10 + 45) / 1024),
        (0, 0, 1.0),
        (3, 3, 1.0),  # the tail past the middle exceeds 1/2: capped
        (0, 1, 1.0),
    ],
)
def test_mcnemar_matches_hand_computed_binomial_sums(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_is_symmetric_and_matches_big_integer_reference() -> None:
    rng = np.random.default_rng(7)
    for b, c in rng.integers(0, 301, size=(60, 2)):
        b, c = int(b), int(c)
        assert mcnemar_exact(b, c) == mcnemar_exact(c, b)
        assert mcnemar_exact(b, c) == pytest.approx(_exact_mcnemar(b, c), rel=1e-12, abs=1e-300)


def test_mcnemar_log_space_branch_matches_reference() -> None:
    # n > 1000 takes the log-space path; compare with exact big-integer sums.
    for b, c in [(480, 560), (520, 600), (700, 701), (400, 700)]:
        assert mcnemar_exact(b, c) == pytest.approx(_exact_mcnemar(b, c), rel=1e-9, abs=1e-300)


def test_mcnemar_large_counts_are_finite_and_inside_the_unit_interval() -> None:
    p = mcnemar_exact(4000, 4200)
    assert math.isfinite(p) and 0.0 < p < 1.0
    assert p == pytest.approx(0.028, abs=0.002)  # normal approximation: 2 * Phi(-199.5 / sqrt(2050))
    assert 0.0 <= mcnemar_exact(0, 5000) < 1e-300  # 2 ** -4999 underflows to zero, never NaN
    assert mcnemar_exact(100_000, 100_000) == 1.0


def test_mcnemar_refuses_negative_or_fractional_counts() -> None:
    with pytest.raises(ValueError, match="a_only"):
        mcnemar_exact(-1, 3)
    with pytest.raises(ValueError, match="b_only"):
        mcnemar_exact(1, 2.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# paired_permutation_p


def test_exact_enumeration_matches_itertools_brute_force() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 8, 11):
        d = rng.normal(0.3, 1.0, size).tolist()
        assert paired_permutation_p(np.array(d)) == pytest.approx(_brute_force_p(d), abs=1e-12)
    # Exact ties between patterns (small integers, zeros dropped) are counted, not lost to rounding.
    for _ in range(5):
        d = rng.integers(-3, 4, size=10).astype(float).tolist()
        assert paired_permutation_p(np.array(d)) == pytest.approx(_brute_force_p(d), abs=1e-12)


def test_permutation_hand_cases() -> None:
    assert paired_permutation_p(np.zeros(20)) == 1.0
    # Four positive differences of 1: only all-plus and all-minus reach |sum| = 4 -> 2/16.
    assert paired_permutation_p(np.array([1.0, 1.0, 1.0, 1.0, 0.0])) == pytest.approx(2 / 16)


def test_monte_carlo_is_close_to_exact_for_18_differences() -> None:
    rng = np.random.default_rng(11)
    d = rng.normal(0.15, 1.0, 18)
    bits = (np.arange(1 << 18)[:, None] >> np.arange(18)) & 1
    sums = np.abs((1 - 2 * bits).astype(float) @ d)
    exact = float(np.mean(sums >= abs(d.sum()) - 1e-9))
    assert 0.02 < exact < 0.98  # a case where Monte Carlo error actually shows
    mc = paired_permutation_p(d, n_perm=10_000, seed=5)
    assert mc == pytest.approx(exact, abs=0.02)
    assert mc == paired_permutation_p(d, n_perm=10_000, seed=5)  # reproducible
    hits_plus_one = paired_permutation_p(d, n_perm=99, seed=1) * 100  # (count + 1) / (n_perm + 1)
    assert hits_plus_one == pytest.approx(round(hits_plus_one)) and hits_plus_one >= 1


# ---------------------------------------------------------------------------------------------
# paired_compare


def test_diff_is_the_difference_of_means() -> None:
    a, b = _binary(37, 0.6), _binary(37, 0.3)
    r = paired_compare(a, b, n_boot=500)
    assert r.n == 37
    assert r.mean_a == sum(a) / 37 and r.mean_b == sum(b) / 37
    assert r.diff == sum(a) / 37 - sum(b) / 37
    rng = np.random.default_rng(0)
    x, y = rng.random(50), rng.random(50)
    r = paired_compare(x.tolist(), y.tolist(), n_boot=500)
    assert r.diff == pytest.approx(math.fsum(x) / 50 - math.fsum(y) / 50, rel=1e-12)


def test_interval_contains_diff_and_narrows_with_more_items() -> None:
    small = paired_compare(_binary(100, 0.7), _binary(100, 0.6), n_boot=2000)
    rng = np.random.default_rng(4)
    perm = rng.permutation(10_000)  # same 10-point effect, items shuffled so discordance is realistic
    big_a = np.array(_binary(10_000, 0.7))[perm]
    big_b = (rng.random(10_000) < 0.6).astype(float)
    big = paired_compare(big_a, big_b, n_boot=2000)
    for r in (small, big):
        assert r.ci_low <= r.diff <= r.ci_high
    assert (big.ci_high - big.ci_low) < (small.ci_high - small.ci_low) / 4  # ~1/sqrt(100) in theory


def test_identical_inputs_give_no_difference() -> None:
    a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    r = paired_compare(a, list(a), n_boot=300)
    assert (r.diff, r.p_value, r.significant, r.ci_low, r.ci_high) == (0.0, 1.0, False, 0.0, 0.0)
    f = [0.2, 0.9, 0.5]
    r = paired_compare(f, f, n_boot=300)
    assert (r.diff, r.p_value, r.significant, r.test) == (0.0, 1.0, False, "paired permutation")


def test_strong_effect_is_significant() -> None:
    a, b = _binary(400, 0.9), _binary(400, 0.5)
    r = paired_compare(a, b, n_boot=2000)
    assert r.test == "McNemar (exact)"
    assert (r.a_only, r.b_only) == (160, 0)
    assert r.p_value < 1e-6 and r.significant
    assert r.ci_low > 0.3 and r.ci_high < 0.5


def test_binary_uses_mcnemar_and_fractional_uses_permutation() -> None:
    r = paired_compare([1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 0], n_boot=200)
    assert r.test == "McNemar (exact)" and (r.a_only, r.b_only) == (3, 1)
    assert r.p_value == pytest.approx(mcnemar_exact(3, 1))
    r = paired_compare([1, 0.5, 1, 1, 0, 1], [0, 0, 1, 0, 1, 0], n_boot=200)
    assert r.test == "paired permutation" and (r.a_only, r.b_only) == (4, 1)
    assert r.p_value == pytest.approx(paired_permutation_p(np.array([1, 0.5, 0, 1, -1, 1.0])))


def test_same_seed_same_result_and_other_seed_other_interval() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.random(300).tolist(), rng.random(300).tolist()
    assert paired_compare(a, b, n_boot=1000, seed=3) == paired_compare(a, b, n_boot=1000, seed=3)
    assert paired_compare(a, b, n_boot=1000, seed=3).ci_low != paired_compare(a, b, n_boot=1000, seed=4).ci_low


def test_single_item_collapses_the_interval() -> None:
    r = paired_compare([0.75], [0.25], n_boot=100)
    assert (r.n, r.diff, r.ci_low, r.ci_high) == (1, 0.5, 0.5, 0.5)
    assert r.p_value == 1.0  # one sign flip of two reaches |0.5|


def test_chunking_handles_many_items() -> None:
    # 50,000 items x 200 resamples = 10 million indices, drawn in chunks; the interval is sane.
    a, b = _binary(50_000, 0.55), _binary(50_000, 0.5)
    r = paired_compare(a, b, n_boot=200)
    assert r.ci_low < r.diff < r.ci_high and r.ci_high - r.ci_low < 0.01


def test_as_dict_has_the_agreed_keys_and_is_json() -> None:
    r = paired_compare(np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]), n_boot=100)
    d = r.as_dict()
    assert set(d) == {"n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "test", "significant", "a_only", "b_only"}
    assert json.loads(json.dumps(d)) == d
    assert type(d["significant"]) is bool and type(d["n"]) is int and type(d["ci_low"]) is float


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([], [], "at least one item"),
        ([1.0, 0.0], [1.0], "a has 2 scores, b has 1"),
        ([1.0, math.nan, 0.0], [1.0, 1.0, 1.0], r"a\[1\] is NaN"),
        ([1.0, 1.0], [0.0, math.nan], r"b\[1\] is NaN"),
        ([1.0, 1.0], [math.inf, 0.0], r"b\[0\] is infinite"),
        ([[1.0], [0.0]], [[1.0], [1.0]], "flat sequence"),
        (["x"], [1.0], "a must be a sequence of numbers"),
    ],
)
def test_bad_inputs_raise_one_line_errors(a: list, b: list, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        paired_compare(a, b, n_boot=10)
    assert "\n" not in str(info.value)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="n_boot"):
        paired_compare([1.0], [0.0], n_boot=0)
    with pytest.raises(ValueError, match="alpha"):
        paired_compare([1.0], [0.0], alpha=1.5)


scores = st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_swapping_models_negates_diff_and_interval_and_keeps_p(data: st.DataObject) -> None:
    a = data.draw(scores)
    b = data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=len(a), max_size=len(a)))
    ab, ba = paired_compare(a, b, n_boot=300, seed=1), paired_compare(b, a, n_boot=300, seed=1)
    assert ba.diff == -ab.diff
    assert ba.ci_low == pytest.approx(-ab.ci_high, abs=1e-12)
    assert ba.ci_high == pytest.approx(-ab.ci_low, abs=1e-12)
    assert ba.p_value == ab.p_value and ba.test == ab.test
    assert (ba.a_only, ba.b_only) == (ab.b_only, ab.a_only)


# ---------------------------------------------------------------------------------------------
# summarise


def _pair(mean_a: float, mean_b: float, lo: float, hi: float, p: float, *, test: str = "McNemar (exact)", n: int = 200) -> Paired:
    return Paired(n=n, mean_a=mean_a, mean_b=mean_b, diff=mean_a - mean_b, ci_low=lo, ci_high=hi, p_value=p, test=test,
                  a_only=10, b_only=5, significant=p < 0.05)


def test_two_models_significant() -> None:
    scope = Scope("all", "overall", {"qwen": 0.50, "gemma3-270m": 0.62}, [("qwen", "gemma3-270m", _pair(0.50, 0.62, -0.19, -0.05, 0.0004))])
    assert summarise([scope]) == [
        "Overall, gemma3-270m is ahead of qwen by 12.0 points (62.0 vs 50.0 on 200 shared items; "
        "95% CI 5.0 to 19.0; p < 0.001, McNemar (exact)): a significant difference."
    ]


def test_two_models_not_significant_uses_minus_sign() -> None:
    scope = Scope("Reasoning", "family", {"a": 0.56, "b": 0.54}, [("a", "b", _pair(0.56, 0.54, -0.012, 0.052, 0.2134, test="paired permutation"))])
    [text] = summarise([scope])
    assert text == (f"On Reasoning, a is ahead of b by 2.0 points (56.0 vs 54.0 on 200 shared items; "
                    f"95% CI {MINUS}1.2 to 5.2; p = 0.213, paired permutation): too close to call.")
    assert "-" not in text.replace("gemma3-270m", "")


def test_two_models_level() -> None:
    scope = Scope("QA", "family", {"a": 0.5, "b": 0.5}, [("a", "b", _pair(0.5, 0.5, -0.03, 0.03, 1.0))])
    [text] = summarise([scope])
    assert text.startswith("On QA, a and b are level at 50.0 on 200 shared items")
    assert f"95% CI {MINUS}3.0 to 3.0" in text and text.endswith("p = 1.000, McNemar (exact)): too close to call.")


def test_three_models_with_a_tie_at_the_top() -> None:
    scope = Scope(
        "all", "overall", {"gemma3-270m": 0.56, "qwen": 0.54, "llama": 0.40},
        [
            ("gemma3-270m", "qwen", _pair(0.56, 0.54, -0.01, 0.05, 0.21)),
            ("llama", "gemma3-270m", _pair(0.40, 0.56, -0.22, -0.10, 0.00001)),
            ("qwen", "llama", _pair(0.54, 0.40, 0.08, 0.20, 0.0001)),
        ],
    )
    [text] = summarise([scope])
    assert text.startswith("Overall, gemma3-270m and qwen are tied at the top: the difference is not significant ")
    assert f"gemma3-270m vs qwen: +2.0 points, 95% CI {MINUS}1.0 to 5.0, p = 0.210, McNemar (exact)" in text
    assert "gemma3-270m is significantly ahead of llama (+16.0 points, 95% CI 10.0 to 22.0, p < 0.001, McNemar (exact))." in text
    assert "qwen is significantly" not in text  # only the leader's comparisons are described


def test_three_models_clear_leader() -> None:
    scope = Scope("Code", "family", {"x": 0.3, "y": 0.2, "z": 0.1},
                  [("x", "y", _pair(0.3, 0.2, 0.05, 0.15, 0.001)), ("x", "z", _pair(0.3, 0.1, 0.15, 0.25, 0.0001))])
    [text] = summarise([scope])
    assert text.startswith("On Code, x leads with 30.0. x is significantly ahead of y (+10.0 points")
    assert "p = 0.001" in text and " and z (+20.0 points" in text


def test_one_model() -> None:
    out = summarise([Scope("Natural language inference", "family", {"X": 0.56}, []), Scope("all", "overall", {"X": 0.5604}, [])])
    assert out == ["Only one model: X scores 56.0 overall.", "Only one model: X scores 56.0 on Natural language inference."]


def test_non_percent_metric_uses_three_decimals() -> None:
    scope = Scope("Captioning", "family", {"a": 0.8123, "b": 0.9001},
                  [("a", "b", _pair(0.8123, 0.9001, -0.1412, -0.0345, 0.004, test="paired permutation"))])
    [text] = summarise([scope], percent=False)
    assert text == ("On Captioning, b is ahead of a by 0.088 (0.900 vs 0.812 on 200 shared items; "
                    "95% CI 0.035 to 0.141; p = 0.004, paired permutation): a significant difference.")


def test_summary_is_deterministic_and_rejects_unknown_kinds() -> None:
    scope = Scope("all", "overall", {"b": 0.5, "a": 0.5, "c": 0.5},
                  [("a", "b", _pair(0.5, 0.5, -0.1, 0.1, 1.0)), ("a", "c", _pair(0.5, 0.5, -0.1, 0.1, 1.0))])
    first = summarise([scope])
    assert first == summarise([scope])
    assert first[0].startswith("Overall, a, b and c are tied at the top: the differences are not significant (a vs b: level")
    with pytest.raises(ValueError, match="kind"):
        summarise([Scope("x", "task", {"a": 0.1}, [])])


# --------------------------------------------------------------------------------------------
# stratified_compare: several tasks, each weighing the same


def test_stratified_weighs_tasks_equally_not_items():
    # task 1: 1,000 items, the models tie; task 2: 10 items, a gets all, b none
    big = ([1.0, 0.0] * 500, [1.0, 0.0] * 500)
    small = ([1.0] * 10, [0.0] * 10)
    p = paired.stratified_compare([big, small], n_boot=2000, seed=1)
    assert p.diff == pytest.approx(0.5) and p.mean_a == pytest.approx(0.75) and p.mean_b == pytest.approx(0.25)
    pooled = paired.paired_compare(big[0] + small[0], big[1] + small[1], n_boot=2000, seed=1)
    assert pooled.diff == pytest.approx(10 / 1010)
    assert p.test == paired.STRATIFIED and p.n == 1010 and (p.a_only, p.b_only) == (10, 0)
    # only the small task varies under resampling: the interval is that task's (a point at 0.5)
    assert p.ci_low == pytest.approx(0.5) and p.ci_high == pytest.approx(0.5)
    # the sign-flip test on 10 non-zero weighted differences is exact: 2 of 1,024 patterns
    assert p.p_value == pytest.approx(2 / 1024)


def test_stratified_p_value_matches_brute_force_weighted_enumeration():
    rng = np.random.default_rng(5)
    groups = [(rng.random(4).round(2), rng.random(4).round(2)), (rng.random(7).round(2), rng.random(7).round(2))]
    w = np.concatenate([(np.asarray(a) - np.asarray(b)) / (2 * len(a)) for a, b in groups])
    obs = abs(w.sum())
    hits = sum(abs(np.dot(signs, w)) >= obs - 1e-12 for signs in itertools.product((-1, 1), repeat=w.size))
    p = paired.stratified_compare(groups, seed=0)
    assert p.p_value == pytest.approx(hits / 2**w.size)
    assert p.diff == pytest.approx(np.mean([np.mean(a) - np.mean(b) for a, b in groups]))


def test_stratified_one_task_is_the_paired_test_and_bad_input_is_named():
    a, b = [1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 1]
    assert paired.stratified_compare([(a, b)], seed=3) == paired.paired_compare(a, b, seed=3)
    with pytest.raises(ValueError, match="task 1: a and b must score the same items"):
        paired.stratified_compare([(a, b), ([1.0], [1.0, 0.0])])
    with pytest.raises(ValueError, match="at least one task"):
        paired.stratified_compare([])
