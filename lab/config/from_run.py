"""`from_run=RUN_ID`: train again what a recorded run trained. The run's `config.yaml` artifact
(every `task=train` run, trial and execution logs its resolved config) gives `model`, `data`,
`train` and `seed`; the keys the command line sets win (`train.epochs=90` trains it longer).
Imported only when `from_run` is set: it reads MLflow."""

from __future__ import annotations

import copy
from typing import Callable, List, Sequence

from omegaconf import DictConfig, OmegaConf

from lab.errors import LabError

RECORDED = ("model", "data", "train", "seed")  # what a run's config gives a retraining


class RunNotFoundError(LabError):
    """`from_run` names no run of the store, or a run without its config."""


def recorded_config(run_id: str, tracking_uri: str) -> DictConfig:
    """The `config.yaml` run `run_id` logged, read without creating a store, with the name of
    the run's experiment as `tracking.experiment` (a retraining lands beside what it retrains)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from lab.tracking.uris import sqlite_file

    where = f"from_run={run_id} names no run in tracking.uri={tracking_uri}"
    database = sqlite_file(tracking_uri)
    if database is not None and not database.exists():
        raise RunNotFoundError(f"{where} (no store there)")
    try:
        client = MlflowClient(tracking_uri)
        found = client.get_experiment(client.get_run(run_id).info.experiment_id)
        path = client.download_artifacts(run_id, "config.yaml")
    except MlflowException as error:
        raise RunNotFoundError(f"{where} ({str(error).splitlines()[0][:200]})") from None
    except OSError:
        raise RunNotFoundError(f"{where} that logged its config.yaml") from None
    except Exception as error:
        raise RunNotFoundError(
            f"tracking.uri={tracking_uri}: MLflow cannot open it "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        ) from None
    recorded = OmegaConf.load(path)
    OmegaConf.update(recorded, "tracking.experiment", found.name, force_add=True)
    OmegaConf.update(
        recorded, "tracking.experiment_deleted", found.lifecycle_stage == "deleted", force_add=True
    )
    return recorded


# The config's own look-ups, handed in by `lab.config` (which imports this module): the names of a
# group's options (`conf/GROUP/*.yaml`) and one option composed.
Options = Callable[[str], List[str]]
Option = Callable[[str, str], DictConfig]


def typed_like(recorded: DictConfig, group: str, options: Options, option: Option) -> DictConfig:
    """A recorded `model` or `data` section, merged onto an option of its group (so it is checked
    and typed as a composed one): the option of the same name, else a model of the same family."""
    name = recorded.get("name")
    if name not in options(group):
        name = next(
            (v for v in options(group) if option(group, v).get("family") == recorded.get("family")),
            None,
        )
    if name is None:
        raise RunNotFoundError(
            f"from_run: the run's {group} ({recorded.get('name')}) is no option of conf/{group}/"
        )
    return OmegaConf.merge(option(group, name), recorded)


def with_recorded_run(
    composed: DictConfig, given: Sequence[str], options: Options, option: Option
) -> DictConfig:
    """`composed` with `from_run`'s model, data, train and seed (and experiment, unless the
    command line names one), then the command line's own keys
    (`given`) under those on top again."""
    recorded = recorded_config(composed.from_run, composed.tracking.uri)
    result = copy.deepcopy(composed)
    result.model = typed_like(recorded.model, "model", options, option)
    result.data = typed_like(recorded.data, "data", options, option)
    result.train = OmegaConf.merge(composed.train, recorded.train)
    # As the recorded run ran it (HOW_IT_RUNS included), but in this machine's compile cache.
    result.train.compile_cache = composed.train.compile_cache
    result.seed = recorded.seed
    if not any(key in ("tracking", "tracking.experiment") for key in given):
        if recorded.tracking.get("experiment_deleted"):  # no new run can be created there
            raise RunNotFoundError(
                f"from_run={composed.from_run} is in the deleted experiment "
                f"{recorded.tracking.experiment!r}: restore it (mlflow experiments restore) or "
                f"name another with tracking.experiment=NAME"
            )
        result.tracking.experiment = recorded.tracking.experiment
    for key in given:
        if key.split(".")[0] in RECORDED:
            OmegaConf.update(result, key, OmegaConf.select(composed, key), merge=False)
    return result
