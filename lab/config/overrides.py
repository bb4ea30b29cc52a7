"""Config overrides by dotted path, without Keras, MLflow or keras-tuner: what a trial's values,
an experiment's quick mode and the run's params all go through (`tests/test_imports.py` checks
that importing this module loads none of them).

- `set_path` / `apply_overrides`: `train.epochs`, `model.stages.*.blocks` (every element of a
  list), `search.space.seed.values` (a list of named records, by name), `model` (a whole variant).
- `with_quick_settings`: an experiment's quick mode.
- `flatten` / `flat_config` / `config_yaml`: a run's config as flat MLflow params
  (`model.stages.0.width`) and as YAML.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from lab.errors import ConfigValueError, LabError

# A variant's name -> its composed `model` node (`lab.config.variant_node`); passed in, so that
# this module imports no config schema (and through it, no Keras).
VariantLoader = Callable[[str], DictConfig]


def by_name(cfg: DictConfig, path: str) -> str:
    """`search.space.seed.values` -> `search.space.1.values`: a list of named records (the axes of a
    space) is indexed by name, so a setting survives a reordering of the list."""
    parts, node = path.split("."), cfg
    for i, part in enumerate(parts):
        if isinstance(node, ListConfig):
            if part == "*":
                break
            if not part.isdigit():
                names = [
                    item.get("name") if isinstance(item, DictConfig) else None for item in node
                ]
                if part not in names:
                    raise ConfigValueError(
                        f"{'.'.join(parts[:i])} has no entry named {part!r} (it has {names}). "
                        f"Received: {path}"
                    )
                parts[i] = str(names.index(part))
            node = node[int(parts[i])] if int(parts[i]) < len(node) else None
        elif isinstance(node, DictConfig):
            node = node[part] if part in node else None
        else:
            break
    return ".".join(parts)


def set_path(
    cfg: DictConfig, path: str, value: Any, load_variant: Optional[VariantLoader] = None
) -> None:
    """Sets `a.b.c`; a `*` segment sets the key in every element of a list (`model.stages.*.blocks`);
    a list of named records takes names (`search.space.seed.values`); the path `model` takes a
    variant name and swaps in that whole variant (`values: [plain20, resnet20]`) from `load_variant`."""
    path = by_name(cfg, path)
    if path == "model":
        if load_variant is None:
            raise ConfigValueError(
                f"model={value}: a whole variant is set through RunConfig.with_overrides"
            )
        cfg.model = load_variant(value)
        return
    head, _, rest = path.partition(".*.")
    if not rest:
        OmegaConf.update(cfg, path, value, merge=False)
        return
    items = OmegaConf.select(cfg, head)
    if not isinstance(items, ListConfig):
        raise ConfigValueError(
            f"A search axis path uses `*` on something that is not a list. Received: {path!r}"
        )
    for item in items:
        set_path(item, rest, value)


def apply_overrides(
    cfg: DictConfig, overrides: Dict[str, Any], load_variant: Optional[VariantLoader] = None
) -> DictConfig:
    """A copy of `cfg` with each path set; an unknown path fails naming it (the records are closed)."""
    trial_cfg = copy.deepcopy(cfg)
    for path, value in overrides.items():
        set_path(trial_cfg, path, value, load_variant)
    return trial_cfg


def with_quick_settings(
    cfg: DictConfig, given: Sequence[str] = (), load_variant: Optional[VariantLoader] = None
) -> DictConfig:
    """`quick=true` applies the experiment's `quick_settings` (dotted keys) before anything runs,
    except those the command line set (`given`): `quick=true train.epochs=5` trains 5 epochs."""
    if not cfg.quick:
        return cfg

    def canonical(key: str) -> str:
        try:
            return by_name(cfg, key)
        except LabError:
            return key

    chosen = [canonical(key) for key in given]
    # before they change what they refer to
    settings = OmegaConf.to_container(cfg.quick_settings, resolve=True)
    kept = {
        key: value
        for key, value in settings.items()
        if not any(canonical(key) == c or canonical(key).startswith(c + ".") for c in chosen)
    }
    quick = apply_overrides(cfg, kept, load_variant)
    quick.quick_settings = settings
    return quick


def flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    """Flattens nested dicts and lists into dotted keys; empty containers stay as "[]"/"{}"."""
    if isinstance(node, dict) and node:
        items = node.items()
    elif isinstance(node, (list, tuple)) and node:
        items = enumerate(node)
    else:
        return (
            {prefix: node if not isinstance(node, (list, tuple, dict)) else str(node)}
            if prefix
            else {}
        )
    flat = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def flat_config(cfg: Any) -> Dict[str, Any]:
    """A `RunConfig` (or any part of one) as flat params, enums as their names."""
    return flatten(
        OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    )


# Where a run is recorded and how a sweep's processes meet, not what the run is: they may differ
# between launches of one sweep (the launcher's server gets a new port), and a param never changes.
NOT_PARAMS = ("tracking.", "search.distributed.")


def run_params(cfg: Any) -> Dict[str, Any]:
    """`flat_config` without `NOT_PARAMS`: what a run logs as its params."""
    return {key: value for key, value in flat_config(cfg).items() if not key.startswith(NOT_PARAMS)}


def config_yaml(cfg: Any) -> str:
    """A `RunConfig` as the YAML a run logs (`config.yaml`)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg), resolve=True)
