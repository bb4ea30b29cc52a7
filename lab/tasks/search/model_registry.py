"""`search.register_as`: the sweep's best trial's kept model in MLflow's model registry (alias
`best`), tagged with the sweep, trial and run it came from and its objective."""

from __future__ import annotations

from mlflow.entities import Run

from lab.config import RunConfig
from lab.errors import LabError
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import (
    MODEL_URI_TAG,
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


def say_nothing_registered(name: str) -> None:
    """`search.register_as=name` with no trial trained to the end: said, nothing registered."""
    print(
        f"search.register_as={name}: nothing registered, no trial trained to the end "
        "(trials.csv on the parent says why each did not)",
        flush=True,
    )
