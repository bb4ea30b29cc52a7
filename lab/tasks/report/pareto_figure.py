"""pareto_front.png: one panel per data set and protocol (`lab.tasks.report.pareto`), drawn as
`metric_vs_macs.png` is: mean metric over seeds against MACs per example on a log axis, 95%
intervals as error bars. Every network with MACs is a grey point; the front's members are
coloured, joined by the staircase of what they dominate and named by
`lab.tasks.report.label_placement`. `pareto_plot` builds the figure and returns what the tests
check; `pareto_figure` saves and closes it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Sequence, Tuple

from matplotlib.figure import Figure
from matplotlib.text import Annotation

from lab.tasks.report.figures import (
    INTERVAL_NOTE,
    PLAIN_AREA,
    compact_log_ticks,
    footnote,
    metric_title,
    plt,
    save,
    variants_note,
)
from lab.tasks.report.label_placement import place_labels
from lab.tasks.report.pareto import ParetoGroup
from lab.tasks.report.pool import metric_falls_as_better
from lab.tasks.report.records import PooledRow

FRONT_COLOUR = "tab:red"
OTHER_COLOUR = "0.6"
FRONT_AREA = 80.0  # points^2: a front member's circle, a little larger than another row's
PANEL = (8.0, 5.5)  # inches per panel
COLUMNS = 2  # panels side by side, at most


def draw_points(ax, rows: Sequence[PooledRow], colour: str, area: float) -> None:
    """One circle per row at (MACs, mean), over its 95% interval where it has one."""
    for row in rows:
        if row.has_interval:
            ax.errorbar(
                row.macs,
                row.mean,
                yerr=[[row.mean - row.low], [row.high - row.mean]],
                fmt="none",
                ecolor=colour,
                elinewidth=1.2,
                capsize=3,
                zorder=2,
            )
    ax.scatter(
        [row.macs for row in rows],
        [row.mean for row in rows],
        s=area,
        c=colour,
        alpha=0.8,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
    )


def draw_panel(ax, group: ParetoGroup, metric: str) -> None:
    ax.set_title(f"{group.label}\n{len(group.front)} of {len(group.rows)} on the front", fontsize=9)
    ax.set_ylabel(f"{metric} (mean over seeds)")
    if not group.rows:
        ax.text(0.5, 0.5, "no network with MACs", transform=ax.transAxes, ha="center")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    front = {row.spec_hash for row in group.front}
    draw_points(
        ax, [row for row in group.rows if row.spec_hash not in front], OTHER_COLOUR, PLAIN_AREA
    )
    draw_points(ax, group.front, FRONT_COLOUR, FRONT_AREA)
    # where="post": each member's metric holds until the next member's MACs, the edge of what
    # the front dominates
    ax.step(
        [row.macs for row in group.front],
        [row.mean for row in group.front],
        where="post",
        color=FRONT_COLOUR,
        linewidth=1.2,
        zorder=2.5,
    )
    ax.set_xscale("log")
    compact_log_ticks(ax)
    ax.set_xlabel("MACs per example (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.margins(0.12)


def pareto_plot(groups: List[ParetoGroup], metric: str) -> Tuple[Figure, List[List[Annotation]]]:
    """The figure and, per group, the labels of its front's members (see `pareto_figure`)."""
    columns = max(1, min(COLUMNS, len(groups)))
    lines = max(1, math.ceil(len(groups) / columns))
    figure, axes = plt.subplots(
        lines, columns, figsize=(PANEL[0] * columns, PANEL[1] * lines), squeeze=False
    )
    panels = list(axes.flat)
    for ax, group in zip(panels, groups):
        draw_panel(ax, group, metric)
    for ax in panels[len(groups) :]:
        ax.set_axis_off()
    if not groups:
        panels[0].text(0.5, 0.5, "no run to show", transform=panels[0].transAxes, ha="center")
    left_out = [row for group in groups for row in group.left_out]
    better = "lower" if metric_falls_as_better(metric) else "higher"
    notes = [
        "Grey: every network with MACs logged; red, joined by the staircase of what they "
        f"dominate: the Pareto front ({better} {metric}, fewer MACs), per data set and protocol.",
        *variants_note(f"Left out, no MACs or no {metric} logged", left_out),
        INTERVAL_NOTE,
    ]
    figure.suptitle(f"{metric_title(metric)} vs operations: the Pareto front per protocol")
    figure.tight_layout(rect=(0, footnote(figure, notes), 1, 1))
    labels = [
        place_labels(
            ax,
            [(row.macs, row.mean) for row in group.front],
            [row.variant for row in group.front],
            [math.sqrt(FRONT_AREA) / 2] * len(group.front),
        )
        for ax, group in zip(panels, groups)
    ]
    return figure, labels


def pareto_figure(groups: List[ParetoGroup], metric: str, path: Path) -> Path:
    """Per data set and protocol, one panel: mean `metric` over seeds (95% error bars) against
    MACs per example (log), every network grey, the Pareto front's members red, named and joined
    by a step line. Rows without MACs are left out and named below.

    Args:
        groups: `lab.tasks.report.pareto.pareto_groups` of the pooled rows.
        metric: the metric on the y axes (its mean over seeds).
        path: where the PNG goes.

    Returns:
        `path`, written.
    """
    return save(pareto_plot(groups, metric)[0], path)
