"""`search.tuner=optuna`: an Optuna study's sampler inside a keras-tuner oracle. keras-tuner hands
out the trials, so its distributed chief and workers, resume after a kill, the sweep's
fingerprint and its MLflow parent and children work as for any tuner; the study only chooses
each trial's values (`populate_space`: `study.ask`) and learns each result (`end_trial`:
`study.tell`). NSGA-II samples for the Pareto set of several objectives, TPE for one, GP where
asked (`search.sampler`).

The study lives in the sweep's keras-tuner folder (`optuna.journal`, Optuna's journal file
storage: appended whole, so a kill loses at most the call it interrupted); the oracle's own
state maps keras-tuner's trial ids to the study's trial numbers. A resumed sweep reloads both,
and a study trial no keras-tuner trial owns (asked just before a kill) is told it failed.

Budgets (`search.max_params`, `max_macs`, `max_activation_bytes`) are constraints the sampler
learns from (Optuna's `Trial.set_constraint`: the cost minus its limit; feasible at <= 0). A
model over one still fails its trial before training, as with every tuner; the study is told
that trial COMPLETE with its costs and the worst value on every trained objective, and its
violation, so the sampler moves away from it instead of forgetting it as a failure.

A proposal the sweep already tried (samplers repeat themselves on small discrete spaces) is not
trained again: the study is told the earlier trial's result for it and asked again.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import keras_tuner as kt
import optuna

from lab.compat.keras_tuner import KeepsTrialOwners, StopsAtDeadline
from lab.compat.optuna import trial_of
from lab.config import COSTS, Sampler, SearchConfig
from lab.training.budgets import BUDGETED

STUDY_FILE = "optuna.journal"
# Proposals in a row that repeat a tried trial before the space counts as exhausted.
MAX_REPEATS = 50
# keras-tuner's trial statuses the study's states follow from (any other one is a FAIL)
COMPLETED, FAILED, STOPPED = "COMPLETED", "FAILED", "STOPPED"


class OptunaOracle(StopsAtDeadline, KeepsTrialOwners, kt.Oracle):
    """keras-tuner's oracle for `search.tuner=optuna`. `metrics_source` (set by the sweep) gives
    a trial's recorded metrics from its MLflow run (a failed trial reports none to keras-tuner,
    but its run has its costs)."""

    def __init__(self, search: SearchConfig, **common):
        super().__init__(max_trials=search.max_trials, **common)
        self.search = search
        self.metrics_source: Optional[Callable[[str], Dict[str, float]]] = None
        self.numbers: Dict[str, int] = {}  # keras-tuner trial id -> study trial number
        # every proposal of MAX_REPEATS in a row was tried already: no trial is left to run
        self.exhausted = False
        self._study: Optional[optuna.Study] = None

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = open_study(self.search, self.seed, self._project_dir)
            fail_orphans(self._study, set(self.numbers.values()))
        return self._study

    def get_state(self):
        return {
            **super().get_state(),
            "optuna_numbers": dict(self.numbers),
            "optuna_exhausted": self.exhausted,
        }

    def set_state(self, state):
        super().set_state(state)
        self.numbers = dict(state.get("optuna_numbers", {}))
        self.exhausted = bool(state.get("optuna_exhausted", False))

    def remaining_trials(self):
        """0 once the space is exhausted (a finished sweep then says it has no trial left);
        else what `search.max_trials` leaves."""
        return 0 if self.exhausted else super().remaining_trials()

    def populate_space(self, trial_id: str) -> Dict[str, object]:
        for _ in range(MAX_REPEATS):
            asked = self.study.ask()
            values = suggested_values(asked, self.hyperparameters)
            earlier = self.tried_before(values)
            if earlier is None:
                self.numbers[trial_id] = asked.number
                return {"status": "RUNNING", "values": values}
            self.tell(asked, earlier.status, self.recorded_metrics(earlier, earlier.status))
        self.exhausted = True
        return {"status": STOPPED}

    def tried_before(self, values: Dict[str, object]) -> Optional[kt.engine.trial.Trial]:
        """The earlier trial with these values, if any."""
        return next(
            (trial for trial in self.trials.values() if trial.hyperparameters.values == values),
            None,
        )

    @kt.synchronized
    def end_trial(self, trial):
        number = self.numbers.get(trial.trial_id)
        if number is not None:
            recorded = self.recorded_metrics(self.trials[trial.trial_id], trial.status)
            self.tell(number, trial.status, recorded)
        super().end_trial(trial)

    def recorded_metrics(self, trial: kt.engine.trial.Trial, status: str) -> Dict[str, float]:
        """What keras-tuner recorded for the trial; for a FAILED one (it reported nothing),
        completed by its run's metrics where the sweep gives them (its costs, for the budgets).
        A completed trial reported every objective and budgeted cost itself: its run is not read
        (a repeated proposal asks this of earlier trials, up to `MAX_REPEATS` times a trial)."""
        metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        if self.metrics_source is not None and status == FAILED:
            recorded = self.metrics_source(trial.trial_id)
            metrics = {**recorded, **{k: v for k, v in metrics.items() if v is not None}}
        return metrics

    def tell(self, trial, status: str, metrics: Dict[str, float]) -> None:
        """Tells the study one trial's result (`trial`: a study trial or its number), with its
        budgets' constraints; a trial it was told already is left as it is."""
        number = trial if isinstance(trial, int) else trial.number
        if self.study.get_trials(deepcopy=False)[number].state.is_finished():
            return
        result = study_result(self.search, status, metrics)
        if result.state is optuna.trial.TrialState.COMPLETE:
            live = trial if not isinstance(trial, int) else trial_of(self.study, number)
            for name, violation in result.violations.items():
                live.set_constraint(name, violation)
        self.study.tell(number, result.values, state=result.state, skip_if_finished=True)


