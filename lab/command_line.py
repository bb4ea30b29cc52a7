"""What Hydra knows of this process's command line and run: the overrides the user typed, the
keys they set, and the run's output folder. Outside a Hydra run (tests, the library), there are
no overrides and the output folder is the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import List


def overrides() -> List[str]:
    """The command line's overrides as typed (`train.epochs=3`, `data=mnist`, `+key=v`)."""
    from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_hydra_run() -> bool:
    from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415

    return HydraConfig.initialized()


def override_key(override: str) -> str:
    """`+train.epochs=3` -> `train.epochs`; `data=mnist` -> `data`."""
    return override.split("=", 1)[0].lstrip("+~")


def command_line_keys() -> List[str]:
    """The config keys set on the command line (`train.epochs=3` -> `train.epochs`), group choices too."""
    return [override_key(o) for o in overrides() if "=" in o]


def output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()


def with_named_entries(arguments: List[str]) -> List[str]:
    """Command-line settings that address a list of named records by name, as experiment files
    and quick settings do (`'search.space.seed.values=[5,6]'`), rewritten to the positions Hydra
    needs (`search.space.1.values=[5,6]`) against the config the other arguments compose. Only
    keys of three or more parts with a part that is not a number are looked at; composing once
    more costs about 0.3 s, and only then. A name the list does not hold is a `ConfigValueError`."""
    def named(argument: str) -> bool:
        if argument.startswith("-") or "=" not in argument:
            return False
        parts = override_key(argument).split(".")
        return len(parts) >= 3 and not all(part.isdigit() for part in parts[1:])

    candidates = [argument for argument in arguments if named(argument)]
    if not candidates:
        return arguments
    from lab.config import compose  # noqa: PLC0415
    from lab.overrides import by_name  # noqa: PLC0415

    others = [argument for argument in arguments if argument not in candidates and not argument.startswith("-")]
    try:
        composed = compose(others)
    except Exception:  # noqa: BLE001  (Hydra names a bad argument itself, when it composes them all)
        return arguments
    rewritten = []
    for argument in arguments:
        if argument in candidates:
            key, value = argument.split("=", 1)
            prefix = key[:len(key) - len(key.lstrip("+~"))]
            argument = f"{prefix}{by_name(composed, key.lstrip('+~'))}={value}"
        rewritten.append(argument)
    return rewritten
