"""Errors the lab raises for bad input: each names the value that was wrong."""


class LabError(Exception):
    """Base class: a user-facing error whose message is printed as one line, without traceback."""


class DataNotFoundError(LabError):
    """A dataset was not found in any of the places the loader looked."""


class DataFormatError(LabError):
    """A dataset file exists but cannot be read as the format it should be."""


class SpecError(LabError):
    """A model spec is inconsistent (an unknown tap, a non-positive width, ...)."""


class WeightsMismatchError(LabError):
    """A weights file (`model.weights`) that cannot be read, or is for another architecture."""


class NonFiniteLossError(LabError):
    """Training produced a NaN or infinite loss."""


class ConfigValueError(LabError, ValueError):
    """A config value has the right type but is out of range."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """An error's first line, cut at `limit` characters (its type's name when it has no message)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


def require(condition: bool, key: str, value, expectation: str) -> None:
    """Raises ConfigValueError naming the key, the value received and what was expected."""
    if not condition:
        raise ConfigValueError(f"{key} must be {expectation}. Received: {key}={value!r}")


class ModelTooBigError(LabError):
    """A candidate model is over a budget of the sweep (`search.max_params`, `max_macs`, `max_activation_bytes`)."""


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (as Ctrl-C raises
    KeyboardInterrupt), so that open runs are closed KILLED on the way out."""
