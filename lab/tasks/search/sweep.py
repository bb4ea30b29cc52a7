"""A keras-tuner sweep recorded in MLflow: one parent run per `search.name`, one child per trial.

keras-tuner drives the search (its oracles: random, grid, Bayesian, Hyperband) and keeps its
state in `search.directory/search.name`, so re-running the same name resumes: completed trials
are not re-run and the trial a killed process left running is retried. A trial is the normal
training path: its values become config overrides and `fit_and_evaluate` trains and logs it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import keras
import keras_tuner as kt
import numpy as np
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lab import runtime
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
from lab.config import Checkpoint, Pruner, Role, RunConfig, TunerName
from lab.config.overrides import config_yaml, run_params
from lab.data import Splits
from lab.errors import LabError
from lab.tasks.search import continuation
from lab.tasks.search.distributed import serve
from lab.tasks.search.plan import format_seconds, planned_trials
from lab.tasks.search.ranking import best_first
from lab.tasks.search.space import space_of, trial_overrides
from lab.tracking import tracked_run
from lab.tracking.logged_models import MODEL_URI_TAG, delete_model, load_logged_model
from lab.tracking.roles import CHILD, EXECUTION, PARENT, PARENT_TAG, ROLE_TAG, SEARCH_TAG, TRIAL_TAG
from lab.tracking.runs import Suspended, TrackedRun, experiment_id
from lab.training.checkpoint import epoch_objective
from lab.training.pruning import MedianPruner
from lab.training.state import TrainingState
from lab.training.trained import PRUNED_REASON_TAG, PRUNED_TAG, trained

OBJECTIVE_METRIC = (
    "trial_objective"  # a trial's score as its oracle got it (the mean over executions)
)
PRUNED_OBJECTIVE = (
    "pruned_objective"  # a pruned trial's objective where it stopped (scores nothing)
)
MODEL_DELETED_TAG = (
    "lab.model_deleted"  # on a trial whose logged model was deleted: why, and its size
)


class RestartSweep(Suspended):
    """Between trials: this process should end and a fresh one resume the sweep (`run.py` does it)."""


def make_oracle(cfg: RunConfig) -> kt.Oracle:
    search = cfg.search
    oracle = new_oracle(cfg)
    oracle.keep_owners = (
        search.distributed.role is Role.chief and not search.distributed.requeue_running
    )
    if search.max_seconds is not None:  # this command's wall budget, from now
        oracle.deadline = time.monotonic() + search.max_seconds
    return oracle


def new_oracle(cfg: RunConfig) -> kt.Oracle:
    search = cfg.search
    common = dict(
        objective=kt.Objective(search.objective, search.direction),
        seed=cfg.seed,
        hyperparameters=space_of(search.space),
        max_consecutive_failed_trials=search.max_consecutive_failed_trials,
    )
    if search.tuner is TunerName.hyperband:
        return HyperbandOracle(max_epochs=search.max_epochs, factor=search.factor, **common)
    if search.ablation is not None and search.ablation.looks is not None:
        from lab.tasks.search.adaptive import AdaptiveSeedOracle

        return AdaptiveSeedOracle(search, **common)
    oracles = {
        TunerName.random: RandomOracle,
        TunerName.grid: ResumableGridOracle,
        TunerName.bayesian: BayesianOracle,
    }
    return oracles[search.tuner](max_trials=search.max_trials, **common)


def find_runs(client: MlflowClient, experiment: str, **tags: str):
    query = " and ".join(f"tags.`lab.{key}` = '{value}'" for key, value in tags.items())
    return client.search_runs([experiment], filter_string=query)


@dataclass
class Sweep:
    """What every trial shares: the base config, the data (loaded once), the parent run."""

    run_cfg: RunConfig
    splits: Optional[Splits]  # None on a distributed chief, which trains nothing
    parent: TrackedRun
    baseline_rss_mib: Optional[float] = None  # after this process's first trial
    fit_seconds: Dict[str, float] = field(default_factory=dict)  # per trial: the sum of its epochs
    pruned: set = field(
        default_factory=set
    )  # trial ids this process ended PRUNED (keras-tuner STOPPED)
    curves: Dict[str, Dict[int, float]] = field(
        default_factory=dict
    )  # completed trials' epoch objective

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
            latest[run.data.tags["lab.trial"]] = run
        return latest

    def recorded_objectives(self, children: Dict[str, Run]) -> Dict[str, float]:
        """{trial id: objective} of the trials whose latest attempt FINISHED and recorded its
        objective, among `children` (`self.children()`)."""
        return {
            trial: run.data.metrics[OBJECTIVE_METRIC]
            for trial, run in children.items()
            if run.info.status == "FINISHED" and OBJECTIVE_METRIC in run.data.metrics
        }

    def recorded_pruned(self, children: Dict[str, Run]) -> Dict[str, float]:
        """{trial id: objective where it stopped} of the trials whose latest attempt was pruned,
        among `children` (`self.children()`)."""
        return {
            trial: run.data.metrics.get(PRUNED_OBJECTIVE, float("nan"))
            for trial, run in children.items()
            if run.info.status == "FINISHED" and PRUNED_TAG in run.data.tags
        }

    def epoch_metric(self) -> Tuple[str, str]:
        """(metric, "max"|"min") a trial's epochs are ranked and pruned by: the sweep's objective where
        every epoch logs it, else val_accuracy, else the training loss (no validation split)."""
        search, has_validation = (
            self.run_cfg.search,
            self.splits is not None and len(self.splits.x_val) > 0,
        )
        return epoch_objective(search.objective, search.direction, has_validation) or (
            "loss",
            "min",
        )

    def pruning_reference(self, metric: str) -> Dict[int, List[float]]:
        """{epoch: [the completed trials' `metric` at that epoch]}: every trial whose latest attempt
        FINISHED with a score (not pruned), its curve read from MLflow once and kept."""
        client = self.parent.client
        for trial, run in self.children().items():
            if (
                trial not in self.curves
                and run.info.status == "FINISHED"
                and OBJECTIVE_METRIC in run.data.metrics
            ):
                self.curves[trial] = {
                    m.step: m.value for m in client.get_metric_history(run.info.run_id, metric)
                }
        reference: Dict[int, List[float]] = {}
        for curve in self.curves.values():
            for epoch, value in curve.items():
                reference.setdefault(epoch, []).append(value)
        return reference

    def new_pruner(self) -> Optional[MedianPruner]:
        """`search.pruner` for the next trial, against the trials completed by now; None: off."""
        search = self.run_cfg.search
        if search.pruner is Pruner.none:
            return None
        metric, mode = self.epoch_metric()
        return MedianPruner(
            metric,
            mode,
            self.pruning_reference(metric),
            search.pruner_warmup,
            search.pruner_min_trials,
        )

    def check_memory(self, trials: int, remaining: Optional[int], metric: str = "rss_mib") -> None:
        """Logs the resident memory after each trial (parent metric `rss_mib`, or `rss_mib/workerN`
        per distributed worker; step = trials so far) and stops the process with `RestartSweep`
        once it has grown `search.restart_after_mib` since this process's first trial (which sets
        the baseline: compilers, allocator pools)."""
        rss = runtime.resident_mib()
        self.parent.log_metrics({metric: rss}, step=trials)
        if self.baseline_rss_mib is None:
            self.baseline_rss_mib = rss
            return
        limit, growth = self.run_cfg.search.restart_after_mib, rss - self.baseline_rss_mib
        if limit is not None and growth > limit and remaining != 0:
            raise RestartSweep(
                f"resident memory grew {growth:.0f} MiB since this process's first trial "
                f"(search.restart_after_mib={limit}): restarting to resume it in a fresh process"
            )

    def kept_models(self, children: Optional[Dict[str, Run]] = None) -> List[str]:
        """The trial ids whose model stays logged: the best `search.keep_models` of those whose
        latest attempt FINISHED with a model (all of them with keep_models=null). `children`:
        `self.children()` where the caller has it already."""
        search = self.run_cfg.search
        children = self.children() if children is None else children
        with_model = {
            trial: score
            for trial, score in self.recorded_objectives(children).items()
            if MODEL_URI_TAG in children[trial].data.tags and trained(children[trial].data.tags)
        }
        ranked = best_first(with_model, search.direction)
        return ranked if search.keep_models is None else ranked[: search.keep_models]

    def delete_fallen_models(self) -> None:
        """Deletes the `model/` of every finished trial (and of its executions) that is no longer
        among the best `search.keep_models`. Safe with several workers: the finished trials and
        their scores only grow, so a trial out of the best in one view is out in every later one."""
        if (
            self.run_cfg.search.keep_models is None
            or self.run_cfg.train.checkpoint is Checkpoint.none
        ):
            return
        children, client = self.children(), self.parent.client
        kept = set(self.kept_models(children))
        for trial, run in children.items():
            if (
                trial in kept
                or MODEL_URI_TAG not in run.data.tags
                or run.info.status != "FINISHED"
                or MODEL_DELETED_TAG in run.data.tags
            ):
                continue
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

    def run_trial(self, trial: kt.engine.trial.Trial, tuner_id: str) -> Dict[str, float]:
        """Trains one trial in a new run: its first attempt, or a retry of one that was killed or
        failed, whose run is left as it ended (its history stays its own). A trial that already
        FINISHED is not trained again: its recorded objective is returned."""
        objective = self.run_cfg.search.objective
        attempts = self.attempts_of(trial.trial_id)
        done = [
            run
            for run in attempts
            if run.info.status == "FINISHED" and OBJECTIVE_METRIC in run.data.metrics
        ]
        if done:
            return {objective: done[-1].data.metrics[OBJECTIVE_METRIC]}
        pruned = [
            run for run in attempts if run.info.status == "FINISHED" and PRUNED_TAG in run.data.tags
        ]
        if pruned:  # stays pruned
            self.pruned.add(trial.trial_id)
            return {objective: pruned[-1].data.metrics.get(PRUNED_OBJECTIVE, float("nan"))}
        for run in (
            attempts
        ):  # an attempt of a process that died: it ran until the trial was handed out again
            if run.info.status == "RUNNING":
                self.close_killed(run)
        hp, search = trial.hyperparameters, self.run_cfg.search
        overrides = {
            **trial_overrides(hp, search.space),
            **continuation.rung_overrides(search, hp.values),
        }
        trial_cfg = self.run_cfg.with_overrides(overrides)
        attempt = len(attempts) + 1
        tags = {
            ROLE_TAG: CHILD,
            PARENT_TAG: self.parent.run_id,
            TRIAL_TAG: trial.trial_id,
            SEARCH_TAG: self.run_cfg.search.name,
            "lab.attempt": str(attempt),
            "lab.task": "search",
            **where_it_runs(tuner_id),
        }
        try:
            with tracked_run(
                self.run_cfg.tracking,
                self.trial_name(trial.trial_id, attempt),
                tags,
                parent_run_id=self.parent.run_id,
            ) as child:
                child.log_params({f"hp.{k}": v for k, v in hp.values.items()})
                child.log_params(run_params(trial_cfg))
                child.log_text(config_yaml(trial_cfg), "config.yaml")  # what `from_run` retrains
                pruner = self.new_pruner()
                start, previous = self.rung_to_continue(hp.values, child)
                keep = (
                    (lambda state: continuation.store_state(child, state))
                    if continuation.keeps_state(search, hp.values)
                    else None
                )
                results = self.train_executions(
                    trial.trial_id,
                    trial_cfg,
                    child,
                    self.trial_name(trial.trial_id, attempt),
                    pruner,
                    start,
                    keep,
                )
                score = float(np.mean([self.objective_of(result) for result in results]))
                if pruner is not None and pruner.pruned_at is not None:
                    self.record_pruned(trial.trial_id, child, pruner, score)
                else:
                    child.log_metrics({OBJECTIVE_METRIC: score})
            self.fit_seconds[trial.trial_id] = sum(
                sum(r.history.get("epoch_seconds", [])) for r in results
            )
            if (
                previous is not None
            ):  # its one successor has finished: nothing will continue it again
                continuation.delete_state(
                    self.parent.client,
                    previous,
                    f"deleted when trial {trial.trial_id}, which continues it, finished",
                )
            self.delete_fallen_models()
        except Exception as error:
            raise kt.errors.FailedTrialError(f"{type(error).__name__}: {error}") from error
        return {objective: score}

    def rung_to_continue(
        self, values: Dict[str, object], child: TrackedRun
    ) -> Tuple[Optional[TrainingState], Optional[Run]]:
        """For a trial Hyperband promoted (`tuner/trial_id`): (the training state it continues, or
        None to train from scratch, the previous trial's FINISHED run); the trial's run is tagged
        `lab.continued_from` (with its first epoch, `initial_epoch`) or `lab.not_continued` (why).
        (None, None) for any other trial."""
        previous_trial = values.get(continuation.PREVIOUS_TRIAL)
        if previous_trial is None:
            return None, None
        finished = [
            run
            for run in self.attempts_of(str(previous_trial))
            if run.info.status == "FINISHED" and OBJECTIVE_METRIC in run.data.metrics
        ]
        previous = finished[-1] if finished else None
        start, why_not = continuation.state_to_continue(
            self.parent.client, self.run_cfg.search, values, previous
        )
        if start is not None:
            child.set_tags({continuation.CONTINUED_FROM_TAG: previous_trial})
        else:
            child.set_tags({continuation.NOT_CONTINUED_TAG: why_not})
        return start, previous

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

    def record_pruned(
        self, trial_id: str, child: TrackedRun, pruner: MedianPruner, score: float
    ) -> None:
        """A pruned trial's run: why it stopped (tag), where it stood (metric `pruned_objective`); the
        trial ends STOPPED in keras-tuner (`LabTuner.on_trial_end`)."""
        self.pruned.add(trial_id)
        child.log_metrics({PRUNED_OBJECTIVE: score})
        child.set_tags(
            {
                PRUNED_REASON_TAG: f"pruned at epoch {pruner.pruned_at}: best {pruner.metric} {pruner.best:.4f}, "
                f"worse than the median {pruner.median:.4f} of "
                f"{len(pruner.reference[pruner.pruned_at])} completed trials at that epoch"
            }
        )

    def trial_name(self, trial_id: str, attempt: int = 1) -> str:
        name = f"{self.run_cfg.search.name}-trial-{trial_id}"
        return name if attempt == 1 else f"{name}-attempt-{attempt}"

    def objective_of(self, result) -> float:
        """`val_accuracy`: the best epoch's (test accuracy without a validation split);
        `test_accuracy`/`test_loss`: the final test figures; any other logged metric: its last epoch."""
        objective = self.run_cfg.search.objective
        finals = {
            "val_accuracy": result.selection_accuracy,
            "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss,
        }
        return finals[objective] if objective in finals else result.history[objective][-1]

    def train_executions(
        self,
        trial_id: str,
        trial_cfg: RunConfig,
        child: TrackedRun,
        child_name: str,
        pruner: Optional[MedianPruner] = None,
        start: Optional[TrainingState] = None,
        keep_last_state=None,
    ) -> list:
        """`search.executions_per_trial` trainings of the trial's config, with seeds seed, seed+1, ...
        One execution trains in the trial's run; several each get a run nested in it, and the
        trial's run gets their per-epoch means (as keras-tuner averages executions). `pruner`, and
        `start`/`keep_last_state` (a Hyperband rung continued, and kept for the next: `fit_and_evaluate`),
        apply to one execution only (the config refuses more)."""
        from lab.training.train import fit_and_evaluate

        search = self.run_cfg.search
        executions, budgets, objective = (
            search.executions_per_trial,
            search.budgets(),
            (search.objective, search.direction),
        )
        if executions == 1:
            return [
                fit_and_evaluate(
                    trial_cfg,
                    self.splits,
                    child,
                    budgets=budgets,
                    objective=objective,
                    pruner=pruner,
                    start=start,
                    keep_last_state=keep_last_state,
                )
            ]
        results = []
        for index in range(executions):
            cfg = trial_cfg.with_overrides({"seed": trial_cfg.seed + index})
            tags = {
                ROLE_TAG: EXECUTION,
                PARENT_TAG: child.run_id,
                TRIAL_TAG: trial_id,
                SEARCH_TAG: self.run_cfg.search.name,
                "lab.execution": str(index),
                "lab.task": "search",
            }
            with tracked_run(
                self.run_cfg.tracking,
                f"{child_name}-execution-{index}",
                tags,
                parent_run_id=child.run_id,
            ) as run:
                run.log_params({"seed": cfg.seed})
                run.log_text(config_yaml(cfg), "config.yaml")
                results.append(
                    fit_and_evaluate(cfg, self.splits, run, budgets=budgets, objective=objective)
                )
            free_memory()
        log_mean_of_executions(child, results, self.objective_of)
        return results


def attempt_number(run: Run) -> int:
    return int(run.data.tags.get("lab.attempt", "1"))


def log_mean_of_executions(child: TrackedRun, results: list, objective_of) -> None:
    """The trial's run gets the executions' per-epoch means, final means, the objective's spread
    and the model's cost (the same for every execution)."""
    for epoch in range(min(len(next(iter(r.history.values()), [])) for r in results)):
        child.log_metrics(
            {
                key: float(np.mean([r.history[key][epoch] for r in results]))
                for key in results[0].history
            },
            step=epoch + 1,
        )
    scores = [objective_of(r) for r in results]
    final = {
        "test_accuracy": np.mean([r.test_accuracy for r in results]),
        "test_loss": np.mean([r.test_loss for r in results]),
        "objective_mean": np.mean(scores),
        "objective_std": np.std(scores, ddof=1),
        **results[0].cost,
    }
    epochs = [r.best_epoch for r in results if r.best_epoch is not None]
    if epochs:
        final["best_epoch"] = float(np.median(epochs))
    child.log_metrics(final)


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
        if (
            trial.trial_id in self.sweep.pruned
        ):  # keras-tuner's status for a trial stopped early: not scored
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
    if (
        kind.rsplit(".", 1)[-1] == "FailedTrialError"
    ):  # the sweep's wrapper: "FailedTrialError: ModelTooBigError: ..."
        last = rest
        kind, _, rest = last.partition(": ")
    return last if kind.rsplit(".", 1)[-1] in lab_error_names() else message


def progress_line(
    number: int, planned: Optional[int], seconds: List[float], values: Dict[str, object]
) -> str:
    """`trial 3 of 20 (variant=plain20, seed=2); 2 took 1 min 10 s here, about 5 min 50 s left`:
    the estimate is this process's mean trial time times the trials left, this one included."""
    of = f" of {planned}" if planned else ""
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    line = f"trial {number}{of} ({shown})"
    if seconds:
        line += f"; {len(seconds)} took {format_seconds(sum(seconds))} here"
        if planned:
            left = max(planned - number + 1, 0)
            line += f", about {format_seconds(left * sum(seconds) / len(seconds))} left"
    return line


def where_it_runs(tuner_id: str) -> Dict[str, str]:
    """Which tuner (keras-tuner's id), host, process and device run a trial."""
    return {
        "lab.tuner": tuner_id,
        "lab.host": socket.gethostname(),
        "lab.pid": str(os.getpid()),
        "lab.device": runtime.device_description(),
    }


def free_memory() -> None:
    keras.backend.clear_session()
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()


def find_parent(run_cfg: RunConfig) -> Optional[Run]:
    """The parent run of an earlier sweep with this name (to resume it); None for a new sweep."""
    client = MlflowClient(run_cfg.tracking.uri)
    experiment = experiment_id(client, run_cfg.tracking.experiment, run_cfg.tracking.uri)
    runs = find_runs(client, experiment, role=PARENT, search=run_cfg.search.name)
    return runs[0] if runs else None
