"""A sweep's trial rows (trials.csv, every value a string) as a comparison reads them: which rows
count (completed trials whose networks trained), their numbers, the column each metric is in,
the resolution it was measured at, and the fewest SGD steps a counted run trained."""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

from lab.config import Metric

# Metric -> its trial-row column (`lab.verdicts.claims.lower_is_better`: which way each points).
COLUMNS = {
    Metric.train_error: "train_error",
    Metric.train_loss: "train_loss",
    Metric.test_error: "test_error",
    Metric.test_loss: "test_loss",
    Metric.objective: "best_objective",
}
# Metric -> the row column holding how many examples it was measured on (its resolution is 1 / that).
EXAMPLES = {Metric.train_error: "train_examples", Metric.test_error: "test_examples"}


def usable(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The rows a comparison may use: completed trials whose networks trained."""
    return [
        r
        for r in rows
        if r["status"] == "COMPLETED" and r["best_objective"] != "" and not r.get("not_trained")
    ]


def left_out(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    kept = usable(rows)
    return [r for r in rows if r not in kept]


def number_in(row: Mapping[str, object], column: str) -> Optional[float]:
    value = row.get(column, "")
    if value in ("", None):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def resolution_of(rows: List[Dict[str, object]], metric: Metric) -> float:
    """The step of a metric's measured values: 1 / the fewest examples it was measured on (0
    where it is continuous or the rows do not say)."""
    column = EXAMPLES.get(metric)
    counts = [number_in(r, column) for r in usable(rows)] if column else []
    counts = [c for c in counts if c]
    return 1.0 / min(counts) if counts else 0.0


def fewest_steps(rows: List[Dict[str, object]]) -> Optional[int]:
    """The fewest SGD steps any run the comparisons use trained (None when no run logged them)."""
    steps = [int(r["train_steps"]) for r in usable(rows) if r.get("train_steps", "") != ""]
    return min(steps) if steps else None
