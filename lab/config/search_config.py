"""The `search` group's schema: a keras-tuner sweep (tuner, objective, budgets, pruning, kept
models), the axes of its space, and the names a sweep may take."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from lab.config.ablation_config import AblationConfig
from lab.config.distributed_config import DistributedConfig
from lab.errors import require


class TunerName(Enum):
    """The keras-tuner oracle that picks a sweep's trials."""

    random = "random"
    grid = "grid"
    bayesian = "bayesian"
    hyperband = "hyperband"


class Pruner(Enum):
    """How a sweep stops trials that have already lost: `none` (every trial trains to its last
    epoch; ablation grids must, to stay balanced) or `median` (Optuna's MedianPruner rule)."""

    none = "none"
    median = "median"


class AxisKind(Enum):
    """The keras-tuner hyperparameter an axis is: `Choice`, `Int`, `Float` or `Boolean`."""

    choice = "choice"
    int = "int"
    float = "float"
    boolean = "boolean"


@dataclass
class AxisSpec:
    """One axis of a search space: a keras-tuner hyperparameter named `name` that sets the config
    key `path` (`model.connectivity`, `train.lr`; `model.stages.*.blocks` sets every stage).
    `when: {axis: [values]}` makes it conditional on another axis (keras-tuner's conditional_scope)."""

    name: str = MISSING
    path: str = MISSING
    kind: AxisKind = AxisKind.choice
    values: Optional[List[Any]] = None  # choice
    min: Optional[float] = None  # int, float
    max: Optional[float] = None
    step: Optional[float] = None
    log: bool = False  # float: sample on a log scale
    when: Optional[Dict[str, List[Any]]] = None

    def __post_init__(self) -> None:
        key = f"search.space[{self.name}]"
        if self.kind is AxisKind.choice:
            require(
                bool(self.values),
                f"{key}.values",
                self.values,
                "a non-empty list for a choice axis",
            )
        if self.kind in (AxisKind.int, AxisKind.float):
            require(
                self.min is not None and self.max is not None and self.min < self.max,
                f"{key}.min/max",
                (self.min, self.max),
                "set, with min < max",
            )
        require(
            self.when is None or len(self.when) == 1,
            f"{key}.when",
            self.when,
            "one {axis: [values]} entry",
        )
        if self.kind is AxisKind.float and self.log:
            require(
                self.min is not None and self.min > 0,
                f"{key}.min",
                self.min,
                "> 0 on a log scale (log: true)",
            )


# What a trial can be judged by (`Sweep.objective_of`): the best epoch's validation accuracy
# (the test accuracy without a validation split), the final test figures, or the last epoch's.
OBJECTIVES = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "accuracy", "loss")
# A sweep's name is a folder under `search.directory` and a value in MLflow queries.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SWEEP_NAME_RULE = (
    "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit "
    "(it names a folder and an MLflow tag)"
)


def objective_direction(objective: str) -> str:
    """The direction an objective improves in: a loss is minimised, an accuracy maximised.

    Args:
        objective: A metric name, one of `OBJECTIVES`.

    Returns:
        "min" for a loss, "max" otherwise.
    """
    return "min" if objective.endswith("loss") else "max"


