"""The figures a sweep's parent run holds, from its trials' records: objective vs depth, vs
parameters and vs MACs, every trial's objective curve, for an ablation the mean error curves per
compared value and, for several objectives, the Pareto set. `plots.py` draws them; this module
gathers their points from MLflow and logs them. matplotlib loads only when a figure is drawn."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lab.config import AblationConfig
from lab.tasks.search.pareto_set import ParetoSet
from lab.tasks.search.records import artifact_path
from lab.tasks.search.sweep import Sweep


def colour_value(run: Run, key: str) -> str:
    """A trial run's value for `key`: a param (`model.connectivity`, `hp.variant`) or a metric (`depth`)."""
    if key in run.data.params:
        return run.data.params[key]
    value = run.data.metrics.get(key)
    return "?" if value is None else f"{value:g}"


def log_plots(
    sweep: Sweep,
    rows: List[dict],
    children: Dict[str, Run],
    colour_key: str,
    pareto: Optional[ParetoSet] = None,
) -> Dict[str, str]:
    """Draws the sweep's figures and logs them on its parent run.

    Args:
        sweep: the sweep, its parent run included.
        rows: the trials' rows (`summary.trial_rows`).
        children: every trial's latest run by trial id.
        colour_key: what the points are coloured by (a param or metric of the trials' runs).
        pareto: a sweep with several objectives: its Pareto set (`pareto_set.pareto_set`).

    Returns:
        {name: where the file is}: objective_vs_depth.png, objective_vs_params.png,
        objective_vs_macs.png, curves.png, for an ablation error_curves.png and, with a Pareto
        set that scored a trial, pareto.png; {} when no trial has a score.
    """
    import matplotlib.pyplot as plt

    from lab.tasks.search import plots

    client, search_cfg = sweep.parent.client, sweep.run_cfg.search
    objective = search_cfg.objective
    trials, curves = scored_trials(sweep, rows, children, colour_key)
    if not trials:
        return {}
    figures = {
        "objective_vs_depth.png": plots.depth_figure(trials, colour_key, objective),
        "objective_vs_params.png": plots.cost_figure(trials, "params_total", colour_key, objective),
        "objective_vs_macs.png": plots.cost_figure(trials, "macs", colour_key, objective),
        "curves.png": plots.curves_figure(curves, objective),
    }
    if search_cfg.ablation is not None:
        figures["error_curves.png"] = plots.error_curves_figure(
            ablation_curves(client, search_cfg.ablation, rows, children),
            f"{search_cfg.name}: {search_cfg.ablation.source or 'ablation'}",
        )
    figures.update(pareto_figures(pareto, colour_key))
    for name, figure in figures.items():
        figure.tight_layout()
        client.log_figure(sweep.parent.run_id, figure, name)
        plt.close(figure)
    return {name: artifact_path(client, sweep.parent.run_id, name) for name in figures}


def pareto_figures(pareto: Optional[ParetoSet], colour_key: str) -> Dict[str, object]:
    """{"pareto.png": the figure} for a Pareto set that scored a trial, its front coloured by
    `colour_key`; {} otherwise."""
    from lab.tasks.search import plots

    if pareto is None or not pareto.scored:
        return {}
    groups = {t.trial_id: colour_value(t.run, colour_key) for t in pareto.scored}
    return {"pareto.png": plots.pareto_figure(pareto, groups, colour_key)}


def scored_trials(
    sweep: Sweep, rows: List[dict], children: Dict[str, Run], colour_key: str
) -> Tuple[List[dict], Dict[str, List[tuple]]]:
    """The points of the trials with a score and a run: ([{objective, depth, params_total, macs,
    colour_key: value}], {"trial ID": [(epoch, objective)]})."""
    client, objective = sweep.parent.client, sweep.run_cfg.search.objective
    trials, curves = [], {}
    for row in rows:
        child = children.get(row["trial_id"])
        if child is None or row["best_objective"] == "":
            continue
        metrics = child.data.metrics
        trials.append(
            {
                "objective": float(row["best_objective"]),
                "depth": metrics.get("depth", 0),
                "params_total": metrics.get("params_total", 0),
                "macs": metrics.get("macs", 0),
                colour_key: colour_value(child, colour_key),
            }
        )
        history = client.get_metric_history(child.info.run_id, objective)
        curves[f"trial {row['trial_id']}"] = [
            (m.step, m.value) for m in sorted(history, key=lambda m: m.step)
        ]
    return trials, curves


def mean_curve(client: MlflowClient, runs: List[Run], accuracy_key: str) -> List[tuple]:
    """[(epoch, 1 - mean accuracy over the runs)] for the epochs every run logged."""
    per_run = [
        {m.step: m.value for m in client.get_metric_history(r.info.run_id, accuracy_key)}
        for r in runs
    ]
    epochs = sorted(set.intersection(*(set(h) for h in per_run))) if per_run else []
    return [(epoch, 1 - sum(h[epoch] for h in per_run) / len(per_run)) for epoch in epochs]


def ablation_curves(
    client: MlflowClient, cfg: AblationConfig, rows: List[dict], children: Dict[str, Run]
):
    """One mean error curve per value of the ablation's axis, over its trained runs."""
    from lab.tasks.search import plots
    from lab.verdicts.ablation import usable

    by_value: Dict[str, List[Run]] = {}
    for row in usable(rows):
        if row["trial_id"] in children:
            by_value.setdefault(str(row[cfg.axis]), []).append(children[row["trial_id"]])
    style = cfg.curves
    curves = []
    for value, runs in by_value.items():
        group = colour_value(runs[0], style.colour_by) if style.colour_by else value
        dashed = style.dash_by is not None and colour_value(runs[0], style.dash_by) in style.dashed
        curves.append(
            plots.ErrorCurve(
                value,
                group,
                dashed,
                mean_curve(client, runs, "accuracy"),
                mean_curve(client, runs, "val_accuracy"),
                len(runs),
            )
        )
    return curves
