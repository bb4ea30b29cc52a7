"""The weights a run keeps (`train.checkpoint`): its best epoch's by the run's objective, or its
last. The best are copied to host memory at each improvement and put back after training, so the
test pass and the logged model are of the same weights."""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import keras
import numpy as np

from lab.config import Checkpoint

PER_EPOCH = ("val_accuracy", "val_loss", "accuracy", "loss")  # objectives a run logs every epoch


def epoch_objective(
    objective: str, direction: str, has_validation: bool
) -> Optional[Tuple[str, str]]:
    """(metric, "max"|"min") that ranks a run's epochs: the run's objective where it is logged
    every epoch (a test metric falls back to val_accuracy), or None where it needs a validation
    split the run does not have."""
    metric, mode = (objective, direction) if objective in PER_EPOCH else ("val_accuracy", "max")
    if metric.startswith("val_") and not has_validation:
        return None
    return metric, mode


def monitored(
    checkpoint: Checkpoint, objective: str, direction: str, has_validation: bool
) -> Optional[Tuple[str, str]]:
    """What picks the best epoch, or None where the last epoch is kept (`train.checkpoint` is not
    `best`, or no epoch objective: `epoch_objective`)."""
    if checkpoint is not Checkpoint.best:
        return None
    return epoch_objective(objective, direction, has_validation)


class EarlyStop(keras.callbacks.Callback):
    """Stops training once `metric` has gone `patience` epochs without improving on its best by
    more than `min_delta`; `stopped_epoch` is the last epoch trained (1-based), None if it ran out."""

    def __init__(self, metric: str, mode: str, patience: int, min_delta: float):
        super().__init__()
        self.metric, self.mode, self.patience, self.min_delta = metric, mode, patience, min_delta
        self.best: Optional[float] = None
        self.waited = 0
        self.stopped_epoch: Optional[int] = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            return
        gain = (
            (value - self.best if self.mode == "max" else self.best - value)
            if self.best is not None
            else None
        )
        if gain is None or gain > self.min_delta:
            self.best, self.waited = float(value), 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


class BestWeights(keras.callbacks.Callback):
    """Keeps a host copy of every model weight (batch-norm statistics and the standardisation
    included; not the optimizer's) at the epoch where `metric` was best so far; ties keep the
    earlier epoch, as `best_epoch` does."""

    def __init__(self, metric: str, mode: str):
        super().__init__()
        self.metric, self.mode = metric, mode
        self.best_value: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.weights: Optional[List[np.ndarray]] = None

    def improves(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(value) or not self.improves(value):
            return
        self.best_value, self.best_epoch = float(value), epoch + 1
        self.weights = [np.array(keras.ops.convert_to_numpy(w)) for w in self.model.weights]

    def restore(self) -> Optional[int]:
        """Puts the best epoch's weights back; returns that epoch (None: nothing was kept)."""
        if self.weights is None:
            return None
        for variable, value in zip(self.model.weights, self.weights):
            variable.assign(value)
        return self.best_epoch
