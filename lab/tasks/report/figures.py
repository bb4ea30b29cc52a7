"""The report's figures (PNG, matplotlib's Agg backend), each written by one `*_figure` function
that returns its path:

- `cost_figure`: the figure of Canziani et al. 2016 (top-1 accuracy vs operations, circle size =
  memory) for the lab's own runs: mean metric over seeds vs MACs per example, circle area =
  activations or parameters, one colour per family, 95% intervals as error bars;
- `wall_time_figure`: the same against measured training time, the cost behind Zagoruyko &
  Komodakis' finding (2016) that width is more computationally efficient than depth;
- `forest_figure`: an ablation's paired differences, their intervals and verdicts.

Every point carries its variant's name; `place_labels` keeps the names apart without a new
dependency (greedy: the first offset around the point whose text overlaps nothing placed yet).
The `*_plot` functions build a figure and return what the tests check; `*_figure` saves and
closes it, so no pyplot state outlives a figure."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import LogFormatter
from matplotlib.transforms import Bbox

from lab.tasks.report.records import PooledRow, SweepRecord
from lab.verdicts.ablation import CONTRADICTED, INCONCLUSIVE, REPRODUCED, Verdict

DPI = 150
LARGEST_AREA = 1200.0  # points^2: the circle of the row with the most activations (or parameters)
PLAIN_AREA = 60.0  # points^2: every circle of the wall-time figure, and one whose size is unknown
LABEL_POINTS = 7
# Directions tried around a point, best first (up-right reads first), at growing distances
# beyond the circle's edge (points); a label beyond the first ring gets a leader line.
DIRECTIONS = (45, -45, 135, -135, 0, 180, 90, -90)
RINGS = (3, 14, 28, 44, 62)
OFFSETS = [(ring, angle) for ring in RINGS for angle in DIRECTIONS]
CENTRE = 3.0  # points: half the side of the square around another point's centre a label avoids
SIZE_UNITS = {
    "activations": ((2**20, "MiB"), (2**10, "KiB"), (1, "bytes")),
    "params": ((10**6, "M"), (10**3, "K"), (1, "")),
}
SIZE_LEGEND = {
    "activations": "{value:g} {unit} of activations per example",
    "params": "{value:g}{unit} parameters",
}
OUTCOME_COLOURS = {REPRODUCED: "tab:green", CONTRADICTED: "tab:red", INCONCLUSIVE: "tab:gray"}
INTERVAL_NOTE = "Error bars: 95% Student-t interval of the mean over seeds."


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


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


class CompactLogFormatter(LogFormatter):
    """Log-axis tick labels as numbers a reader takes in at a glance (`20M`, `300 s`, not
    `2x10^7`), on the ticks matplotlib's own log formatter chooses to label."""

    def __init__(self, unit: str = ""):
        super().__init__(labelOnlyBase=False, minor_thresholds=(2, 0.6))
        self.unit = unit

    def __call__(self, x, pos=None) -> str:
        if not super().__call__(x, pos):
            return ""
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if x >= size:
                return f"{x / size:g}{suffix}{self.unit}"
        return f"{x:g}{self.unit}"


def compact_log_ticks(ax, unit: str = "") -> None:
    ax.xaxis.set_major_formatter(CompactLogFormatter(unit))
    ax.xaxis.set_minor_formatter(CompactLogFormatter(unit))


def family_colours(rows: Sequence[PooledRow]) -> Dict[str, str]:
    return {
        family: f"C{index % 10}" for index, family in enumerate(sorted({r.family for r in rows}))
    }


def draw_rows(
    ax,
    rows: Sequence[PooledRow],
    xs: Sequence[float],
    areas: Sequence[float],
    colours: Dict[str, str],
) -> None:
    """One circle per row at (x, mean), over its 95% interval where it has one."""
    for row, x in zip(rows, xs):
        if row.has_interval:
            ax.errorbar(
                x,
                row.mean,
                yerr=[[row.mean - row.low], [row.high - row.mean]],
                fmt="none",
                ecolor=colours[row.family],
                elinewidth=1.2,
                capsize=3,
                zorder=2,
            )
    ax.scatter(
        xs,
        [r.mean for r in rows],
        s=areas,
        c=[colours[r.family] for r in rows],
        alpha=0.55,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
    )


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


