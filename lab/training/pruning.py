"""`search.pruner=median`: stop a trial that is already behind the trials that completed.

The rule is Optuna's `MedianPruner` (optuna.pruners.MedianPruner, via its PercentilePruner at
50%): at the end of epoch k, once the trial has trained `pruner_warmup` epochs and at least
`pruner_min_trials` completed trials logged epoch k, the trial stops if its best objective so far
is worse than the median of those trials' objective at epoch k. A stopped trial is PRUNED, not
failed: keras-tuner ends it STOPPED (its own status for a trial stopped early, which scores
nothing), its MLflow run FINISHED with the tag `lab.pruned_at_epoch`, and trials.csv says PRUNED.

The completed trials' curves are read from MLflow when a trial starts (`Sweep.pruning_reference`),
so workers of a distributed sweep prune against every worker's completed trials. A pruned run
still takes its test pass (its figures in trials.csv are where it stopped) but logs no model.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import keras
import numpy as np


def median_at(reference: Dict[int, List[float]], epoch: int, min_trials: int) -> Optional[float]:
    """The median of the completed trials' objective at `epoch` (1-based), or None where fewer
    than `min_trials` of them logged it."""
    values = reference.get(epoch, [])
    return float(np.median(values)) if len(values) >= min_trials else None


def worse(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "max" else value > than


class MedianPruner(keras.callbacks.Callback):
    """Stops training at the end of the first epoch where the median rule says the trial has lost;
    `pruned_at` is that epoch (1-based), None while it has not."""

    def __init__(
        self,
        metric: str,
        mode: str,
        reference: Dict[int, List[float]],
        warmup: int,
        min_trials: int,
    ):
        super().__init__()
        self.metric, self.mode, self.reference = metric, mode, reference
        self.warmup, self.min_trials = warmup, min_trials
        self.best: Optional[float] = None
        self.pruned_at: Optional[int] = None
        self.median: Optional[float] = None  # the median it lost to

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or worse(self.best, value, self.mode):
            self.best = float(value)
        trained = epoch + 1
        median = (
            median_at(self.reference, trained, self.min_trials) if trained >= self.warmup else None
        )
        if median is not None and worse(self.best, median, self.mode):
            self.pruned_at, self.median = trained, median
            self.model.stop_training = True
