"""The Hydra schema of each family: its typed spec record, keyed by family name.

A family registers here by existing: `lab/models/specs/<family>.py` defines one `BaseSpec`
subclass whose `family` field defaults to `<family>`, and `lab/models/<family>.py` builds it
(`lab.models.registry.register_family`). Nothing else lists the families: `SPEC_TYPES`, the
builder modules `load_families` imports and the docstring examples the tests run all derive
from these files.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Dict

from lab.models.specs.base import BaseSpec


def family_of(spec_type: type) -> str:
    """The family name a spec type declares: its `family` field's default."""
    return next(f.default for f in dataclasses.fields(spec_type) if f.name == "family")


def discovered_spec_types() -> Dict[str, type]:
    """{family: spec type} from the modules of this package: each module but `base` holds the
    spec of the family it is named after, and must say so."""
    found: Dict[str, type] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        specs = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSpec)
            and value is not BaseSpec
            and value.__module__ == module.__name__
            and family_of(value) == module_info.name
        ]
        if len(specs) != 1:
            raise TypeError(
                f"{module.__name__} must define one BaseSpec subclass whose family defaults to "
                f"{module_info.name!r}; it defines {[s.__name__ for s in specs]}"
            )
        found[module_info.name] = specs[0]
    return found


SPEC_TYPES: Dict[str, type] = discovered_spec_types()

__all__ = ["SPEC_TYPES", "family_of"]
