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


@contextmanager
def local_postgres(database: str = "mlflow") -> Iterator[str]:
    """Creates a cluster in a new folder of the system's temporary directory (one `nobody` can
    reach), serves it on loopback while the block runs, yields the URI of its empty `database`
    (user `lab`, trust authentication: loopback only), and removes it all at the end."""
    import psycopg

    bin_dir = installed_bin_dir()
    if bin_dir is None:
        raise LabError(
            f"PostgreSQL is not installed (no {BINARIES}/*/bin/postgres): apt-get install postgresql"
        )
    user = "nobody" if os.getuid() == 0 else None
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
    port = free_port()
    with open(root / "postgres.log", "w") as log:
        server = subprocess.Popen(
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
    try:
        connection = connect(psycopg, port, server, root)
        connection.execute(f"CREATE DATABASE {database}")
        connection.close()
        yield f"postgresql://lab@127.0.0.1:{port}/{database}"
    finally:
        server.send_signal(
            signal.SIGINT
        )  # "fast" shutdown: SIGTERM's "smart" one waits for clients
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
