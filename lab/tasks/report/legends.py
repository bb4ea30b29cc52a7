"""The cost figures' legends: one colour per family, and what a circle's area means (circles
for three round amounts, up to the largest row's, which gets `LARGEST_AREA`)."""

from __future__ import annotations

import math
from typing import Dict, Tuple

from matplotlib.lines import Line2D

LARGEST_AREA = 1200.0  # points^2: the circle of the row with the most activations (or parameters)
SIZE_UNITS = {
    "activations": ((2**20, "MiB"), (2**10, "KiB"), (1, "bytes")),
    "params": ((10**6, "M"), (10**3, "K"), (1, "")),
}
SIZE_LEGEND = {
    "activations": "{value:g} {unit} of activations per example",
    "params": "{value:g}{unit} parameters",
}


def family_legend(ax, colours: Dict[str, str]) -> None:
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=8,
            markerfacecolor=colour,
            alpha=0.7,
            markeredgecolor="black",
            label=family,
        )
        for family, colour in colours.items()
    ]
    ax.legend(
        handles=handles,
        title="family",
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        fontsize="small",
    )


def nice_below(value: float) -> float:
    """The largest of 1, 2, 5 times a power of ten not above `value` (0 for 0)."""
    if value <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(value))
    return max(m * power for m in (1, 2, 5) if m * power <= value * (1 + 1e-9))


def round_amount(largest: float, fraction: float, size: str) -> Tuple[float, str]:
    """A round amount near `largest * fraction`, in the unit that keeps it at least 1."""
    target = largest * fraction
    scale, unit = next((s, u) for s, u in SIZE_UNITS[size] if target >= s or s == 1)
    value = nice_below(target / scale)
    return value * scale, SIZE_LEGEND[size].format(value=value, unit=unit)


def size_legend(ax, size: str, largest: float) -> None:
    """What a circle's area means: circles for three round amounts up to the largest."""
    amounts = sorted({round_amount(largest, f, size) for f in (1, 1 / 5, 1 / 25)}, reverse=True)
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color="0.6",
            markeredgecolor="black",
            alpha=0.55,
            markersize=math.sqrt(LARGEST_AREA * amount / largest),
            label=label,
        )
        for amount, label in amounts
        if amount
    ]
    ax.legend(
        handles=handles,
        title="circle area",
        loc="lower left",
        bbox_to_anchor=(1.02, 0),
        fontsize="small",
        labelspacing=2.2,
        borderpad=1.2,
        handletextpad=1.6,
    )
