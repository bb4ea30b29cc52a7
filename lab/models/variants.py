"""Named variants: the YAML files of the `model` config group (`conf/model/NAME.yaml`)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, List, Optional

from omegaconf import OmegaConf
from rich.console import Console

from lab.config import CONF_DIR, compose
from lab.errors import SpecError


def variant_names() -> List[str]:
    return sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))


def load_variant(name: str, overrides: List[str] = ()):
    """The typed spec of a named variant, e.g. `load_variant("wrn_28_10")`, with optional
    `model.KEY=VALUE` overrides applied as on the command line."""
    if name not in variant_names():
        raise SpecError(
            f"Unknown model variant. Received: model={name!r}; known: {variant_names()}"
        )
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
            return entry[len(SCHEMA_PREFIX) :].partition("@")[0]
        return variant_family(entry)
    raise SpecError(
        f"conf/model/{name}.yaml selects no family schema ({SCHEMA_PREFIX}FAMILY@_here_) in its defaults"
    )


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
    return VariantSummary(
        name,
        spec.family,
        list(spec.input_shape),
        spec.classes,
        analysis.totals["params_total"],
        analysis.totals["macs"],
    )


def by_family(rows: Iterable[VariantSummary]) -> List[VariantSummary]:
    return sorted(rows, key=lambda row: (row.family, row.params))


def summarize_variants(
    names: Optional[List[str]] = None, cache: Optional[Path] = None
) -> List[VariantSummary]:
    """Every variant (or those named; none for an empty list) built for its published input, with
    parameters and MACs, sorted by family. A row is kept in `cache` (a folder; default
    `list_cache()`) under a key of the variant's composed config and the lab's model code, so
    the next listing builds only what changed; building shows progress on stderr."""
    names = variant_names() if names is None else names
    folder = list_cache() if cache is None else cache
    rows, missing = {}, []
    for name in names:
        key = summary_key(name)
        found = read_summary(folder / f"{key}.json")
        if found is None:
            missing.append((name, key))
        else:
            rows[name] = found
    for name, key, row in built_summaries(missing):
        rows[name] = row
        write_summary(folder / f"{key}.json", row)
    return by_family(rows[name] for name in names)


def built_summaries(missing: List[tuple]):
    """(name, key, summary) for each variant built and analysed, with a progress bar on stderr."""
    if not missing:
        return
    import keras
    from rich.progress import Progress

    from lab.models.analysis import analyze_model
    from lab.models.registry import build_model

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(
            "building variants to count them (kept for next time)", total=len(missing)
        )
        for name, key in missing:
            progress.update(task, description=f"building {name}")
            spec = load_variant(name)
            yield (
                name,
                key,
                summarize_variant(
                    name, spec, analyze_model(build_model(spec, spec.input_shape, spec.classes))
                ),
            )
            keras.backend.clear_session()  # the big ImageNet models add up
            progress.advance(task)


def list_cache() -> Path:
    """Where `task=list` keeps its counted rows: $XDG_CACHE_HOME (or ~/.cache)/keras-ablation-lab/list."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "keras-ablation-lab" / "list"


@functools.cache
def model_code_digest() -> str:
    """A digest of what a count depends on: the variants' files (a variant may extend another),
    the config schema, the builders and the analysis (in lab/models). Hashing files, not composed configs,
    keeps a listing from the cache at about a second (composing costs 0.2 s a variant)."""
    lab = Path(__file__).resolve().parents[1]
    files = [
        *CONF_DIR.joinpath("model").glob("*.yaml"),
        *lab.joinpath("models").rglob("*.py"),
        *lab.joinpath("config").rglob("*.py"),
    ]
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def summary_key(name: str) -> str:
    """The variant's name and `model_code_digest`: a row stays valid while neither changes."""
    return hashlib.sha256(f"{name}\n{model_code_digest()}".encode()).hexdigest()[:24]


def read_summary(path: Path) -> Optional[VariantSummary]:
    try:
        return VariantSummary(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # absent, or unreadable: counted again


def write_summary(path: Path, row: VariantSummary) -> None:
    """Written whole or not at all (a temporary file renamed); a read-only cache is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(row)))
        partial.replace(path)
    except OSError:
        pass
