"""Which network is best for what it costs: per data set and training protocol, the pooled rows
that no other row of the same protocol beats on both the report's metric (its mean over seeds)
and MACs per example, and the volume of objective space they dominate. The computations are
`lab.stats.pareto`'s (moocore's); this module only groups the rows and says what is compared.

A protocol is every `data.` and `train.` key a run logged but where and how it ran
(`RunRecord.protocol`): the spec hash's inputs less the model, so the networks on one front differ
in their model alone. A row with no MACs (or no finite metric) is on no front: it is counted and
named, never guessed.

Example:
    >>> from lab.tasks.report.records import PooledRow
    >>> def row(variant, macs, accuracy):
    ...     return PooledRow(variant, variant, "resnet", "cifar10", None, macs, None, 1,
    ...                      accuracy, float("nan"), float("nan"), float("nan"), None, None,
    ...                      None, ("cpu",), ("e",), ("r",))
    >>> rows = [row("a", 100, 0.9), row("b", 50, 0.8), row("c", 120, 0.85), row("d", None, 0.95)]
    >>> [group] = pareto_groups(rows, "test_accuracy")
    >>> [r.variant for r in group.front], [r.variant for r in group.left_out]
    (['b', 'a'], ['d'])
    >>> round(group.hypervolume, 6)  # reference (0.79, 127): 0.11 * 27 + 0.01 * 77 - 0.01 * 27
    3.47
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from lab.stats.pareto import default_reference, hypervolume, on_front
from lab.tasks.report.pool import metric_falls_as_better
from lab.tasks.report.records import PooledRow

FIGURE = "pareto_front.png"
Protocol = Tuple[Tuple[str, str], ...]
GroupKey = Tuple[str, Protocol]  # (data.name, protocol)


@dataclass
class ParetoGroup:
    """One data set and protocol: `rows` have both objectives (their order as given), `front` are
    the rows no other row beats on both, cheapest first, `left_out` the rows without MACs or a
    finite metric. `reference` and `hypervolume` are None below two rows with both objectives
    (the volume of one network would measure the reference's margin alone)."""

    data: str
    label: str  # the data set, and the protocol's keys that tell it from its data's other ones
    directions: Tuple[str, str]  # the metric's ("max" or "min"), then MACs' ("min")
    rows: List[PooledRow] = field(default_factory=list)
    front: List[PooledRow] = field(default_factory=list)
    left_out: List[PooledRow] = field(default_factory=list)
    reference: Optional[List[float]] = None  # (metric, MACs)
    hypervolume: Optional[float] = None

    @property
    def compared(self) -> bool:
        """Two networks or more with both objectives: a front worth drawing and measuring."""
        return len(self.rows) >= 2


def directions_of(metric: str) -> Tuple[str, str]:
    """The metric maximised (an accuracy) or minimised (a loss, an error); MACs minimised."""
    return ("min" if metric_falls_as_better(metric) else "max", "min")


def comparable(row: PooledRow) -> bool:
    return bool(row.macs) and math.isfinite(row.mean)


def point(row: PooledRow) -> List[float]:
    return [row.mean, float(row.macs)]


def group_labels(keys: Sequence[GroupKey]) -> Dict[GroupKey, str]:
    """Each group as its data set, followed by the protocol keys whose values differ between the
    groups of that data set (`fashion_mnist, train.epochs=30`); a key a group did not log reads
    `unset`."""
    labels = {}
    for data, protocol in keys:
        siblings = [dict(p) for d, p in keys if d == data]
        differing = sorted(
            key
            for key in set().union(*siblings)
            if len({sibling.get(key) for sibling in siblings}) > 1
        )
        mine = dict(protocol)
        labels[(data, protocol)] = ", ".join(
            [data, *(f"{key}={mine.get(key, 'unset')}" for key in differing)]
        )
    return labels


def pareto_group(data: str, label: str, rows: List[PooledRow], metric: str) -> ParetoGroup:
    """The front of `rows` (one data set and protocol) over (metric, MACs) and its hypervolume
    from `lab.stats.pareto.default_reference` of the rows with both objectives (two at least)."""
    directions = directions_of(metric)
    group = ParetoGroup(data, label, directions)
    group.rows = [row for row in rows if comparable(row)]
    group.left_out = [row for row in rows if not comparable(row)]
    if not group.rows:
        return group
    points = [point(row) for row in group.rows]
    members = [row for row, kept in zip(group.rows, on_front(points, directions)) if kept]
    group.front = sorted(members, key=lambda row: (row.macs, row.variant))
    if not group.compared:
        return group
    group.reference = default_reference(points, directions)
    # the front dominates all the rows do: the volume of the front is the volume of every row
    group.hypervolume = hypervolume(
        [point(row) for row in group.front], directions, group.reference
    )
    return group


def pareto_groups(rows: List[PooledRow], metric: str) -> List[ParetoGroup]:
    """One `ParetoGroup` per data set and protocol among `rows`, ordered by their labels.

    Args:
        rows: the pooled rows (`lab.tasks.report.pool.pooled_rows`).
        metric: the report's metric; maximised unless it is a loss or an error.

    Returns:
        The groups, each with its front (cheapest first), the rows it left out and its
        hypervolume.
    """
    grouped: Dict[GroupKey, List[PooledRow]] = {}
    for row in rows:
        grouped.setdefault((row.data, row.protocol), []).append(row)
    labels = group_labels(list(grouped))
    groups = [
        pareto_group(key[0], labels[key], members, metric) for key, members in grouped.items()
    ]
    return sorted(groups, key=lambda group: group.label)


def on_a_front(groups: List[ParetoGroup]) -> Set[str]:
    """The spec hashes of every row on its group's front (report.csv's `on_pareto_front`)."""
    return {row.spec_hash for group in groups for row in group.front}
