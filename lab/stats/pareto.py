"""Several objectives at once: which points no other point beats on every objective (the Pareto
set), the volume they dominate (the hypervolume) and how it grew trial after trial. The
computations are moocore's (the exact algorithms of the hypervolume literature); this module
only says which objectives are maximised and which reference point the volume is measured from.

Directions are "max" or "min", one per objective (column), as `search.objectives` declares them.

Example:
    >>> points = [[0.90, 100.0], [0.80, 50.0], [0.85, 120.0]]
    >>> on_front(points, ["max", "min"]).tolist()
    [True, True, False]
    >>> hypervolume(points, ["max", "min"], reference=[0.0, 200.0])
    130.0
    >>> hypervolume_history(points, ["max", "min"], reference=[0.0, 200.0])
    [90.0, 130.0, 130.0]
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

# The default reference point lies this share of each objective's observed range beyond its
# worst value, so that the front's extreme points add volume too.
REFERENCE_MARGIN = 0.1


def maximised(directions: Sequence[str]) -> List[bool]:
    """One flag per objective: True where it is maximised."""
    unknown = [d for d in directions if d not in ("max", "min")]
    if unknown:
        raise ValueError(f"directions must be 'max' or 'min', got {unknown}")
    return [d == "max" for d in directions]


def as_points(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """The points as an (n, objectives) float array, checked against the directions."""
    array = np.asarray(points, dtype=float).reshape(-1, len(directions))
    if not np.all(np.isfinite(array)):
        raise ValueError("Pareto points must be finite (drop failed or untrained trials first)")
    return array


def on_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """A boolean mask: the points no other point beats on every objective (a duplicate of a front
    point is on the front too: two trials with the same figures are both Pareto-optimal)."""
    import moocore

    array = as_points(points, directions)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(
        moocore.is_nondominated(array, maximise=maximised(directions), keep_weakly=True)
    )


def default_reference(points: Sequence[Sequence[float]], directions: Sequence[str]) -> List[float]:
    """Each objective's worst value among `points`, moved `REFERENCE_MARGIN` of its range further
    (by 1 where every point has the same value)."""
    array = as_points(points, directions)
    reference = []
    for column, is_max in zip(array.T, maximised(directions)):
        span = float(column.max() - column.min()) or 1.0
        worst = float(column.min()) if is_max else float(column.max())
        reference.append(
            worst - REFERENCE_MARGIN * span if is_max else worst + REFERENCE_MARGIN * span
        )
    return reference


def hypervolume(
    points: Sequence[Sequence[float]],
    directions: Sequence[str],
    reference: Optional[Sequence[float]] = None,
) -> float:
    """The volume of objective space the points dominate, bounded by `reference` (default:
    `default_reference`). Points that do not beat the reference on every objective add nothing."""
    import moocore

    array = as_points(points, directions)
    if len(array) == 0:
        return 0.0
    reference = default_reference(array, directions) if reference is None else list(reference)
    flags = maximised(directions)
    inside = np.all(
        [
            (col > ref) if is_max else (col < ref)
            for col, ref, is_max in zip(array.T, reference, flags)
        ],
        axis=0,
    )
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(array[inside], ref=reference, maximise=flags))


def hypervolume_history(
    points: Sequence[Optional[Sequence[float]]],
    directions: Sequence[str],
    reference: Sequence[float],
) -> List[float]:
    """The hypervolume of the first k points, for k = 1..n, in the order given (trial order).
    A None point (a trial that failed, was pruned or broke a budget) adds nothing."""
    history, seen = [], []
    for point in points:
        if point is not None:
            seen.append(point)
        history.append(hypervolume(seen, directions, reference) if seen else 0.0)
    return history
