"""What Hydra knows of this process's command line and run: the overrides the user typed, the
keys they set, and the run's output folder. Outside a Hydra run (tests, the library), there are
no overrides and the output folder is the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import List


def overrides() -> List[str]:
    """The command line's overrides as typed (`train.epochs=3`, `data=mnist`, `+key=v`)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_hydra_run() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized()


def override_key(override: str) -> str:
    """`+train.epochs=3` -> `train.epochs`; `data=mnist` -> `data`."""
    return override.split("=", 1)[0].lstrip("+~")


def command_line_keys() -> List[str]:
    """The config keys set on the command line (`train.epochs=3` -> `train.epochs`), group choices too."""
    return [override_key(o) for o in overrides() if "=" in o]


def output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()
