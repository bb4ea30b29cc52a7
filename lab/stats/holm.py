"""Holm's step-down adjustment for a family of p-values."""

from __future__ import annotations

import math
from typing import List, Sequence


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by m - i + 1,
    then made monotone; each is capped at 1. A NaN p-value (a test that could not be run) counts
    as 1: it can neither be significant nor, by sorting out of place, hide the others.

    Example:
        >>> holm([0.01, 0.04, 0.03, float("nan")])
        [0.04, 0.09, 0.09, 1.0]
    """
    cleaned = [
        1.0 if p is None or math.isnan(p) else min(max(float(p), 0.0), 1.0) for p in p_values
    ]
    order = sorted(range(len(cleaned)), key=lambda i: cleaned[i])
    adjusted, running = [0.0] * len(cleaned), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(cleaned) - rank) * cleaned[index]))
        adjusted[index] = round(running, 12)
    return adjusted
