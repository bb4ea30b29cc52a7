"""How many seeds a comparison needs, and the levels of a sequential (adaptive) seed plan.

Planning: the paired t test's power (statsmodels' TTestPower) for a difference of a given size
against the seed-to-seed spread a pilot measured, at the level Holm's adjustment asks of the
strictest comparison in a family of m (alpha / m).

Sequential: testing after 3 seeds, again after 5, and again after 8, and stopping a claim once
it is decided, is a test repeated up to three times; stopping "when significant" at the full
level at each look inflates its error rate. The plan splits the level over the looks
(`LOOK_SHARES`, a weighted Bonferroni split: the false-verdict rate of the whole plan is at most
the sum of the looks' levels, whatever the dependence between looks). More of it is kept for
the last look, where the power is. bench/verdict_calibration.py measures the plan's error rates
and the seeds it saves against a fixed count."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

from lab.stats.paired import ALPHA

LOOK_SHARES = {1: (1.0,), 2: (0.3, 0.7), 3: (0.2, 0.3, 0.5)}


def look_levels(looks: Sequence[int], alpha: float = ALPHA) -> List[float]:
    """The two-sided level each look of a sequential plan tests at (they sum to `alpha`).

    Example:
        >>> [round(a, 4) for a in look_levels([3, 5, 8])]
        [0.01, 0.015, 0.025]
    """
    shares = LOOK_SHARES.get(len(looks)) or tuple(
        2 * (k + 1) / (len(looks) * (len(looks) + 1)) for k in range(len(looks))
    )
    return [alpha * s for s in shares]


def seeds_needed(
    difference: float,
    spread: float,
    comparisons: int = 1,
    power: float = 0.8,
    alpha: float = ALPHA,
    most: int = 1000,
) -> Optional[int]:
    """The fewest seeds (pairs) at which the paired t test finds `difference` with `power`,
    given the seed-to-seed `spread` (sd of the paired differences), at Holm's strictest level
    alpha / comparisons. None when no number up to `most` does (or nothing was measured).

    Example:
        >>> seeds_needed(0.02, 0.02)  # an effect of one standard deviation
        10
    """
    if not (math.isfinite(difference) and math.isfinite(spread)) or difference == 0:
        return None
    if spread <= 0:
        return 2
    from statsmodels.stats.power import TTestPower

    level = alpha / max(comparisons, 1)
    analysis = TTestPower()
    for n in range(2, most + 1):
        if (
            analysis.power(
                effect_size=abs(difference) / spread, nobs=n, alpha=level, alternative="two-sided"
            )
            >= power
        ):
            return n
    return None
