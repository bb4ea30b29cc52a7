"""Ablation verdicts: each comparison of an experiment (a candidate against a baseline on one
metric, paired by seed) gets a 95% paired Student-t interval, a p-value adjusted for the number
of comparisons (Holm), a verdict, and, where the experiment states the paper's claim, whether
the lab reproduced it. Runs that did not train take no part: a comparison left with fewer than
two trained pairs is `inconclusive at this budget`, and so is every comparison of a sweep whose
networks trained fewer SGD steps than its claim needs (`search.ablation.min_steps`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric

ALPHA = 0.05  # every verdict is at 95%, after Holm's adjustment
MIN_PAIRS = 2  # a paired t interval needs two differences

BETTER, WORSE, SAME, UNDECIDED = ("candidate better", "candidate worse", "no detectable difference",
                                  "inconclusive at this budget")
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"

# Metric -> its trial-row column (lower_is_better says which way each points).
COLUMNS = {Metric.train_error: "train_error", Metric.train_loss: "train_loss", Metric.test_error: "test_error",
           Metric.test_loss: "test_loss", Metric.objective: "best_objective"}


def lower_is_better(metric: Metric, direction: str) -> bool:
    return direction == "min" if metric is Metric.objective else True


def usable(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The rows a comparison may use: completed trials whose networks trained."""
    return [r for r in rows if r["status"] == "COMPLETED" and r["best_objective"] != "" and not r.get("not_trained")]


def left_out(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    kept = usable(rows)
    return [r for r in rows if r not in kept]


@dataclass
class ValueStat:
    value: str
    n: int  # trained runs
    mean: Dict[str, float]  # per column
    std: Dict[str, float]  # sample standard deviation (n - 1); nan for one run


def value_stats(rows: List[Dict[str, object]], axis: str, columns: Sequence[str]) -> List[ValueStat]:
    groups: Dict[str, List[Dict[str, object]]] = {}
    for row in usable(rows):
        groups.setdefault(str(row[axis]), []).append(row)
    result = []
    for value, group in groups.items():
        table = {c: [float(r[c]) for r in group if r.get(c, "") != ""] for c in columns}
        result.append(ValueStat(value, len(group), {c: float(np.mean(v)) if v else math.nan for c, v in table.items()},
                                {c: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for c, v in table.items()}))
    return result


@dataclass
class PairedDifference:
    n: int  # pairs where both runs trained
    mean: float  # candidate - baseline, in the metric's units
    low: float  # 95% t interval (unadjusted); nan below MIN_PAIRS
    high: float
    p: float  # two-sided paired t test; 1.0 below MIN_PAIRS


def paired_difference(rows: List[Dict[str, object]], cfg: AblationConfig, baseline: str, candidate: str,
                      column: str = "best_objective") -> PairedDifference:
    by_pair: Dict[str, Dict[str, float]] = {}
    for row in usable(rows):
        if row.get(column, "") != "":
            by_pair.setdefault(str(row[cfg.pair_by]), {})[str(row[cfg.axis])] = float(row[column])
    diffs = np.array([v[candidate] - v[baseline] for v in by_pair.values() if baseline in v and candidate in v])
    mean = float(diffs.mean()) if len(diffs) else math.nan
    if len(diffs) < MIN_PAIRS:
        return PairedDifference(len(diffs), mean, math.nan, math.nan, 1.0)
    if np.ptp(diffs) == 0:  # identical differences: no spread to test against
        return PairedDifference(len(diffs), mean, mean, mean, 0.0 if mean != 0 else 1.0)
    test = stats.ttest_1samp(diffs, 0.0)
    interval = test.confidence_interval(1 - ALPHA)
    return PairedDifference(len(diffs), mean, float(interval.low), float(interval.high), float(test.pvalue))


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by m - i + 1,
    then made monotone; each is capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass
class Verdict:
    comparison: ComparisonConfig
    difference: PairedDifference
    p_holm: float
    verdict: str  # BETTER, WORSE, SAME or UNDECIDED
    outcome: Optional[str]  # REPRODUCED, CONTRADICTED or INCONCLUSIVE; None without a stated claim


def fewest_steps(rows: List[Dict[str, object]]) -> Optional[int]:
    """The fewest SGD steps any run the comparisons use trained (None when no run logged them)."""
    steps = [int(r["train_steps"]) for r in usable(rows) if r.get("train_steps", "") != ""]
    return min(steps) if steps else None


def too_short(rows: List[Dict[str, object]], cfg: AblationConfig) -> bool:
    """Whether the runs trained fewer steps than the claim needs (`search.ablation.min_steps`)."""
    steps = fewest_steps(rows)
    return cfg.min_steps > 0 and (steps is None or steps < cfg.min_steps)


def verdict_of(d: PairedDifference, p_holm: float, lower_better: bool, short: bool = False) -> str:
    if d.n < MIN_PAIRS or short:
        return UNDECIDED
    if p_holm >= ALPHA:
        return SAME
    return BETTER if (d.mean < 0) == lower_better else WORSE


def outcome_of(comparison: ComparisonConfig, d: PairedDifference, verdict: str, lower_better: bool) -> Optional[str]:
    """Whether the verdict reproduces the paper's claim. `not_worse` is reproduced only when the
    interval's worse end stays within the margin: a wide interval is not evidence of no harm."""
    expect = comparison.expect
    if expect is None:
        return None
    if verdict == UNDECIDED:
        return INCONCLUSIVE
    if expect is Expectation.not_worse:
        if verdict == WORSE:
            return CONTRADICTED
        worse_end = d.high if lower_better else -d.low
        return REPRODUCED if worse_end <= comparison.margin else INCONCLUSIVE
    wanted, opposite = (BETTER, WORSE) if expect is Expectation.better else (WORSE, BETTER)
    return {wanted: REPRODUCED, opposite: CONTRADICTED}.get(verdict, INCONCLUSIVE)


def verdicts(rows: List[Dict[str, object]], cfg: AblationConfig, direction: str) -> List[Verdict]:
    """Every comparison of the experiment, Holm-adjusted over all of them (those without enough
    trained pairs count with p = 1, so leaving runs out never makes the others look stronger)."""
    diffs = [paired_difference(rows, cfg, c.baseline, c.candidate, COLUMNS[c.metric]) for c in cfg.pairs]
    adjusted = holm([d.p for d in diffs])
    short = too_short(rows, cfg)
    result = []
    for comparison, d, p_holm in zip(cfg.pairs, diffs, adjusted):
        lower_better = lower_is_better(comparison.metric, direction)
        verdict = verdict_of(d, p_holm, lower_better, short)
        result.append(Verdict(comparison, d, p_holm, verdict, outcome_of(comparison, d, verdict, lower_better)))
    return result
