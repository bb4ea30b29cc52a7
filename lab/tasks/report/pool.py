"""Runs -> one row per network trained (`lab.spec_hash`): the seeds of resnet56 trained under
plain_vs_residual and under deep_vs_wide with the same protocol are one sample. Only runs that
count are pooled (`RunRecord.left_out` is None); the interval is Student's t on the mean, the
same 95% the ablation verdicts use."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from statistics import median
from typing import Dict, List, Optional, Sequence, Tuple

from scipy import stats

from lab.tasks.report.records import PooledRow, RunRecord

CONFIDENCE = 0.95


def metric_falls_as_better(metric: str) -> bool:
    """A loss or an error falls as a network improves; anything else (accuracy) rises."""
    return "loss" in metric or "error" in metric


def is_proportion(metric: str) -> bool:
    """An accuracy or an error lies in [0, 1]; a loss or a time does not."""
    return ("accuracy" in metric or "error" in metric) and "loss" not in metric


def mean_interval(
    values: Sequence[float], bounds: Tuple[float, float] = (-math.inf, math.inf)
) -> Tuple[float, float, float, float]:
    """(mean, sample std, low, high): the 95% Student-t interval of the mean, on n - 1 degrees of
    freedom, cut to `bounds` (an accuracy's mean cannot pass 1, though the t interval of three
    seeds at 0.95 +- 0.05 would); std and the interval are nan for one value (no spread to estimate)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return mean, std, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def median_of(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [value for value in values if value is not None]
    return float(median(present)) if present else None


def first_of(values: Sequence[Optional[int]]) -> Optional[int]:
    return next((value for value in values if value is not None), None)


def per_epoch(run: RunRecord) -> Optional[float]:
    """A run's median epoch in seconds; for a run logged before `epoch_seconds_median`, its wall
    time over its epochs (which also counts building, testing and logging)."""
    if run.epoch_seconds is not None:
        return run.epoch_seconds
    return run.wall_seconds / run.epochs if run.wall_seconds is not None and run.epochs else None


def pooled_row(
    spec_hash: str, runs: List[RunRecord], bounds: Tuple[float, float] = (-math.inf, math.inf)
) -> PooledRow:
    mean, std, low, high = mean_interval([run.metric for run in runs], bounds)
    return PooledRow(
        spec_hash=spec_hash,
        variant=Counter(run.variant for run in runs).most_common(1)[0][0],
        family=runs[0].family,
        data=runs[0].data,
        params=first_of([run.params for run in runs]),
        macs=first_of([run.macs for run in runs]),
        activation_bytes=first_of([run.activation_bytes for run in runs]),
        n=len(runs),
        mean=mean,
        std=std,
        low=low,
        high=high,
        best_epoch=median_of([run.best_epoch for run in runs]),
        wall_per_run=median_of([run.wall_seconds for run in runs]),
        wall_per_epoch=median_of([per_epoch(run) for run in runs]),
        devices=tuple(sorted({run.device for run in runs})),
        experiments=tuple(sorted({run.experiment for run in runs})),
        run_ids=tuple(run.run_id for run in runs),
        protocol=runs[0].protocol,
    )


def told_apart(rows: List[PooledRow]) -> List[PooledRow]:
    """Rows whose variant names are the same (resnet20 under two protocols) get their spec hash's
    first 8 digits after the name, so a table or figure label names one row."""
    shared = {name for name, times in Counter(row.variant for row in rows).items() if times > 1}
    return [
        replace(row, variant=f"{row.variant} [{row.spec_hash[:8]}]")
        if row.variant in shared
        else row
        for row in rows
    ]


def pooled_rows(runs: List[RunRecord], metric: str) -> List[PooledRow]:
    """One row per spec hash among the runs that count, best first by `metric` (ties by variant)."""
    groups: Dict[str, List[RunRecord]] = {}
    for run in runs:
        if run.left_out is None:
            groups.setdefault(run.spec_hash, []).append(run)
    bounds = (0.0, 1.0) if is_proportion(metric) else (-math.inf, math.inf)
    rows = told_apart([pooled_row(spec_hash, group, bounds) for spec_hash, group in groups.items()])
    sign = 1 if metric_falls_as_better(metric) else -1
    return sorted(rows, key=lambda row: (sign * row.mean, row.variant))


def left_out_runs(runs: List[RunRecord]) -> List[RunRecord]:
    return [run for run in runs if run.left_out is not None]
