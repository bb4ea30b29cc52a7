"""The callbacks a run's fit runs, in order: per-epoch metrics, the MLflow epoch logger, the
non-finite loss guard, the best-weights keeper (`train.checkpoint=best`), early stopping
(`train.early_stopping`), the pruner (`search.pruner`) and the caller's own."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import keras

from lab.config import RunConfig
from lab.data import Splits
from lab.tracking import TrackedRun
from lab.tracking.callback import MlflowEpochLogger
from lab.training.callbacks import EpochMetrics, NonFiniteLossGuard
from lab.training.checkpoint import BestWeights, EarlyStop, epoch_objective, monitored
from lab.training.pruning import MedianPruner


def early_stopping(
    cfg: RunConfig, objective: Tuple[str, str], has_validation: bool
) -> Optional[EarlyStop]:
    """`train.early_stopping` on the run's epoch objective (training loss without a validation split)."""
    stopping = cfg.train.early_stopping
    if stopping.patience is None:
        return None
    metric, mode = epoch_objective(*objective, has_validation) or ("loss", "min")
    return EarlyStop(metric, mode, stopping.patience, stopping.min_delta)


def epoch_callbacks(
    cfg: RunConfig,
    splits: Splits,
    run: TrackedRun,
    objective: Tuple[str, str],
    pruner: Optional[MedianPruner],
    extra: Sequence[keras.callbacks.Callback],
) -> Tuple[List[keras.callbacks.Callback], Optional[BestWeights], Optional[EarlyStop]]:
    """The fit's callbacks in the order they run, and the two whose findings the run logs: the
    best weights `train.checkpoint=best` keeps (by `objective`), and `train.early_stopping`."""
    has_validation = len(splits.x_val) > 0
    monitor = monitored(cfg.train.checkpoint, *objective, has_validation=has_validation)
    best_weights = BestWeights(*monitor) if monitor else None
    early_stop = early_stopping(cfg, objective, has_validation=has_validation)
    # The NaN guard comes after the logger, so the epoch that went wrong is on record.
    callbacks = [
        EpochMetrics(len(splits.x_train)),
        MlflowEpochLogger(run),
        NonFiniteLossGuard(cfg.train.lr),
        *[c for c in (best_weights, early_stop, pruner) if c is not None],
        *extra,
    ]
    return callbacks, best_weights, early_stop
