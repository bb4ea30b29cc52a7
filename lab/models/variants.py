"""Named variants: the YAML files of the `model` config group (`conf/model/NAME.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

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


SCHEMA_PREFIX = "/schema/model/"  # a variant's defaults list selects its family's schema: /schema/model/FAMILY@_here_


def variant_family(name: str) -> str:
    """A variant's family, read from its defaults list (its family's schema, or the variant it
    extends, followed): what composing it would give, without composing (about 0.3 s a variant),
    so that `task=list list.family=...` selects before anything is composed or built."""
    for entry in OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml").get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue
        if entry.startswith(SCHEMA_PREFIX):
            return entry[len(SCHEMA_PREFIX):].partition("@")[0]
        return variant_family(entry)
    raise SpecError(f"conf/model/{name}.yaml selects no family schema ({SCHEMA_PREFIX}FAMILY@_here_) in its defaults")


@dataclass
class VariantSummary:
    name: str
    family: str
    input_shape: List[int]
    classes: int
    params: int
    macs: int


def summarize_variant(name: str, spec, analysis) -> VariantSummary:
    """A variant's row of `task=list`, from the analysis of its build at its published input."""
    return VariantSummary(name, spec.family, list(spec.input_shape), spec.classes,
                          analysis.totals["params_total"], analysis.totals["macs"])


def by_family(rows: Iterable[VariantSummary]) -> List[VariantSummary]:
    return sorted(rows, key=lambda row: (row.family, row.params))


def summarize_variants(names: Optional[List[str]] = None) -> List[VariantSummary]:
    """Every variant (or those named; none for an empty list) built for its published input, with
    parameters and MACs, sorted by family."""
    import keras  # noqa: PLC0415

    from lab.analysis import analyze_model  # noqa: PLC0415
    from lab.models.registry import build_model  # noqa: PLC0415

    rows = []
    for name in variant_names() if names is None else names:
        spec = load_variant(name)
        rows.append(summarize_variant(name, spec, analyze_model(build_model(spec, spec.input_shape, spec.classes))))
        keras.backend.clear_session()  # the big ImageNet models add up
    return by_family(rows)
