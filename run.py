"""The lab's entry point: `python run.py task=train model=resnet20 data=fashion_mnist [key=value ...]`.

Hydra composes `conf/config.yaml` with the overrides (and `-m` sweeps over them); the work
itself lives in `lab/`, where tests import it. Bad input ends the process with one line naming
what was wrong and exit status 2; Ctrl-C with 130 and SIGTERM with 143 (open runs closed KILLED);
a reader that stops early (`python run.py task=list | head`) with 141, as a shell reports SIGPIPE.
"""

import errno
import os
import sys
from typing import List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
# Hydra raises its errors; `run` reports them in one line
os.environ.setdefault("HYDRA_FULL_ERROR", "1")
# a sweep's report reads a file of each trial's run: no progress bar per file
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from lab.tasks.native_logs import filter_native_stderr

filter_native_stderr()  # before anything imports TensorFlow

import hydra  # noqa: E402
from hydra.errors import HydraException, MissingConfigException  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from lab.config import compose, register_configs  # noqa: E402
from lab.config.command_line import override_key  # noqa: E402
from lab.config.overrides import by_name  # noqa: E402
from lab.errors import LabError, Terminated  # noqa: E402

register_configs()

# `python run.py` with no arguments runs the main job: the plain-vs-residual ablation, quick mode.
MAIN_JOB = ["experiment=plain_vs_residual", "quick=true"]
# exit statuses (130, 143, 141: as a shell reports the signals)
BAD_INPUT, INTERRUPTED, TERMINATED, READER_GONE = (2, 130, 143, 141)


def with_main_job(argv):
    """argv with the main job's overrides when no argument was given."""
    return argv + MAIN_JOB if len(argv) == 1 else argv


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

    others = [
        argument
        for argument in arguments
        if argument not in candidates and not argument.startswith("-")
    ]
    try:
        composed = compose(others)
    except Exception:
        return arguments
    rewritten = []
    for argument in arguments:
        if argument in candidates:
            key, value = argument.split("=", 1)
            prefix = key[: len(key) - len(key.lstrip("+~"))]
            argument = f"{prefix}{by_name(composed, key.lstrip('+~'))}={value}"
        rewritten.append(argument)
    return rewritten


def one_line(error: BaseException) -> str:
    """An error's message on one line (Hydra's and OmegaConf's span several)."""
    # `experiment=typo`, `model=typo`
    if isinstance(error, MissingConfigException) and error.options:
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        return f"{group}={name} does not exist; the {group} options are: {', '.join(error.options)}"
    lines = [line.strip() for line in str(error).split("Config search path")[0].splitlines()]
    if isinstance(error.__cause__, OmegaConfBaseException):  # why Hydra could not merge an override
        lines.append(str(error.__cause__).splitlines()[0])
    return " ".join(line for line in lines if line)


def bad_input(error: BaseException) -> int:
    print(f"error: {one_line(error)}", file=sys.stderr)
    return BAD_INPUT


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    from lab.tasks import run_task

    try:
        return run_task(cfg)
    except LabError as error:  # here, or Hydra's job runner adds its own line before re-raising
        sys.exit(bad_input(error))


def run() -> int:
    """`main` with its errors reported: bad input in one line, a stop by signal without a traceback."""
    try:
        sys.argv = [sys.argv[0], *with_named_entries(sys.argv[1:])]
        main()
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print "Exception ignored"
    except BrokenPipeError:
        return reader_gone()
    except (LabError, HydraException, OmegaConfBaseException) as error:  # composing the config
        return bad_input(error)
    except KeyboardInterrupt:
        print("stopped by Ctrl-C: open runs were closed KILLED", file=sys.stderr)
        return INTERRUPTED
    except Terminated:
        print("stopped by SIGTERM: open runs were closed KILLED", file=sys.stderr)
        return TERMINATED
    except Exception as error:
        full = disk_full_cause(error)
        if full is None:
            raise
        print(f"error: {disk_full(full)}", file=sys.stderr)
        return BAD_INPUT
    return 0


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_cause(error: BaseException):
    """The error in the chain that says the disk is full: ENOSPC or EDQUOT, or SQLite's "database
    or disk is full" (which SQLAlchemy and MLflow wrap in their own exceptions); else None."""
    found = None
    while error is not None:
        if (
            isinstance(error, OSError) and error.errno in DISK_FULL
        ) or "database or disk is full" in str(error):
            found = error  # the innermost one says it best
        error = error.__cause__ or error.__context__
    return found


def disk_full(error: BaseException) -> str:
    """A full disk (or quota) in one line: where, and that the runs it interrupted ended FAILED
    where the store could still be written (a sweep closes any left RUNNING when run again)."""
    filename = getattr(error, "filename", None)
    where = f" writing {filename}" if filename else ""
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0][:200]
    return (
        f"no space left on the device{where} ({reason}): free some and run the command again; "
        f"the runs it interrupted ended FAILED where the store could still be written"
    )


def reader_gone() -> int:
    """The process reading stdout has exited: stdout goes to /dev/null, so that nothing left in
    its buffer raises again at exit, and no traceback is printed (Python's documented recipe)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return READER_GONE


if __name__ == "__main__":
    sys.argv = with_main_job(sys.argv)
    sys.exit(run())
