"""One MLflow run per training, with a status that tells the truth.

A run ends FINISHED only when its body returns. An exception ends it FAILED with the error as
the `lab.error` tag; Ctrl-C (SIGINT) or SIGTERM end it KILLED. It is left RUNNING only when the
process hands it on to the process that resumes it (`Suspended`).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lab.config import TrackingConfig
from lab.errors import Terminated
from lab.tracking.tags import ERROR_TAG
from lab.tracking.uris import is_server, sqlite_file

MAX_TAG_LENGTH = 5000


class Suspended(BaseException):
    """The process stops on purpose and another one resumes its runs: they stay RUNNING."""


def artifact_location(uri: str) -> Optional[str]:
    """For a SQLite store, artifacts live next to the database (`mlruns/` beside `mlflow.db`),
    so one folder holds everything; a server decides for itself."""
    database = sqlite_file(uri)
    return None if database is None else (database.resolve().parent / "mlruns").as_uri()


def delete_artifact_folder(artifact_uri: str, folder: Optional[str]) -> None:
    """Removes `folder` (None: all) from the artifacts at `artifact_uri` (the other artifacts and the
    records stay); a folder already gone (another process of the sweep deleted it) is no error."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        get_artifact_repository(artifact_uri).delete_artifacts(folder)
    except FileNotFoundError:
        pass


def every_run(client: MlflowClient, experiment_ids, filter_string: str = "") -> Iterator[object]:
    """Every run of `experiment_ids` that `filter_string` selects, page by page of one query
    (MLflow returns at most 1,000 runs a page)."""
    token = None
    while True:
        page = client.search_runs(
            list(experiment_ids), filter_string=filter_string, max_results=1000, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def mlflow_executable() -> Path:
    """The `mlflow` command of this Python environment."""
    return Path(sys.executable).with_name("mlflow")


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except Exception:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def counts_as_logging(method):
    """Adds the call's duration to the run's `logging_seconds` (the cost of tracking, measured)."""

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.logging_seconds += time.perf_counter() - start

    return wrapper


@dataclass
class TrackedRun:
    """An open MLflow run; every call is one request to the store."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    logging_seconds: float = 0.0  # time spent in the calls below

    @counts_as_logging
    def log_params(self, params: Mapping[str, object]) -> None:
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    @counts_as_logging
    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        timestamp = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), timestamp, step) for k, v in metrics.items()]
        )

    @counts_as_logging
    def set_tags(self, tags: Mapping[str, object]) -> None:
        self.client.log_batch(
            self.run_id, tags=[RunTag(k, str(v)[:MAX_TAG_LENGTH]) for k, v in tags.items()]
        )

    @counts_as_logging
    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turns SIGTERM into a `Terminated` exception, so cleanup runs as it does for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_name: str,
    tags: Optional[Dict[str, str]] = None,
    parent_run_id: Optional[str] = None,
    resume_run_id: Optional[str] = None,
) -> Iterator[TrackedRun]:
    """Opens a run in `cfg.experiment` at `cfg.uri` (or reopens `resume_run_id`) and closes it with
    the status it earned."""
    client = MlflowClient(tracking_uri=cfg.uri)
    all_tags = dict(tags or {})
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    if resume_run_id:
        client.update_run(resume_run_id, status="RUNNING")
        run = client.get_run(resume_run_id)
        if ERROR_TAG in run.data.tags:  # from the attempt that failed or was killed
            client.delete_tag(resume_run_id, ERROR_TAG)
    else:
        run = client.create_run(
            experiment_id(client, cfg.experiment, cfg.uri), run_name=run_name, tags=all_tags
        )
    tracked = TrackedRun(client, run.info.run_id, run.info.experiment_id)
    with sigterm_raises():
        try:
            yield tracked
        except Suspended:
            raise
        except (KeyboardInterrupt, Terminated) as stop:
            _end(tracked, "KILLED", f"{type(stop).__name__}: {stop}".strip(": "))
            raise
        except BaseException as error:
            _end(tracked, "FAILED", f"{type(error).__name__}: {error}")
            raise
    client.set_terminated(tracked.run_id, "FINISHED")


# MLflow 3 opens an experiment in its GenAI view (traces, evaluations) unless the URL asks for the
# model-training one; its experiment kind tag does not change that in 3.17.
MODEL_TRAINING = "workflowType=machine_learning"


def runs_url(base: str, experiment: str, sweep: Optional[str] = None) -> str:
    """The experiment's runs table in the model-training view; with `sweep`, only that sweep's
    parent and trial runs (every run of a sweep carries its `lab.search` tag)."""
    query = MODEL_TRAINING
    if sweep is not None:
        query += "&searchFilter=" + urllib.parse.quote(f"tags.`lab.search` = '{sweep}'", safe="")
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs?{query}"


def run_url(base: str, experiment: str, run_id: str) -> str:
    """One run's page in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}?{MODEL_TRAINING}"


def ui_hint(uri: str, experiment: str, run_id: str, sweep: Optional[str] = None) -> str:
    """How to look at a run (or, with `sweep`, the sweep's runs table): its page on a server, or
    the `task=ui` command that serves a SQLite store, then the page."""
    page = runs_url if sweep is not None else run_url
    target = sweep if sweep is not None else run_id
    if is_server(uri):
        return f"open {page(uri, experiment, target)}"
    return (
        f"view it with: python run.py task=ui tracking.uri={uri}  "
        f"then open {page(LOCAL_UI, experiment, target)}"
    )


LOCAL_UI = "http://127.0.0.1:5000"  # where `task=ui` serves by default (ui.port)


def _end(run: TrackedRun, status: str, reason: str) -> None:
    """Records why the run ended, then its status; a store that is down must not hide the error."""
    try:
        run.set_tags({ERROR_TAG: reason})
    finally:
        run.client.set_terminated(run.run_id, status)
