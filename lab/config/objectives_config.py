"""What a sweep optimises: the metrics a trial trains for, the costs of a model, one objective of
several (`search.objectives[*]`) with its direction, and the Optuna sampler that searches for
them (`search.sampler`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from omegaconf import MISSING

from lab.errors import require

# What a trial can be judged by (`Sweep.objective_of`): the best epoch's validation accuracy
# (the test accuracy without a validation split), the final test figures, or the last epoch's.
OBJECTIVES = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "accuracy", "loss")
# What a model costs, as a sweep can optimise it (`search.objectives`), with the direction it
# improves in: the analysis' totals (known once the model is built: `task=analyze` counts them
# the same way) and the inference latency measured on the trained model.
COSTS = {
    "params_total": "min",
    "macs": "min",
    "activation_bytes": "min",
    "latency_ms": "min",
    "inference_images_per_second": "max",
}
# The costs only a timed measurement gives (`lab.training.latency`).
MEASURED_COSTS = ("latency_ms", "inference_images_per_second")


def objective_direction(objective: str) -> str:
    """The direction an objective improves in: a loss is minimised, an accuracy maximised.

    Args:
        objective: A metric name, one of `OBJECTIVES`.

    Returns:
        "min" for a loss, "max" otherwise.
    """
    return "min" if objective.endswith("loss") else "max"


class Sampler(Enum):
    """`search.tuner=optuna`'s sampler: `auto` is NSGA-II for several objectives and TPE for one;
    `gp` is Optuna's Gaussian-process sampler; `random` Optuna's random sampler."""

    auto = "auto"
    nsga2 = "nsga2"
    tpe = "tpe"
    gp = "gp"
    random = "random"


@dataclass
class ObjectiveSpec:
    """One objective of a sweep with several (`search.objectives`): a metric a trial trains for
    (`OBJECTIVES`) or a cost (`COSTS`), its direction (null: the natural one) and the value the
    hypervolume is measured from on its axis (null: the worst a trial reached, moved a tenth of
    the range further)."""

    name: str = MISSING
    direction: Optional[str] = None
    reference: Optional[float] = None

    def __post_init__(self) -> None:
        key = f"search.objectives[{self.name}]"
        require(
            self.name in OBJECTIVES or self.name in COSTS,
            key,
            self.name,
            f"a metric a trial trains for ({', '.join(OBJECTIVES)}) or a cost ({', '.join(COSTS)})",
        )
        require(
            self.direction in (None, "min", "max"),
            f"{key}.direction",
            self.direction,
            "min or max (or unset for its natural direction)",
        )
        natural = COSTS.get(self.name) or objective_direction(self.name)
        self.direction = self.direction or natural
        require(
            self.direction == natural,
            f"{key}.direction",
            self.direction,
            f"{natural}: {self.name} improves that way (or unset)",
        )
