"""A search space declared in YAML (`search.space`) as keras-tuner hyperparameters, and the config
overrides one trial's values stand for. No architecture lives here: values only set config keys."""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any, Dict, List

import keras_tuner as kt
from omegaconf import DictConfig, ListConfig, OmegaConf

from lab.config import AxisKind, AxisSpec
from lab.errors import ConfigValueError


def declare_axis(hp: kt.HyperParameters, axis: AxisSpec) -> None:
    if axis.kind is AxisKind.choice:
        hp.Choice(axis.name, list(axis.values))
    elif axis.kind is AxisKind.int:
        hp.Int(axis.name, int(axis.min), int(axis.max), step=int(axis.step or 1))
    elif axis.kind is AxisKind.float:
        hp.Float(axis.name, float(axis.min), float(axis.max), step=axis.step,
                 sampling="log" if axis.log else "linear")
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
    hp = kt.HyperParameters()
    declare(hp, axes)
    return hp


def trial_overrides(hp: kt.HyperParameters, axes: List[AxisSpec]) -> Dict[str, Any]:
    """{config path: value} for the axes active in this trial."""
    return {axis.path: hp.get(axis.name) for axis in axes if hp.is_active(axis.name)}


def by_name(cfg: DictConfig, path: str) -> str:
    """`search.space.seed.values` -> `search.space.1.values`: a list of named records (the axes of a
    space) is indexed by name, so a setting survives a reordering of the list."""
    parts, node = path.split("."), cfg
    for i, part in enumerate(parts):
        if isinstance(node, ListConfig):
            if part == "*":
                break
            if not part.isdigit():
                names = [item.get("name") if isinstance(item, DictConfig) else None for item in node]
                if part not in names:
                    raise ConfigValueError(f"{'.'.join(parts[:i])} has no entry named {part!r} (it has {names}). "
                                           f"Received: {path}")
                parts[i] = str(names.index(part))
            node = node[int(parts[i])] if int(parts[i]) < len(node) else None
        elif isinstance(node, DictConfig):
            node = node[part] if part in node else None
        else:
            break
    return ".".join(parts)


def set_path(cfg: DictConfig, path: str, value: Any) -> None:
    """Sets `a.b.c`; a `*` segment sets the key in every element of a list (`model.stages.*.blocks`);
    a list of named records takes names (`search.space.seed.values`); the path `model` takes a
    variant name and swaps in that whole variant (`values: [plain20, resnet20]`)."""
    path = by_name(cfg, path)
    if path == "model":
        from lab.config import compose  # noqa: PLC0415

        cfg.model = compose([f"model={value}"]).model
        return
    head, _, rest = path.partition(".*.")
    if not rest:
        OmegaConf.update(cfg, path, value, merge=False)
        return
    items = OmegaConf.select(cfg, head)
    if not isinstance(items, ListConfig):
        raise ConfigValueError(f"A search axis path uses `*` on something that is not a list. Received: {path!r}")
    for item in items:
        set_path(item, rest, value)


def apply_overrides(cfg: DictConfig, overrides: Dict[str, Any]) -> DictConfig:
    """A copy of `cfg` with each path set; an unknown path fails naming it (the records are closed)."""
    trial_cfg = copy.deepcopy(cfg)
    for path, value in overrides.items():
        set_path(trial_cfg, path, value)
    return trial_cfg


def example_value(axis: AxisSpec) -> Any:
    return {AxisKind.choice: lambda: axis.values[0], AxisKind.int: lambda: int(axis.min),
            AxisKind.float: lambda: float(axis.min), AxisKind.boolean: lambda: True}[axis.kind]()


def validate_space(cfg: DictConfig, axes: List[AxisSpec]) -> None:
    """Checks, before any trial, that every axis sets an existing key with a value of its type."""
    from lab.config import to_run_config  # noqa: PLC0415

    for axis in axes:
        try:
            to_run_config(apply_overrides(cfg, {axis.path: example_value(axis)}))
        except Exception as error:  # noqa: BLE001  (any failure here is a malformed axis)
            reason = str(error).splitlines()[0]
            raise ConfigValueError(f"search.space axis {axis.name!r} cannot set {axis.path!r}: {reason}") from error
