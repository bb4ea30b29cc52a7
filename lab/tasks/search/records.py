"""A sweep's runs in MLflow: one parent run per `search.name` (its tags, params, config and
fingerprint), one child run per attempt at a trial, and the execution runs nested in a child; what
they record (objectives, pruned trials, the models kept) and how they are closed and cleaned up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lab import runtime
from lab.config import Checkpoint, RunConfig, SearchConfig, TunerName
from lab.config.overrides import config_yaml, run_params
from lab.tasks.search import continuation
from lab.tasks.search.identity import digest, fingerprint, write_record
from lab.tasks.search.ranking import best_first
from lab.tracking.logged_models import delete_model
from lab.tracking.runs import TrackedRun, experiment_id
from lab.tracking.tags import (
    ATTEMPT_TAG,
    CHILD,
    EXECUTION,
    FINGERPRINT_TAG,
    MODEL_DELETED_TAG,
    MODEL_URI_TAG,
    PARENT,
    PRUNED_TAG,
    ROLE_TAG,
    SEARCH_TAG,
    TASK_TAG,
    TRIAL_TAG,
)
from lab.training.budgets import BUDGETED_COSTS
from lab.training.trained import trained

# a trial's score as its oracle got it (the mean over executions)
OBJECTIVE_METRIC = "trial_objective"
# with `search.objectives`: each objective's value over a trial's executions, and its spread
OBJECTIVE_PREFIX = "objective."
OBJECTIVE_STD_PREFIX = "objective_std."
# a pruned trial's objective where it stopped (scores nothing)
PRUNED_OBJECTIVE = "pruned_objective"
# on a trial whose logged model was deleted: why, and its size


def find_runs(client: MlflowClient, experiment: str, **tags: str) -> List[Run]:
    """The runs of `experiment` carrying every `lab.<key>` tag of `tags` with its value."""
    query = " and ".join(f"tags.`lab.{key}` = '{value}'" for key, value in tags.items())
    return client.search_runs([experiment], filter_string=query)


def find_parent(run_cfg: RunConfig) -> Optional[Run]:
    """The parent run of an earlier sweep with this name (to resume it); None for a new sweep."""
    client = MlflowClient(run_cfg.tracking.uri)
    experiment = experiment_id(client, run_cfg.tracking.experiment, run_cfg.tracking.uri)
    runs = find_runs(client, experiment, role=PARENT, search=run_cfg.search.name)
    return runs[0] if runs else None


def scored(run: Run) -> bool:
    """Whether a trial's run FINISHED with its objective recorded (not pruned, not failed)."""
    return run.info.status == "FINISHED" and OBJECTIVE_METRIC in run.data.metrics


def oracle_metrics(search: SearchConfig, metrics: Dict[str, float]) -> Dict[str, float]:
    """What the oracle gets for a scored trial, from its run's metrics: {search.objective: score};
    with objectives listed or an Optuna study, also each objective (`objective.<name>`) and the
    costs the budgets limit, where recorded."""
    told = {search.objective: metrics[OBJECTIVE_METRIC]}
    if not search.objectives and search.tuner is not TunerName.optuna:
        return told
    for objective in search.objective_list()[1:]:
        if OBJECTIVE_PREFIX + objective.name in metrics:
            told[objective.name] = metrics[OBJECTIVE_PREFIX + objective.name]
    told.update({cost: metrics[cost] for cost in BUDGETED_COSTS if cost in metrics})
    return told


def attempt_number(run: Run) -> int:
    """Which attempt at its trial a child run is (1 for the first)."""
    return int(run.data.tags.get(ATTEMPT_TAG, "1"))


def parent_tags(run_cfg: RunConfig) -> Dict[str, str]:
    """The parent run's tags: its role, the sweep's name and fingerprint, and provenance."""
    return {
        ROLE_TAG: PARENT,
        SEARCH_TAG: run_cfg.search.name,
        TASK_TAG: "search",
        FINGERPRINT_TAG: digest(fingerprint(run_cfg)),
        **runtime.provenance_tags(),
    }


def begin_record(run_cfg: RunConfig, parent: TrackedRun, folder: Path) -> None:
    """A new sweep's parent: its params, config and fingerprint; the tuner folder's record of it."""
    parent.log_params(
        {
            key: value
            for key, value in run_params(run_cfg).items()
            if key.startswith(("search.", "data.", "train."))
        }
    )
    parent.log_params({"seed": run_cfg.seed, "search.base_model": run_cfg.model.name})
    parent.log_text(config_yaml(run_cfg), "config.yaml")
    definition = fingerprint(run_cfg)
    parent.log_text(json.dumps(definition, indent=1), "fingerprint.json")
    write_record(folder, parent.run_id, definition)


def artifact_path(client: MlflowClient, run_id: str, name: str) -> str:
    """A local path for a file store's artifact, else its URI."""
    uri = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{name}"
    return uri[len("file://") :] if uri.startswith("file://") else uri


