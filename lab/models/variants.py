"""Named variants: the YAML files of the `model` config group (`conf/model/NAME.yaml`)."""

from __future__ import annotations

from typing import List

from omegaconf import OmegaConf

from lab.config import CONF_DIR, compose
from lab.errors import SpecError


def variant_names() -> List[str]:
    return sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))


def load_variant(name: str, overrides: List[str] = ()):
    """The typed spec of a named variant, e.g. `load_variant("wrn_28_10")`, with optional
    `model.KEY=VALUE` overrides applied as on the command line."""
    if name not in variant_names():
        raise SpecError(f"Unknown model variant. Received: model={name!r}; known: {variant_names()}")
    cfg = compose([f"model={name}", *overrides])
    return OmegaConf.to_object(cfg.model)
