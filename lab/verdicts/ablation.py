"""Ablation verdicts: each comparison of an experiment (a candidate against a baseline on one
metric, paired by seed) gets its paired difference with a 95% interval (`lab.stats.paired`), a
p-value for what it claims, adjusted over the experiment's comparisons (Holm), a verdict, and,
where the experiment states the paper's claim, whether the lab reproduced it. What each claim is
tested against is `lab.verdicts.claims`; which trial rows count, and their columns,
`lab.verdicts.rows`.

A verdict needs a spread to test against: fewer than 2 trained pairs, or no spread on a metric
without a resolution, is `inconclusive at this budget`. Runs that did not train are left out of
the pairs; where leaving them out favours the claim (a `better`, `not_worse` or `same` claim's
candidate, a `worse` claim's baseline) the outcome is `inconclusive`: a network that fails on
some seeds is not shown to be as good by the seeds it survived. A claim whose networks trained
fewer SGD steps than it needs (`min_steps`) is `inconclusive at this budget`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric
from lab.stats.holm import holm
from lab.stats.paired import ALPHA, Paired, summarise
from lab.stats.seeds import seeds_needed
from lab.stats.testset import difference_variance
from lab.verdicts.claims import claim_p, contradiction_p, favoured_sides, lower_is_better
from lab.verdicts.rows import (
    COLUMNS,
    EXAMPLES,
    fewest_steps,
    left_out,
    number_in,
    resolution_of,
    usable,
)

MIN_PAIRS = 2  # a paired t interval needs two differences
# a run whose training error fell more than this over its last quarter is still improving
IMPROVING = 0.01

BETTER, WORSE, SAME, UNDECIDED = (
    "candidate better",
    "candidate worse",
    "no detectable difference",
    "inconclusive at this budget",
)
WITHIN, NOT_WITHIN, BEYOND = "within margin", "not shown within margin", "beyond margin"
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


@dataclass
class ValueStat:
    value: str
    n: int  # trained runs
    mean: Dict[str, float]  # per column
    std: Dict[str, float]  # sample standard deviation (n - 1); nan for one run


def value_stats(
    rows: List[Dict[str, object]], axis: str, columns: Sequence[str]
) -> List[ValueStat]:
    groups: Dict[str, List[Dict[str, object]]] = {}
    for row in usable(rows):
        groups.setdefault(str(row[axis]), []).append(row)
    result = []
    for value, group in groups.items():
        table = {c: [v for v in (number_in(r, c) for r in group) if v is not None] for c in columns}
        result.append(
            ValueStat(
                value,
                len(group),
                {c: float(np.mean(v)) if v else math.nan for c, v in table.items()},
                {c: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for c, v in table.items()},
            )
        )
    return result


@dataclass
class Pairs:
    """A comparison's runs, paired by seed: values and trial ids of the pairs where both trained."""

    keys: List[str]
    baseline: List[float]
    candidate: List[float]
    baseline_trials: List[str]
    candidate_trials: List[str]
    dropped: Dict[str, List[str]]  # "baseline"/"candidate" -> pair keys whose run did not count


def pairs_of(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    comparison: ComparisonConfig,
    column: str,
    keys: Optional[Sequence[str]] = None,
) -> Pairs:
    """The trained pairs of a comparison (restricted to the pair keys `keys`, when given)."""
    wanted = None if keys is None else {str(k) for k in keys}
    by_key: Dict[str, Dict[str, Dict[str, object]]] = {}
    for row in usable(rows):
        key = str(row[cfg.pair_by])
        if number_in(row, column) is not None and (wanted is None or key in wanted):
            by_key.setdefault(key, {})[str(row[cfg.axis])] = row
    dropped: Dict[str, List[str]] = {"baseline": [], "candidate": []}
    for row in left_out(rows):
        key = str(row[cfg.pair_by])
        for side in ("baseline", "candidate"):
            if str(row[cfg.axis]) == getattr(comparison, side) and (
                wanted is None or key in wanted
            ):
                dropped[side].append(key)
    both = [k for k, v in by_key.items() if comparison.baseline in v and comparison.candidate in v]
    base = [by_key[k][comparison.baseline] for k in both]
    cand = [by_key[k][comparison.candidate] for k in both]
    return Pairs(
        both,
        [number_in(r, column) for r in base],
        [number_in(r, column) for r in cand],
        [str(r.get("trial_id", "")) for r in base],
        [str(r.get("trial_id", "")) for r in cand],
        dropped,
    )


def test_set_variance(pairs: Pairs, correct: Optional[Mapping[str, np.ndarray]]) -> float:
    """The test set's sampling variance of the mean difference, where every paired run logged
    which test images it got right (0 otherwise: the interval then covers seeds only)."""
    if not correct or not pairs.keys:
        return 0.0
    if not all(t in correct for t in pairs.baseline_trials + pairs.candidate_trials):
        return 0.0
    variance = difference_variance(
        [correct[t] for t in pairs.baseline_trials], [correct[t] for t in pairs.candidate_trials]
    )
    return variance if math.isfinite(variance) else 0.0


