"""`search.register_as`: the sweep's best trial's kept model in MLflow's model registry (alias
`best`), tagged with the sweep, trial and run it came from and its objective. With several
objectives, every member of the Pareto set whose model was kept, each tagged with its value on
every objective; aliases name the best on the first objective (`best`), the best on each
(`best_<name>`) and, per cost, the one best on it within a point of the best first objective
(`best_<cost>_within_1pt`)."""

from __future__ import annotations

import re
from typing import Dict, List, Sequence

from mlflow.entities import Run

from lab.config import COSTS, ObjectiveSpec, RunConfig
from lab.errors import LabError
from lab.tasks.search.pareto_set import ParetoSet, ScoredTrial
from lab.tasks.search.ranking import best_first
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import (
    MODEL_URI_TAG,
    OBJECTIVE_OF_TAG,
    OBJECTIVE_TAG,
    OBJECTIVE_VALUE_TAG,
    PARENT_TAG,
    REGISTERED_MODEL_TAG,
    RUN_TAG,
    SEARCH_TAG,
    TRIAL_TAG,
)


def register_best(
    run_cfg: RunConfig, parent: TrackedRun, best_child: Run, best_value: float
) -> None:
    """Registers the best trial's kept model as `search.register_as` (alias `best`), says so and
    tags the parent with the version (`lab.registered_model`).

    Args:
        run_cfg: the sweep's config; `search.register_as` names the registered model.
        parent: the sweep's parent run.
        best_child: the best trial's run.
        best_value: its objective.

    Raises:
        LabError: the best trial's run has no model.
    """
    from lab.tracking.logged_models import BEST_ALIAS, register_model

    name, search_cfg = run_cfg.search.register_as, run_cfg.search
    model_uri = best_child.data.tags.get(MODEL_URI_TAG)
    if model_uri is None:
        raise LabError(
            f"search.register_as={name}: the best trial's run {best_child.info.run_id} has no model"
        )
    tags = {
        SEARCH_TAG: search_cfg.name,
        PARENT_TAG: parent.run_id,
        TRIAL_TAG: best_child.data.tags[TRIAL_TAG],
        RUN_TAG: best_child.info.run_id,
        OBJECTIVE_TAG: search_cfg.objective,
        OBJECTIVE_VALUE_TAG: f"{best_value:.6g}",
    }
    version = register_model(run_cfg.tracking.uri, model_uri, name, tags)
    parent.set_tags({REGISTERED_MODEL_TAG: f"models:/{name}/{version}"})
    print(
        f"registered the best trial's model as models:/{name}@{BEST_ALIAS} (version {version})",
        flush=True,
    )


def say_nothing_registered(
    name: str,
    why: str = "no trial trained to the end (trials.csv on the parent says why each did not)",
) -> None:
    """`search.register_as=name` with no model to register: said (by default, no trial trained
    to the end), nothing registered."""
    print(f"search.register_as={name}: nothing registered, {why}", flush=True)


# `best_<cost>_within_1pt`: within one point (0.01) of the best accuracy, or 1% of the best loss.
WITHIN_POINT = 0.01


