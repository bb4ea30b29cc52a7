"""Dispatch of `python run.py task=NAME`. The composed config is turned into the typed, checked
`RunConfig` once, here (quick mode applied first); every task and everything below takes that."""

from __future__ import annotations

import importlib
from typing import Callable, Dict, Optional

from omegaconf import DictConfig

from lab.config import Role, RunConfig, Task, checked_run_config
from lab.config.command_line import command_line_keys

ROOMS: Dict[Task, str] = {
    Task.train: "lab.tasks.train",
    Task.search: "lab.tasks.search",
    Task.plan: "lab.tasks.search.plan",
    Task.analyze: "lab.tasks.analyze",
    Task.list: "lab.tasks.list",
    Task.bench: "lab.tasks.bench",
    Task.evaluate: "lab.tasks.evaluate",
    Task.report: "lab.tasks.report",
    Task.ui: "lab.tasks.ui",
}
"""Each task's room: a module (or package) whose `run(cfg)` does the task. Imported only when
the task runs, so a config error never loads a framework."""


def room(task: Task) -> Callable[[RunConfig], Optional[float]]:
    """The `run` function of `task`'s room."""
    return importlib.import_module(ROOMS[task]).run


TRACKED = (Task.train, Task.search, Task.bench, Task.evaluate)


def run_task(composed: DictConfig) -> Optional[float]:
    """Hydra's composed config -> quick mode -> `RunConfig` (range checks) -> the task."""
    cfg = checked_run_config(composed, command_line_keys())
    from lab.tasks.preflight import preflight

    preflight(cfg)  # bad data, axes or address: before MLflow or any framework loads
    if cfg.task in TRACKED:
        from lab.tracking.store import prepare_store

        prepare_store(cfg.tracking.uri)  # before any model is built
    from lab.tasks import native_logs

    if cfg.task in (Task.report, Task.ui, Task.plan) or (
        cfg.task is Task.search and cfg.search.distributed.role is Role.launcher
    ):
        native_logs.restore_stderr()  # a report and the launcher run no framework
    else:
        native_logs.framework_started()
    return room(cfg.task)(cfg)
