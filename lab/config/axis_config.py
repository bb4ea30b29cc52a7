"""A search space's axis (`search.space[*]`): the keras-tuner hyperparameter it is and the config
key it sets, and which values it can take."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from lab.errors import require


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


def axis_allows(axis: AxisSpec, value: Any) -> bool:
    """Whether `value` is one the axis can take (an enqueued trial's)."""
    if axis.kind is AxisKind.choice:
        return value in list(axis.values)
    if axis.kind is AxisKind.boolean:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return axis.min <= value <= axis.max and (axis.kind is AxisKind.float or value == int(value))


def axis_range(axis: AxisSpec) -> str:
    if axis.kind is AxisKind.choice:
        return f"one of {list(axis.values)}"
    if axis.kind is AxisKind.boolean:
        return "true or false"
    return f"{axis.kind.value} in [{axis.min}, {axis.max}]"