def differences(
    rows: List[Dict[str, object]],
    comparison: ComparisonConfig,
    pairs: Pairs,
    correct: Optional[Mapping[str, np.ndarray]] = None,
) -> Paired:
    """The summary of a comparison's paired differences (`pairs`: its trained pairs)."""
    diffs = [c - b for b, c in zip(pairs.baseline, pairs.candidate)]
    test_variance = (
        test_set_variance(pairs, correct) if comparison.metric is Metric.test_error else 0.0
    )
    d = summarise(diffs, resolution_of(rows, comparison.metric), test_variance)
    # a difference of two error rates lies in [-1, 1]
    if comparison.metric in EXAMPLES and d.testable:
        d = replace(d, low=max(d.low, -1.0), high=min(d.high, 1.0))
    return d


def paired_difference(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    baseline: str,
    candidate: str,
    column: str = "best_objective",
) -> Paired:
    """The paired difference candidate - baseline on one row column (no claim, no test set)."""
    metric = next(m for m, c in COLUMNS.items() if c == column)
    comparison = ComparisonConfig(baseline, candidate, metric)
    return differences(rows, comparison, pairs_of(rows, cfg, comparison, column))


def no_spread(d: Paired) -> bool:
    """Identical differences on every pair (errors stuck at 0 on every seed, or seeds that change
    nothing): the t test then uses the metric's resolution as the spread, or, without one,
    cannot test."""
    return d.n >= MIN_PAIRS and d.sd == 0


@dataclass
class Verdict:
    comparison: ComparisonConfig
    difference: Paired
    p: float  # what the claim was tested with, before Holm (vs 0, or against the margin)
    p_holm: float
    p_exact: float  # the claim's test without normality: the sign-flip permutation p (not adjusted)
    verdict: str  # BETTER, WORSE, SAME, WITHIN, NOT_WITHIN, BEYOND or UNDECIDED
    outcome: Optional[str]  # REPRODUCED, CONTRADICTED or INCONCLUSIVE; None without a stated claim
    # why an outcome is inconclusive, and what to watch
    notes: List[str] = field(default_factory=list)
    lower_better: bool = True  # the metric's direction

    @property
    def wins(self) -> float:
        """Pairs on which the candidate is better (a tie counts half)."""
        d = self.difference
        return (d.below if self.lower_better else d.above) + d.ties / 2

    @property
    def decided(self) -> bool:
        """Whether more seeds could change the outcome (a verdict without a claim: whether it
        found a difference)."""
        if self.outcome is not None:
            return self.outcome != INCONCLUSIVE
        return self.verdict in (BETTER, WORSE)


def needed_steps(comparison: ComparisonConfig, cfg: AblationConfig) -> int:
    """The budget a comparison's claim needs: its own, else the ablation's; none without a claim."""
    if comparison.expect is None:
        return 0
    return cfg.min_steps if comparison.min_steps is None else comparison.min_steps


def too_short(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    comparison: Optional[ComparisonConfig] = None,
) -> bool:
    """Whether the runs trained fewer steps than the claim needs (every claim's, without one)."""
    needs = (
        needed_steps(comparison, cfg)
        if comparison is not None
        else max([needed_steps(c, cfg) for c in cfg.pairs] or [0])
    )
    steps = fewest_steps(rows)
    return needs > 0 and (steps is None or steps < needs)


def verdict_of(
    d: Paired,
    comparison: ComparisonConfig,
    p_holm: float,
    lower_better: bool,
    short: bool,
    alpha: float = ALPHA,
) -> str:
    """What the comparison found at `alpha`: UNDECIDED where its runs trained too `short` or it
    cannot be tested; for a margin claim WITHIN (`p_holm`), BEYOND (its contradiction p) or
    NOT_WITHIN; else SAME, or BETTER or WORSE by the mean's sign and the metric's direction."""
    if short or not d.testable:  # testable: two pairs or more, and a spread
        return UNDECIDED
    if comparison.expect in (Expectation.not_worse, Expectation.same):
        p_contra = contradiction_p(d, comparison, lower_better)
        return WITHIN if p_holm < alpha else BEYOND if p_contra < alpha else NOT_WITHIN
    if p_holm >= alpha:
        return SAME
    return BETTER if (d.mean < 0) == lower_better else WORSE


def outcome_of(comparison: ComparisonConfig, verdict: str) -> Optional[str]:
    """Whether the verdict reproduces the paper's claim."""
    expect = comparison.expect
    if expect is None:
        return None
    if expect in (Expectation.not_worse, Expectation.same):
        return {WITHIN: REPRODUCED, BEYOND: CONTRADICTED}.get(verdict, INCONCLUSIVE)
    wanted, opposite = (BETTER, WORSE) if expect is Expectation.better else (WORSE, BETTER)
    return {wanted: REPRODUCED, opposite: CONTRADICTED}.get(verdict, INCONCLUSIVE)


