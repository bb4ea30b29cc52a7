"""Paired differences (candidate - baseline, one per seed) summarised for a verdict.

The decision statistic is the paired Student t: it assumes the seed-to-seed differences are
roughly normal, which with 2-8 seeds nothing can check. Beside it, what does not assume it: the
exact sign-flip permutation p (distribution-free, but with n seeds it cannot go below 2 / 2^n,
so 5 seeds can never reach 0.05), the share of seeds on which the candidate wins, and an effect
size. `bench/verdict_calibration.py` measures how often verdicts built on these are wrong.

Two degenerate cases are handled here, not left to the t formula:
- a spread below what the metric can resolve (identical differences, common when errors sit at
  0): a measured error on N examples moves in steps of 1/N, so seeds that differ by less than
  one step look identical. The spread used is never below one step (the resolution): a
  difference of one image on every seed is then no evidence until 7 seeds, whatever sign
  pattern chance gave (bench/verdict_calibration.py's "one image either way" scenario). Without
  a resolution (a loss) and with no spread, nothing is tested.
- a test-set term: where the finite test set's sampling variance of the mean difference is
  known (`lab.stats.testset`), it is added to the seeds' own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from scipy import stats

ALPHA = 0.05  # two-sided level of every interval and test: 95%
EXACT_LIMIT = 16  # up to 2^16 sign patterns are enumerated; beyond, a seeded Monte Carlo sample


@dataclass(frozen=True)
class Paired:
    """A comparison's paired differences. Intervals and p-values are NaN where they cannot be
    computed (fewer than 2 pairs; no spread and no resolution to floor it)."""

    n: int
    mean: float
    sd: float  # sample standard deviation of the differences (n - 1)
    se: float  # standard error of the mean used: floored spread, plus the test-set term
    low: float  # 95% Student t interval on n - 1 degrees of freedom
    high: float
    p: float  # two-sided t test against 0
    p_exact: float  # two-sided exact sign-flip permutation test against 0
    above: int  # differences > 0
    below: int  # differences < 0
    effect: float  # standardised mean difference d_z = mean / spread used
    floored: bool  # the spread was below the metric's resolution and was raised to it
    test_se: float  # the test set's part of `se` (0 where not counted)
    values: Tuple[float, ...] = ()  # the differences themselves

    @property
    def df(self) -> int:
        return self.n - 1

    @property
    def ties(self) -> int:
        return self.n - self.above - self.below

    @property
    def p_exact_min(self) -> float:
        """The smallest two-sided p the exact test can reach with n pairs."""
        return min(1.0, 2.0 / 2**self.n) if self.n else 1.0

    @property
    def testable(self) -> bool:
        return math.isfinite(self.se) and self.se > 0 and self.n >= 2


def summarise(
    diffs: Sequence[float], resolution: float = 0.0, test_variance: float = 0.0
) -> Paired:
    """Summarises paired differences; non-finite ones are dropped.

    Args:
        diffs: the differences, candidate - baseline, one per pair.
        resolution: the metric's step (1 / examples for an error; 0 for a loss): the spread used
            is never below it.
        test_variance: the test set's sampling variance of the mean difference, added to the
            seeds' (0: not counted).

    Returns:
        The `Paired` summary; its interval, t p-value and effect size are NaN with fewer than 2
        pairs or with no spread and no resolution.

    Example:
        >>> s = summarise([0.1, 0.2, 0.3])
        >>> round(s.mean, 3), round(s.low, 4), round(s.high, 4), round(s.p, 4), s.p_exact
        (0.2, -0.0484, 0.4484, 0.0742, 0.25)
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    spread = max(sd, resolution) if n >= 2 else math.nan
    se = math.sqrt(spread**2 / n + test_variance) if n >= 2 else math.nan
    low, high, p, effect = t_test(mean, se, spread, n)
    return Paired(
        n=n,
        mean=mean,
        sd=sd,
        se=se,
        low=low,
        high=high,
        p=p,
        p_exact=sign_flip_p(d) if n else math.nan,
        above=int((d > 0).sum()),
        below=int((d < 0).sum()),
        effect=effect,
        floored=n >= 2 and sd < resolution,
        test_se=math.sqrt(test_variance),
        values=tuple(d),
    )


def t_test(mean: float, se: float, spread: float, n: int) -> Tuple[float, float, float, float]:
    """(low, high, p, effect): the 95% Student t interval of the mean on n - 1 degrees of
    freedom, the two-sided t p-value against 0 and the standardised mean difference; all NaN
    where there is nothing to test (fewer than 2 pairs, or no standard error)."""
    if not (n >= 2 and se > 0):
        return math.nan, math.nan, math.nan, math.nan
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return mean - half, mean + half, p, mean / spread if spread > 0 else math.nan


def exact_beyond(s: Paired, bound: float, side: str) -> float:
    """`p_beyond`'s question answered by the exact sign-flip test on the differences less `bound`."""
    if not s.n:
        return math.nan
    return sign_flip_p(np.asarray(s.values) - bound, "less" if side == "below" else "greater")


def p_beyond(s: Paired, bound: float, side: str) -> float:
    """One-sided t p-value that the true mean difference lies beyond `bound`: `side` "below"
    tests H1: mean < bound, "above" tests H1: mean > bound (NaN where nothing can be tested)."""
    if not s.testable:
        return math.nan
    t = (s.mean - bound) / s.se
    return float(stats.t.cdf(t, s.df) if side == "below" else stats.t.sf(t, s.df))


@functools.lru_cache(maxsize=None)
def sign_patterns(n: int) -> np.ndarray:
    """Every vector of n signs (2^n rows), or a fixed random sample of 2^16 of them beyond 16."""
    if n <= EXACT_LIMIT:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    else:
        bits = np.random.default_rng(0).integers(0, 2, size=(2**EXACT_LIMIT, n))
    return 1.0 - 2.0 * bits


def sign_flip_p(x: Sequence[float], alternative: str = "two-sided") -> float:
    """The sign-flip permutation p-value of the mean of paired differences `x` against 0: under
    the null each difference is as likely positive as negative. Exact (every sign pattern) up
    to 16 pairs. `alternative`: "two-sided", "less" (H1: mean < 0) or "greater".
    Written out rather than scipy.stats.permutation_test, which gives the same p
    (tests/test_stats.py) at about 100 times the cost the calibration benchmark cannot afford.

    Example:
        >>> sign_flip_p([0.1, 0.2, 0.3, 0.4, 0.5])  # the smallest 5 pairs allow: 2 / 32
        0.0625
    """
    values = np.asarray(x, dtype=float)
    if not len(values):
        return math.nan
    observed = values.sum()
    sums = sign_patterns(len(values)) @ values
    tolerance = 1e-12 * max(1.0, float(np.abs(values).sum()))
    if alternative == "two-sided":
        hits = np.abs(sums) >= abs(observed) - tolerance
    elif alternative == "less":
        hits = sums <= observed + tolerance
    else:
        hits = sums >= observed - tolerance
    if len(values) <= EXACT_LIMIT:
        return float(hits.mean())
    return float((hits.sum() + 1) / (len(hits) + 1))