class SweepRecords:
    """The sweep's child runs, found through its parent run: read, closed and cleaned up. A part
    of `lab.tasks.search.sweep.Sweep`, which holds the two attributes below and `front_members`
    (the Pareto set's trials: `pareto_set.py` reads this module's names, so it is not imported
    here)."""

    run_cfg: RunConfig
    parent: TrackedRun

    def attempts_of(self, trial_id: str) -> List[Run]:
        """Every run of one trial, first attempt first."""
        runs = find_runs(
            self.parent.client,
            self.parent.experiment_id,
            role=CHILD,
            parent=self.parent.run_id,
            trial=trial_id,
        )
        return sorted(runs, key=attempt_number)

    def every_attempt(self) -> List[Run]:
        """Every run of every trial (killed and failed attempts too)."""
        return find_runs(
            self.parent.client, self.parent.experiment_id, role=CHILD, parent=self.parent.run_id
        )

    def children(self) -> Dict[str, Run]:
        """Every trial's latest attempt by trial id, in one query."""
        latest: Dict[str, Run] = {}
        for run in sorted(self.every_attempt(), key=attempt_number):
            latest[run.data.tags[TRIAL_TAG]] = run
        return latest

    def recorded_objectives(self, children: Dict[str, Run]) -> Dict[str, float]:
        """{trial id: objective} of the trials whose latest attempt FINISHED and recorded its
        objective, among `children` (`self.children()`)."""
        return {
            trial: run.data.metrics[OBJECTIVE_METRIC]
            for trial, run in children.items()
            if scored(run)
        }

    def recorded_oracle_metrics(self, children: Dict[str, Run]) -> Dict[str, Dict[str, float]]:
        """{trial id: what its oracle got (`oracle_metrics`)} of the scored trials among `children`."""
        search = self.run_cfg.search
        return {
            trial: oracle_metrics(search, run.data.metrics)
            for trial, run in children.items()
            if scored(run)
        }

    def recorded_pruned(self, children: Dict[str, Run]) -> Dict[str, float]:
        """{trial id: objective where it stopped} of the trials whose latest attempt was pruned,
        among `children` (`self.children()`)."""
        return {
            trial: run.data.metrics.get(PRUNED_OBJECTIVE, float("nan"))
            for trial, run in children.items()
            if run.info.status == "FINISHED" and PRUNED_TAG in run.data.tags
        }

    def kept_models(self, children: Optional[Dict[str, Run]] = None) -> List[str]:
        """The trial ids whose model stays logged: the best `search.keep_models` of those whose
        latest attempt FINISHED with a model (all of them with keep_models=null), and with several
        objectives each member of the trials' Pareto set (`Sweep.front_members`).

        Args:
            children: `self.children()` where the caller has it already.

        Returns:
            The kept trials' ids, best first (`lab.tasks.search.ranking`).
        """
        search = self.run_cfg.search
        children = self.children() if children is None else children
        with_model = {
            trial: score
            for trial, score in self.recorded_objectives(children).items()
            if MODEL_URI_TAG in children[trial].data.tags and trained(children[trial].data.tags)
        }
        ranked = best_first(with_model, search.direction)
        kept = ranked if search.keep_models is None else ranked[: search.keep_models]
        if search.several_objectives:  # and the Pareto set's members, best first
            front = self.front_members(children)
            kept += [trial for trial in ranked if trial in front and trial not in kept]
        return kept

    def delete_fallen_models(self) -> None:
        """Deletes the `model/` of every finished trial (and of its executions) that is no longer
        among the best `search.keep_models`. Safe with several workers: the finished trials and
        their scores only grow, so a trial out of the best in one view is out in every later one."""
        if (
            self.run_cfg.search.keep_models is None
            or self.run_cfg.train.checkpoint is Checkpoint.none
        ):
            return
        children = self.children()
        kept = set(self.kept_models(children))
        for trial, run in children.items():
            if (
                trial in kept
                or MODEL_URI_TAG not in run.data.tags
                or run.info.status != "FINISHED"
                or MODEL_DELETED_TAG in run.data.tags
            ):
                continue
            self.delete_models_of(run)

    def delete_models_of(self, run: Run) -> None:
        """Deletes the model of a trial's run and of its executions, and tags the run why."""
        client = self.parent.client
        executions = find_runs(
            client, self.parent.experiment_id, role=EXECUTION, parent=run.info.run_id
        )
        for holder in [run, *executions]:
            delete_model(client, holder.info.run_id)
        client.set_tag(
            run.info.run_id,
            MODEL_DELETED_TAG,
            f"fell out of the best search.keep_models={self.run_cfg.search.keep_models} "
            f"({int(run.data.metrics.get('model_bytes', 0)):,} bytes)",
        )

    def close_stale_children(self) -> None:
        """Children a killed process left RUNNING are closed KILLED (their trial will be retried)."""
        for run in self.children().values():
            if run.info.status == "RUNNING":
                self.close_killed(run)

    def close_killed(self, attempt: Run) -> None:
        """A trial attempt whose process died, and its executions that were running, closed KILLED."""
        client = self.parent.client
        for execution in find_runs(
            client, self.parent.experiment_id, role=EXECUTION, parent=attempt.info.run_id
        ):
            if execution.info.status == "RUNNING":
                client.set_terminated(execution.info.run_id, "KILLED")
        client.set_terminated(attempt.info.run_id, "KILLED")

    def delete_continuation_states(self) -> None:
        """At the sweep's end: every training state still kept is deleted (a promoted trial that
        failed, a process that died before deleting) and the bytes freed logged on the parent
        (`continuation_bytes_deleted`)."""
        states, size = continuation.delete_states(
            self.parent.client, self.every_attempt(), "deleted when the sweep ended"
        )
        if states:
            self.parent.log_metrics(
                {"continuation_bytes_deleted": size, "continuation_states_deleted": states}
            )
