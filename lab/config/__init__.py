"""The run configuration: typed dataclasses that are Hydra's schema.

Every YAML file under `conf/` is merged into one of these records, so a misspelt key
(`train.epoch=3`) or a wrong type (`train.epochs=three`) fails while Hydra composes the
config, naming the full key, before any data is loaded or any model is built. Range checks
that types cannot express (a negative epoch count) run when the config is turned into
objects by `to_run_config`, also before any work starts.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lab.errors import ConfigValueError, require

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


class Task(StrEnum):  # StrEnum: `${task}` interpolates as "train", not "Task.train"
    train = "train"
    search = "search"
    analyze = "analyze"
    list = "list"
    bench = "bench"
    evaluate = "evaluate"
    report = "report"
    ui = "ui"
    plan = "plan"


class Checkpoint(Enum):
    """Which weights a run keeps (and tests, and logs as its model): the best epoch's by the
    run's objective, the last epoch's, or none (nothing logged; tested at the last epoch)."""

    best = "best"
    last = "last"
    none = "none"


class TunerName(Enum):
    random = "random"
    grid = "grid"
    bayesian = "bayesian"
    hyperband = "hyperband"


class Pruner(Enum):
    """How a sweep stops trials that have already lost: `none` (every trial trains to its last
    epoch; ablation grids must, to stay balanced) or `median` (Optuna's MedianPruner rule)."""

    none = "none"
    median = "median"


class Role(Enum):
    """A sweep's process: `none` runs it alone; keras-tuner's distributed mode has one `chief` (the
    oracle, serving gRPC) and `worker`s (each trains trials); `launcher` starts a chief plus
    local workers, one per GPU."""

    none = "none"
    chief = "chief"
    worker = "worker"
    launcher = "launcher"


class AxisKind(Enum):
    choice = "choice"
    int = "int"
    float = "float"
    boolean = "boolean"


class OptimizerName(Enum):
    sgd = "sgd"
    adamw = "adamw"


class Schedule(Enum):
    constant = "constant"
    step = "step"
    cosine = "cosine"
    one_cycle = "one_cycle"


class Precision(Enum):
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"
    mixed_float16 = "mixed_float16"


@dataclass
class DataConfig:
    """Which dataset, where its files are, and how much of it to use.

    `limit` keeps the first N training examples; the validation split (`val_fraction`,
    seeded by the run's seed) is then carved from those N. `test_limit` keeps the first N test
    examples (the same ones for every run, so comparisons stay paired); null: all of them.
    `downsample` averages each k x k block of pixels into one (area averaging, as Chrabaszcz et al.
    2017 built their downsampled ImageNet): 2 turns Fashion-MNIST's 28x28 into 14x14 and CIFAR's
    32x32 into 16x16, a quarter of every network's MACs; 1 keeps the native images.
    """

    name: str = MISSING
    root: Optional[str] = None
    limit: Optional[int] = None
    val_fraction: float = 0.1
    test_limit: Optional[int] = None
    downsample: int = 1

    def __post_init__(self) -> None:
        require(self.limit is None or self.limit > 1, "data.limit", self.limit, "null or > 1")
        require(self.downsample >= 1, "data.downsample", self.downsample, ">= 1")
        require(
            self.test_limit is None or self.test_limit > 0,
            "data.test_limit",
            self.test_limit,
            "null or > 0",
        )
        require(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")


@dataclass
class SyntheticDataConfig(DataConfig):
    """A small generated dataset with learnable class structure, for tests."""

    name: str = "synthetic"
    train_size: int = 512
    test_size: int = 128
    image_size: int = 16
    channels: int = 3
    classes: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("train_size", "test_size", "image_size", "channels"):
            value = getattr(self, key)
            require(value > 0, f"data.{key}", value, "> 0")
        require(self.classes > 1, "data.classes", self.classes, "> 1")


@dataclass
class AugmentConfig:
    """On-device augmentation: zero-pad by `pad` pixels then crop back at random; random flips."""

    pad: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        require(self.pad >= 0, "train.augment.pad", self.pad, ">= 0")


@dataclass
class EarlyStoppingConfig:
    """Stop a run when its objective (the one `train.checkpoint=best` follows; training loss
    without a validation split) has not improved by more than `min_delta` for `patience` epochs.
    patience null: off."""

    patience: Optional[int] = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.patience is None or self.patience >= 1,
            "train.early_stopping.patience",
            self.patience,
            "null (off) or >= 1",
        )
        require(self.min_delta >= 0, "train.early_stopping.min_delta", self.min_delta, ">= 0")


@dataclass
class TrainConfig:
    """The training protocol. Milestones of the step schedule are fractions of the training after
    warmup (0.5: halfway); `lr` is the peak learning rate of every schedule."""

    epochs: int = 30
    batch_size: int = 128
    optimizer: OptimizerName = OptimizerName.sgd
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Schedule = Schedule.cosine
    warmup_epochs: float = 0.0
    milestones: List[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    label_smoothing: float = 0.0
    precision: Precision = Precision.float32
    jit_compile: bool = True
    # XLA's persistent compilation cache (JAX; TensorFlow's XLA), so an architecture compiles once
    # per project, not once per seed or trial; null: off.
    compile_cache: Optional[str] = "outputs/compile_cache"
    # A run of the same network under the same protocol as this process's previous run (the next
    # seed of an ablation grid) trains that run's compiled model, reset to its own initial state,
    # instead of tracing its own step again (lab/training/reuse.py); false: always trace.
    reuse_compiled: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # The weights the run tests and logs as its MLflow model (`model/`, Keras flavour: raw uint8
    # images in, the main head's probabilities out): `best` epoch by the run's objective
    # (val_accuracy, or the sweep's per-epoch objective; the last epoch without a validation
    # split), `last`, or `none` (no model logged).
    checkpoint: Checkpoint = Checkpoint.best
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    # The epochs the learning-rate schedule spans (its warmup, milestones and decay are fractions
    # of them); null: `epochs`. A Hyperband trial sets it to `search.max_epochs`, so a rung of k
    # epochs is the first k epochs of one max_epochs training and the next rung can continue it.
    schedule_epochs: Optional[int] = None
    verbose: int = 1

    @property
    def schedule_span(self) -> int:
        """The epochs the learning-rate schedule spans: `schedule_epochs`, else `epochs`."""
        return self.schedule_epochs if self.schedule_epochs is not None else self.epochs

    def __post_init__(self) -> None:
        require(self.epochs > 0, "train.epochs", self.epochs, "> 0")
        require(self.batch_size > 0, "train.batch_size", self.batch_size, "> 0")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0")
        require(
            0 <= self.label_smoothing < 1,
            "train.label_smoothing",
            self.label_smoothing,
            "in [0, 1)",
        )
        require(
            self.schedule_epochs is None or self.schedule_epochs >= self.epochs,
            "train.schedule_epochs",
            self.schedule_epochs,
            f"null or >= train.epochs={self.epochs} (the schedule spans the whole training)",
        )
        require(
            0 <= self.warmup_epochs < self.schedule_span,
            "train.warmup_epochs",
            self.warmup_epochs,
            f"in [0, the {self.schedule_span} epochs the schedule spans: train.schedule_epochs, else train.epochs)",
        )
        require(
            all(0 < m < 1 for m in self.milestones),
            "train.milestones",
            self.milestones,
            "fractions of training strictly between 0 and 1",
        )


@dataclass
class TrackingConfig:
    """Where MLflow records runs. A `sqlite:///` URI is the embedded default; use
    `http://HOST:PORT` of an `mlflow server` when several processes write at once."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "lab"
    run_name: Optional[str] = None


@dataclass
class EvaluateConfig:
    """`task=evaluate`: the MLflow model to test on `data`'s test split, without training:
    `runs:/RUN_ID/model` (a run's kept model) or `models:/NAME@ALIAS` / `models:/NAME/VERSION`."""

    model_uri: Optional[str] = None

    def __post_init__(self) -> None:
        require(
            self.model_uri is None or self.model_uri.startswith(("runs:/", "models:/")),
            "evaluate.model_uri",
            self.model_uri,
            "runs:/RUN_ID/model or models:/NAME@ALIAS",
        )


@dataclass
class UiConfig:
    """`task=ui`: MLflow's UI for `tracking.uri` on loopback at `port` (0: any free port), opened
    on the model-training runs view of `tracking.experiment` (`search.name`'s sweep, if it ran)."""

    port: int = 5000

    def __post_init__(self) -> None:
        require(
            0 <= self.port <= 65535, "ui.port", self.port, "a TCP port, 0-65535 (0: any free port)"
        )


@dataclass
class AnalyzeConfig:
    """`task=analyze` input: `input_shape` and `classes` when given; otherwise the dataset's when
    `data=NAME` is on the command line; otherwise the variant's published input."""

    input_shape: Optional[List[int]] = None
    classes: Optional[int] = None

    def __post_init__(self) -> None:
        require(
            self.input_shape is None or (len(self.input_shape) == 3 and min(self.input_shape) > 0),
            "analyze.input_shape",
            self.input_shape,
            "null or [height, width, channels], all > 0",
        )
        require(
            self.classes is None or self.classes > 1, "analyze.classes", self.classes, "null or > 1"
        )


class ListSort(Enum):
    """The row order of `task=list`: by variant name (alphabetical, where a reader looks a name
    up), or by parameters or MACs, smallest first (ties by name)."""

    name = "name"
    params = "params"
    macs = "macs"


@dataclass
class ListTaskConfig:
    """`task=list` (the `list:` key; not `ListConfig`, which is omegaconf's list node): the
    variants whose `family` is this one and whose name matches the glob `name` (fnmatch:
    `resnet*`), selected before any is built; then those within `max_params` and `max_macs` at
    their published input, in `sort` order. `trained`: also each variant's best measured
    `test_accuracy` in `tracking.uri` (its finished runs that trained), their count and the best
    run's id. null: no filter."""

    family: Optional[str] = None
    name: Optional[str] = None
    max_params: Optional[int] = None
    max_macs: Optional[int] = None
    sort: ListSort = ListSort.name
    trained: bool = False

    def __post_init__(self) -> None:
        from lab.models.specs import SPEC_TYPES

        require(
            self.family is None or self.family in SPEC_TYPES,
            "list.family",
            self.family,
            f"null or a registered family: one of {', '.join(sorted(SPEC_TYPES))}",
        )
        require(
            self.name is None or bool(self.name),
            "list.name",
            self.name,
            "null or a glob of variant names (resnet*)",
        )
        for key in ("max_params", "max_macs"):
            value = getattr(self, key)
            require(value is None or value > 0, f"list.{key}", value, "null or > 0")


class ReportSize(Enum):
    """What a circle's area shows in the report's accuracy-vs-operations figure: forward
    activations per example (the memory Canziani et al. 2016 draw), or parameters."""

    activations = "activations"
    params = "params"


@dataclass
class ReportTaskConfig:
    """`task=report`: everything trained in `tracking.uri`, pooled by what was trained
    (`lab.spec_hash`), on one page. `experiments`: MLflow experiment names (null: all but
    `reports`); `data`: only runs on this dataset (`data.name`, null: all); `metric`: what the
    table and figures compare (a final metric every training run logs); `out`: the folder to
    write (null: reports/<timestamp>/; it must not exist); `size`: the circles' area."""

    experiments: Optional[List[str]] = None
    data: Optional[str] = None
    metric: str = "test_accuracy"
    out: Optional[str] = None
    size: ReportSize = ReportSize.activations

    def __post_init__(self) -> None:
        require(
            self.experiments is None or len(self.experiments) > 0,
            "report.experiments",
            self.experiments,
            "null (every experiment) or a list of MLflow experiment names",
        )
        require(
            bool(self.metric),
            "report.metric",
            self.metric,
            "a metric the training runs logged (test_accuracy)",
        )
        require(
            self.out is None or not Path(self.out).exists(),
            "report.out",
            self.out,
            "null or a folder that does not exist yet (a report is written whole, never over another)",
        )


@dataclass
class BenchConfig:
    """`task=bench`: the lab's `train` beside a plain Keras `fit` of the same model on the same
    arrays: one warm-up epoch (compile) then `epochs` timed epochs of `steps` steps each."""

    # 20 steps, 2 timed epochs: 4 fits of ResNet-20 at 28x28 in about 6 minutes on a slow day
    # (90 img/s); bench.steps=100 bench.epochs=3 for steadier figures where there is time.
    steps: int = 20
    epochs: int = 2
    repeats: int = 2  # ABBA order: raw, lab, lab, raw, ...; each side's best counts
    raw: bool = True  # also time plain Keras
    sweep_trials: int = (
        0  # > 0: also run a sweep this long and time each trial inside and outside fit
    )
    out: str = "bench/results"

    def __post_init__(self) -> None:
        require(self.steps > 0, "bench.steps", self.steps, "> 0")
        require(self.epochs > 0, "bench.epochs", self.epochs, "> 0")
        require(self.repeats > 0, "bench.repeats", self.repeats, "> 0")
        require(self.sweep_trials >= 0, "bench.sweep_trials", self.sweep_trials, ">= 0")


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


class Metric(Enum):
    """What a comparison measures, per run. Errors are 1 - accuracy. `train_*` are the final
    epoch's training figures (Keras' running mean over that epoch's batches, augmentation on, as
    in He et al.'s training curves): the degradation problem is about training error."""

    train_error = "train_error"
    train_loss = "train_loss"
    test_error = "test_error"
    test_loss = "test_loss"
    objective = "objective"  # the sweep's objective (search.objective, in its direction)


class Expectation(Enum):
    """What the paper claims of the candidate against the baseline on the comparison's metric."""

    better = "better"
    worse = "worse"
    not_worse = "not_worse"  # no worse than the baseline by more than `margin` (non-inferiority)
    same = "same"  # within `margin` of the baseline either way (equivalence, two one-sided tests)


@dataclass
class ComparisonConfig:
    """One comparison of an ablation: `candidate` against `baseline` (values of the ablation's
    axis) on `metric`, paired by seed. `expect` is the published claim it tests (null: report
    the verdict only); `claim` says it in one line."""

    baseline: str = MISSING
    candidate: str = MISSING
    metric: Metric = Metric.objective
    expect: Optional[Expectation] = None
    margin: float = 0.0  # not_worse / same: the largest difference that still counts as none, in the metric's units
    claim: str = ""
    # The fewest SGD steps the networks must have trained for this claim to be about them (null:
    # the ablation's `min_steps`). A budget belongs to a claim: a comparison without `expect`
    # is always judged on what it measured.
    min_steps: Optional[int] = None

    def __post_init__(self) -> None:
        require(self.margin >= 0, "search.ablation.pairs.margin", self.margin, ">= 0")
        require(
            self.expect not in (Expectation.not_worse, Expectation.same) or self.margin > 0,
            "search.ablation.pairs.margin",
            self.margin,
            f"> 0 for expect: {self.expect.value if self.expect else ''} "
            "(the largest difference that still counts as none)",
        )
        require(
            self.min_steps is None or self.min_steps >= 0,
            "search.ablation.pairs.min_steps",
            self.min_steps,
            ">= 0",
        )


@dataclass
class CurvesConfig:
    """The per-epoch error figure of an ablation: one line per value of the axis (mean over seeds),
    coloured by `colour_by` and dashed where `dash_by` is one of `dashed` (keys of a trial run's
    params or metrics, e.g. `depth`, `model.connectivity`; null: by the axis value)."""

    colour_by: Optional[str] = None
    dash_by: Optional[str] = None
    dashed: List[str] = field(default_factory=list)


@dataclass
class AblationConfig:
    """An ablation: a grid over the values of `axis` x `pair_by` (usually seeds). The report
    gives each value's figures (mean +- std over `pair_by`) and, for each comparison in `pairs`,
    the paired difference with a 95% t interval, a Holm-adjusted verdict and, where the
    comparison states what the paper found, whether the lab reproduced it. `source` names the
    paper and its figure or table, `claim` its finding in one line."""

    axis: str = "variant"
    pair_by: str = "seed"
    source: str = ""
    claim: str = ""
    pairs: List[ComparisonConfig] = field(default_factory=list)
    curves: CurvesConfig = field(default_factory=CurvesConfig)
    # The fewest SGD steps a network must have trained for the paper's claims to be about it (a
    # claim on fully trained networks needs the full protocol; a pair may state its own). A sweep
    # whose runs trained fewer shows its differences but draws no verdict on those claims
    # (`inconclusive at this budget`); comparisons without a claim are judged as measured.
    min_steps: int = 0
    # Seeds added as they are needed (null: every value of `pair_by`, as declared): the numbers of
    # seeds at which the claims are tested, e.g. [3, 5, 8]. After each look the comparisons still
    # undecided get the next seeds; the sweep stops once every claim is decided or the last look
    # is reached. The level is split over the looks (`lab.stats.seeds.look_levels`), so stopping
    # early does not inflate the error rate (bench/verdict_calibration.py measures it).
    looks: Optional[List[int]] = None

    def __post_init__(self) -> None:
        require(self.min_steps >= 0, "search.ablation.min_steps", self.min_steps, ">= 0")
        if self.looks is not None:
            require(
                len(self.looks) >= 1
                and self.looks[0] >= 2
                and all(a < b for a, b in zip(self.looks, self.looks[1:])),
                "search.ablation.looks",
                self.looks,
                "null or increasing seed counts from at least 2, e.g. [3, 5, 8]",
            )


@dataclass
class DistributedConfig:
    """keras-tuner's distributed mode (`search.distributed.*`). The gRPC channel has no
    authentication: keep `address` on loopback or a private network (docs/sweeps.md, "Scaling out")."""

    role: Role = Role.none
    address: str = "127.0.0.1:8000"  # HOST:PORT the chief binds to and workers connect to
    # This worker's index: its keras-tuner id is `worker<N>`; a restarted worker resumes its trial.
    worker_index: int = 0
    connect_timeout_s: float = 300.0  # how long a worker waits for the chief before giving up
    local_workers: Optional[int] = None  # launcher: workers it starts here (null: one per device)
    # launcher: GPUs to pin workers to, numbered as nvidia-smi does (null: those CUDA_VISIBLE_DEVICES
    # names, else every GPU nvidia-smi lists)
    devices: Optional[List[int]] = None
    max_restarts: int = (
        3  # launcher: restarts of a process killed by a signal (it resumes its trial)
    )
    # chief: trials its saved state lists as running go back in the queue instead of waiting for
    # their workers (the launcher sets it when it starts every process afresh)
    requeue_running: bool = False

    def __post_init__(self) -> None:
        host, _, port = self.address.rpartition(":")
        require(
            bool(host) and port.isdigit() and 0 < int(port) < 65536,
            "search.distributed.address",
            self.address,
            "HOST:PORT",
        )
        require(
            self.worker_index >= 0, "search.distributed.worker_index", self.worker_index, ">= 0"
        )
        require(
            self.connect_timeout_s > 0,
            "search.distributed.connect_timeout_s",
            self.connect_timeout_s,
            "> 0",
        )
        require(
            self.local_workers is None or self.local_workers > 0,
            "search.distributed.local_workers",
            self.local_workers,
            "null or > 0",
        )
        require(
            self.max_restarts >= 0, "search.distributed.max_restarts", self.max_restarts, ">= 0"
        )

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


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
    """A loss is minimised, an accuracy maximised."""
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
    executions_per_trial: int = (
        1  # trainings per trial (seeds seed, seed+1, ...); the objective is their mean
    )
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
    # graphs (tf-keras#286). null: never.
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
        """{budget key: limit} of the model budgets (`max_params`, `max_macs`, `max_activation_bytes`)."""
        return {
            "max_params": self.max_params,
            "max_macs": self.max_macs,
            "max_activation_bytes": self.max_activation_bytes,
        }

    def __post_init__(self) -> None:
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
        require(
            SWEEP_NAME.fullmatch(self.name) is not None, "search.name", self.name, SWEEP_NAME_RULE
        )
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
        if self.pruner is not Pruner.none:
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
        names = [axis.name for axis in self.space]
        require(len(names) == len(set(names)), "search.space", names, "axes with distinct names")
        if self.ablation is not None:
            require(
                self.ablation.axis in names and self.ablation.pair_by in names,
                "search.ablation",
                (self.ablation.axis, self.ablation.pair_by),
                f"axes of the space ({names})",
            )
            axis = self.space[names.index(self.ablation.axis)]
            if self.ablation.looks is not None:
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
            for pair in self.ablation.pairs:
                require(
                    axis.values is None
                    or {pair.baseline, pair.candidate} <= set(map(str, axis.values)),
                    "search.ablation.pairs",
                    f"{pair.baseline} vs {pair.candidate}",
                    f"values of the axis {axis.name!r} ({axis.values})",
                )
        for axis in self.space:
            parent = next(iter(axis.when)) if axis.when else None
            require(
                parent is None or parent in names,
                f"search.space[{axis.name}].when",
                axis.when,
                f"a condition on another axis of the space ({names})",
            )


@dataclass
class RunConfig:
    """The whole resolved configuration of one `python run.py` invocation."""

    task: Task = Task.train
    seed: int = 0
    model: Any = MISSING
    data: Any = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    list: ListTaskConfig = field(default_factory=ListTaskConfig)
    report: ReportTaskConfig = field(default_factory=ReportTaskConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    # A recorded run (an MLflow run id) whose model, data, train and seed this one takes (its
    # config.yaml); the command line's own keys win: `task=train from_run=ID train.epochs=90`.
    from_run: Optional[str] = None
    quick: bool = False  # apply `quick_settings`: an experiment's quick mode
    quick_settings: Dict[str, Any] = field(default_factory=dict)  # {dotted key: value}

    def __post_init__(self) -> None:
        require(
            0 <= self.seed < 2**32,
            "seed",
            self.seed,
            "an integer from 0 to 2**32 - 1 (NumPy's seeds are unsigned)",
        )
        if self.task is not Task.search:
            return
        require(
            self.search.register_as is None or self.train.checkpoint is not Checkpoint.none,
            "search.register_as",
            self.search.register_as,
            "null with train.checkpoint=none (no trial logs a model to register)",
        )
        require(
            bool(self.search.space),
            "search.space",
            self.search.space,
            "at least one axis (to train one configuration, use task=train)",
        )
        if self.search.objective.startswith("val_") and self.search.objective != "val_accuracy":
            require(
                self.data.val_fraction > 0,
                "search.objective",
                self.search.objective,
                "a metric this run logs: data.val_fraction=0 leaves no validation split",
            )

    def with_overrides(self, overrides: Dict[str, Any]) -> "RunConfig":
        """A copy with each dotted path set (a trial's values, an execution's seed, a whole
        `model` variant by name), checked again as the original was (`lab.config.overrides.set_path`)."""
        from lab.config.overrides import apply_overrides

        return to_run_config(apply_overrides(OmegaConf.structured(self), overrides, variant_node))


@functools.cache  # once per process: storing turns each schema into a config node again (about 0.2 s)
def register_configs() -> None:
    """Registers the schemas with Hydra. Config files select theirs in their defaults list:
    `- /schema/model/resnet@_here_`."""
    from lab.models.specs import SPEC_TYPES

    store = ConfigStore.instance()
    store.store(name="base_config", node=RunConfig)
    store.store(group="schema/data", name="dataset", node=DataConfig, package="data")
    store.store(group="schema/data", name="synthetic", node=SyntheticDataConfig, package="data")
    store.store(group="schema/train", name="train", node=TrainConfig, package="train")
    store.store(group="schema/tracking", name="tracking", node=TrackingConfig, package="tracking")
    store.store(group="schema/search", name="search", node=SearchConfig, package="search")
    for name, spec_type in SPEC_TYPES.items():
        store.store(group="schema/model", name=name, node=spec_type, package="model")


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Turns a composed config into typed objects, running every range check.

    Keys added with Hydra's `+key=value` bypass the closed schema and `to_object` would drop
    them silently, so any key the typed records do not have is an error here.
    """
    run_config = OmegaConf.to_object(cfg)
    extra = unknown_keys(OmegaConf.to_container(cfg, resolve=False), run_config)
    if extra:
        raise ConfigValueError(
            f"Unknown config keys: {', '.join(extra)} (check the spelling; see conf/)"
        )
    return run_config


def unknown_keys(given: Any, typed: Any, prefix: str = "") -> List[str]:
    """Full keys present in `given` (the composed config as plain dicts and lists, unresolved) but
    not in `typed`, the records `to_object` made of it (dataclasses, dicts, lists): read from the
    records themselves, since turning them into a config tree again costs as much as the conversion."""
    if isinstance(given, dict):
        known = typed_keys(typed)
        keys = [(key, f"{prefix}.{key}" if prefix else str(key)) for key in given]
        return [full for key, full in keys if key not in known] + [
            extra
            for key, full in keys
            if key in known
            for extra in unknown_keys(given[key], typed_child(typed, key), full)
        ]
    if isinstance(given, list) and isinstance(typed, (list, tuple)):
        return [
            extra
            for i in range(min(len(given), len(typed)))
            for extra in unknown_keys(given[i], typed[i], f"{prefix}[{i}]")
        ]
    return []


def typed_keys(typed: Any) -> set:
    """The keys a typed record has: a dataclass's fields, a dict's keys, none for a value."""
    if dataclasses.is_dataclass(typed):
        return {f.name for f in dataclasses.fields(typed)}
    return set(typed) if isinstance(typed, dict) else set()


def typed_child(typed: Any, key: Any) -> Any:
    return typed[key] if isinstance(typed, dict) else getattr(typed, key)


def run_config(overrides: Optional[List[str]] = None) -> RunConfig:
    """What `python run.py OVERRIDES` runs: composed, with the experiment's quick settings when
    `quick=true` (keys the overrides set win), and checked (for tests and tools)."""
    from lab.config.command_line import override_key

    overrides = list(overrides or [])
    return checked_run_config(compose(overrides), [override_key(o) for o in overrides if "=" in o])


def checked_run_config(composed: DictConfig, given: List[str]) -> RunConfig:
    """The one conversion: Hydra's composed config, with `from_run`'s recorded model, data, train
    and seed, and the experiment's quick settings when `quick=true` (except the keys in `given`,
    which the command line set, in both), as a checked `RunConfig`."""
    from lab.config.overrides import with_quick_settings

    if composed.get("from_run"):
        from lab.config.from_run import with_recorded_run

        composed = with_recorded_run(composed, given, group_options, group_option)
    return to_run_config(with_quick_settings(composed, given, variant_node))


def group_options(group: str) -> List[str]:
    """The options of a config group: `conf/GROUP/*.yaml`."""
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def group_option(group: str, name: str) -> DictConfig:
    """One option of a config group, composed (`model`, `resnet20`)."""
    return compose([f"{group}={name}"])[group]


def variant_node(name: str) -> DictConfig:
    """The composed `model` node of a registered variant (`conf/model/NAME.yaml`)."""
    return compose([f"model={name}"]).model


def compose(overrides: Optional[List[str]] = None) -> DictConfig:
    """Composes `conf/config.yaml` with overrides, as `python run.py` would (for tests and tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    if (
        GlobalHydra.instance().is_initialized()
    ):  # inside `python run.py`: Hydra's search path is set up
        return hydra_compose(config_name="config", overrides=list(overrides or []))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides or []))
