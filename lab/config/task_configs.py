"""The schemas of the tasks beside training and search: where runs are tracked (`tracking`), and
the settings of `task=evaluate`, `ui`, `analyze`, `list`, `report` and `bench`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import List, Optional

from lab.errors import require


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
    # > 0: also run a sweep this long and time each trial inside and outside fit
    sweep_trials: int = 0
    out: str = "bench/results"

    def __post_init__(self) -> None:
        require(self.steps > 0, "bench.steps", self.steps, "> 0")
        require(self.epochs > 0, "bench.epochs", self.epochs, "> 0")
        require(self.repeats > 0, "bench.repeats", self.repeats, "> 0")
        require(self.sweep_trials >= 0, "bench.sweep_trials", self.sweep_trials, ">= 0")
