"""What can be checked before a framework loads is checked first: importing TensorFlow and
keras-tuner costs about ten seconds of CPU, and a missing data folder, a corrupt data file, a
search axis naming no config key, a truncated weights file or a chief's taken port should not
wait for it. `run.py` calls `preflight` after the config is checked and before the task imports
Keras."""

from __future__ import annotations

from pathlib import Path
from typing import List

from lab.config import Role, RunConfig, Task
from lab.errors import WeightsMismatchError, first_line, require


def preflight(cfg: RunConfig) -> None:
    """Raises the bad input a `train`, `search`, `evaluate`, `list` or `report` task would meet later, without Keras."""
    if (cfg.task is Task.list and cfg.list.trained) or cfg.task in (Task.report, Task.plan, Task.ui):
        from lab.tracking.store import check_readable_store  # noqa: PLC0415

        check_readable_store(cfg.tracking.uri)  # the runs it reads: before any variant is built or run read
    if cfg.task not in (Task.train, Task.search, Task.evaluate):
        return
    role = cfg.search.distributed.role if cfg.task is Task.search else Role.none
    weights = getattr(cfg.model, "weights", None)
    require(not weights or Path(weights).is_file(), "model.weights", weights, "null or a weights file that exists")
    if weights:
        check_readable_hdf5(weights)
    if cfg.task is Task.search:
        from lab.search.space import check_axis_paths  # noqa: PLC0415

        check_axis_paths(cfg)
        if cfg.search.register_as and role in (Role.none, Role.chief, Role.launcher):
            check_register_as(cfg)
        if role is Role.chief:
            from lab.search.address import check_address_free  # noqa: PLC0415

            check_address_free(cfg.search.distributed)
    if role in (Role.none, Role.worker):  # the roles that train; the chief and the launcher read no data
        from lab.data import read_ahead  # noqa: PLC0415

        read_ahead(cfg.data)


def check_register_as(cfg: RunConfig) -> None:
    """`search.register_as` must not name another sweep's registered model (a store not made yet has none)."""
    from lab.tracking.runs import sqlite_file  # noqa: PLC0415
    from lab.tracking.store import check_readable_store  # noqa: PLC0415

    uri = cfg.tracking.uri
    check_readable_store(uri)
    database = sqlite_file(uri)
    if database is not None and not database.exists():
        return
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    from lab.tracking.registered import check_name_free  # noqa: PLC0415

    check_name_free(MlflowClient(uri, registry_uri=uri), cfg.search.register_as, cfg.search.name)


def check_readable_hdf5(path: str) -> None:
    """Both layouts `model.weights` takes (keras.applications' `.h5`, Keras 3's `.weights.h5`)
    are HDF5: a file h5py cannot open (truncated, or not HDF5 at all) is named here, before Keras
    and the data load. Whether its layers fit the network is checked when it is built
    (`lab.models.weights`). A weights file is data from elsewhere: one that points outside itself
    (a dataset in external storage, a virtual dataset, an external link), which would read other
    files of this machine into the model, is refused (`outside_references`)."""
    import h5py  # noqa: PLC0415  (Keras' own dependency; loads no framework)

    try:
        with h5py.File(path, "r") as file:
            found = outside_references(file)
    except OSError as error:
        raise WeightsMismatchError(f"model.weights={path} cannot be read as HDF5: {first_line(error)}") from None
    if found:
        raise WeightsMismatchError(f"model.weights={path} refers to data outside the file ({'; '.join(found[:3])}): "
                                   f"a weights file must hold its own values")


def outside_references(file) -> List[str]:
    """Each dataset stored in another file or a virtual one, and each external link, in an open
    h5py file, walked by hard links, each object once (a group may link back to itself)."""
    import h5py  # noqa: PLC0415

    found, pending, seen = [], [("", file)], set()
    while pending:
        prefix, group = pending.pop()
        for name in group:
            where = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{where}: external link to {link.filename}")
                continue
            if isinstance(link, h5py.SoftLink):
                continue  # inside the file: its target is walked where it lives
            item = group[name]
            address = h5py.h5o.get_info(item.id).addr
            if address in seen:  # a hard link to an object already walked (a group linking back to itself)
                continue
            seen.add(address)
            if isinstance(item, h5py.Group):
                pending.append((where, item))
            elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                found.append(f"{where}: {'external storage' if item.external else 'a virtual dataset'}")
    return found
