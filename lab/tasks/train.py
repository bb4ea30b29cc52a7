"""`task=train`: one network trained on one dataset, tracked in MLflow (`lab.training.train`)."""

from __future__ import annotations

from typing import Optional

from lab.config import RunConfig


def run(cfg: RunConfig) -> Optional[float]:
    from lab.tracking.runs import ui_hint
    from lab.training.train import train

    result = train(cfg)
    best = (
        f", best val_accuracy {result.best_val_accuracy:.4f} (epoch {result.best_epoch})"
        if result.best_val_accuracy is not None
        else ""
    )
    untrained = (
        f" (did not train: {result.not_trained}; tagged lab.trained=false)"
        if result.not_trained
        else ""
    )
    print(f"test_accuracy {result.test_accuracy:.4f}{best}{untrained}")
    print(f"MLflow run {result.run_id} in {cfg.tracking.uri}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    return result.selection_accuracy  # what a Hydra sweeper (`-m`) optimises
