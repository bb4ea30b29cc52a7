"""The `search` group's schema: a keras-tuner sweep (tuner, objectives, budgets, pruning, kept
models, its space of axes: `axis_config.py`) and the names a sweep may take."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from lab.config.ablation_config import AblationConfig
from lab.config.axis_config import AxisSpec, axis_allows, axis_range
from lab.config.distributed_config import DistributedConfig
from lab.config.objectives_config import (
    MEASURED_COSTS,
    OBJECTIVES,
    ObjectiveSpec,
    Sampler,
    objective_direction,
)
from lab.errors import require


class TunerName(Enum):
    """The keras-tuner oracle that picks a sweep's trials."""

    random = "random"
    grid = "grid"
    bayesian = "bayesian"
    hyperband = "hyperband"
    optuna = "optuna"  # an Optuna study's sampler (`search.sampler`) inside keras-tuner's oracle


class Pruner(Enum):
    """How a sweep stops trials that have already lost: `none` (every trial trains to its last
    epoch; ablation grids must, to stay balanced) or `median` (Optuna's MedianPruner rule)."""

    none = "none"
    median = "median"


# A sweep's name is a folder under `search.directory` and a value in MLflow queries.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SWEEP_NAME_RULE = (
    "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit "
    "(it names a folder and an MLflow tag)"
)


@dataclass
class SearchConfig:
    """`task=search`: a keras-tuner sweep over `space`, one MLflow child run per trial under one
    parent named `name`. Re-running the same `name` resumes it from `directory`."""

    tuner: TunerName = TunerName.random
    objective: str = "val_accuracy"  # one of OBJECTIVES
    direction: Optional[str] = None  # null: min for a loss, max for an accuracy
    # Several objectives at once, e.g. [{name: val_accuracy}, {name: macs}]: the trials' Pareto set
    # is reported (summary.md, pareto.png, hypervolume) and `tuner=optuna` samples for it. The
    # first must be a metric a trial trains for: it becomes `objective`, which ranks the kept
    # models and names the best trial. Empty: `objective` alone.
    objectives: List[ObjectiveSpec] = field(default_factory=list)
    # tuner=optuna: the study's sampler, NSGA-II's generation size (null: a quarter of
    # max_trials, between 4 and 50), and trials to run first, as {axis: value} (published
    # variants, say); an axis an entry leaves out is sampled.
    sampler: Sampler = Sampler.auto
    population_size: Optional[int] = None
    enqueue: List[Dict[str, Any]] = field(default_factory=list)
    # The inference latency (objectives latency_ms, inference_images_per_second): the median over
    # `latency_repeats` timed batches of `latency_batch` test images, after one warm-up batch, on
    # the device that trained the model.
    latency_batch: int = 64
    latency_repeats: int = 20
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

    def objective_list(self) -> List[ObjectiveSpec]:
        """Every objective of the sweep, the ranking one first: `objectives`, or `objective`
        alone where none are listed."""
        if self.objectives:
            return list(self.objectives)
        return [ObjectiveSpec(self.objective, self.direction)]

    @property
    def several_objectives(self) -> bool:
        return len(self.objectives) > 1

    def measures_latency(self) -> bool:
        """Whether a trial's latency is timed: an objective needs it."""
        return any(o.name in MEASURED_COSTS for o in self.objectives)

    def __post_init__(self) -> None:
        self._check_objectives()
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

    def _check_objectives(self) -> None:
        """Several objectives: distinct, the first one trained for (it becomes `objective`), and
        only with the tuners and settings that can serve them; then the Optuna settings."""
        if self.objectives:
            names = [o.name for o in self.objectives]
            require(len(names) == len(set(names)), "search.objectives", names, "distinct names")
            require(
                names[0] in OBJECTIVES,
                "search.objectives",
                names,
                f"a first objective a trial trains for ({', '.join(OBJECTIVES)}): it ranks the "
                "kept models and names the best trial",
            )
            self.objective, self.direction = names[0], self.objectives[0].direction
        if self.several_objectives:
            self._check_several_objectives()
        require(
            self.latency_batch > 0 and self.latency_repeats > 0,
            "search.latency_batch/latency_repeats",
            (self.latency_batch, self.latency_repeats),
            "> 0",
        )
        self._check_optuna()

    def _check_several_objectives(self) -> None:
        """What serves one objective only refuses several: keras-tuner's Bayesian oracle and
        Hyperband rank by one number, the pruner by one curve, an ablation compares one metric."""
        for allowed, key, value, rule in (
            (
                self.tuner not in (TunerName.bayesian, TunerName.hyperband),
                "search.tuner",
                self.tuner.value,
                "optuna, random or grid with several search.objectives (keras-tuner's "
                f"{self.tuner.value} optimises one number; optuna's NSGA-II samples for the front)",
            ),
            (
                self.pruner is Pruner.none,
                "search.pruner",
                self.pruner.value,
                "none with several search.objectives (a trial is pruned on one curve)",
            ),
            (
                self.ablation is None,
                "search.ablation",
                "set",
                "null with several search.objectives (an ablation compares one metric)",
            ),
        ):
            require(allowed, key, value, rule)

    def _check_optuna(self) -> None:
        """The sampler's settings only for tuner=optuna; enqueued trials name axes of the space."""
        if self.tuner is not TunerName.optuna:
            for key, unset in (
                ("sampler", self.sampler is Sampler.auto),
                ("population_size", self.population_size is None),
                ("enqueue", not self.enqueue),
            ):
                require(
                    unset, f"search.{key}", getattr(self, key), "unset unless search.tuner=optuna"
                )
            return
        require(
            self.sampler is not Sampler.gp or importlib.util.find_spec("torch") is not None,
            "search.sampler",
            "gp",
            "nsga2, tpe or random here: Optuna's GP sampler needs PyTorch (pip install torch)",
        )
        require(
            self.population_size is None or self.population_size >= 2,
            "search.population_size",
            self.population_size,
            "null or >= 2",
        )
        axes = {axis.name: axis for axis in self.space}
        for entry in self.enqueue:
            unknown = sorted(set(entry) - set(axes))
            require(
                not unknown, "search.enqueue", dict(entry), f"axes of the space ({sorted(axes)})"
            )
            for name, value in entry.items():
                require(
                    axis_allows(axes[name], value),
                    f"search.enqueue[{name}]",
                    value,
                    f"a value of the axis ({axis_range(axes[name])})",
                )

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
