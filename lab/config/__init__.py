"""The run configuration: typed dataclasses that are Hydra's schema, and the one config contract.

Every YAML file under `conf/` is merged into one of these records, so a misspelt key
(`train.epoch=3`) or a wrong type (`train.epochs=three`) fails while Hydra composes the
config, naming the full key, before any data is loaded or any model is built. Range checks
that types cannot express (a negative epoch count) run when the config is turned into
objects by `to_run_config`, also before any work starts. Below the entry point, code receives
the one checked `RunConfig`.

One module per part of the schema: `data_config`, `train_config`, `search_config` (with
`ablation_config` and `distributed_config`), `task_configs` (the other tasks' settings), and
`composition` (the root `RunConfig` and the conversion into it). Import the names from here.
"""

from lab.config.ablation_config import (
    AblationConfig,
    ComparisonConfig,
    CurvesConfig,
    Expectation,
    Metric,
)
from lab.config.axis_config import AxisKind, AxisSpec
from lab.config.composition import (
    CONF_DIR,
    PROJECT_ROOT,
    RunConfig,
    Task,
    checked_run_config,
    compose,
    group_option,
    group_options,
    register_configs,
    run_config,
    to_run_config,
    variant_node,
)
from lab.config.data_config import DataConfig, SyntheticDataConfig
from lab.config.distributed_config import DistributedConfig, Role
from lab.config.objectives_config import (
    COSTS,
    MEASURED_COSTS,
    OBJECTIVES,
    ObjectiveSpec,
    Sampler,
    objective_direction,
)
from lab.config.schema_keys import typed_child, typed_keys, unknown_keys
from lab.config.search_config import (
    SWEEP_NAME,
    SWEEP_NAME_RULE,
    Pruner,
    SearchConfig,
    TunerName,
)
from lab.config.task_configs import (
    AnalyzeConfig,
    BenchConfig,
    EvaluateConfig,
    ListSort,
    ListTaskConfig,
    ReportSize,
    ReportTaskConfig,
    TrackingConfig,
    UiConfig,
)
from lab.config.train_config import (
    AugmentConfig,
    Checkpoint,
    EarlyStoppingConfig,
    OptimizerName,
    Precision,
    Schedule,
    TrainConfig,
)

__all__ = [
    "CONF_DIR",
    "COSTS",
    "MEASURED_COSTS",
    "OBJECTIVES",
    "PROJECT_ROOT",
    "SWEEP_NAME",
    "SWEEP_NAME_RULE",
    "AblationConfig",
    "AnalyzeConfig",
    "AugmentConfig",
    "AxisKind",
    "AxisSpec",
    "BenchConfig",
    "Checkpoint",
    "ComparisonConfig",
    "CurvesConfig",
    "DataConfig",
    "DistributedConfig",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "Expectation",
    "ListSort",
    "ListTaskConfig",
    "Metric",
    "ObjectiveSpec",
    "OptimizerName",
    "Precision",
    "Pruner",
    "ReportSize",
    "ReportTaskConfig",
    "Role",
    "RunConfig",
    "Sampler",
    "Schedule",
    "SearchConfig",
    "SyntheticDataConfig",
    "Task",
    "TrackingConfig",
    "TrainConfig",
    "TunerName",
    "UiConfig",
    "checked_run_config",
    "compose",
    "group_option",
    "group_options",
    "objective_direction",
    "register_configs",
    "run_config",
    "to_run_config",
    "typed_child",
    "typed_keys",
    "unknown_keys",
    "variant_node",
]
