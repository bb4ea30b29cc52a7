"""The resolved config as flat MLflow params: `model.stages.0.width` -> "16"."""

from __future__ import annotations

from typing import Any, Dict


def flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    """Flattens nested dicts and lists into dotted keys; empty containers stay as "[]"/"{}"."""
    if isinstance(node, dict) and node:
        items = node.items()
    elif isinstance(node, (list, tuple)) and node:
        items = enumerate(node)
    else:
        return {prefix: node if not isinstance(node, (list, tuple, dict)) else str(node)} if prefix else {}
    flat = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