def footnote(figure: Figure, notes: List[str]) -> float:
    """Writes `notes` under the axes; returns the fraction of the figure's height they take."""
    lines = [line for note in notes for line in textwrap.wrap(note, 150)]
    figure.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom", color="0.25")
    return (0.16 * len(lines) + 0.1) / figure.get_figheight()


def variants_note(what: str, rows: Sequence[PooledRow]) -> List[str]:
    return [f"{what}: {', '.join(r.variant for r in rows)}."] if rows else []


def rows_plot(
    rows: List[PooledRow], x_of, areas: List[float], metric: str, notes: List[str], finish_axes
) -> Tuple[Figure, List[Annotation]]:
    """The scatter both cost figures share: `x_of(row)` on a log axis, error bars, a legend per
    family, `finish_axes(ax)` for the rest; labels are placed last, on the final layout."""
    figure, ax = plt.subplots(figsize=(10, 6.5))
    colours = family_colours(rows)
    xs = [x_of(r) for r in rows]
    draw_rows(ax, rows, xs, areas, colours)
    if rows:
        ax.set_xscale("log")
        family_legend(ax, colours)
    else:
        ax.text(0.5, 0.5, "no run to show", transform=ax.transAxes, ha="center")
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_ylabel(f"{metric} (mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.margins(0.12)
    finish_axes(ax)
    figure.tight_layout(rect=(0, footnote(figure, [*notes, INTERVAL_NOTE]), 1, 1))
    texts = place_labels(
        ax,
        list(zip(xs, [r.mean for r in rows])),
        [r.variant for r in rows],
        [math.sqrt(a) / 2 for a in areas],
    )
    return figure, texts


def metric_title(metric: str) -> str:
    return "Accuracy" if "accuracy" in metric else metric


def cost_plot(rows: List[PooledRow], metric: str, size: str) -> Tuple[Figure, List[Annotation]]:
    """The cost figure and its labels (see `cost_figure`)."""
    shown = [r for r in rows if r.macs]
    amounts = [r.activation_bytes if size == "activations" else r.params for r in shown]
    largest = max((a for a in amounts if a), default=0)
    # Area, not diameter, is proportional to the amount (at least 4 points^2, so it still shows).
    areas = [max(4.0, LARGEST_AREA * a / largest) if a else PLAIN_AREA for a in amounts]
    notes = [
        *variants_note("Left out, no MACs logged", [r for r in rows if not r.macs]),
        *variants_note(
            "No error bar (one seed, no interval)", [r for r in shown if not r.has_interval]
        ),
        *variants_note(
            f"Circle size unknown ({size} not logged), drawn small",
            [r for r, a in zip(shown, amounts) if not a],
        ),
    ]

    def finish(ax) -> None:
        if largest:
            if ax.get_legend() is not None:
                ax.add_artist(
                    ax.get_legend()
                )  # kept: the size legend below replaces ax's own legend
            size_legend(ax, size, largest)
        compact_log_ticks(ax)
        ax.set_xlabel("MACs per example (log scale)")
        ax.set_title(
            f"{metric_title(metric)} vs operations (Canziani et al. 2016), the lab's runs\n"
            f"circle area: {'activations per example' if size == 'activations' else 'parameters'}"
        )

    return rows_plot(shown, lambda r: r.macs, areas, metric, notes, finish)


def cost_figure(rows: List[PooledRow], metric: str, size: str, path: Path) -> Path:
    """Mean `metric` over seeds vs MACs per example (log), circle area proportional to
    activations per example (`size="activations"`) or parameters (`size="params"`), one colour
    per family, 95% intervals as error bars. Rows without MACs are left out and named below."""
    return save(cost_plot(rows, metric, size)[0], path)


def wall_time_plot(rows: List[PooledRow], metric: str) -> Tuple[Figure, List[Annotation]]:
    """The wall-time figure and its labels (see `wall_time_figure`)."""
    shown = [r for r in rows if r.wall_per_run]
    devices = sorted({d for r in shown for d in r.devices})
    notes = [
        *variants_note("Left out, no wall time logged", [r for r in rows if not r.wall_per_run]),
        *variants_note(
            "No error bar (one seed, no interval)", [r for r in shown if not r.has_interval]
        ),
        f"Wall times as measured on each run's device ({', '.join(devices) or 'none'}): "
        "compare runs of one device.",
    ]

    def finish(ax) -> None:
        compact_log_ticks(ax, " s")
        ax.set_xlabel("training wall time per run, median over seeds (log scale)")
        ax.set_title(
            f'{metric_title(metric)} vs training time: "width is more computationally efficient '
            "than depth\"?\n(Zagoruyko & Komodakis 2016), the lab's runs"
        )

    return rows_plot(
        shown, lambda r: r.wall_per_run, [PLAIN_AREA] * len(shown), metric, notes, finish
    )


def wall_time_figure(rows: List[PooledRow], metric: str, path: Path) -> Path:
    """Mean `metric` over seeds (95% error bars) vs median training wall time per run (log
    seconds), one colour per family. Rows without a wall time are left out and named below."""
    return save(wall_time_plot(rows, metric)[0], path)


def comparison_label(verdict: Verdict) -> str:
    c = verdict.comparison
    return f"{c.candidate} − {c.baseline} ({c.metric.value})"


def verdict_note(verdict: Verdict) -> str:
    d = verdict.difference
    first = verdict.verdict + (f"; {verdict.outcome}" if verdict.outcome else "")
    interval = "; no interval" if math.isnan(d.low) else ""
    pairs = "1 pair" if d.n == 1 else f"{d.n} pairs"
    exact = "" if math.isnan(verdict.p_exact) else f", exact p = {verdict.p_exact:.2g}"
    return f"{first}\n{pairs}, Holm p = {verdict.p_holm:.2g}{exact}{interval}"


def draw_comparison(ax, y: float, verdict: Verdict) -> None:
    d, colour = verdict.difference, OUTCOME_COLOURS.get(verdict.outcome, "black")
    if not math.isnan(d.low):
        ax.hlines(y, d.low, d.high, color=colour, linewidth=2)
    if not math.isnan(d.mean):  # hollow without an interval: a single pair, not an estimate
        ax.plot(
            d.mean,
            y,
            "o",
            color=colour,
            markersize=7,
            markerfacecolor="white" if math.isnan(d.low) else colour,
        )


def forest_plot(sweep: SweepRecord) -> Tuple[Figure, List[str]]:
    """The forest figure and the verdict notes beside its lines, top first (see `forest_figure`)."""
    verdicts: List[Verdict] = sweep.verdicts
    figure, ax = plt.subplots(figsize=(11, 1.8 + 0.6 * max(1, len(verdicts))))
    ys = list(range(len(verdicts)))[::-1]  # the first comparison on top
    for y, verdict in zip(ys, verdicts):
        draw_comparison(ax, y, verdict)
    ax.axvline(0, color="black", linewidth=0.8, linestyle="--")
    if not any(math.isfinite(v.difference.mean) for v in verdicts):
        ax.set_xlim(-1, 1)  # nothing measured: keep zero in the middle
    ax.set_yticks(ys, [comparison_label(v) for v in verdicts])
    ax.set_ylim(-0.7, max(1, len(verdicts)) - 0.3)
    notes = [verdict_note(v) for v in verdicts]
    for y, note in zip(ys, notes):
        ax.text(1.02, y, note, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_xlabel(
        "candidate − baseline, in the metric's units (dot: mean paired difference; "
        "line: 95% paired t interval)"
    )
    ax.grid(alpha=0.3, axis="x")
    ax.margins(x=0.08)
    source = sweep.ablation.source if sweep.ablation else ""
    claim = (
        textwrap.fill(sweep.ablation.claim, 110) if sweep.ablation and sweep.ablation.claim else ""
    )
    ax.set_title(
        "\n".join(filter(None, [f"{sweep.name}: {source}" if source else sweep.name, claim])),
        fontsize=10,
    )
    figure.tight_layout()
    return figure, notes


def forest_figure(sweep: SweepRecord, path: Path) -> Path:
    """An ablation's comparisons, one line each: the mean paired difference (candidate minus
    baseline) with its 95% interval against zero, the verdict, outcome, pairs and Holm p beside
    it (green: reproduced the paper's claim, red: contradicted it, grey: inconclusive)."""
    return save(forest_plot(sweep)[0], path)
