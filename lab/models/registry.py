"""The family registry: one builder per family, keyed by its spec's `family`.

The specs, the Hydra schema, are found in `lab.models.specs` (`SPEC_TYPES`: one module per
family). Each family's builder is the module of the same name, `lab.models.<family>`, whose
builder registers itself with `@register_family(TheSpec)`; `load_families()` imports them all and
says which one is missing or did not register.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Sequence

import keras

from lab.errors import SpecError
from lab.models.specs import SPEC_TYPES, family_of

Builder = Callable[[object, Sequence[int], int], keras.Model]


@dataclass(frozen=True)
class Family:
    name: str
    spec_type: type
    build: Builder


FAMILIES: Dict[str, Family] = {}


def register_family(spec_type: type) -> Callable[[Builder], Builder]:
    """Registers `build(spec, input_shape, classes)` as the builder of `spec_type`'s family.

    Args:
        spec_type: The family's spec record (a `BaseSpec` subclass in `lab.models.specs`).

    Returns:
        A decorator that registers the builder and returns it unchanged.
    """

    def decorate(build: Builder) -> Builder:
        name = family_of(spec_type)
        FAMILIES[name] = Family(name, spec_type, build)
        return build

    return decorate


def builder_module(family: str) -> str:
    """The module that builds `family`'s specs."""
    return f"lab.models.{family}"


def load_families() -> Dict[str, Family]:
    """Every family's builder, registered: imports `lab.models.<family>` for each family in
    `SPEC_TYPES`. By name, at first use: the builders import this module, so importing them
    here would be a cycle.

    Raises:
        SpecError: a family whose builder module is missing or registers no builder.
    """
    for name in SPEC_TYPES:
        try:
            importlib.import_module(builder_module(name))
        except ModuleNotFoundError as error:
            if error.name != builder_module(name):
                raise
            raise SpecError(
                f"Family {name!r} has a spec but no builder module {builder_module(name)}"
            ) from None
        if name not in FAMILIES:
            raise SpecError(
                f"{builder_module(name)} registers no builder for family {name!r}: "
                f"decorate its builder with @register_family({SPEC_TYPES[name].__name__})"
            )
    return FAMILIES


def build_model(spec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds the Keras model a spec describes, for one input shape and class count, with the
    weights of `spec.weights` where it names a file.

    Example:
        >>> from lab.models.variants import load_variant
        >>> model = build_model(load_variant("resnet20"), (32, 32, 3), 10)
        >>> model.count_params()
        271098
    """
    family = load_families().get(getattr(spec, "family", None))
    if family is None:
        raise SpecError(
            f"Unknown model family. Received: family={getattr(spec, 'family', None)!r}; "
            f"known: {sorted(FAMILIES)}"
        )
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise SpecError(
            f"input_shape must be (height, width, channels). Received: {tuple(input_shape)}"
        )
    if classes < 2:
        raise SpecError(f"classes must be >= 2. Received: classes={classes}")
    net = family.build(spec, tuple(input_shape), classes)
    if getattr(spec, "weights", None):
        from lab.models.weights import load_weights

        load_weights(net, spec.weights)
    return net
