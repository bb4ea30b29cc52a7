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


# The database dialects MLflow's SQL store takes (SQLAlchemy's, with or without a driver: postgresql+psycopg).
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_scheme(uri: str) -> None:
    """A server, or a database MLflow's SQL store opens; a file store or another scheme is named."""
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingStoreError(
            f"tracking.uri={uri} is a file store, which MLflow 3 deprecates: use "
            f"sqlite:///PATH/mlflow.db, or a server (http://HOST:PORT)"
        )
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
    if not is_server(uri) and scheme not in SQL_SCHEMES:
        raise TrackingStoreError(
            f"tracking.uri={uri}: '{scheme}' is no store MLflow opens: use sqlite:///PATH/mlflow.db, "
            f"a database ({', '.join(SQL_SCHEMES[1:])}://...) or a server (http://HOST:PORT)"
        )


def prepare_store(uri: str) -> None:
    """Raises `TrackingStoreError` (or `TrackingUnreachableError`) naming `tracking.uri` and why it
    cannot be used; creates a new SQLite store once."""
    check_scheme(uri)
    if is_server(uri):
        check_reachable(uri)
        return
    database = sqlite_file(uri)
    if database is not None:
        create_sqlite_store(uri, database)


def check_readable_store(uri: str) -> None:
    """For the tasks that only read a store (report, plan, ui, list.trained, register_as's check):
    the same checks, writing nothing (an SQLite file is read with sqlite3, read-only); a file that
    is absent is left to the task to say."""
    check_scheme(uri)
    if is_server(uri):
        check_reachable(uri)
        return
    database = sqlite_file(uri)
    if database is None:
        open_store(uri)
    elif database.exists():
        check_mlflow_tables(uri, database)


MLFLOW_TABLES = ("alembic_version", "experiments", "runs")


def check_mlflow_tables(uri: str, database: Path) -> None:
    """An existing SQLite file is MLflow's store, read-only: a file that is another program's
    database (or empty) is refused, not given MLflow's tables as opening it with MLflow would."""
    import sqlite3

    check_sqlite_header(uri, database)
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.Error as error:
        raise TrackingStoreError(
            f"tracking.uri={uri}: {database} cannot be read ({error})"
        ) from None
    missing = [table for table in MLFLOW_TABLES if table not in tables]
    if missing:
        raise TrackingStoreError(
            f"tracking.uri={uri}: {database} is not an MLflow store (no {', '.join(missing)} "
            f"table): check the path"
        )


def open_store(uri: str) -> None:
    """Opens the store once (building a new SQLite store's tables); MLflow's or SQLAlchemy's error
    becomes one line naming `tracking.uri`."""
    try:
        from mlflow.tracking import MlflowClient

        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        reason = str(error).splitlines()[0][:300]
        raise TrackingStoreError(
            f"tracking.uri={uri}: MLflow cannot open it ({type(error).__name__}: {reason})"
        ) from None


def header(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(len(SQLITE_HEADER))


def check_sqlite_header(uri: str, database: Path) -> None:
    """An existing, non-empty file at an sqlite:/// URI must be an SQLite database."""
    if database.stat().st_size and header(database) != SQLITE_HEADER:
        raise TrackingStoreError(f"tracking.uri={uri}: {database} is not an SQLite database")


def create_sqlite_store(uri: str, database: Path) -> None:
    folder = database.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrackingStoreError(
            f"tracking.uri={uri}: cannot create its folder {folder} ({error.strerror})"
        ) from None
    if not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise TrackingStoreError(
            f"tracking.uri={uri}: {database if database.exists() else folder} is not writable"
        )
    if database.exists():
        check_sqlite_header(uri, database)
    # "Creating initial MLflow database tables..."
    for chatty in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with open(folder / f"{database.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        open_store(uri)  # builds the tables of a new store
