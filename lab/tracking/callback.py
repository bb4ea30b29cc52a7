"""The Keras callback that writes each epoch's metrics to MLflow in one request."""

from __future__ import annotations

import keras

from lab.tracking.runs import TrackedRun


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every value in the epoch's logs at step = epoch number (1-based), in one batch."""

    def __init__(self, run: TrackedRun):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            self.run.log_metrics({key: float(value) for key, value in logs.items()}, step=epoch + 1)
