"""The family registry: one builder per connectivity family, keyed by the spec's `family`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Dict, List, Sequence

import keras
from omegaconf import MISSING

from lab.errors import SpecError, require
from lab.models.heads import AuxHeadSpec

Builder = Callable[[object, Sequence[int], int], keras.Model]


class Connectivity(Enum):
    """The connectivity axis, shared by the families that have it: shortcuts or none. Each family
    says where its identity shortcuts go (ResNet: around every block; chain: around every conv
    that keeps its input's shape)."""

    plain = "plain"
    residual = "residual"


@dataclass
class BaseSpec:
    """What every family's spec has: its family and variant name, the input and class count it
    was published for (`task=list`, tests and `task=analyze` use them; training takes the
    data's), and auxiliary heads on named taps."""

    family: str = MISSING
    name: str = MISSING
    input_shape: List[int] = field(default_factory=lambda: [32, 32, 3])
    classes: int = 10
    aux_heads: List[AuxHeadSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(len(self.input_shape) == 3 and min(self.input_shape) > 0, "model.input_shape",
                self.input_shape, "[height, width, channels], all > 0")
        require(self.classes > 1, "model.classes", self.classes, "> 1")


@dataclass(frozen=True)
class Family:
    name: str
    spec_type: type
    build: Builder


FAMILIES: Dict[str, Family] = {}


def register_family(name: str, spec_type: type) -> Callable[[Builder], Builder]:
    """Registers `build(spec, input_shape, classes)` as the builder of `name` specs."""

    def decorate(build: Builder) -> Builder:
        FAMILIES[name] = Family(name, spec_type, build)
        return build

    return decorate


def build_model(spec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds the Keras model a spec describes, for one input shape and class count.

    Example:
        >>> from lab.models.variants import load_variant
        >>> model = build_model(load_variant("resnet20"), (32, 32, 3), 10)
        >>> model.count_params()
        271098
    """
    family = FAMILIES.get(getattr(spec, "family", None))
    if family is None:
        raise SpecError(f"Unknown model family. Received: family={getattr(spec, 'family', None)!r}; "
                        f"known: {sorted(FAMILIES)}")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise SpecError(f"input_shape must be (height, width, channels). Received: {tuple(input_shape)}")
    if classes < 2:
        raise SpecError(f"classes must be >= 2. Received: classes={classes}")
    return family.build(spec, tuple(input_shape), classes)
