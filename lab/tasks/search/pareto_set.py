"""A sweep's Pareto set over `search.objectives`: the scored trials that no other scored trial
beats on every objective, and the hypervolume they dominate after each trial (trial order) and at
the end, measured from each objective's `reference` where the config sets one, else from the
scored trials' worst values (`lab.stats.pareto.default_reference`). summary.md's section, the
parent's pareto.png and `search.register_as`'s aliases read it; the parent's `hypervolume` curve
and `pareto_size` are logged here.

A trial counts when its latest run is scored (`records.scored`), not pruned, trained
(`lab.training.trained`) and holds every objective's `objective.NAME` metric (and, over several
executions, `objective_std.NAME`: `records.OBJECTIVE_PREFIX`, `OBJECTIVE_STD_PREFIX`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mlflow.entities import Metric, Run

from lab.config import ObjectiveSpec, SearchConfig
from lab.stats.pareto import default_reference, hypervolume_history, on_front
from lab.tasks.search.ranking import best_first, trial_order
from lab.tasks.search.records import OBJECTIVE_PREFIX, OBJECTIVE_STD_PREFIX, scored
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import PRUNED_TAG
from lab.training.trained import trained

# On the parent: the hypervolume after the k-th trial (step k), and the front's size.
HYPERVOLUME_METRIC = "hypervolume"
SIZE_METRIC = "pareto_size"


@dataclass(frozen=True)
class ScoredTrial:
    """A trial on every objective: its values and their std over executions (None where the
    trial has one execution, or the objective is a cost), in `search.objectives`' order."""

    trial_id: str
    run: Run
    values: Tuple[float, ...]
    stds: Tuple[Optional[float], ...]

    def axis(self, name: str) -> str:
        """The trial's value of the axis `name` (its run's `hp.NAME` param; "" where inactive)."""
        return self.run.data.params.get(f"hp.{name}", "")


@dataclass(frozen=True)
class ParetoSet:
    """The sweep's scored trials and its front.

    Attributes:
        objectives: `search.objectives`, the ranking one first.
        axes: the names of the sweep's axes (the front table's last columns).
        trials: how many trials the sweep has (the hypervolume's steps).
        scored: the trials scored on every objective, in trial order.
        front: those no other beats, best first objective first (ties: the earlier trial).
        reference: the hypervolume's reference point, one value per objective.
        history: the hypervolume after each of the sweep's trials, in trial order.
        unscored: trials whose run is scored but lacks an `objective.NAME` metric.
    """

    objectives: List[ObjectiveSpec]
    axes: List[str]
    trials: int
    scored: List[ScoredTrial]
    front: List[ScoredTrial]
    reference: List[float]
    history: List[float]
    unscored: List[str]

    @property
    def directions(self) -> List[str]:
        return [spec.direction for spec in self.objectives]

    @property
    def hypervolume(self) -> float:
        """The final hypervolume (0 without a scored trial)."""
        return self.history[-1] if self.history else 0.0


def counts(run: Run) -> bool:
    """Whether a trial's run is one the front is drawn from: scored, not pruned, trained."""
    return scored(run) and PRUNED_TAG not in run.data.tags and trained(run.data.tags)


def scored_trial(trial_id: str, run: Run, objectives: List[ObjectiveSpec]) -> Optional[ScoredTrial]:
    """The trial's objective values from its run, or None where one is missing."""
    metrics = run.data.metrics
    names = [spec.name for spec in objectives]
    if any(OBJECTIVE_PREFIX + name not in metrics for name in names):
        return None
    return ScoredTrial(
        trial_id,
        run,
        tuple(float(metrics[OBJECTIVE_PREFIX + name]) for name in names),
        tuple(metrics.get(OBJECTIVE_STD_PREFIX + name) for name in names),
    )


def reference_point(
    objectives: List[ObjectiveSpec], points: List[Tuple[float, ...]]
) -> List[float]:
    """Each objective's `reference` where set, else the default over `points` (NaN without any)."""
    directions = [spec.direction for spec in objectives]
    default = default_reference(points, directions) if points else [float("nan")] * len(objectives)
    return [
        spec.reference if spec.reference is not None else fallback
        for spec, fallback in zip(objectives, default)
    ]


def pareto_set(
    search_cfg: SearchConfig, children: Dict[str, Run], trial_ids: Optional[Sequence[str]] = None
) -> Optional[ParetoSet]:
    """The sweep's Pareto set, or None for a sweep with one objective.

    Args:
        search_cfg: the sweep's config (`search.objectives`, `search.space`).
        children: every trial's latest run by trial id.
        trial_ids: the sweep's trials (default: those of `children`); the hypervolume has one
            step per trial, in trial order, a trial that did not count adding nothing.

    Returns:
        The scored trials, the front, the reference point and the hypervolume after each trial.
    """
    if not search_cfg.several_objectives:
        return None
    objectives = search_cfg.objective_list()
    order = sorted(children if trial_ids is None else trial_ids, key=trial_order)
    found = scored_trials(objectives, children, order)
    trials = [trial for trial in found.values() if trial is not None]
    directions = [spec.direction for spec in objectives]
    reference = reference_point(objectives, [t.values for t in trials])
    points = [found[trial].values if found.get(trial) else None for trial in order]
    return ParetoSet(
        objectives,
        [axis.name for axis in search_cfg.space],
        len(order),
        trials,
        front_of(trials, directions),
        reference,
        hypervolume_history(points, directions, reference) if trials else [0.0] * len(order),
        [trial for trial, value in found.items() if value is None],
    )


def front_of(trials: List[ScoredTrial], directions: List[str]) -> List[ScoredTrial]:
    """The trials no other beats on every objective, best first objective first (ties: the
    earlier trial)."""
    mask = on_front([t.values for t in trials], directions) if trials else []
    members = {t.trial_id: t for t, member in zip(trials, mask) if member}
    ranked = best_first({t: members[t].values[0] for t in members}, directions[0])
    return [members[t] for t in ranked]


def front_ids(search_cfg: SearchConfig, children: Dict[str, Run]) -> List[str]:
    """The ids of the Pareto set's trials, as `pareto_set` finds them, without its hypervolume
    history (a sweep asks this after every trial, to keep their models)."""
    objectives = search_cfg.objective_list()
    found = scored_trials(objectives, children, sorted(children, key=trial_order))
    trials = [trial for trial in found.values() if trial is not None]
    return [t.trial_id for t in front_of(trials, [spec.direction for spec in objectives])]


def scored_trials(
    objectives: List[ObjectiveSpec], children: Dict[str, Run], order: Sequence[str]
) -> Dict[str, Optional[ScoredTrial]]:
    """Each trial of `order` whose run counts (`counts`), by id: its scored values, or None where
    it lacks an objective."""
    return {
        trial: scored_trial(trial, children[trial], objectives)
        for trial in order
        if trial in children and counts(children[trial])
    }


def log_pareto(parent: TrackedRun, pareto: ParetoSet) -> None:
    """The parent's `hypervolume` after each trial (step k: the k-th trial in trial order, from 1)
    and `pareto_size`, in one request."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(HYPERVOLUME_METRIC, value, now, step)
        for step, value in enumerate(pareto.history, start=1)
    ]
    metrics.append(Metric(SIZE_METRIC, float(len(pareto.front)), now, 0))
    parent.client.log_batch(parent.run_id, metrics=metrics)
