r"""The decision rule of ``lossatlas compare``: paired, exact, corrected for multiple tests.

**Design.** Every seed is one *block*: under a seed all candidates get the same data split, the
same initial weights and the same batch order (checked by :mod:`lossatlas.lab.compare`). What
differs between two candidates under one seed is the loss alone, so the candidates are compared
**per seed**: for each metric, the *paired difference* :math:`d_s = \pm(m_{best,s} -
m_{other,s})` between the candidate with the best mean and each other one, signed so that
:math:`d_s > 0` means the best did better under seed :math:`s`. The split-to-split variation that
all candidates share cancels in :math:`d_s`; it is what made unpaired ``mean ± std`` intervals
overlap whatever the effect.

**Test: the exact sign-flip permutation test** (Fisher's randomisation test for paired data) of
the mean difference, two-sided. If the two losses were exchangeable, each :math:`d_s` would be as
likely to have the opposite sign, so the p-value is the share of the :math:`2^K` sign patterns
whose :math:`|\sum_s \pm d_s|` reaches the observed one. It is exact for any distribution of the
differences (no normality), uses their sizes (a Wilcoxon signed-rank test uses only their ranks
and needs a convention for zeros and tied ranks), and it tests the same mean difference that the
report prints. All :math:`2^K` patterns are enumerated for :math:`K \le 16`; beyond, 20 000
random patterns from a fixed generator give :math:`p = (1 + \#\{\ge\}) / (1 + 20000)` (a valid
Monte Carlo p-value).

**Ties.** A zero difference (both losses scored exactly the same under a seed) is kept: flipping
its sign changes nothing, so it carries no evidence either way and the test is the exact test on
the non-zero differences. Win counts report ties separately ("better on 7/8 seeds, 1 tie"). If
every difference is zero, p = 1. Sums equal up to rounding (relative ``1e-9``) count as reaching
the observed one, which can only make p larger.

**Smallest p.** With :math:`K` non-zero differences the smallest two-sided p is
:math:`2 / 2^K` (all signs agree): 0.25 for 3 seeds, 0.0625 for 5, 0.031 for 6, 0.0078 for 8.
So no verdict is possible below 6 seeds, and more are needed with Holm's correction
(:func:`seeds_needed`).

**Multiple comparisons: Holm.** The best is compared with each of the :math:`m` others; Holm's
step-down correction keeps the chance of *any* false "significantly worse" at or below
:math:`\alpha = 0.05`: sort the raw p-values, multiply the :math:`i`-th smallest by
:math:`m - i + 1`, make the sequence non-decreasing, cap at 1. A candidate is **significantly
worse** than the best when its Holm-adjusted p is at most :math:`\alpha`.

**Interval.** The mean paired difference with a 95 % Student-t interval,
:math:`\bar d \pm t_{0.975, K-1}\, s_d / \sqrt K` (a percentile bootstrap over 8 seeds is too
narrow: it cannot see beyond the 8 values it resamples).

**Verdict.** The **top group** is the best and every candidate not significantly worse than it;
**clearly behind** are the others. A **winner** is named only when the top group is the best
alone (it is significantly better than every other candidate). Otherwise the verdict is "any of
the top group; start with X", X being the **recommendation**: the first member of the top group
in the task's order of familiarity (each task lists its candidates from the most familiar loss
to the least). When the seeds are too few for the test to ever reach :math:`\alpha`, the verdict
says so and how many seeds would be needed, and names no winner.

The false-positive rate of this rule is measured on random A/A tables in ``tests/test_stats.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Union

import numpy as np

from lossatlas._optional import require

#: Per-seed values: a sequence of floats or a 1-d array.
Values = Union[Sequence[float], "np.ndarray[tuple[int], np.dtype[np.float64]]"]

__all__ = [
    "ALPHA",
    "TEST_NAME",
    "MetricDecision",
    "Pair",
    "decide",
    "holm",
    "mean_ranks",
    "min_p",
    "seeds_needed",
    "sign_flip_test",
    "t_interval",
]

#: The significance level of every verdict.
ALPHA = 0.05
#: Up to this many seeds the sign-flip test enumerates every pattern.
EXACT_MAX = 16
#: Random sign patterns beyond :data:`EXACT_MAX`.
MONTE_CARLO_DRAWS = 20_000
#: How the report names the test.
TEST_NAME = "exact sign-flip permutation test of the mean paired difference, two-sided, Holm"


def sign_flip_test(differences: Values) -> float:
    r"""Two-sided p-value of the paired sign-flip permutation test of ``mean(differences) = 0``.

    Exact (every one of the :math:`2^K` sign patterns) for :math:`K \le 16`; Monte Carlo with
    20 000 patterns from a fixed generator beyond. Zeros are kept (their sign does not matter).

    Args:
        differences: The paired differences, one per block (seed).

    Returns:
        The p-value in ``(0, 1]``; 1 for no differences or all zero.

    Example:
        >>> from lossatlas.lab.stats import sign_flip_test
        >>> sign_flip_test([1.0, 2.0, 3.0])      # 2 of the 8 patterns reach |sum| = 6
        0.25
        >>> sign_flip_test([0.5] * 8)           # the smallest p with 8 seeds: 2 / 256
        0.0078125
        >>> sign_flip_test([0.0, 0.0, 0.0])
        1.0
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d):
        return 1.0
    observed = abs(float(d.sum()))
    slack = 1e-9 * float(np.abs(d).sum())
    if d.size <= EXACT_MAX:
        patterns = (np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1
        sums = np.abs((1 - 2 * patterns) @ d)
        return float(np.count_nonzero(sums >= observed - slack) / len(sums))
    rng = np.random.default_rng(0)
    signs = rng.choice((-1.0, 1.0), size=(MONTE_CARLO_DRAWS, d.size))
    count = int(np.count_nonzero(np.abs(signs @ d) >= observed - slack))
    return (1 + count) / (1 + MONTE_CARLO_DRAWS)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given).

    Example:
        >>> from lossatlas.lab.stats import holm
        >>> holm([0.01, 0.04, 0.03])    # 3 x 0.01, then max(0.03, 2 x 0.03), then max(.., 0.04)
        [0.03, 0.06, 0.06]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def t_interval(differences: Values, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``differences`` (``(nan, nan)`` below two values).

    Example:
        >>> from lossatlas.lab.stats import t_interval
        >>> [round(v, 3) for v in t_interval([1.0, 2.0, 3.0])]   # 2 -/+ t(0.975, 2) / sqrt(3)
        [-0.484, 4.484]
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return (math.nan, math.nan)
    t = require("scipy.stats", "lab", purpose="compare's intervals").t.ppf(
        0.5 + level / 2, d.size - 1
    )
    half = float(t * d.std(ddof=1) / math.sqrt(d.size))
    return (float(d.mean()) - half, float(d.mean()) + half)


def min_p(seeds: int) -> float:
    """The smallest two-sided p the exact sign-flip test can give with ``seeds`` blocks."""
    return min(1.0, 2.0 / 2**seeds) if seeds > 0 else 1.0


def seeds_needed(comparisons: int, alpha: float = ALPHA) -> int:
    """The fewest seeds with which the best can be significantly better than ``comparisons``.

    Holm multiplies the smallest p by the number of comparisons, so it needs
    ``comparisons * 2 / 2**K <= alpha``: 6 seeds for one comparison, 7 for 2-3, 8 for 4-6,
    9 for 7-12.

    Example:
        >>> from lossatlas.lab.stats import seeds_needed
        >>> [seeds_needed(m) for m in (1, 2, 3, 4, 6, 7)]
        [6, 7, 7, 8, 8, 9]
    """
    return max(1, math.ceil(math.log2(2 * max(1, comparisons) / alpha)))


@dataclass(frozen=True)
class Pair:
    """The best candidate against one other on one metric, over the seeds both finished.

    Attributes:
        other: The other candidate.
        differences: ``d_s`` per common seed, positive where the best did better.
        mean: The mean of ``differences``.
        interval: Its 95 % t interval.
        p: The sign-flip test's two-sided p-value.
        p_holm: ``p`` after Holm's correction over the comparisons with the best.
        wins: Seeds where the best did better.
        ties: Seeds where they scored the same.
        losses: Seeds where the other did better.
    """

    other: str
    differences: tuple[float, ...]
    mean: float
    interval: tuple[float, float]
    p: float
    p_holm: float
    wins: int
    ties: int
    losses: int

    @property
    def seeds(self) -> int:
        """Number of paired seeds."""
        return len(self.differences)


@dataclass(frozen=True)
class MetricDecision:
    """The verdict on one metric.

    Attributes:
        metric: The metric's key.
        higher_is_better: Its direction.
        means: Candidate -> mean over its finished seeds.
        ranks: Candidate -> mean rank over the seeds (1 = best).
        best: The candidate with the best mean (``None`` without finished runs).
        pairs: The best against each other candidate.
        top_group: The best and those not significantly worse (best first, then by mean).
        behind: Those significantly worse than the best.
        winner: The best, when it is significantly better than every other candidate.
        recommendation: The first of the top group in the order of familiarity.
        seeds: Seeds with a value for every candidate.
        seeds_needed: Seeds the test needs to be able to name a winner.
        too_few_seeds: Whether ``seeds < seeds_needed`` (no verdict possible).
        alpha: The significance level.
        test: The test used.
    """

    metric: str
    higher_is_better: bool
    means: dict[str, float]
    ranks: dict[str, float]
    best: str | None
    pairs: tuple[Pair, ...] = ()
    top_group: tuple[str, ...] = ()
    behind: tuple[str, ...] = ()
    winner: str | None = None
    recommendation: str | None = None
    seeds: int = 0
    seeds_needed: int = 1
    too_few_seeds: bool = False
    alpha: float = ALPHA
    test: str = TEST_NAME
    notes: tuple[str, ...] = field(default=())

    def pair(self, other: str) -> Pair:
        """The comparison of the best with ``other``."""
        return next(p for p in self.pairs if p.other == other)


def mean_ranks(table: Mapping[str, Values], higher_is_better: bool) -> dict[str, float]:
    """Each candidate's rank averaged over the seeds where every candidate has a value.

    Rank 1 is the best; tied values share the mean of their ranks. ``nan`` without such seeds.
    """
    keys = list(table)
    values = np.asarray([table[k] for k in keys], dtype=np.float64)
    complete = np.all(np.isfinite(values), axis=0)
    if not complete.any():
        return {k: math.nan for k in keys}
    scores = values[:, complete] * (-1.0 if higher_is_better else 1.0)
    ranks = np.zeros_like(scores)
    for s in range(scores.shape[1]):
        column = scores[:, s]
        for i, v in enumerate(column):
            below = np.count_nonzero(column < v)
            equal = np.count_nonzero(column == v)
            ranks[i, s] = below + (equal + 1) / 2
    return {k: float(ranks[i].mean()) for i, k in enumerate(keys)}


def decide(
    table: Mapping[str, Values],
    *,
    higher_is_better: bool,
    metric: str = "metric",
    order: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> MetricDecision:
    """The verdict on one metric from its per-seed table (see the module's docstring).

    Args:
        table: Candidate -> the metric under each seed, all in the same seed order (``nan``
            for a run that did not finish).
        higher_is_better: The metric's direction.
        metric: Its key, for the result.
        order: The candidates from the most familiar to the least (default: the table's
            order); it breaks ties of the mean and picks the recommendation.
        alpha: The significance level.

    Returns:
        The :class:`MetricDecision`.

    Example:
        >>> from lossatlas.lab.stats import decide
        >>> table = {"mse": [70, 72, 69, 75, 71, 73, 70, 74],
        ...          "mae": [50, 51, 49, 52, 50, 53, 48, 51]}
        >>> d = decide(table, higher_is_better=False, metric="mae")
        >>> d.winner, d.pair("mse").wins, d.pair("mse").p
        ('mae', 8, 0.0078125)
        >>> decide({"a": [1, 2, 3], "b": [0, 1, 2]}, higher_is_better=True).too_few_seeds
        True
    """
    order = list(order) if order is not None else list(table)
    keys = [k for k in order if k in table] + [k for k in table if k not in order]
    rank_of = {k: i for i, k in enumerate(keys)}
    arrays = {k: np.asarray(table[k], dtype=np.float64) for k in keys}
    means = {
        k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in arrays.items()
    }
    ranks = mean_ranks({k: arrays[k] for k in keys}, higher_is_better)
    finished = [k for k in keys if not math.isnan(means[k])]
    sign = 1.0 if higher_is_better else -1.0
    decision = partial(MetricDecision, metric, higher_is_better, means, ranks)
    if not finished:
        return decision(None)
    by_mean = sorted(finished, key=lambda k: (-sign * means[k], rank_of[k]))
    best = by_mean[0]
    complete = np.all([np.isfinite(arrays[k]) for k in finished], axis=0)
    n_complete = int(np.count_nonzero(complete))
    m = len(finished) - 1
    needed = seeds_needed(m, alpha)
    if m == 0:  # one candidate: nothing to compare it with
        return decision(
            best,
            top_group=(best,),
            recommendation=best,
            seeds=n_complete,
            seeds_needed=needed,
            alpha=alpha,
        )
    raw: list[tuple[str, np.ndarray, float]] = []
    for other in by_mean[1:]:
        both = np.isfinite(arrays[best]) & np.isfinite(arrays[other])
        d = sign * (arrays[best][both] - arrays[other][both])
        raw.append((other, d, sign_flip_test(d)))
    adjusted = holm([p for _, _, p in raw])
    pairs = tuple(
        Pair(
            other=other,
            differences=tuple(float(v) for v in d),
            mean=float(d.mean()) if d.size else math.nan,
            interval=t_interval(d),
            p=p,
            p_holm=p_adj,
            wins=int(np.count_nonzero(d > 0)),
            ties=int(np.count_nonzero(d == 0)),
            losses=int(np.count_nonzero(d < 0)),
        )
        for (other, d, p), p_adj in zip(raw, adjusted, strict=True)
    )
    behind = tuple(p.other for p in pairs if p.p_holm <= alpha and p.mean > 0)
    top = (best, *(p.other for p in pairs if p.other not in behind))
    winner = best if len(top) == 1 else None
    recommendation = min(top, key=lambda k: rank_of[k])
    too_few = min(p.seeds for p in pairs) < needed
    return decision(
        best, pairs, top, behind, winner, recommendation, n_complete, needed, too_few, alpha
    )
