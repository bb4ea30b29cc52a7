"""Which keys of a composed config the typed records do not have.

Hydra's `+key=value` bypasses the closed schema and `OmegaConf.to_object` drops such a key
silently; comparing the composed tree with the records made of it finds them. Reads the records
themselves, since turning them into a config tree again costs as much as the conversion.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List


def unknown_keys(given: Any, typed: Any, prefix: str = "") -> List[str]:
    """Full keys present in `given` but not in `typed`.

    Args:
        given: The composed config as plain dicts and lists, unresolved.
        typed: The records `to_object` made of it: dataclasses, dicts, lists.
        prefix: The dotted key of `given` within the whole config ("" at its root).

    Returns:
        The full dotted keys (`train.foo`, `search.space[0].bar`) the records lack, in the order
        `given` lists them, each key's own before those nested under its siblings.
    """
    if isinstance(given, dict):
        known = typed_keys(typed)
        keys = [(key, f"{prefix}.{key}" if prefix else str(key)) for key in given]
        return [full for key, full in keys if key not in known] + [
            extra
            for key, full in keys
            if key in known
            for extra in unknown_keys(given[key], typed_child(typed, key), full)
        ]
    if isinstance(given, list) and isinstance(typed, (list, tuple)):
        return [
            extra
            for i in range(min(len(given), len(typed)))
            for extra in unknown_keys(given[i], typed[i], f"{prefix}[{i}]")
        ]
    return []


def typed_keys(typed: Any) -> set:
    """The keys a typed record has: a dataclass's fields, a dict's keys, none for a value."""
    if dataclasses.is_dataclass(typed):
        return {f.name for f in dataclasses.fields(typed)}
    return set(typed) if isinstance(typed, dict) else set()


def typed_child(typed: Any, key: Any) -> Any:
    """The value under `key` of a typed record: a dict's item or a dataclass's attribute."""
    return typed[key] if isinstance(typed, dict) else getattr(typed, key)
