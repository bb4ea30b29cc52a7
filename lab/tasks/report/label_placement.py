"""Labels beside a scatter's points that keep out of each other's way, without a new dependency:
greedy, each label at the first offset around its point whose text overlaps no label placed
before, no other point's centre and nothing outside the axes."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

LABEL_POINTS = 7
# Directions tried around a point, best first (up-right reads first), at growing distances
# beyond the circle's edge (points); a label beyond the first ring gets a leader line.
DIRECTIONS = (45, -45, 135, -135, 0, 180, 90, -90)
RINGS = (3, 14, 28, 44, 62)
OFFSETS = [(ring, angle) for ring in RINGS for angle in DIRECTIONS]
CENTRE = 3.0  # points: half the side of the square around another point's centre a label avoids


def area(box: Optional[Bbox]) -> float:
    return 0.0 if box is None else box.width * box.height


def overlap(box: Bbox, others: Sequence[Bbox]) -> float:
    return sum(area(Bbox.intersection(box, other)) for other in others)


def aim(text: Annotation, distance: float, angle: float) -> None:
    """Puts `text` `distance` points from its point towards `angle`, anchored on the near side."""
    dx, dy = distance * math.cos(math.radians(angle)), distance * math.sin(math.radians(angle))
    text.xyann = (dx, dy)
    text.set_horizontalalignment("left" if dx > 1 else "right" if dx < -1 else "center")
    text.set_verticalalignment("bottom" if dy > 1 else "top" if dy < -1 else "center")


def label_cost(box: Bbox, obstacles: Sequence[Bbox], frame: Bbox) -> float:
    """How much of a label's box covers obstacles or lies outside the axes (display pixels^2)."""
    return overlap(box, obstacles) + area(box) - area(Bbox.intersection(box, frame))


def centre_boxes(ax, points: Sequence[Tuple[float, float]]) -> List[Bbox]:
    half = CENTRE * ax.figure.dpi / 72
    return [
        Bbox.from_extents(x - half, y - half, x + half, y + half)
        for x, y in ax.transData.transform(points)
    ]


def place_labels(
    ax, points: Sequence[Tuple[float, float]], labels: Sequence[str], radii: Sequence[float]
) -> List[Annotation]:
    """Writes each label beside its point (data coordinates; `radii` in points: the circle each
    label stays out of) at the first offset where it overlaps no label placed before, no other
    point's centre and nothing outside the axes, else at the least overlapping one. Call it once
    the axes' limits and layout are final: the boxes are measured where they will be drawn."""
    renderer = ax.figure.canvas.get_renderer()
    frame, obstacles = ax.get_window_extent(renderer), centre_boxes(ax, points)
    placed: List[Bbox] = []
    texts = []
    for point, label, radius in zip(points, labels, radii):
        text = ax.annotate(
            label, point, xytext=(0, 0), textcoords="offset points", fontsize=LABEL_POINTS, zorder=4
        )
        tried = []
        for ring, angle in OFFSETS:
            aim(text, radius + ring, angle)
            tried.append(
                (
                    label_cost(text.get_window_extent(renderer), placed + obstacles, frame),
                    ring,
                    angle,
                )
            )
            if tried[-1][0] == 0:
                break
        _, ring, angle = min(tried)
        aim(text, radius + ring, angle)
        if ring > RINGS[0]:  # far from its circle: a line says whose label it is
            ax.annotate(
                "",
                point,
                xytext=text.xyann,
                textcoords="offset points",
                zorder=1,
                arrowprops=dict(
                    arrowstyle="-", color="0.45", linewidth=0.6, shrinkA=0, shrinkB=radius
                ),
            )
        placed.append(text.get_window_extent(renderer))
        texts.append(text)
    return texts