@dataclass(frozen=True)
class StudyResult:
    """What the study is told of one trial: its state, its objective values (COMPLETE only),
    and each budget's violation (its cost minus its limit; feasible at <= 0)."""

    state: optuna.trial.TrialState
    values: Optional[List[float]] = None
    violations: Dict[str, float] = field(default_factory=dict)


def study_result(search: SearchConfig, status: str, metrics: Dict[str, float]) -> StudyResult:
    """A COMPLETED trial with every objective: COMPLETE with them; a FAILED one whose recorded
    costs break a budget: COMPLETE, infeasible, with its costs and the worst value on the rest;
    a pruned (STOPPED) one: PRUNED; anything else: FAIL."""
    states = optuna.trial.TrialState
    violations = budget_violations(search, metrics)
    if status == STOPPED:
        return StudyResult(states.PRUNED)
    if status == COMPLETED:
        values = [metrics.get(o.name) for o in search.objective_list()]
        if all(v is not None and math.isfinite(v) for v in values):
            return StudyResult(states.COMPLETE, values, violations)
        return StudyResult(states.FAIL)
    if any(violation > 0 for violation in violations.values()):
        return StudyResult(states.COMPLETE, worst_values(search, metrics), violations)
    return StudyResult(states.FAIL)


def budget_violations(search: SearchConfig, metrics: Dict[str, float]) -> Dict[str, float]:
    """{budget key: cost - limit} for each budget set whose cost is recorded."""
    return {
        key: float(metrics[BUDGETED[key][0]]) - limit
        for key, limit in search.budgets().items()
        if limit is not None and BUDGETED[key][0] in metrics
    }


def worst_values(search: SearchConfig, metrics: Dict[str, float]) -> List[float]:
    """An untrained trial's values: its recorded costs, and the worst value (an infinity) on
    every objective it would have had to train or run for."""
    values = []
    for objective in search.objective_list():
        known = objective.name in COSTS and metrics.get(objective.name) is not None
        worst = -math.inf if objective.direction == "max" else math.inf
        values.append(float(metrics[objective.name]) if known else worst)
    return values


def suggested_values(asked: optuna.trial.Trial, space: kt.HyperParameters) -> Dict[str, object]:
    """The study trial's values for each hyperparameter active given the ones before it (the
    order and conditions of keras-tuner's space, as its random oracle fills it)."""
    hps = kt.HyperParameters()
    for hp in space.space:
        hps.merge([hp])
        if hps.is_active(hp):
            hps.values[hp.name] = suggest(asked, hp)
    return hps.values


def suggest(asked: optuna.trial.Trial, hp) -> object:
    """One keras-tuner hyperparameter's value from the study trial (a log-scaled Float is
    sampled on a log scale without its step: Optuna has no multiplicative step)."""
    kind = type(hp).__name__
    if kind == "Choice":
        return asked.suggest_categorical(hp.name, list(hp.values))
    if kind == "Boolean":
        return asked.suggest_categorical(hp.name, [False, True])
    if kind == "Fixed":
        return hp.value
    log = hp.sampling == "log"
    if kind == "Int":
        step = 1 if log else (hp.step or 1)
        return asked.suggest_int(hp.name, hp.min_value, hp.max_value, step=step, log=log)
    step = None if log else hp.step
    return asked.suggest_float(hp.name, hp.min_value, hp.max_value, step=step, log=log)


def startup_trials(search: SearchConfig) -> int:
    """NSGA-II's generation (`search.population_size`) and the random trials TPE and GP begin
    with: a quarter of the sweep's trials, between 4 and 50, so that a small sweep gets past its
    first generation."""
    return search.population_size or max(4, min(50, search.max_trials // 4))


def sampler_for(search: SearchConfig, seed: Optional[int]) -> optuna.samplers.BaseSampler:
    """The study's sampler (`search.sampler`; auto: NSGA-II for several objectives, TPE for one)."""
    kind = search.sampler
    if kind is Sampler.auto:
        kind = Sampler.nsga2 if search.several_objectives else Sampler.tpe
    startup = startup_trials(search)
    samplers = {
        Sampler.nsga2: lambda: optuna.samplers.NSGAIISampler(population_size=startup, seed=seed),
        Sampler.tpe: lambda: optuna.samplers.TPESampler(n_startup_trials=startup, seed=seed),
        Sampler.gp: lambda: optuna.samplers.GPSampler(n_startup_trials=startup, seed=seed),
        Sampler.random: lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    return samplers[kind]()


def open_study(search: SearchConfig, seed: Optional[int], folder: str) -> optuna.Study:
    """The sweep's study in `folder` (created, with `search.enqueue` as its first trials, or
    loaded to resume)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(os.path.join(folder, STUDY_FILE))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage,
            study_name=search.name,
            directions=[f"{o.direction}imize" for o in search.objective_list()],
            sampler=sampler_for(search, seed),
            load_if_exists=True,
        )
    if not study.get_trials(deepcopy=False):
        for entry in search.enqueue:
            study.enqueue_trial(dict(entry))
    return study


def fail_orphans(study: optuna.Study, owned: set) -> None:
    """Tells FAIL each running study trial no keras-tuner trial owns: asked by a process killed
    before its oracle saved the trial."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        if trial.number not in owned:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
