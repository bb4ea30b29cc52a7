"""What each claim is tested against, all at 5% after Holm (`lab.verdicts.ablation` adjusts
and decides):
- `better` / `worse` (and a comparison without a claim): the two-sided paired t test against 0.
- `not_worse`: non-inferiority, the one-sided t test that the candidate is worse by less than
  the margin (doubled, so that p < 0.05 exactly when the 95% interval's worse end is inside the
  margin). Contradicted only when the interval's better end is past the margin.
- `same`: equivalence, two one-sided tests against -margin and +margin (TOST, the larger p,
  doubled); contradicted when the whole interval lies outside the margin.
Which way a metric points, and which side's left-out runs would flatter a claim, are here too."""

from __future__ import annotations

import math
from typing import List, Optional

from lab.config import ComparisonConfig, Expectation, Metric
from lab.stats.paired import Paired, exact_beyond, p_beyond


def lower_is_better(metric: Metric, direction: str) -> bool:
    return direction == "min" if metric is Metric.objective else True


def claim_p(
    d: Paired, comparison: ComparisonConfig, lower_better: bool, exact: bool = False
) -> float:
    """The p-value that enters Holm's family for this comparison (see the module docstring);
    with `exact`, the same question put to the sign-flip permutation test instead of the t test."""
    expect, margin = comparison.expect, comparison.margin
    beyond = exact_beyond if exact else p_beyond
    if expect is Expectation.not_worse:
        one_sided = beyond(d, margin, "below") if lower_better else beyond(d, -margin, "above")
        return min(1.0, 2 * one_sided) if math.isfinite(one_sided) else math.nan
    if expect is Expectation.same:
        sides = [beyond(d, margin, "below"), beyond(d, -margin, "above")]
        return min(1.0, 2 * max(sides)) if all(math.isfinite(p) for p in sides) else math.nan
    return d.p_exact if exact else d.p


def contradiction_p(d: Paired, comparison: ComparisonConfig, lower_better: bool) -> float:
    """For a margin claim, the p-value that the candidate lies beyond the margin (doubled: below
    0.05 exactly when the 95% interval's better end is past it); NaN for other claims."""
    margin = comparison.margin
    if comparison.expect is Expectation.not_worse:
        one_sided = p_beyond(d, margin, "above") if lower_better else p_beyond(d, -margin, "below")
    elif comparison.expect is Expectation.same:
        one_sided = min(p_beyond(d, margin, "above"), p_beyond(d, -margin, "below"))
    else:
        return math.nan
    return min(1.0, 2 * one_sided) if math.isfinite(one_sided) else math.nan


def favoured_sides(expect: Optional[Expectation]) -> List[str]:
    """The side whose runs, left out, would make the claim look better than it is."""
    return {
        Expectation.better: ["candidate"],
        Expectation.not_worse: ["candidate"],
        Expectation.worse: ["baseline"],
        Expectation.same: ["baseline", "candidate"],
    }.get(expect, [])
