"""A keras-tuner sweep recorded in MLflow: one parent run per `search.name`, one child per trial.

keras-tuner drives the search (its oracles: random, grid, Bayesian, Hyperband) and keeps its
state in `search.directory/search.name`, so re-running the same name resumes: completed trials
are not re-run and the trial a killed process left running is retried. A trial is the normal
training path: its values become config overrides and `fit_and_evaluate` trains and logs it.

Here: `Sweep` (what every trial shares; its parts are the records in `records.py`, the trial's
training in `trials.py`, pruning in `pruning.py` and the memory watch in `progress.py`), the
oracle `search.tuner` names, and `LabTuner`, keras-tuner's tuner running the lab's trials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Set

import keras_tuner as kt
from mlflow.entities import Run

from lab.compat.keras_tuner import (
    BayesianOracle,
    HyperbandOracle,
    PacedOracleClient,
    RandomOracle,
    ResumableGridOracle,
    is_worker,
    nothing_left,
    oracle_behind_client,
    quiet_trial_tracebacks,
)
from lab.config import Role, RunConfig, TunerName
from lab.data import Splits
from lab.errors import LabError
from lab.tasks.search.distributed import serve
from lab.tasks.search.pareto_set import front_ids
from lab.tasks.search.plan import planned_trials
from lab.tasks.search.progress import MemoryWatch, progress_line
from lab.tasks.search.pruning import TrialPruning
from lab.tasks.search.records import SweepRecords
from lab.tasks.search.space import space_of
from lab.tasks.search.trials import TrialExecution
from lab.tracking.logged_models import load_logged_model
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import MODEL_URI_TAG
from lab.training.reuse import free_memory


@dataclass
class Sweep(SweepRecords, TrialExecution, TrialPruning, MemoryWatch):
    """What every trial shares: the base config, the data (loaded once), the parent run, and what
    this process learnt while it ran trials.

    Args:
        run_cfg: the sweep's config.
        splits: the data; None on a distributed chief, which trains nothing.
        parent: the sweep's parent run.
    """

    run_cfg: RunConfig
    splits: Optional[Splits]  # None on a distributed chief, which trains nothing
    parent: TrackedRun
    baseline_rss_mib: Optional[float] = None  # after this process's first trial
    fit_seconds: Dict[str, float] = field(default_factory=dict)  # per trial: the sum of its epochs
    # trial ids this process ended PRUNED (keras-tuner STOPPED)
    pruned: set = field(default_factory=set)
    # completed trials' epoch objective
    curves: Dict[str, Dict[int, float]] = field(default_factory=dict)

    def front_members(self, children: Dict[str, Run]) -> Set[str]:
        """The trials on the Pareto set of the sweep's objectives (`pareto_set.front_ids`; none
        with one objective): their models stay kept (`SweepRecords.kept_models`)."""
        search = self.run_cfg.search
        return set(front_ids(search, children)) if search.several_objectives else set()


def make_oracle(cfg: RunConfig) -> kt.Oracle:
    """The oracle of `search.tuner` for this process.

    Args:
        cfg: the sweep's config.

    Returns:
        The oracle, keeping trial owners on a chief that does not requeue running trials, and
        with a deadline `search.max_seconds` from now where one is set.
    """
    search = cfg.search
    oracle = new_oracle(cfg)
    oracle.keep_owners = (
        search.distributed.role is Role.chief and not search.distributed.requeue_running
    )
    if search.max_seconds is not None:  # this command's wall budget, from now
        oracle.deadline = time.monotonic() + search.max_seconds
    return oracle


def new_oracle(cfg: RunConfig) -> kt.Oracle:
    """A new oracle for `search.tuner` (an Optuna study's for `optuna`, seeds as needed for
    `search.ablation.looks`)."""
    search = cfg.search
    common = dict(
        objective=kt.Objective(search.objective, search.direction),
        seed=cfg.seed,
        hyperparameters=space_of(search.space),
        max_consecutive_failed_trials=search.max_consecutive_failed_trials,
    )
    if search.tuner is TunerName.hyperband:
        return HyperbandOracle(max_epochs=search.max_epochs, factor=search.factor, **common)
    if search.tuner is TunerName.optuna:
        from lab.tasks.search.optuna_oracle import OptunaOracle

        return OptunaOracle(search, **common)
    if search.ablation is not None and search.ablation.looks is not None:
        from lab.tasks.search.adaptive import AdaptiveSeedOracle

        return AdaptiveSeedOracle(search, **common)
    oracles = {
        TunerName.random: RandomOracle,
        TunerName.grid: ResumableGridOracle,
        TunerName.bayesian: BayesianOracle,
    }
    return oracles[search.tuner](max_trials=search.max_trials, **common)


class LabTuner(kt.Tuner):
    """keras-tuner's Tuner with the lab's trial: models are built and trained by the lab's own
    code, and each trial is an MLflow child run. Memory is freed between trials. In distributed
    mode (`search.distributed.role`), the chief serves the oracle and workers ask it for trials."""

    def __init__(self, oracle: kt.Oracle, sweep: Sweep, directory: str, project_name: str):
        quiet_trial_tracebacks()
        self.sweep = sweep
        self.trial_seconds: Dict[str, float] = {}  # keras-tuner's trial begin to end, this process
        self.trial_started = 0.0
        super().__init__(
            oracle, hypermodel=None, directory=directory, project_name=project_name, overwrite=False
        )
        if is_worker(self):  # keras-tuner wrapped the oracle in its gRPC client
            self.oracle = PacedOracleClient(
                oracle_behind_client(self.oracle),
                sweep.run_cfg.search.distributed.connect_timeout_s,
            )

    @property
    def role(self) -> Role:
        return self.sweep.run_cfg.search.distributed.role

    def search(self, *args, **kwargs):
        if self.role is not Role.chief:
            return super().search(*args, **kwargs)
        self.save()
        if nothing_left(self.oracle):  # a finished sweep: no worker would come to be told so
            print("every trial of this sweep has ended: reporting", flush=True)
            return
        serve(self.oracle, self.sweep.run_cfg.search.distributed)

    def run_trial(self, trial, *args, **kwargs):
        return self.sweep.run_trial(trial, self.tuner_id)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self.trial_started = time.perf_counter()
        if not is_worker(self):  # a worker's oracle is the chief's: it counts no trials
            print(
                progress_line(
                    len(self.oracle.trials),
                    planned_trials(self.sweep.run_cfg.search),
                    list(self.trial_seconds.values()),
                    trial.hyperparameters.values,
                ),
                flush=True,
            )

    def on_trial_end(self, trial):
        # STOPPED: keras-tuner's status for a trial stopped early (not scored).
        if trial.trial_id in self.sweep.pruned:
            trial.status = kt.engine.trial.TrialStatus.STOPPED
        trial.message = short_message(trial.message)
        super().on_trial_end(trial)
        self.trial_seconds[trial.trial_id] = time.perf_counter() - self.trial_started
        free_memory()
        if is_worker(self):  # the oracle is on the chief: count this worker's trials
            self.sweep.check_memory(len(self.trial_seconds), None, f"rss_mib/{self.tuner_id}")
        else:
            self.sweep.check_memory(len(self.oracle.trials), self.oracle.remaining_trials())

    def save_model(self, trial_id, model, step=0):
        """Each trial's run logs its model itself (`train.checkpoint`, `lab.tracking.logged_models`)."""

    def load_model(self, trial):
        """The trial's logged model (keras-tuner's `get_best_models`), while it is kept."""
        children = self.sweep.children()
        run = children.get(trial.trial_id)
        if (
            run is None
            or MODEL_URI_TAG not in run.data.tags
            or trial.trial_id not in self.sweep.kept_models(children)
        ):
            raise LookupError(
                f"trial {trial.trial_id} keeps no model (train.checkpoint=none, or it fell out of "
                f"the best search.keep_models={self.sweep.run_cfg.search.keep_models})"
            )
        return load_logged_model(run.data.tags[MODEL_URI_TAG], self.sweep.run_cfg.tracking.uri)


def lab_error_names(kind: type = LabError) -> set:
    """The class names of `kind` and of every error class derived from it."""
    names = {kind.__name__}
    for sub in kind.__subclasses__():
        names |= lab_error_names(sub)
    return names


def short_message(message: Optional[str]) -> Optional[str]:
    """A failed trial's traceback cut to its last line when the error is the lab's own (bad input,
    a budget, a loss gone NaN: the line says it all); any other error keeps its traceback, once."""
    if not message or not message.strip():
        return message
    last = message.strip().splitlines()[-1]
    kind, _, rest = last.partition(": ")
    # The sweep's wrapper: "FailedTrialError: ModelTooBigError: ..."
    if kind.rsplit(".", 1)[-1] == "FailedTrialError":
        last = rest
        kind, _, rest = last.partition(": ")
    return last if kind.rsplit(".", 1)[-1] in lab_error_names() else message
