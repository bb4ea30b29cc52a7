"""The comparison plots a sweep's parent run holds (PNG, matplotlib's Agg backend): objective vs
depth, vs parameters and vs MACs (Pareto front marked), coloured by `search.colour_by` (default: the first axis);
every trial's objective curve overlaid; for an ablation, the error curves of He et al.'s
Fig. 1: training and validation error per epoch, one line per compared value (mean over seeds);
for several objectives, the Pareto set (`pareto_set.py`): the first objective against each other."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from lab.config import objective_direction
from lab.stats.pareto import on_front
from lab.tasks.search.pareto_set import ParetoSet, ScoredTrial

Point = Tuple[float, float]
# Costs that span orders of magnitude across a space: drawn on a log axis.
LOG_SCALED = ("params_total", "macs", "activation_bytes")


def pareto_front(points: Sequence[Point], direction: str = "max") -> List[Point]:
    """Points (cost, score) that no other point beats on both: cheaper-or-equal and
    better-or-equal, a higher score better for `direction` "max", a lower one for "min"
    (`lab.stats.pareto.on_front`); cheapest first, each once. A non-finite score is on no front."""
    finite = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    mask = on_front(finite, ["min", direction]) if finite else []
    return sorted({point for point, on in zip(finite, mask) if on})


def scatter_by(ax, trials: List[Dict], x: str, colour_key: str, objective: str) -> None:
    for group in sorted({t[colour_key] for t in trials}):
        chosen = [t for t in trials if t[colour_key] == group]
        ax.scatter([t[x] for t in chosen], [t["objective"] for t in chosen], label=group, alpha=0.8)
    ax.set_ylabel(objective)
    ax.legend(title=colour_key, fontsize="small")
    ax.grid(alpha=0.3)


def depth_figure(trials: List[Dict], colour_key: str, objective: str):
    figure, ax = plt.subplots(figsize=(6, 4))
    scatter_by(ax, trials, "depth", colour_key, objective)
    ax.set_xlabel("depth (weighted layers on the longest path)")
    ax.set_title(f"{objective} vs depth")
    return figure


def cost_figure(trials: List[Dict], cost: str, colour_key: str, objective: str):
    figure, ax = plt.subplots(figsize=(6, 4))
    scatter_by(ax, trials, cost, colour_key, objective)
    points = [(t[cost], t["objective"]) for t in trials]
    front = pareto_front(points, objective_direction(objective))
    # Circled and joined, so a front of a single point still shows.
    ax.plot(
        [p[0] for p in front],
        [p[1] for p in front],
        "k--",
        drawstyle="steps-post",
        marker="o",
        markersize=11,
        markerfacecolor="none",
        label="Pareto front",
    )
    ax.legend(title=colour_key, fontsize="small")
    log_axis(ax.xaxis)
    ax.set_xlabel(cost)
    ax.set_title(f"{objective} vs {cost} (Pareto front circled)")
    return figure


def curves_figure(curves: Dict[str, List[Point]], metric: str):
    figure, ax = plt.subplots(figsize=(6, 4))
    for label, points in sorted(curves.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label, alpha=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of every trial")
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(fontsize="x-small")
    return figure


@dataclass
class ErrorCurve:
    """One compared value's mean curves over seeds: [(epoch, error)] for training and validation."""

    label: str
    colour_group: str
    dashed: bool
    train: List[Point]
    val: List[Point]
    runs: int


def error_curves_figure(curves: List[ErrorCurve], title: str):
    """Training error (left) and validation error (right) per epoch, as He et al. 2015 Fig. 1."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    groups = sorted({c.colour_group for c in curves}, key=lambda g: (len(g), g))
    colours = {g: plt.cm.tab10(i % 10) for i, g in enumerate(groups)}
    for curve in sorted(curves, key=lambda c: c.label):
        style = dict(
            color=colours[curve.colour_group],
            linestyle="--" if curve.dashed else "-",
            marker=".",
            label=f"{curve.label} (n={curve.runs})",
        )
        for ax, points in zip(axes, (curve.train, curve.val)):
            if points:
                ax.plot([p[0] for p in points], [100 * p[1] for p in points], **style)
    for ax, what in zip(axes, ("training error (each epoch's running mean)", "validation error")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{what}, %")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle(title)
    return figure


def pareto_figure(pareto: ParetoSet, groups: Dict[str, str], colour_key: str):
    """The first objective (y) against each other objective (x), one panel each: every scored
    trial grey, the front's members coloured by `groups` (trial id -> `colour_key`'s value),
    error bars where a trial's executions give a std; with two objectives, the front joined by
    the step line of what it dominates."""
    others = list(range(1, len(pareto.objectives)))
    figure, axes = plt.subplots(1, len(others), figsize=(6 * len(others), 4.5), squeeze=False)
    members = {trial.trial_id for trial in pareto.front}
    colours = {g: plt.cm.tab10(i % 10) for i, g in enumerate(sorted(set(groups.values())))}
    for ax, other in zip(axes[0], others):
        rest = [t for t in pareto.scored if t.trial_id not in members]
        draw_trials(ax, rest, other, "0.65", "dominated")
        for group, colour in colours.items():
            chosen = [t for t in pareto.front if groups.get(t.trial_id) == group]
            draw_trials(ax, chosen, other, colour, f"front: {group}")
        if len(others) == 1:
            draw_steps(ax, pareto, other)
        spec, first = pareto.objectives[other], pareto.objectives[0]
        ax.set_xlabel(f"{spec.name} ({spec.direction})")
        ax.set_ylabel(f"{first.name} ({first.direction})")
        if spec.name in LOG_SCALED and all(t.values[other] > 0 for t in pareto.scored):
            log_axis(ax.xaxis)
        ax.grid(alpha=0.3)
    axes[0][0].legend(title=colour_key, fontsize="small")
    spread = any(std is not None for t in pareto.scored for std in t.stds)
    figure.suptitle(
        f"Pareto set: {len(pareto.front)} of {len(pareto.scored)} scored trials on the front"
        + ("\n(error bars: std over a trial's executions)" if spread else ""),
        fontsize="medium",
    )
    return figure


def log_axis(axis) -> None:
    """A log-scaled axis labelled at 1, 2 and 5 of each decade in engineering units (200k, 1M):
    matplotlib's default labels every minor tick over a decade or two, and they overlap."""
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(EngFormatter(sep=""))
    axis.set_minor_formatter(NullFormatter())


def draw_trials(ax, trials: List[ScoredTrial], other: int, colour, label: str) -> None:
    """The trials at (objective `other`, first objective), with their stds as error bars."""
    if not trials:
        return

    def spread(index: int):
        stds = [t.stds[index] or 0.0 for t in trials]
        return stds if any(stds) else None

    ax.errorbar(
        [t.values[other] for t in trials],
        [t.values[0] for t in trials],
        xerr=spread(other),
        yerr=spread(0),
        fmt="o",
        color=colour,
        ecolor=colour,
        alpha=0.85,
        capsize=3,
        label=label,
    )


def draw_steps(ax, pareto: ParetoSet, other: int) -> None:
    """The two-objective front joined as the boundary of what it dominates, members in x order:
    with x minimised a member is the best there is from its own x to the next member's (the
    step follows the point: steps-post); with x maximised, from the previous member's x up to
    its own (steps-pre)."""
    front = sorted(pareto.front, key=lambda t: t.values[other])
    ascending = pareto.objectives[other].direction == "min"
    ax.plot(
        [t.values[other] for t in front],
        [t.values[0] for t in front],
        "k--",
        drawstyle="steps-post" if ascending else "steps-pre",
        linewidth=1,
        label="Pareto front",
    )
