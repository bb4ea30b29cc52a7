"""A search space declared in YAML (`search.space`) as keras-tuner hyperparameters, and the config
overrides one trial's values stand for. No architecture lives here: values only set config keys."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Dict, List

from lab.config import AxisKind, AxisSpec, RunConfig
from lab.errors import ConfigValueError

if TYPE_CHECKING:
    import keras_tuner as kt


def declare_axis(hp: kt.HyperParameters, axis: AxisSpec) -> None:
    if axis.kind is AxisKind.choice:
        hp.Choice(axis.name, list(axis.values))
    elif axis.kind is AxisKind.int:
        hp.Int(axis.name, int(axis.min), int(axis.max), step=int(axis.step or 1))
    elif axis.kind is AxisKind.float:
        hp.Float(
            axis.name,
            float(axis.min),
            float(axis.max),
            step=axis.step,
            sampling="log" if axis.log else "linear",
        )
    else:
        hp.Boolean(axis.name)


def declare(hp: kt.HyperParameters, axes: List[AxisSpec]) -> None:
    """Declares every axis, conditional ones inside keras-tuner's conditional_scope."""
    for axis in axes:
        scope = nullcontext()
        if axis.when:
            parent, values = next(iter(axis.when.items()))
            scope = hp.conditional_scope(parent, list(values))
        with scope:
            declare_axis(hp, axis)


def space_of(axes: List[AxisSpec]) -> kt.HyperParameters:
    import keras_tuner as kt

    hp = kt.HyperParameters()
    declare(hp, axes)
    return hp


def trial_overrides(hp: kt.HyperParameters, axes: List[AxisSpec]) -> Dict[str, Any]:
    """{config path: value} for the axes active in this trial."""
    return {axis.path: hp.get(axis.name) for axis in axes if hp.is_active(axis.name)}


def example_value(axis: AxisSpec) -> Any:
    return {
        AxisKind.choice: lambda: axis.values[0],
        AxisKind.int: lambda: int(axis.min),
        AxisKind.float: lambda: float(axis.min),
        AxisKind.boolean: lambda: True,
    }[axis.kind]()


def validate_space(cfg: RunConfig) -> None:
    """Checks, before any data is loaded or run opened, that every axis sets an existing key with
    a value of its type and that keras-tuner accepts the space."""
    check_axis_paths(cfg)
    try:
        space_of(cfg.search.space)
    except Exception as error:
        raise ConfigValueError(
            f"search.space is not a keras-tuner space: {str(error).splitlines()[0]}"
        ) from error


def check_axis_paths(cfg: RunConfig) -> None:
    """Every axis sets an existing config key with a value of its type (no keras-tuner needed).
    All axes are tried in one config check first; only when that fails is each tried alone, to
    name the one at fault (axes that are valid alone but not together are accepted, as before)."""
    axes = cfg.search.space
    try:
        cfg.with_overrides({axis.path: example_value(axis) for axis in axes})
        return
    except Exception:
        pass
    for axis in axes:
        try:
            cfg.with_overrides({axis.path: example_value(axis)})
        except Exception as error:
            reason = str(error).splitlines()[0]
            raise ConfigValueError(
                f"search.space axis {axis.name!r} cannot set {axis.path!r}: {reason}"
            ) from error
