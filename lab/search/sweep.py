"""A keras-tuner sweep recorded in MLflow: one parent run per `search.name`, one child per trial.

keras-tuner drives the search (its oracles: random, grid, Bayesian, Hyperband) and keeps its
state in `search.directory/search.name`, so re-running the same name resumes: completed trials
are not re-run and the trial a killed process left running is retried. A trial is the normal
training path: its values become config overrides and `fit_and_evaluate` trains and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import keras
import keras_tuner as kt
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lab.config import RunConfig, TunerName, to_run_config
from lab.data import Splits
from lab.search.space import apply_overrides, space_of, trial_overrides
from lab.tracking import tracked_run
from lab.tracking.params import flatten
from lab.tracking.runs import TrackedRun, experiment_id

PARENT, CHILD = "parent", "trial"


def make_oracle(cfg: RunConfig) -> kt.Oracle:
    search = cfg.search
    common = dict(objective=kt.Objective(search.objective, search.direction), seed=cfg.seed,
                  hyperparameters=space_of(search.space), max_consecutive_failed_trials=search.max_consecutive_failed_trials)
    if search.tuner is TunerName.hyperband:
        return kt.oracles.HyperbandOracle(max_epochs=search.max_epochs, factor=search.factor, **common)
    oracles = {TunerName.random: kt.oracles.RandomSearchOracle, TunerName.grid: kt.oracles.GridSearchOracle,
               TunerName.bayesian: kt.oracles.BayesianOptimizationOracle}
    return oracles[search.tuner](max_trials=search.max_trials, **common)


def find_runs(client: MlflowClient, experiment: str, **tags: str):
    query = " and ".join(f"tags.`lab.{key}` = '{value}'" for key, value in tags.items())
    return client.search_runs([experiment], filter_string=query)


@dataclass
class Sweep:
    """What every trial shares: the base config, the data (loaded once), the parent run."""

    cfg: DictConfig
    run_cfg: RunConfig
    splits: Splits
    parent: TrackedRun

    def child_of(self, trial_id: str) -> Optional[str]:
        runs = find_runs(self.parent.client, self.parent.experiment_id, role=CHILD, parent=self.parent.run_id,
                         trial=trial_id)
        return runs[0].info.run_id if runs else None

    def children(self) -> Dict[str, Run]:
        """Every child run of this sweep by trial id, in one query."""
        runs = find_runs(self.parent.client, self.parent.experiment_id, role=CHILD, parent=self.parent.run_id)
        return {run.data.tags["lab.trial"]: run for run in runs}

    def close_stale_children(self) -> None:
        """Children a killed process left RUNNING are closed KILLED (their trial will be retried)."""
        for run in self.children().values():
            if run.info.status == "RUNNING":
                self.parent.client.set_terminated(run.info.run_id, "KILLED")

    def run_trial(self, trial: kt.engine.trial.Trial) -> Dict[str, float]:
        from lab.training.train import fit_and_evaluate  # noqa: PLC0415

        hp = trial.hyperparameters
        overrides = trial_overrides(hp, self.run_cfg.search.space)
        if "tuner/epochs" in hp.values:  # Hyperband's budget for this trial (trained from scratch)
            overrides["train.epochs"] = int(hp.get("tuner/epochs"))
        trial_cfg = apply_overrides(self.cfg, overrides)
        trial_run_cfg = to_run_config(trial_cfg)
        tags = {"lab.role": CHILD, "lab.parent": self.parent.run_id, "lab.trial": trial.trial_id,
                "lab.task": "search"}
        name = f"{self.run_cfg.search.name}-trial-{trial.trial_id}"
        try:
            with tracked_run(self.run_cfg.tracking, name, tags, parent_run_id=self.parent.run_id,
                             resume_run_id=self.child_of(trial.trial_id)) as child:
                child.log_params({f"hp.{k}": v for k, v in hp.values.items()})
                child.log_params(flatten(OmegaConf.to_container(trial_cfg, resolve=True, enum_to_str=True)))
                result = fit_and_evaluate(trial_run_cfg, self.splits, child, max_params=self.run_cfg.search.max_params)
        except Exception as error:  # noqa: BLE001  (any failure fails this trial, not the sweep)
            raise kt.errors.FailedTrialError(f"{type(error).__name__}: {error}") from error
        objective = self.run_cfg.search.objective
        value = result.objective if objective == "val_accuracy" else result.history[objective][-1]
        return {objective: value}


class LabTuner(kt.Tuner):
    """keras-tuner's Tuner with the lab's trial: models are built and trained by the lab's own
    code, and each trial is an MLflow child run. Memory is freed between trials."""

    def __init__(self, oracle: kt.Oracle, sweep: Sweep, directory: str, project_name: str):
        self.sweep = sweep
        super().__init__(oracle, hypermodel=None, directory=directory, project_name=project_name, overwrite=False)

    def run_trial(self, trial, *args, **kwargs):
        return self.sweep.run_trial(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        free_memory()

    def save_model(self, trial_id, model, step=0):
        """Trials keep no checkpoints: their records are in MLflow; retrain the best spec to use it."""

    def load_model(self, trial):
        raise NotImplementedError("The lab does not keep trial models: retrain the best spec with task=train")


def free_memory() -> None:
    keras.backend.clear_session()
    if keras.backend.backend() == "jax":
        import jax  # noqa: PLC0415  (JAX only: its compiled-function caches grow per architecture)

        jax.clear_caches()


def open_parent(run_cfg: RunConfig) -> Optional[str]:
    """The parent run of an earlier sweep with this name, to resume it; None for a new sweep."""
    client = MlflowClient(run_cfg.tracking.uri)
    experiment = experiment_id(client, run_cfg.tracking.experiment, run_cfg.tracking.uri)
    runs = find_runs(client, experiment, role=PARENT, search=run_cfg.search.name)
    return runs[0].info.run_id if runs else None
