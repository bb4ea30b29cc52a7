"""The comparison plots a sweep's parent run holds (PNG, matplotlib's Agg backend):
the degradation plot (objective vs depth, one colour per connectivity), objective vs parameters
and vs MACs with the Pareto front marked, and every trial's validation curve overlaid."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Point = Tuple[float, float]


def pareto_front(points: Sequence[Point]) -> List[Point]:
    """Points (cost, score) that no other point beats on both: cheaper-or-equal and better-or-equal."""
    front, best = [], float("-inf")
    for cost, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((cost, score))
            best = score
    return front


def scatter_by(ax, trials: List[Dict], x: str, colour_key: str, objective: str) -> None:
    for group in sorted({t[colour_key] for t in trials}):
        chosen = [t for t in trials if t[colour_key] == group]
        ax.scatter([t[x] for t in chosen], [t["objective"] for t in chosen], label=group, alpha=0.8)
    ax.set_ylabel(objective)
    ax.legend(title=colour_key, fontsize="small")
    ax.grid(alpha=0.3)


def degradation_figure(trials: List[Dict], objective: str):
    figure, ax = plt.subplots(figsize=(6, 4))
    scatter_by(ax, trials, "depth", "connectivity", objective)
    ax.set_xlabel("depth (weighted layers on the longest path)")
    ax.set_title(f"{objective} vs depth")
    return figure


def cost_figure(trials: List[Dict], cost: str, objective: str):
    figure, ax = plt.subplots(figsize=(6, 4))
    scatter_by(ax, trials, cost, "connectivity", objective)
    front = pareto_front([(t[cost], t["objective"]) for t in trials])
    # Circled and joined, so a front of a single point still shows.
    ax.plot([p[0] for p in front], [p[1] for p in front], "k--", drawstyle="steps-post", marker="o",
            markersize=11, markerfacecolor="none", label="Pareto front")
    ax.legend(title="connectivity", fontsize="small")
    ax.set_xscale("log")
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
