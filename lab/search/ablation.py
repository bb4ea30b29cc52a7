"""Ablation statistics: the objective per compared value (mean +- std over seeds) and the paired
difference between two values, seed by seed, with a 95% Student-t interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List

import numpy as np
from scipy import stats

from lab.config import AblationConfig


@dataclass
class ValueStat:
    value: str
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); nan for one run


@dataclass
class PairedDifference:
    baseline: str
    candidate: str
    n: int  # seeds where both completed
    mean: float  # candidate - baseline
    low: float  # 95% interval; nan with fewer than two pairs
    high: float


def completed(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    return [r for r in rows if r["status"] == "COMPLETED" and r["best_objective"] != ""]


def value_stats(rows: List[Dict[str, object]], axis: str) -> List[ValueStat]:
    groups: Dict[str, List[float]] = {}
    for row in completed(rows):
        groups.setdefault(str(row[axis]), []).append(float(row["best_objective"]))
    return [ValueStat(value, len(v), float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan)
            for value, v in groups.items()]


def paired_difference(rows: List[Dict[str, object]], cfg: AblationConfig, baseline: str,
                      candidate: str) -> PairedDifference:
    by_pair: Dict[str, Dict[str, float]] = {}
    for row in completed(rows):
        by_pair.setdefault(str(row[cfg.pair_by]), {})[str(row[cfg.axis])] = float(row["best_objective"])
    diffs = np.array([v[candidate] - v[baseline] for v in by_pair.values() if baseline in v and candidate in v])
    if len(diffs) == 0:
        return PairedDifference(baseline, candidate, 0, math.nan, math.nan, math.nan)
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return PairedDifference(baseline, candidate, 1, mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs)))
    return PairedDifference(baseline, candidate, len(diffs), mean, mean - half, mean + half)


def ablation_markdown(rows: List[Dict[str, object]], cfg: AblationConfig, objective: str) -> str:
    lines = [f"## {objective} per {cfg.axis} (mean +- std over {cfg.pair_by})", "",
             f"| {cfg.axis} | n | mean | std |", "|---|---|---|---|"]
    lines += [f"| {s.value} | {s.n} | {s.mean:.4f} | {s.std:.4f} |" for s in value_stats(rows, cfg.axis)]
    lines += ["", f"## Paired differences (candidate - baseline, paired by {cfg.pair_by}, 95% t interval)", "",
              "| baseline | candidate | n | difference | 95% interval |", "|---|---|---|---|---|"]
    for baseline, candidate in cfg.pairs:
        d = paired_difference(rows, cfg, baseline, candidate)
        lines.append(f"| {baseline} | {candidate} | {d.n} | {d.mean:+.4f} | [{d.low:+.4f}, {d.high:+.4f}] |")
    return "\n".join(lines) + "\n"
