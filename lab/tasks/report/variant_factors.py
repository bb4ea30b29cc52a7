"""Registered variants as factors: the settings in which their composed `model` configs differ,
grouped into the factors a two-way ANOVA reads (plain20, resnet20, plain56, resnet56 -> depth x
connectivity). Keys whose values split the variants the same way are one factor."""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Sequence, Tuple

from omegaconf import OmegaConf

from lab.config import variant_node
from lab.config.overrides import flatten

STAGE_KEY = re.compile(r"stages\.\d+\.(blocks|width)")
STAGE_FACTOR = {"blocks": "depth", "width": "width"}


@functools.lru_cache(maxsize=None)
def variant_settings(name: str) -> Dict[str, Any]:
    """A registered variant's composed `model` node, flat (`stages.0.blocks`). Cached: Hydra takes
    about 0.3 s a composition, and the report asks for the same variants once per metric."""
    return flatten(OmegaConf.to_container(variant_node(name), resolve=True, enum_to_str=True))


def partition(values: Sequence[Any]) -> Tuple[int, ...]:
    """How values split their owners: equal values, equal labels ([9, 3, 9] -> (0, 1, 0))."""
    labels = [repr(v) for v in values]
    return tuple(labels.index(label) for label in labels)


def variant_factors(names: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """The factors in which registered variants differ. Keys whose values split the variants the
    same way are one factor: resnet20 -> resnet56 changes the three stages' block counts
    together, which is one change (depth), not three.

    Args:
        names: registered variant names.

    Returns:
        factor name (`depth`, `connectivity`, `depth+width`) -> {variant: its level}.

    Raises:
        HydraException: a name is not a registered variant.
    """
    settings = {name: variant_settings(name) for name in names}
    keys = [
        key for key in dict.fromkeys(k for flat in settings.values() for k in flat) if key != "name"
    ]
    groups: Dict[Tuple[int, ...], List[str]] = {}
    for key in keys:
        split = partition([settings[name].get(key) for name in names])
        if len(set(split)) > 1:
            groups.setdefault(split, []).append(key)
    return dict(named_factor(group, settings) for group in groups.values())


def readable(key: str) -> str:
    """`stages.0.blocks` -> depth, `stages.2.width` -> width, `aux_heads.0.weight` -> aux_heads.*.weight."""
    match = STAGE_KEY.fullmatch(key)
    return STAGE_FACTOR[match.group(1)] if match else re.sub(r"(?<=\.)\d+(?=\.|$)", "*", key)


def level_of(part: str, values: List[Any], flat: Dict[str, Any]) -> str:
    """A variant's level of one part of a factor: depth and width read all its stages, since a
    stage both variants share still counts in the depth."""
    stages = {
        field: [v for k, v in flat.items() if (m := STAGE_KEY.fullmatch(k)) and m.group(1) == field]
        for field in STAGE_FACTOR
    }
    if part == "depth":
        return f"{sum(stages['blocks'])} blocks"
    return "/".join(str(v) for v in (stages["width"] if part == "width" else values))


def named_factor(
    keys: List[str], settings: Dict[str, Dict[str, Any]]
) -> Tuple[str, Dict[str, str]]:
    """A factor's readable name (`depth`, `connectivity`, `depth+width`) and each variant's level."""
    parts: Dict[str, List[str]] = {}
    for key in keys:
        parts.setdefault(readable(key), []).append(key)
    raw = {variant: [flat.get(key) for key in keys] for variant, flat in settings.items()}
    levels = {
        variant: ", ".join(
            level_of(part, [flat.get(k) for k in members], flat) for part, members in parts.items()
        )
        for variant, flat in settings.items()
    }
    # two block lists, one total
    if partition(list(levels.values())) != partition(list(raw.values())):
        levels = {variant: "/".join(map(str, values)) for variant, values in raw.items()}
    return "+".join(parts), levels