def improving_runs(rows: List[Dict[str, object]], pairs: Pairs) -> List[str]:
    """The comparison's runs whose training error was still falling when their budget ended (a
    run that reached 0 has nothing left to fall)."""
    trials = set(pairs.baseline_trials + pairs.candidate_trials)
    return [
        str(r["trial_id"])
        for r in usable(rows)
        if str(r.get("trial_id", "")) in trials
        and (number_in(r, "improving") or 0.0) > IMPROVING
        and (number_in(r, "train_error") or 0.0) > 0
    ]


def notes_of(
    rows, cfg: AblationConfig, comparison: ComparisonConfig, d: Paired, pairs: Pairs, short: bool
) -> List[str]:
    """What a reader must know beside the verdict, one short sentence each."""
    notes = []
    for side in favoured_sides(comparison.expect):
        if pairs.dropped[side]:
            notes.append(
                f"{side} did not count on {cfg.pair_by} {', '.join(sorted(pairs.dropped[side]))} "
                "(left out): the claim cannot rest on the seeds it survived"
            )
    if short:
        notes.append(f"the claim needs {needed_steps(comparison, cfg):,} SGD steps")
    elif d.n < MIN_PAIRS:
        notes.append(f"{d.n} trained pair{'s' if d.n != 1 else ''}: no interval")
    elif not d.testable:
        notes.append(
            f"no spread between {cfg.pair_by}s and no resolution to bound it: nothing to test against"
        )
    elif d.floored:
        what = (
            f"identical differences on every {cfg.pair_by}"
            if no_spread(d)
            else "spread below the metric's resolution"
        )
        notes.append(
            f"{what}: the interval uses one step of the metric ({d.se * math.sqrt(d.n):.4f}) as the spread"
        )
    if d.test_se > 0 and math.isfinite(d.mean) and abs(d.mean) < 2 * d.test_se:
        notes.append(f"difference within 2 test-set standard errors ({d.test_se:.4f})")
    if improving_runs(rows, pairs):
        notes.append("still improving: budget may decide this comparison")
    return notes


def verdicts(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    direction: str,
    correct: Optional[Mapping[str, np.ndarray]] = None,
    alpha: float = ALPHA,
    keys: Optional[Sequence[str]] = None,
) -> List[Verdict]:
    """Every comparison of the experiment, Holm-adjusted over all of them at `alpha` (those that
    cannot be tested count with p = 1, so leaving runs out never makes the others look
    stronger).

    Args:
        rows: the sweep's trial rows (trials.csv, values as strings).
        cfg: the ablation: its axis, `pair_by` and comparisons.
        direction: the sweep objective's direction, "min" or "max" (for `objective` metrics).
        correct: trial id -> which test images the run got right (test-set noise); None: the
            intervals cover seeds only.
        alpha: the level of every test, after Holm.
        keys: the pair keys (seeds) to use, all by default.

    Returns:
        One `Verdict` per comparison of `cfg.pairs`, in their order.
    """
    found = []
    for comparison in cfg.pairs:
        lower_better = lower_is_better(comparison.metric, direction)
        pairs = pairs_of(rows, cfg, comparison, COLUMNS[comparison.metric], keys)
        d = differences(rows, comparison, pairs, correct)
        found.append((comparison, lower_better, pairs, d, claim_p(d, comparison, lower_better)))
    adjusted = holm([p for *_, p in found])
    result = []
    for (comparison, lower_better, pairs, d, p), p_holm in zip(found, adjusted):
        short = too_short(rows, cfg, comparison)
        verdict = verdict_of(d, comparison, p_holm, lower_better, short, alpha)
        outcome = outcome_of(comparison, verdict)
        notes = notes_of(rows, cfg, comparison, d, pairs, short)
        if outcome == REPRODUCED and any(
            pairs.dropped[s] for s in favoured_sides(comparison.expect)
        ):
            # contradicted stands: leaving those runs out could only have helped
            outcome = INCONCLUSIVE
        exact = claim_p(d, comparison, lower_better, exact=True)
        result.append(
            Verdict(comparison, d, p, p_holm, exact, verdict, outcome, notes, lower_better)
        )
    return result


def seeds_for(v: Verdict, comparisons: int) -> tuple:
    """(seeds for 80% power, what they would resolve) for a comparison, from its measured mean
    and spread: the difference itself, or for a margin claim the distance to the margin."""
    d, c = v.difference, v.comparison
    spread = math.sqrt(max(d.se**2 - d.test_se**2, 0.0) * d.n)
    if c.expect is Expectation.not_worse:
        worse = d.mean if v.lower_better else -d.mean
        gap, target = (
            c.margin - worse,
            f"the margin {c.margin:g} from a difference of {d.mean:+.4f}",
        )
    elif c.expect is Expectation.same:
        gap, target = (
            c.margin - abs(d.mean),
            f"the margin +-{c.margin:g} from a difference of {d.mean:+.4f}",
        )
    else:
        gap, target = abs(d.mean), f"a difference of {d.mean:+.4f}"
    needed = seeds_needed(gap, spread, comparisons) if gap > 0 else None
    return needed, target + f" (spread {spread:.4f}{', the resolution' if d.floored else ''})"
