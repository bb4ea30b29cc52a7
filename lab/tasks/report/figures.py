"""The report's figures (PNG, matplotlib's Agg backend), each written by one `*_figure` function
that returns its path:

- `cost_figure`: the figure of Canziani et al. 2016 (top-1 accuracy vs operations, circle size =
  memory) for the lab's own runs: mean metric over seeds vs MACs per example, circle area =
  activations or parameters, one colour per family, 95% intervals as error bars;
- `wall_time_figure`: the same against measured training time, the cost behind Zagoruyko &
  Komodakis' finding (2016) that width is more computationally efficient than depth;
- `forest_figure`: an ablation's paired differences, their intervals and verdicts.

Every point carries its variant's name, placed by `lab.tasks.report.label_placement`; the
cost figures' legends are `lab.tasks.report.legends`.
The `*_plot` functions build a figure and return what the tests check; `*_figure` saves and
closes it, so no pyplot state outlives a figure."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.ticker import LogFormatter

from lab.tasks.report.label_placement import place_labels
from lab.tasks.report.legends import LARGEST_AREA, family_legend, size_legend
from lab.tasks.report.records import PooledRow, SweepRecord
from lab.verdicts.ablation import CONTRADICTED, INCONCLUSIVE, REPRODUCED, Verdict

DPI = 150
PLAIN_AREA = 60.0  # points^2: every circle of the wall-time figure, and one whose size is unknown
OUTCOME_COLOURS = {REPRODUCED: "tab:green", CONTRADICTED: "tab:red", INCONCLUSIVE: "tab:gray"}
INTERVAL_NOTE = "Error bars: 95% Student-t interval of the mean over seeds."


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


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
                # kept: the size legend below replaces ax's own legend
                ax.add_artist(ax.get_legend())
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
    activations per example or parameters, one colour per family, 95% intervals as error bars.
    Rows without MACs are left out and named below.

    Args:
        rows: one pooled row per variant.
        metric: the metric on the y axis (its mean over seeds).
        size: "activations" or "params": what a circle's area is proportional to.
        path: where the PNG goes.

    Returns:
        `path`, written.
    """
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
    seconds), one colour per family. Rows without a wall time are left out and named below.

    Args:
        rows: one pooled row per variant.
        metric: the metric on the y axis (its mean over seeds).
        path: where the PNG goes.

    Returns:
        `path`, written.
    """
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
    it (green: reproduced the paper's claim, red: contradicted it, grey: inconclusive).

    Args:
        sweep: the ablation's sweep, with its verdicts.
        path: where the PNG goes.

    Returns:
        `path`, written.
    """
    return save(forest_plot(sweep)[0], path)
