"""What can be checked before a framework loads is checked first: importing TensorFlow and
keras-tuner costs about ten seconds of CPU, and a missing data folder, a corrupt data file, a
search axis naming no config key, a truncated weights file or a chief's taken port should not
wait for it. `run.py` calls `preflight` after the config is checked and before the task imports
Keras."""

from __future__ import annotations

from pathlib import Path

from lab.config import Role, RunConfig, Task
from lab.data.hdf5 import check_readable_hdf5
from lab.errors import require


def preflight(cfg: RunConfig) -> None:
    """Raises the bad input a `train`, `search`, `evaluate`, `list` or `report` task would meet later, without Keras."""
    if (cfg.task is Task.list and cfg.list.trained) or cfg.task in (
        Task.report,
        Task.plan,
        Task.ui,
    ):
        from lab.tracking.store import check_readable_store

        # the runs it reads: before any variant is built or run read
        check_readable_store(cfg.tracking.uri)
    if cfg.task not in (Task.train, Task.search, Task.evaluate):
        return
    role = cfg.search.distributed.role if cfg.task is Task.search else Role.none
    weights = getattr(cfg.model, "weights", None)
    require(
        not weights or Path(weights).is_file(),
        "model.weights",
        weights,
        "null or a weights file that exists",
    )
    if weights:
        check_readable_hdf5(weights)
    if cfg.task is Task.search:
        from lab.tasks.search.space import check_axis_paths

        check_axis_paths(cfg)
        if cfg.search.register_as and role in (Role.none, Role.chief, Role.launcher):
            check_register_as(cfg)
        if role is Role.chief:
            from lab.tasks.search.address import check_address_free

            check_address_free(cfg.search.distributed)
    # the roles that train; the chief and the launcher read no data
    if role in (Role.none, Role.worker):
        from lab.data import read_ahead

        read_ahead(cfg.data)


def check_register_as(cfg: RunConfig) -> None:
    """`search.register_as` must not name another sweep's registered model (a store not made yet has none)."""
    from lab.tracking.runs import sqlite_file
    from lab.tracking.store import check_readable_store

    uri = cfg.tracking.uri
    check_readable_store(uri)
    database = sqlite_file(uri)
    if database is not None and not database.exists():
        return
    from mlflow.tracking import MlflowClient

    from lab.tracking.registered import check_name_free

    check_name_free(MlflowClient(uri, registry_uri=uri), cfg.search.register_as, cfg.search.name)