def alias_name(*parts: str) -> str:
    """An MLflow alias of `parts` joined by "_", in letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def near_best(spec: ObjectiveSpec, best: float, value: float) -> bool:
    """Whether `value` of the first objective is within a point of `best`: 0.01 below an
    accuracy's best, or 1% above a loss's."""
    if spec.direction == "max":
        return value >= best - WITHIN_POINT
    return value <= best + WITHIN_POINT * abs(best)


def front_aliases(pareto: ParetoSet, members: List[ScoredTrial]) -> Dict[str, str]:
    """{alias: trial id} among `members` (the front's trials that are registered): `best` (the
    best first objective), `best_<name>` per objective, and per cost `best_<cost>_within_1pt`
    among the members within a point of the front's best first objective (`near_best`); ties go
    to the earlier trial (`ranking.best_first`).

    Example: a front (0.90, 9e6 MACs), (0.895, 4e6), (0.80, 1e6) for [val_accuracy, macs] gives
    best = best_val_accuracy = the first, best_macs = the third, best_macs_within_1pt = the
    second."""
    from lab.tracking.logged_models import BEST_ALIAS

    specs = pareto.objectives

    def best_on(index: int, trials: List[ScoredTrial]) -> str:
        values = {t.trial_id: t.values[index] for t in trials}
        return best_first(values, specs[index].direction)[0]

    if not members:
        return {}
    aliases = {alias_name("best", s.name): best_on(i, members) for i, s in enumerate(specs)}
    aliases = {BEST_ALIAS: aliases[alias_name("best", specs[0].name)], **aliases}
    near = [t for t in members if near_best(specs[0], pareto.front[0].values[0], t.values[0])]
    for index, spec in enumerate(specs):
        if spec.name in COSTS and near:
            aliases[alias_name("best", spec.name, "within_1pt")] = best_on(index, near)
    return aliases


def front_tags(
    run_cfg: RunConfig, parent: TrackedRun, pareto: ParetoSet, trial: ScoredTrial
) -> Dict[str, str]:
    """A front member's version tags: the sweep, trial and run, the ranking objective and its
    value as `register_best` writes them, and the member's value on every objective."""
    search_cfg = run_cfg.search
    return {
        SEARCH_TAG: search_cfg.name,
        PARENT_TAG: parent.run_id,
        TRIAL_TAG: trial.trial_id,
        RUN_TAG: trial.run.info.run_id,
        OBJECTIVE_TAG: search_cfg.objective,
        OBJECTIVE_VALUE_TAG: f"{trial.values[0]:.6g}",
        **{
            OBJECTIVE_OF_TAG.format(spec.name): f"{value:.6g}"
            for spec, value in zip(pareto.objectives, trial.values)
        },
    }


def register_front(
    run_cfg: RunConfig, parent: TrackedRun, pareto: ParetoSet, kept: Sequence[str]
) -> None:
    """Registers each member of the Pareto set whose model was kept as a version of
    `search.register_as` (`front_tags`), points the aliases of `front_aliases` at them, says so,
    and tags the parent with the `best` version (`lab.registered_model`). A member without a
    kept model is named, not registered.

    Args:
        run_cfg: the sweep's config; `search.register_as` names the registered model.
        parent: the sweep's parent run.
        pareto: the sweep's Pareto set (`pareto_set.pareto_set`).
        kept: the trials whose model is kept (`Sweep.kept_models`).
    """
    from mlflow.tracking import MlflowClient

    from lab.tracking.logged_models import BEST_ALIAS, register_model

    name, uri = run_cfg.search.register_as, run_cfg.tracking.uri
    members = [t for t in pareto.front if t.trial_id in kept and MODEL_URI_TAG in t.run.data.tags]
    left = [t.trial_id for t in pareto.front if t.trial_id not in {m.trial_id for m in members}]
    if left:
        print(
            f"search.register_as={name}: Pareto set trial(s) {', '.join(left)} not registered: "
            "no kept model",
            flush=True,
        )
    if not members:
        return say_nothing_registered(name, "no member of the Pareto set kept its model")
    versions = {
        t.trial_id: register_model(
            uri, t.run.data.tags[MODEL_URI_TAG], name, front_tags(run_cfg, parent, pareto, t)
        )
        for t in members
    }
    aliases = front_aliases(pareto, members)
    client = MlflowClient(uri, registry_uri=uri)
    for alias, trial in aliases.items():  # after every version: register_model moves `best`
        client.set_registered_model_alias(name, alias, versions[trial])
    parent.set_tags({REGISTERED_MODEL_TAG: f"models:/{name}/{versions[aliases[BEST_ALIAS]]}"})
    print(
        f"registered the Pareto set's {len(members)} kept models as models:/{name} ("
        + ", ".join(f"trial {trial}: version {version}" for trial, version in versions.items())
        + "); aliases "
        + ", ".join(f"@{alias} = trial {trial}" for alias, trial in aliases.items()),
        flush=True,
    )