@dataclass
class SearchConfig:
    """`task=search`: a keras-tuner sweep over `space`, one MLflow child run per trial under one
    parent named `name`. Re-running the same `name` resumes it from `directory`."""

    tuner: TunerName = TunerName.random
    objective: str = "val_accuracy"  # one of OBJECTIVES
    direction: Optional[str] = None  # null: min for a loss, max for an accuracy
    max_trials: int = 10
    max_epochs: int = 10  # hyperband: the most epochs of one trial
    factor: int = 3  # hyperband
    # hyperband: a trial promoted to the next rung continues its previous rung's training (the last
    # epoch's weights and optimizer state, kept as the MLflow artifact continuation/state.npz of that
    # trial's run until its successor finishes) instead of training from scratch; false: every rung
    # from scratch. Either way a trial's learning-rate schedule spans max_epochs. Other tuners ignore it.
    hyperband_resume: bool = True
    # trainings per trial (seeds seed, seed+1, ...); the objective is their mean
    executions_per_trial: int = 1
    max_consecutive_failed_trials: int = 3
    # Budgets checked on the built model before any training (a candidate over one fails at
    # once, naming it): parameters, multiply-accumulates per example, forward activation bytes per
    # example (at train.precision), as `task=analyze` counts them.
    max_params: Optional[int] = None
    max_macs: Optional[int] = None
    max_activation_bytes: Optional[int] = None
    # Wall budget of this command, in seconds: no new trial starts after it, and the sweep ends
    # with its report (tag lab.stopped_by=max_seconds). null: none.
    max_seconds: Optional[float] = None
    # `median`: a trial whose best per-epoch objective so far is worse than the median of the
    # completed trials' objective at the same epoch is stopped (keras-tuner STOPPED, tag
    # lab.pruned_at_epoch, PRUNED in trials.csv), once it has trained `pruner_warmup` epochs and
    # at least `pruner_min_trials` completed trials reached that epoch.
    pruner: Pruner = Pruner.none
    pruner_warmup: int = 1
    pruner_min_trials: int = 3
    # With train.checkpoint != none: the models of the best `keep_models` trials stay logged; a
    # trial that falls out of them has its `model/` deleted (tag lab.model_deleted, saying why
    # and its size). null: keep all.
    keep_models: Optional[int] = 3
    # The best trial's model registered in MLflow's Model Registry under this name when the sweep
    # reports: a new version with alias `best` and tags naming the sweep, trial and objective. null: off.
    register_as: Optional[str] = None
    # Between trials, a process whose resident memory grew this much (MiB) since its first trial
    # stops and `run.py` restarts it, resuming the sweep: TensorFlow keeps every trial's traced
    # graphs. null: never.
    restart_after_mib: Optional[int] = 1024
    name: str = "search"
    directory: str = "outputs/tuner"
    space: List[AxisSpec] = field(default_factory=list)
    # What the sweep's scatter plots colour trials by: a trial run's param (`hp.connectivity`,
    # `model.block`) or metric (`depth`). null: the first axis of the space.
    colour_by: Optional[str] = None
    ablation: Optional[AblationConfig] = None
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def budgets(self) -> Dict[str, Optional[int]]:
        """The model budgets, checked on each built model before it trains.

        Returns:
            {budget key: limit, None for none}: `max_params`, `max_macs`, `max_activation_bytes`.
        """
        return {
            "max_params": self.max_params,
            "max_macs": self.max_macs,
            "max_activation_bytes": self.max_activation_bytes,
        }

    def __post_init__(self) -> None:
        self._check_objective()
        require(
            SWEEP_NAME.fullmatch(self.name) is not None, "search.name", self.name, SWEEP_NAME_RULE
        )
        self._check_limits()
        self._check_pruner()
        self._check_executions()
        self._check_kept_models()
        names = [axis.name for axis in self.space]
        require(len(names) == len(set(names)), "search.space", names, "axes with distinct names")
        if self.ablation is not None:
            self._check_ablation(names)
        self._check_conditions(names)

    def _check_objective(self) -> None:
        """The objective is one every trial logs; the direction, unset, becomes its natural one."""
        require(
            self.objective in OBJECTIVES,
            "search.objective",
            self.objective,
            f"a metric every trial logs: one of {', '.join(OBJECTIVES)}",
        )
        natural = objective_direction(self.objective)
        self.direction = self.direction or natural
        require(
            self.direction == natural,
            "search.direction",
            self.direction,
            f"{natural} for search.objective={self.objective} (or unset)",
        )

    def _check_limits(self) -> None:
        """Trial counts, Hyperband's rungs, the model budgets, the wall budget, the pruner's warmup."""
        require(self.max_trials > 0, "search.max_trials", self.max_trials, "> 0")
        require(
            self.max_epochs > 0 and self.factor > 1,
            "search.max_epochs/factor",
            (self.max_epochs, self.factor),
            "max_epochs > 0 and factor > 1",
        )
        for key, value in self.budgets().items():
            require(value is None or value > 0, f"search.{key}", value, "null or > 0")
        require(
            self.max_seconds is None or self.max_seconds > 0,
            "search.max_seconds",
            self.max_seconds,
            "null or > 0",
        )
        require(
            self.pruner_warmup >= 1, "search.pruner_warmup", self.pruner_warmup, ">= 1 (epochs)"
        )
        require(
            self.pruner_min_trials >= 1, "search.pruner_min_trials", self.pruner_min_trials, ">= 1"
        )

    def _check_pruner(self) -> None:
        """A pruner only where a trial is one run trained to its end by choice: not under
        Hyperband, not with several executions, not in an ablation."""
        if self.pruner is Pruner.none:
            return
        require(
            self.tuner is not TunerName.hyperband,
            "search.pruner",
            self.pruner.value,
            "none with search.tuner=hyperband (Hyperband stops trials by its own brackets)",
        )
        require(
            self.executions_per_trial == 1,
            "search.pruner",
            self.pruner.value,
            f"none with search.executions_per_trial={self.executions_per_trial} (a trial is pruned on its one run)",
        )
        require(
            self.ablation is None,
            "search.pruner",
            self.pruner.value,
            "none in an ablation (its grid must stay balanced: every pair trained to the end)",
        )

    def _check_executions(self) -> None:
        """A resumed Hyperband rung continues one training; a trial runs at least once."""
        if self.tuner is TunerName.hyperband and self.hyperband_resume:
            require(
                self.executions_per_trial == 1,
                "search.hyperband_resume",
                self.hyperband_resume,
                f"false with search.executions_per_trial={self.executions_per_trial} (a rung continues the "
                "trial's one training)",
            )
        require(
            self.executions_per_trial > 0,
            "search.executions_per_trial",
            self.executions_per_trial,
            "> 0",
        )

    def _check_kept_models(self) -> None:
        """How many trial models stay, the memory restart, and the registered model's name."""
        require(
            self.keep_models is None or self.keep_models >= 0,
            "search.keep_models",
            self.keep_models,
            "null or >= 0",
        )
        require(
            self.restart_after_mib is None or self.restart_after_mib > 0,
            "search.restart_after_mib",
            self.restart_after_mib,
            "null or > 0",
        )
        require(
            self.register_as is None or SWEEP_NAME.fullmatch(self.register_as) is not None,
            "search.register_as",
            self.register_as,
            f"null or a model name: {SWEEP_NAME_RULE}",
        )
        require(
            self.register_as is None or self.keep_models != 0,
            "search.register_as",
            self.register_as,
            "null with search.keep_models=0 (no trial keeps a model to register)",
        )

    def _check_ablation(self, names: List[str]) -> None:
        """The ablation's axis and pairing are axes of the space; its looks and its pairs fit them."""
        require(
            self.ablation.axis in names and self.ablation.pair_by in names,
            "search.ablation",
            (self.ablation.axis, self.ablation.pair_by),
            f"axes of the space ({names})",
        )
        if self.ablation.looks is not None:
            self._check_looks(names)
        axis = self.space[names.index(self.ablation.axis)]
        for pair in self.ablation.pairs:
            require(
                axis.values is None
                or {pair.baseline, pair.candidate} <= set(map(str, axis.values)),
                "search.ablation.pairs",
                f"{pair.baseline} vs {pair.candidate}",
                f"values of the axis {axis.name!r} ({axis.values})",
            )

    def _check_looks(self, names: List[str]) -> None:
        """Seeds added by looks: only in a grid over the axis and its pairing alone, and no more
        seeds than the pairing axis declares."""
        pairing = self.space[names.index(self.ablation.pair_by)]
        require(
            self.tuner is TunerName.grid and len(names) == 2,
            "search.ablation.looks",
            self.ablation.looks,
            f"null unless the sweep is a grid over {self.ablation.axis} x {self.ablation.pair_by} alone",
        )
        require(
            pairing.values is not None and len(pairing.values) >= self.ablation.looks[-1],
            "search.ablation.looks",
            self.ablation.looks,
            f"at most as many seeds as search.space's {pairing.name} declares ({pairing.values})",
        )

    def _check_conditions(self, names: List[str]) -> None:
        """Each conditional axis (`when`) depends on another axis of the space."""
        for axis in self.space:
            parent = next(iter(axis.when)) if axis.when else None
            require(
                parent is None or parent in names,
                f"search.space[{axis.name}].when",
                axis.when,
                f"a condition on another axis of the space ({names})",
            )
