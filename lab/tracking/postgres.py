"""A throwaway PostgreSQL cluster on a loopback port, MLflow's multi-writer backend on one
machine: for the tests, `bench/tracking_writers.py`, and trying `mlflow server` over PostgreSQL
before setting one up for real (docs/sweeps.md, "Scaling out"). Uses Debian's `postgresql` binaries; as
root it runs the cluster as `nobody` (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from lab.errors import LabError
from lab.tracking.server import free_port

BINARIES = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60.0


def installed_bin_dir() -> Optional[Path]:
    found = sorted(BINARIES.glob("*/bin/postgres"))
    return found[-1].parent if found else None


def cluster_owner() -> Optional[str]:
    """The user the cluster runs as: `nobody` under root (PostgreSQL refuses to run as root)."""
    return "nobody" if os.getuid() == 0 else None


def init_cluster(bin_dir: Path, user: Optional[str]) -> Path:
    """A new folder of the system's temporary directory, owned by `user` where given, holding a
    fresh cluster in `data/` (user `lab`, trust authentication)."""
    root = Path(tempfile.mkdtemp(prefix="lab-postgres-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [bin_dir / "initdb", "-D", root / "data", "-U", "lab", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        user=user,
    )
    return root


def start_server(bin_dir: Path, root: Path, port: int, user: Optional[str]) -> subprocess.Popen:
    """The cluster's server on 127.0.0.1:`port`, its socket in `root`, its output in
    `root`/postgres.log."""
    with open(root / "postgres.log", "w") as log:
        return subprocess.Popen(
            [
                bin_dir / "postgres",
                "-D",
                root / "data",
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
        )


@contextmanager
def local_postgres(database: str = "mlflow") -> Iterator[str]:
    """A throwaway PostgreSQL database, served on loopback while the block runs.

    The cluster lives in a new folder of the system's temporary directory (one `nobody` can
    reach) and is removed, with its folder, when the block ends.

    Args:
        database: the name of the empty database to create.

    Returns:
        A context manager yielding the database's URI (user `lab`, trust authentication:
        loopback only).

    Raises:
        LabError: PostgreSQL is not installed, or its server did not start.
    """
    import psycopg

    bin_dir = installed_bin_dir()
    if bin_dir is None:
        raise LabError(
            f"PostgreSQL is not installed (no {BINARIES}/*/bin/postgres): apt-get install postgresql"
        )
    user = cluster_owner()
    root = init_cluster(bin_dir, user)
    port = free_port()
    server = start_server(bin_dir, root, port, user)
    try:
        connection = connect(psycopg, port, server, root)
        connection.execute(f"CREATE DATABASE {database}")
        connection.close()
        yield f"postgresql://lab@127.0.0.1:{port}/{database}"
    finally:
        # "fast" shutdown: SIGTERM's "smart" one waits for clients
        server.send_signal(signal.SIGINT)
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def connect(psycopg, port: int, server: subprocess.Popen, root: Path):
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return psycopg.connect(
                host="127.0.0.1", port=port, user="lab", dbname="postgres", autocommit=True
            )
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise LabError(
                    f"PostgreSQL did not start: {(root / 'postgres.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
