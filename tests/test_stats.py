"""The decision rule of ``lossatlas compare`` on synthetic per-seed tables.

Reference values: p-values by enumerating the sign patterns with ``itertools`` (independently of
the vectorised code) or counted by hand in the comments; the t interval from
``scipy.stats.ttest_1samp``; Holm's adjustment worked by hand. The false-positive rate is measured
on random A/A tables (every candidate drawn from the same distribution, seed effects shared).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lossatlas.lab.stats import (
    ALPHA,
    decide,
    holm,
    mean_ranks,
    min_p,
    seeds_needed,
    sign_flip_test,
    t_interval,
)

scipy_stats = pytest.importorskip("scipy.stats", reason="reference t intervals")


def brute_force_p(d) -> float:
    """Two-sided sign-flip p by itertools over all 2^K patterns (the reference)."""
    observed = abs(sum(d))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        total += 1
        hits += abs(sum(s * v for s, v in zip(signs, d, strict=True))) >= observed - 1e-12
    return hits / total


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("k", [1, 3, 6, 9, 12])
def test_sign_flip_matches_brute_force_enumeration(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        d = rng.normal(0.3, 1.0, size=k).round(3).tolist()
        assert sign_flip_test(d) == pytest.approx(brute_force_p(d))


def test_smallest_p_is_two_over_two_to_the_k():
    # every difference the same sign: only the all-+ and all-- patterns reach |sum|
    for k in range(1, 13):
        assert sign_flip_test([0.7] * k) == pytest.approx(2 / 2**k)
        assert min_p(k) == pytest.approx(min(1.0, 2 / 2**k))
    assert sign_flip_test([1.0, 2.0, 3.0]) == 0.25  # 2 of 8 patterns reach |sum| = 6


def test_zero_differences_carry_no_evidence():
    # flipping a zero changes nothing: the p-value is that of the non-zero differences
    assert sign_flip_test([1.0, 2.0, 0.0, 0.0]) == sign_flip_test([1.0, 2.0]) == 0.5
    assert sign_flip_test([0.0] * 8) == 1.0
    assert sign_flip_test([]) == 1.0
    # nan (a run that did not finish) is left out
    assert sign_flip_test([1.0, 2.0, math.nan]) == sign_flip_test([1.0, 2.0])


def test_monte_carlo_beyond_sixteen_seeds_is_close_to_exact():
    rng = np.random.default_rng(7)
    d = rng.normal(0.25, 1.0, size=18)
    # exact p over all 2^18 patterns, by numpy in chunks here (independent of the Monte Carlo)
    observed = abs(d.sum())
    hits = 0
    bits = np.arange(18)
    for start in range(0, 2**18, 2**14):
        patterns = ((np.arange(start, start + 2**14)[:, None] >> bits) & 1) * 2 - 1
        hits += int(np.count_nonzero(np.abs(patterns @ d) >= observed - 1e-12))
    exact = hits / 2**18
    assert sign_flip_test(d) == pytest.approx(exact, abs=0.01)  # 20 000 draws: sd < 0.004


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03; max(0.03, 2 x 0.03) = 0.06; max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]


def test_t_interval_matches_scipy():
    d = [1.2, 0.4, 2.2, 1.9, 0.1, 1.0, 1.4, 0.8]
    ci = scipy_stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert t_interval(d) == pytest.approx((ci.low, ci.high))
    assert all(math.isnan(v) for v in t_interval([1.0]))


def test_seeds_needed_is_the_fewest_seeds_holm_can_pass():
    for m in range(1, 13):
        k = seeds_needed(m)
        # the best beating m others on every seed: Holm multiplies the smallest p by m
        assert m * sign_flip_test([1.0] * k) <= ALPHA
        assert m * sign_flip_test([1.0] * (k - 1)) > ALPHA


def test_mean_ranks_share_ties():
    ranks = mean_ranks({"a": [3, 3], "b": [1, 3], "c": [2, 1]}, higher_is_better=True)
    # seed 0: a 1st, c 2nd, b 3rd; seed 1: a and b tie for 1st (1.5 each), c 3rd
    assert ranks == pytest.approx({"a": 1.25, "b": 2.25, "c": 2.5})


# --------------------------------------------------------------------------- the verdict


def block_table(rng, means, k, block_sd=5.0, noise_sd=1.0):
    """Per-seed values: a seed effect shared by every candidate plus independent noise."""
    block = rng.normal(0.0, block_sd, size=k)
    return {
        name: (mean + block + rng.normal(0.0, noise_sd, size=k)).tolist()
        for name, mean in means.items()
    }


def test_a_consistent_effect_over_ten_seeds_names_the_winner():
    rng = np.random.default_rng(0)
    # lower is better; mae better than mse by 3 noise sds, under a seed spread 5x the noise:
    # unpaired mean +/- std intervals overlap, the paired differences do not
    table = block_table(rng, {"mse": 53.0, "mae": 50.0}, 10)
    d = decide(table, higher_is_better=False, metric="mae", order=["mse", "mae"])
    assert d.winner == "mae" and d.best == "mae" and d.top_group == ("mae",)
    pair = d.pair("mse")
    assert pair.wins == 10 and pair.losses == 0 and pair.p == pytest.approx(2 / 2**10)
    assert pair.interval[0] > 0 and pair.mean == pytest.approx(
        float(np.mean(np.subtract(table["mse"], table["mae"])))
    )
    assert not d.too_few_seeds and d.behind == ("mse",)
    # the same numbers read as higher-is-better: mse wins
    assert decide(table, higher_is_better=True).winner == "mse"


def test_the_same_loss_under_two_names_never_wins():
    values = [0.81, 0.79, 0.85, 0.80, 0.83, 0.78, 0.82, 0.84, 0.80, 0.86]
    d = decide({"huber": values, "smooth_l1": list(values)}, higher_is_better=True)
    assert d.winner is None and d.pair("smooth_l1").p == 1.0
    assert d.pair("smooth_l1").ties == 10 and d.top_group == ("huber", "smooth_l1")
    assert d.recommendation == "huber"  # the first in the order


def named_winner_rate(n_tables, k, n_candidates, seed):
    rng = np.random.default_rng(seed)
    names = [f"loss{i}" for i in range(n_candidates)]
    winners = 0
    for _ in range(n_tables):
        table = block_table(rng, dict.fromkeys(names, 0.5), k, block_sd=0.05, noise_sd=0.01)
        winners += decide(table, higher_is_better=True).winner is not None
    return winners / n_tables


@pytest.mark.parametrize("k", [6, 8, 10])
def test_the_rule_names_an_a_a_winner_at_most_five_percent_of_the_time_exactly(k):
    # Two candidates of one distribution: under the null every sign pattern of the per-seed
    # differences is equally likely, so running the rule on all 2^K patterns of a set of
    # differences gives its exact false-positive rate. Computed: 2/64 = 3.1 % (K=6), 12/256 =
    # 4.7 % (K=8), 50/1024 = 4.9 % (K=10) -- below 5 % because the p-values are discrete.
    rng = np.random.default_rng(k)
    base = rng.normal(0.8, 0.05, size=k)
    half = np.abs(rng.normal(0.0, 0.01, size=k)) / 2
    winners = 0
    for signs in itertools.product((1.0, -1.0), repeat=k):
        step = half * np.asarray(signs)
        table = {"a": (base + step).tolist(), "b": (base - step).tolist()}
        winners += decide(table, higher_is_better=True).winner is not None
    assert winners / 2**k <= ALPHA


@pytest.mark.parametrize(
    ("k", "n_candidates", "bound"),
    [
        # 2 candidates: the exact rate is 4.7-4.9 % (above); 2000 random tables estimate it
        # within binomial noise, so the bound is 5 % plus 2.33 standard errors (99 % one-sided)
        (10, 2, ALPHA + 2.33 * math.sqrt(ALPHA * (1 - ALPHA) / 2000)),
        (8, 2, ALPHA + 2.33 * math.sqrt(ALPHA * (1 - ALPHA) / 2000)),
        # more candidates: a winner must beat every other one, far rarer than 5 %
        (8, 3, ALPHA),
        (8, 5, ALPHA),
    ],
)
def test_random_a_a_tables_rarely_name_a_winner(k, n_candidates, bound):
    # measured (these seeds): K=10, 2 candidates 5.0 %; K=8: 5.05 %; 3 candidates 0.85 %;
    # 5 candidates 0.1 %
    rate = named_winner_rate(2000, k, n_candidates, seed=100 * k + n_candidates)
    assert rate <= bound, rate


def test_a_tie_of_three_gives_a_top_group_of_three():
    rng = np.random.default_rng(1)
    means = {"ce": 0.80, "focal": 0.80, "poly1": 0.80, "dsc": 0.60}
    table = block_table(rng, means, 10, block_sd=0.05, noise_sd=0.01)
    d = decide(table, higher_is_better=True, order=["ce", "focal", "poly1", "dsc"])
    assert d.winner is None
    assert set(d.top_group) == {"ce", "focal", "poly1"} and d.behind == ("dsc",)
    assert d.recommendation == "ce"  # the most familiar of the group
    assert d.top_group[0] == d.best


def test_holm_makes_a_raw_pass_fail():
    # K = 8, lower is better. b is worse than the best on every seed: p = 2/256 (x3 = 0.023).
    # c's differences [3,3,3,3,3,1,1,-1]: sum 16; |sum| >= 16 only with the five 3s of one sign
    # and at least two of the 1s agreeing: 4 patterns per sign, p = 8/256 = 0.031 <= 0.05 raw,
    # but Holm's second step doubles it to 0.0625 > 0.05. d is far from significant.
    best = np.array([10.0, 12.0, 9.0, 11.0, 10.0, 13.0, 12.0, 11.0])
    table = {
        "best": best.tolist(),
        "b": (best + 5.0).tolist(),
        "c": (best + np.array([3, 3, 3, 3, 3, 1, 1, -1])).tolist(),
        "d": (best + np.array([2, -2, 1, -1, 2, -2, 1, 0.5])).tolist(),
    }
    d = decide(table, higher_is_better=False)
    c = d.pair("c")
    assert c.p == pytest.approx(8 / 256) and c.p <= ALPHA
    assert c.p_holm == pytest.approx(2 * 8 / 256) and c.p_holm > ALPHA
    assert d.pair("b").p_holm == pytest.approx(3 * 2 / 256)
    assert d.behind == ("b",) and set(d.top_group) == {"best", "c", "d"} and d.winner is None


def test_too_few_seeds_says_so_and_names_no_winner():
    # 3 seeds, better on all three: the smallest possible p is 0.25
    d = decide({"a": [0.9, 0.8, 0.85], "b": [0.5, 0.4, 0.45]}, higher_is_better=True)
    assert d.too_few_seeds and d.winner is None and d.seeds_needed == 6
    assert d.pair("b").p == 0.25 and d.top_group == ("a", "b")


def test_unfinished_runs_are_left_out_of_the_pairs():
    nan = math.nan
    table = {"a": [1.0] * 9 + [nan], "b": [0.0] * 10}
    d = decide(table, higher_is_better=True)
    assert d.pair("b").seeds == 9 and d.pair("b").p == pytest.approx(2 / 2**9)
    assert d.winner == "a"
    assert decide({"a": [nan, nan]}, higher_is_better=True).best is None


def test_ties_in_the_mean_go_to_the_more_familiar():
    d = decide({"x": [1.0, 2.0], "y": [2.0, 1.0]}, higher_is_better=True, order=["y", "x"])
    assert d.best == "y" and d.recommendation == "y"
