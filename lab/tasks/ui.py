"""`task=ui`: MLflow's UI for the lab's store, lean, on loopback, opened where the comparison is.

`mlflow ui` as MLflow ships it starts four server workers and six job consumers (13 processes
here, about 40 s to answer); the lab's server for a SQLite store runs one worker with job execution
off (`lab.tracking.server`), which answers in seconds. The printed URL opens the model-training
view (MLflow 3 opens the GenAI one otherwise) of the sweep the command names, or else of the last
sweep recorded, with only that sweep's runs in the table.
"""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from lab.config import RunConfig
from lab.config.command_line import command_line_keys, output_dir
from lab.errors import LabError
from lab.tracking.runs import is_server, runs_url, sqlite_file
from lab.tracking.tags import PARENT, ROLE_TAG, SEARCH_TAG


class UiError(LabError):
    """The UI cannot start: nothing recorded yet, or its port is taken."""


@dataclass
class Landing:
    experiment_id: Optional[str]  # None: the store has no such experiment (the experiments list)
    sweep: Optional[str]  # the sweep whose runs the table shows; None: every run of the experiment

    def url(self, base: str) -> str:
        if self.experiment_id is None:
            return f"{base.rstrip('/')}/#/experiments"
        return runs_url(base, self.experiment_id, self.sweep)


def landing(uri: str, experiment: str, sweep: Optional[str]) -> Landing:
    """Where the UI opens: `sweep` in `experiment` where given (`search.name` or `experiment=` on
    the command line), else the sweep started last in the store, else `experiment`'s runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    if sweep is None:
        last = last_sweep(client)
        if last is not None:
            return last
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return Landing(None, None)
    recorded = (
        client.search_runs([found.experiment_id], f"tags.`{SEARCH_TAG}` = '{sweep}'", max_results=1)
        if sweep
        else []
    )
    return Landing(found.experiment_id, sweep if recorded else None)


def last_sweep(client) -> Optional[Landing]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    parents = client.search_runs(
        experiments,
        f"tags.`{ROLE_TAG}` = '{PARENT}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if not parents:
        return None
    return Landing(parents[0].info.experiment_id, parents[0].data.tags.get(SEARCH_TAG))


def check_port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UiError(
                f"ui.port={port} is taken (another MLflow UI?): open that one, stop it, "
                f"or pass ui.port=0 for any free port"
            ) from None


def check_recorded(uri: str) -> None:
    database = sqlite_file(uri)
    if database is not None and not database.is_file():
        raise UiError(
            f"tracking.uri={uri} holds no runs yet ({database} does not exist): "
            f"run a task first, e.g. python run.py"
        )


def named_sweep(cfg: RunConfig, command_line: Sequence[str]) -> Optional[str]:
    """The sweep the command names: `search.name`, or an experiment's (which sets it)."""
    if any(key in command_line for key in ("search.name", "experiment", "tracking.experiment")):
        return cfg.search.name
    return None


def interrupt(signum, frame):
    raise KeyboardInterrupt


def wait_while_answering(base: str, misses: int = 3) -> None:
    """Returns once the server has failed `misses` health checks in a row (it died, or was killed)."""
    from lab.tracking.server import health

    missed = 0
    while missed < misses:
        time.sleep(2)
        missed = missed + 1 if health(base, timeout=5.0) is not None else 0


def serve(cfg: RunConfig, command_line: Sequence[str], log_path) -> None:
    """Starts the UI, prints where to look, and serves until Ctrl-C (a server URI: prints only)."""
    uri = cfg.tracking.uri
    sweep = named_sweep(cfg, command_line)
    if is_server(uri):
        print(f"open {landing(uri, cfg.tracking.experiment, sweep).url(uri)}")
        return
    check_recorded(uri)
    if cfg.ui.port:
        check_port_free(cfg.ui.port)
    from lab.tracking.server import free_port, local_server

    start = time.monotonic()
    port = cfg.ui.port or free_port()
    # before the server starts: a SIGTERM at any point stops it too
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with local_server(uri, log_path, port=port) as base:
            print(
                f"MLflow UI for {uri} answered after {time.monotonic() - start:.1f} s (log {log_path})"
            )
            print(f"open {landing(uri, cfg.tracking.experiment, sweep).url(base)}", flush=True)
            print("Ctrl-C stops it", flush=True)
            wait_while_answering(base)
            raise UiError(f"the MLflow server stopped answering: its log, {log_path}, says why")
    except KeyboardInterrupt:
        print("stopped")


def run(cfg: RunConfig) -> None:
    """MLflow's UI for `tracking.uri`, lean, on loopback, opened on the comparison."""
    from lab.tasks.ui import serve

    serve(cfg, command_line_keys(), output_dir() / "mlflow-ui.log")
