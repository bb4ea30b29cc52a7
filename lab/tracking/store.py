"""The MLflow store `tracking.uri` names, checked and opened before any work.

A server must answer; a SQLite file must be writable and a database, and it is created (MLflow
builds its tables on first open) under a file lock beside it, so that two commands started
together on a new file do not both run MLflow's migrations (which leaves it half-built). Any
other database URI (`postgresql://...`) is opened by MLflow as given. `file:` stores, deprecated
in MLflow 3, are refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from lab.errors import LabError
from lab.tracking.runs import is_server, sqlite_file
from lab.tracking.server import check_reachable

SQLITE_HEADER = b"SQLite format 3\x00"


class TrackingStoreError(LabError):
    """`tracking.uri` names a store this process cannot use."""


def prepare_store(uri: str) -> None:
    """Raises `TrackingStoreError` (or `TrackingUnreachableError`) naming `tracking.uri` and why it
    cannot be used; creates a new SQLite store once."""
    if is_server(uri):
        check_reachable(uri)
        return
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingStoreError(f"tracking.uri={uri} is a file store, which MLflow 3 deprecates: use "
                                 f"sqlite:///PATH/mlflow.db, or a server (http://HOST:PORT)")
    database = sqlite_file(uri)
    if database is not None:
        create_sqlite_store(uri, database)


def header(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(len(SQLITE_HEADER))


def create_sqlite_store(uri: str, database: Path) -> None:
    folder = database.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrackingStoreError(f"tracking.uri={uri}: cannot create its folder {folder} ({error.strerror})") from None
    if not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise TrackingStoreError(f"tracking.uri={uri}: {database if database.exists() else folder} is not writable")
    if database.exists() and database.stat().st_size and header(database) != SQLITE_HEADER:
        raise TrackingStoreError(f"tracking.uri={uri}: {database} is not an SQLite database")
    for chatty in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..."
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with open(folder / f"{database.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        try:
            from mlflow.tracking import MlflowClient  # noqa: PLC0415

            MlflowClient(uri).search_experiments(max_results=1)  # builds the tables of a new store
        except Exception as error:  # noqa: BLE001  (SQLAlchemy's and MLflow's errors alike)
            reason = str(error).splitlines()[0][:300]
            raise TrackingStoreError(f"tracking.uri={uri}: MLflow cannot open it ({type(error).__name__}: {reason})") from None
