"""One trial's training: a new child run per attempt (a killed or failed attempt keeps its own),
the trial's values as config overrides, `search.executions_per_trial` trainings by the normal
training path (`lab.training.train.fit_and_evaluate`), a Hyperband rung continued from its
predecessor's state, and the score its oracle gets back. A trial that FINISHED before is not
trained again."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import keras_tuner as kt
import numpy as np
from mlflow.entities import Run

from lab import runtime
from lab.config import COSTS, MEASURED_COSTS, RunConfig, SearchConfig
from lab.config.overrides import config_yaml, run_params
from lab.data import Splits
from lab.tasks.search import continuation
from lab.tasks.search.records import (
    OBJECTIVE_METRIC,
    OBJECTIVE_PREFIX,
    OBJECTIVE_STD_PREFIX,
    PRUNED_OBJECTIVE,
    oracle_metrics,
    scored,
)
from lab.tasks.search.space import trial_overrides
from lab.tracking import tracked_run
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import (
    ATTEMPT_TAG,
    CHILD,
    CONTINUED_FROM_TAG,
    DEVICE_TAG,
    EXECUTION,
    EXECUTION_TAG,
    HOST_TAG,
    NOT_CONTINUED_TAG,
    PARENT_TAG,
    PID_TAG,
    PRUNED_TAG,
    ROLE_TAG,
    SEARCH_TAG,
    TASK_TAG,
    TRIAL_TAG,
    TUNER_TAG,
)
from lab.training.pruning import MedianPruner
from lab.training.reuse import free_memory
from lab.training.state import TrainingState


@dataclass
class Attempt:
    """One attempt at a trial: what its child run trains."""

    trial_id: str
    values: Dict[str, object]  # the trial's hyperparameter values (keras-tuner's)
    cfg: RunConfig  # the sweep's config with the trial's values
    number: int  # 1 for the trial's first attempt
    name: str  # its run's name


class TrialExecution:
    """A part of `lab.tasks.search.sweep.Sweep`, which holds the attributes below, the records'
    `attempts_of`, `close_killed` and `delete_fallen_models`, and the pruning's `new_pruner` and
    `record_pruned`."""

    run_cfg: RunConfig
    splits: Optional[Splits]
    parent: TrackedRun
    fit_seconds: Dict[str, float]  # per trial: the sum of its epochs
    pruned: set  # trial ids this process ended PRUNED (keras-tuner STOPPED)

    def run_trial(self, trial: kt.engine.trial.Trial, tuner_id: str) -> Dict[str, float]:
        """Trains one trial in a new run: its first attempt, or a retry of one that was killed or
        failed, whose run is left as it ended (its history stays its own). A trial that already
        FINISHED is not trained again: its recorded objective is returned.

        Args:
            trial: the trial keras-tuner hands out.
            tuner_id: keras-tuner's id of this process (tagged `lab.tuner` on the run).

        Returns:
            {search.objective: the trial's score} (the mean over its executions).

        Raises:
            kt.errors.FailedTrialError: its training failed (the error's type and message).
        """
        attempts = self.attempts_of(trial.trial_id)
        earlier = self.earlier_metrics(trial.trial_id, attempts)
        if earlier is not None:
            return earlier
        # An attempt of a process that died: it ran until the trial was handed out again.
        for run in attempts:
            if run.info.status == "RUNNING":
                self.close_killed(run)
        attempt = self.new_attempt(trial, len(attempts) + 1)
        tags = {
            ROLE_TAG: CHILD,
            PARENT_TAG: self.parent.run_id,
            TRIAL_TAG: trial.trial_id,
            SEARCH_TAG: self.run_cfg.search.name,
            ATTEMPT_TAG: str(attempt.number),
            TASK_TAG: "search",
            **where_it_runs(tuner_id),
        }
        try:
            return self.train_attempt(attempt, tags)
        except Exception as error:
            raise kt.errors.FailedTrialError(f"{type(error).__name__}: {error}") from error

    def earlier_metrics(self, trial_id: str, attempts: List[Run]) -> Optional[Dict[str, float]]:
        """What the oracle gets for a trial an earlier attempt ended: the objectives it FINISHED
        with, or its objective where it was pruned (the trial stays pruned); None for a trial to
        train."""
        done = [run for run in attempts if scored(run)]
        if done:
            return oracle_metrics(self.run_cfg.search, done[-1].data.metrics)
        pruned = [
            run for run in attempts if run.info.status == "FINISHED" and PRUNED_TAG in run.data.tags
        ]
        if pruned:
            self.pruned.add(trial_id)
            score = pruned[-1].data.metrics.get(PRUNED_OBJECTIVE, float("nan"))
            return {self.run_cfg.search.objective: score}
        return None

    def new_attempt(self, trial: kt.engine.trial.Trial, number: int) -> Attempt:
        """Attempt `number` at `trial`: its config is the sweep's with the trial's values (and a
        Hyperband rung's epochs)."""
        hp, search = trial.hyperparameters, self.run_cfg.search
        overrides = {
            **trial_overrides(hp, search.space),
            **continuation.rung_overrides(search, hp.values),
        }
        return Attempt(
            trial.trial_id,
            hp.values,
            self.run_cfg.with_overrides(overrides),
            number,
            self.trial_name(trial.trial_id, number),
        )

    def train_attempt(self, attempt: Attempt, tags: Dict[str, str]) -> Dict[str, float]:
        """Trains `attempt` in a child run tagged `tags` and returns what its oracle gets
        (`record_score`). Once the run has
        ended, the state of the rung it continued is deleted (nothing continues it again) and
        the models that fell out of the best kept are deleted."""
        with tracked_run(
            self.run_cfg.tracking, attempt.name, tags, parent_run_id=self.parent.run_id
        ) as child:
            child.log_params({f"hp.{k}": v for k, v in attempt.values.items()})
            child.log_params(run_params(attempt.cfg))
            child.log_text(config_yaml(attempt.cfg), "config.yaml")  # what `from_run` retrains
            pruner = self.new_pruner()
            start, previous = self.rung_to_continue(attempt.values, child)
            results = self.train_executions(
                attempt, child, pruner, start, self.state_keeper(attempt, child)
            )
            told = self.record_score(attempt.trial_id, child, pruner, results)
        self.fit_seconds[attempt.trial_id] = sum(
            sum(r.history.get("epoch_seconds", [])) for r in results
        )
        if previous is not None:  # its one successor has finished: nothing will continue it again
            continuation.delete_state(
                self.parent.client,
                previous,
                f"deleted when trial {attempt.trial_id}, which continues it, finished",
            )
        self.delete_fallen_models()
        return told

    def state_keeper(
        self, attempt: Attempt, child: TrackedRun
    ) -> Optional[Callable[[TrainingState], int]]:
        """What keeps a Hyperband rung's last state on its run for a successor; None where the
        trial keeps none (`continuation.keeps_state`)."""
        if continuation.keeps_state(self.run_cfg.search, attempt.values):
            return lambda state: continuation.store_state(child, state)
        return None

    def record_score(
        self, trial_id: str, child: TrackedRun, pruner: Optional[MedianPruner], results: list
    ) -> Dict[str, float]:
        """The trial's score, the mean over its executions: logged as its objective, or, for a
        pruned trial, as where it stopped. With `search.objectives`, each objective's value over
        the executions (`objective.<name>`, and `objective_std.<name>` for several) is logged
        too. Returns what the oracle gets: {search.objective: score}, and with objectives listed
        or an Optuna study each objective and the model's budgeted costs."""
        search = self.run_cfg.search
        score = float(np.mean([self.objective_of(result) for result in results]))
        if pruner is not None and pruner.pruned_at is not None:
            self.record_pruned(trial_id, child, pruner, score)
            return {search.objective: score}
        recorded = {OBJECTIVE_METRIC: score}
        if search.objectives:
            recorded.update(objective_figures(search, results))
        child.log_metrics(recorded)
        return oracle_metrics(search, {**results[0].cost, **recorded})

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
        finished = [run for run in self.attempts_of(str(previous_trial)) if scored(run)]
        previous = finished[-1] if finished else None
        start, why_not = continuation.state_to_continue(
            self.parent.client, self.run_cfg.search, values, previous
        )
        if start is not None:
            child.set_tags({CONTINUED_FROM_TAG: previous_trial})
        else:
            child.set_tags({NOT_CONTINUED_TAG: why_not})
        return start, previous

    def trial_name(self, trial_id: str, attempt: int = 1) -> str:
        """The run name of attempt `attempt` at trial `trial_id`."""
        name = f"{self.run_cfg.search.name}-trial-{trial_id}"
        return name if attempt == 1 else f"{name}-attempt-{attempt}"

    def objective_of(self, result) -> float:
        """The trial's ranking objective (`search.objective`) in one training's result."""
        return objective_value(result, self.run_cfg.search.objective)

    def train_executions(
        self,
        attempt: Attempt,
        child: TrackedRun,
        pruner: Optional[MedianPruner] = None,
        start: Optional[TrainingState] = None,
        keep_last_state=None,
    ) -> list:
        """`search.executions_per_trial` trainings of the attempt's config, with seeds seed,
        seed+1, ... One execution trains in the trial's run; several each get a run nested in it,
        and the trial's run gets their per-epoch means (as keras-tuner averages executions).
        `pruner`, and `start`/`keep_last_state` (a Hyperband rung continued, and kept for the next:
        `fit_and_evaluate`), apply to one execution only (the config refuses more)."""
        # Looked up in its module at each call (a test may replace it there).
        from lab.training.train import fit_and_evaluate

        search = self.run_cfg.search
        if search.executions_per_trial == 1:
            return [
                fit_and_evaluate(
                    attempt.cfg,
                    self.splits,
                    child,
                    budgets=search.budgets(),
                    objective=(search.objective, search.direction),
                    pruner=pruner,
                    start=start,
                    keep_last_state=keep_last_state,
                    latency=latency_setting(search),
                )
            ]
        results = [
            self.train_execution(attempt, child, index)
            for index in range(search.executions_per_trial)
        ]
        log_mean_of_executions(child, results, self.objective_of)
        return results

    def train_execution(self, attempt: Attempt, child: TrackedRun, index: int):
        """Execution `index` of a trial of several: seed + index, in a run nested in the trial's."""
        from lab.training.train import fit_and_evaluate

        search = self.run_cfg.search
        cfg = attempt.cfg.with_overrides({"seed": attempt.cfg.seed + index})
        tags = {
            ROLE_TAG: EXECUTION,
            PARENT_TAG: child.run_id,
            TRIAL_TAG: attempt.trial_id,
            SEARCH_TAG: search.name,
            EXECUTION_TAG: str(index),
            TASK_TAG: "search",
        }
        with tracked_run(
            self.run_cfg.tracking,
            f"{attempt.name}-execution-{index}",
            tags,
            parent_run_id=child.run_id,
        ) as run:
            run.log_params({"seed": cfg.seed})
            run.log_text(config_yaml(cfg), "config.yaml")
            result = fit_and_evaluate(
                cfg,
                self.splits,
                run,
                budgets=search.budgets(),
                objective=(search.objective, search.direction),
                latency=latency_setting(search),
            )
        free_memory()
        return result


def objective_value(result, name: str) -> float:
    """One objective in one training's result: `val_accuracy` the best epoch's (the test accuracy
    without a validation split); `test_accuracy`/`test_loss` the final test figures; a cost the
    model's analysis total or its measured latency; any other logged metric its last epoch."""
    finals = {
        "val_accuracy": result.selection_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
    }
    if name in finals:
        return finals[name]
    if name in MEASURED_COSTS:
        return result.latency[name]
    if name in COSTS:
        return float(result.cost[name])
    return result.history[name][-1]


def objective_figures(search: SearchConfig, results: list) -> Dict[str, float]:
    """`objective.<name>` for each objective over a trial's executions (the mean; the median of
    a measured latency), and `objective_std.<name>` (sample spread) of the trained ones where
    there are several."""
    figures = {}
    for objective in search.objective_list():
        values = [objective_value(result, objective.name) for result in results]
        measured = objective.name in MEASURED_COSTS
        figures[OBJECTIVE_PREFIX + objective.name] = float(
            np.median(values) if measured else np.mean(values)
        )
        if len(values) > 1 and objective.name not in COSTS:
            figures[OBJECTIVE_STD_PREFIX + objective.name] = float(np.std(values, ddof=1))
    return figures


def latency_setting(search: SearchConfig) -> Optional[Tuple[int, int]]:
    """(batch, repeats) where an objective needs the latency measured; else None."""
    return (search.latency_batch, search.latency_repeats) if search.measures_latency() else None


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


def where_it_runs(tuner_id: str) -> Dict[str, str]:
    """Which tuner (keras-tuner's id), host, process and device run a trial."""
    return {
        TUNER_TAG: tuner_id,
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        DEVICE_TAG: runtime.device_description(),
    }
