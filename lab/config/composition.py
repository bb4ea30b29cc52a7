"""The root record, `RunConfig`, and the one conversion into it: Hydra composes `conf/config.yaml`
with the command line, `to_run_config` turns that into the checked typed records."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lab.config.data_config import DataConfig, SyntheticDataConfig
from lab.config.schema_keys import unknown_keys
from lab.config.search_config import SearchConfig
from lab.config.task_configs import (
    AnalyzeConfig,
    BenchConfig,
    EvaluateConfig,
    ListTaskConfig,
    ReportTaskConfig,
    TrackingConfig,
    UiConfig,
)
from lab.config.train_config import Checkpoint, TrainConfig
from lab.errors import ConfigValueError, require

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


class Task(StrEnum):  # StrEnum: `${task}` interpolates as "train", not "Task.train"
    """The `task=` values: what one `python run.py` invocation does."""

    train = "train"
    search = "search"
    analyze = "analyze"
    list = "list"
    bench = "bench"
    evaluate = "evaluate"
    report = "report"
    ui = "ui"
    plan = "plan"


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
        """A copy with each dotted path set, checked again as the original was.

        Args:
            overrides: {dotted path: value}: a trial's values, an execution's seed, a whole `model`
                variant by name (`lab.config.overrides.set_path` says how each path is set).

        Returns:
            A new `RunConfig`; this one is unchanged.

        Raises:
            ConfigValueError: A path the schema does not have, or a value out of its range.
        """
        from lab.config.overrides import apply_overrides

        return to_run_config(apply_overrides(OmegaConf.structured(self), overrides, variant_node))


@functools.cache  # once per process: storing turns each schema into a config node again (about 0.2 s)
def register_configs() -> None:
    """Registers the schemas with Hydra's ConfigStore, once per process.

    Config files select theirs in their defaults list: `- /schema/model/resnet@_here_`. Every
    model family in `lab.models.specs.SPEC_TYPES` is stored as `schema/model/FAMILY`.
    """
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

    Args:
        cfg: A config composed on the `base_config` schema.

    Returns:
        The checked `RunConfig`.

    Raises:
        ConfigValueError: A key the records do not have, or a value a range check refuses.
    """
    run_config = OmegaConf.to_object(cfg)
    extra = unknown_keys(OmegaConf.to_container(cfg, resolve=False), run_config)
    if extra:
        raise ConfigValueError(
            f"Unknown config keys: {', '.join(extra)} (check the spelling; see conf/)"
        )
    return run_config


def run_config(overrides: Optional[List[str]] = None) -> RunConfig:
    """What `python run.py OVERRIDES` runs, for tests and tools.

    Args:
        overrides: Hydra overrides, as on the command line (`train.epochs=3`); None: none.

    Returns:
        The composed config, with the experiment's quick settings when `quick=true` (keys the
        overrides set win) and `from_run`'s recorded run, checked as a `RunConfig`.
    """
    from lab.config.command_line import override_key

    overrides = list(overrides or [])
    return checked_run_config(compose(overrides), [override_key(o) for o in overrides if "=" in o])


def checked_run_config(composed: DictConfig, given: List[str]) -> RunConfig:
    """The one conversion from Hydra's composed config to a checked `RunConfig`.

    Args:
        composed: The config Hydra composed.
        given: The dotted keys the command line set; they win over both the recorded run's
            values and the quick settings.

    Returns:
        The `RunConfig`, with `from_run`'s recorded model, data, train and seed when `from_run`
        is set, and the experiment's quick settings when `quick=true`.
    """
    from lab.config.overrides import with_quick_settings

    if composed.get("from_run"):
        from lab.config.from_run import with_recorded_run

        composed = with_recorded_run(composed, given, group_options, group_option)
    return to_run_config(with_quick_settings(composed, given, variant_node))


def group_options(group: str) -> List[str]:
    """The options of a config group.

    Args:
        group: A folder of `conf/` (`model`, `experiment`).

    Returns:
        The names of its `*.yaml` files, without the suffix, sorted.
    """
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def group_option(group: str, name: str) -> DictConfig:
    """One option of a config group, composed.

    Args:
        group: A folder of `conf/` (`model`).
        name: One of its options (`resnet20`).

    Returns:
        The group's node of the config composed with `GROUP=NAME`.
    """
    return compose([f"{group}={name}"])[group]


def variant_node(name: str) -> DictConfig:
    """The composed `model` node of a registered variant.

    Args:
        name: A variant: `conf/model/NAME.yaml`.

    Returns:
        The `model` node of the config composed with `model=NAME`.
    """
    return compose([f"model={name}"]).model


def compose(overrides: Optional[List[str]] = None) -> DictConfig:
    """Composes `conf/config.yaml` with overrides, as `python run.py` would (for tests and tools).

    Inside `python run.py` Hydra is initialised and its search path is used; elsewhere `conf/`
    is opened for this one composition.

    Args:
        overrides: Hydra overrides (`model=resnet20`, `train.epochs=3`); None: none.

    Returns:
        The composed config, not yet converted (`to_run_config` checks it).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    # inside `python run.py`: Hydra's search path is set up
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name="config", overrides=list(overrides or []))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides or []))
