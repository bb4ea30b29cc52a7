"""Dispatch of `python run.py task=NAME`: each task takes the composed config and returns the
objective a Hydra sweeper would optimise (or None)."""

from __future__ import annotations

from typing import Callable, Dict, Optional

from omegaconf import DictConfig

from lab.config import Task


def run_train(cfg: DictConfig) -> Optional[float]:
    from lab.tracking.runs import ui_hint  # noqa: PLC0415  (imports Keras: only when a task runs)
    from lab.training import train  # noqa: PLC0415

    result = train(cfg)
    best = (f", best val_accuracy {result.best_val_accuracy:.4f} (epoch {result.best_epoch})"
            if result.best_val_accuracy is not None else "")
    print(f"test_accuracy {result.test_accuracy:.4f}{best}")
    print(f"MLflow run {result.run_id} in {cfg.tracking.uri}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    return result.objective


TASKS: Dict[Task, Callable[[DictConfig], Optional[float]]] = {Task.train: run_train}


def run_task(cfg: DictConfig) -> Optional[float]:
    return TASKS[cfg.task](cfg)
