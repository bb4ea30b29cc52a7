"""MLflow tracking servers: checking one answers before any work, and starting one on loopback.

Several processes (a distributed sweep's chief and workers) write through one `mlflow server`.
For SQLite the server runs one worker process, so the file has one writer; PostgreSQL takes many
(docs/sweeps.md, "Scaling out"). Where the server is not installed (mlflow-skinny), the launcher lets its
processes write the SQLite file directly.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from lab.errors import LabError
from lab.tracking.runs import artifact_location, is_server, mlflow_executable, sqlite_file

START_TIMEOUT_S = 120.0
# MLflow 3's server starts Huey job consumers (six more processes, each importing MLflow: about
# 1.4 GB and tens of CPU-seconds per start, measured here) for its GenAI jobs (judges, trace
# rollups), which a lab server never runs. Off where the lab starts a server, unless the user set it.
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


class TrackingUnreachableError(LabError):
    """`tracking.uri` names a server that does not answer."""


def health(uri: str, timeout: float) -> Optional[str]:
    """None when the server at `uri` answers its health check, else why not."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """For a server URI: raises `TrackingUnreachableError` naming it unless it answers (a file
    store needs no check)."""
    if not is_server(uri):
        return
    problem = health(uri, timeout)
    if problem is not None:
        raise TrackingUnreachableError(
            f"the MLflow tracking server at tracking.uri={uri} is unreachable ({problem}): start it "
            f"(mlflow server --host 127.0.0.1 --port PORT --backend-store-uri sqlite:///mlflow.db --workers 1) "
            f"or fix tracking.uri"
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_installed() -> bool:
    """Whether `mlflow server` can run here (mlflow-skinny has the client and the SQL store, no server)."""
    return mlflow_executable().exists() and importlib.util.find_spec("uvicorn") is not None


def server_environment(environ=None) -> dict:
    """The environment `local_server` starts `mlflow server` in: this one, with MLflow's job
    execution off unless `MLFLOW_SERVER_ENABLE_JOB_EXECUTION` says otherwise."""
    environment = dict(os.environ if environ is None else environ)
    environment.setdefault(JOB_EXECUTION, "false")
    return environment


def server_command(
    store_uri: str,
    port: int,
    host: str = "127.0.0.1",
    artifacts: Optional[Path] = None,
    workers: Optional[int] = None,
) -> list:
    """`mlflow server` for `store_uri`. A SQLite store gets one server worker (one writer to the
    file) and keeps its artifacts in `mlruns/` beside the database, where the embedded store
    puts them, so runs read the same with or without the server. Another database (PostgreSQL)
    gets `workers` server processes (MLflow's default without) and its artifacts served from
    `artifacts`."""
    command = [
        str(mlflow_executable()),
        "server",
        "--backend-store-uri",
        store_uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if sqlite_file(store_uri) is not None:
        command += [
            "--workers",
            "1",
            "--default-artifact-root",
            artifact_location(store_uri),
            "--no-serve-artifacts",
        ]
    else:
        command += ["--workers", str(workers)] if workers else []
        command += ["--artifacts-destination", str(artifacts)] if artifacts is not None else []
    return command


@contextmanager
def local_server(
    store_uri: str,
    log_path: Path,
    port: Optional[int] = None,
    artifacts: Optional[Path] = None,
    workers: Optional[int] = None,
) -> Iterator[str]:
    """Runs `mlflow server` on loopback for `store_uri` while the block runs; yields its URI."""
    port = port or free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            server_command(store_uri, port, artifacts=artifacts, workers=workers),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            start_new_session=True,
        )
    try:
        wait_until_healthy(uri, process, log_path)
        yield uri
    finally:
        stop(process)


def wait_until_healthy(uri: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while health(uri, timeout=2.0) is not None:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            tail = log_path.read_text(errors="replace")[-2000:]
            raise TrackingUnreachableError(
                f"mlflow server for {uri} did not start (log {log_path}):\n{tail}"
            )
        time.sleep(0.5)


def stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the server's process group (uvicorn's workers included), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
