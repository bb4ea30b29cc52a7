"""Keras callbacks of every training run: metric names, timing, NaN guard, terminal progress."""

from __future__ import annotations

import math
import time
from typing import Dict, Optional

import keras
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lab.errors import NonFiniteLossError
from lab.models.heads import MAIN_OUTPUT


def main_head_logs(logs: Dict[str, float]) -> Dict[str, float]:
    """Renames a multi-output model's logs so `loss`/`accuracy` always mean the main head.

    Keras names them `predictions_loss`, `predictions_accuracy`, and `loss` is the weighted sum
    over all heads; that sum becomes `total_loss`. Auxiliary heads keep `aux_<tap>_loss`.
    """
    renamed = dict(logs)
    for prefix in ("", "val_"):
        main_loss = renamed.pop(f"{prefix}{MAIN_OUTPUT}_loss", None)
        if main_loss is None:
            continue
        renamed[f"{prefix}total_loss"] = renamed[f"{prefix}loss"]
        renamed[f"{prefix}loss"] = main_loss
        for key in [k for k in renamed if k.startswith(f"{prefix}{MAIN_OUTPUT}_")]:
            renamed[f"{prefix}{key[len(prefix) + len(MAIN_OUTPUT) + 1 :]}"] = renamed.pop(key)
    return renamed


class EpochMetrics(keras.callbacks.Callback):
    """First in the list: renames multi-output logs (`main_head_logs`) and adds `lr`,
    `epoch_seconds` and `images_per_second` (training examples over training time, without
    validation) to each epoch's logs, where every later callback sees them."""

    def __init__(self, train_examples: int):
        super().__init__()
        self.train_examples = train_examples
        self.epoch_start = self.validation_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start, self.validation_start = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self.epoch_start is not None and self.validation_start is None:
            self.validation_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        renamed = main_head_logs(logs)
        logs.clear()
        logs.update(renamed)
        train_seconds = (self.validation_start or end) - self.epoch_start
        logs["epoch_seconds"] = end - self.epoch_start
        logs["images_per_second"] = self.train_examples / max(train_seconds, 1e-9)
        logs["lr"] = current_learning_rate(self.model.optimizer)
        self.epoch_start = None


def current_learning_rate(optimizer) -> float:
    """The learning rate the next step would use (a schedule evaluated at `iterations`)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training with an error naming the epoch and the configured learning rate (not the
    schedule's value at the stop, which may have decayed to 0) when the loss is NaN or infinite.
    Checked per epoch: a per-step check would force a device sync on every step."""

    def __init__(self, configured_lr: float):
        super().__init__()
        self.configured_lr = configured_lr

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(
                f"Training loss became {loss} in epoch {epoch + 1}; lower train.lr "
                f"(train.lr={self.configured_lr:g}) or check the data"
            )


class RichProgress(keras.callbacks.Callback):
    """An epoch bar with loss, accuracy and images/s; one summary line per epoch."""

    async_safe = True  # Keras may run batch hooks in a thread; they only read floats.
    REFRESH_SECONDS = 0.25

    def __init__(self, batch_size: int, console: Optional[Console] = None):
        super().__init__()
        self.batch_size, self.console = batch_size, console or Console(stderr=True)
        self.progress = self.task = None
        self.last_refresh = self.epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        total = self.params.get("steps")
        epochs = self.params.get("epochs")
        waiting = (
            "compiling, first step"
            if epoch == self.params.get("initial_epoch", 0)
            else "first step"
        )
        self.task = self.progress.add_task(
            "", total=total, epoch=f"{epoch + 1}/{epochs}", figures=waiting
        )
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last_refresh < self.REFRESH_SECONDS:
            return
        self.last_refresh = now
        logs = logs or {}
        accuracy = logs.get("accuracy", logs.get(f"{MAIN_OUTPUT}_accuracy", float("nan")))
        ips = (batch + 1) * self.batch_size / max(now - self.epoch_start, 1e-9)
        figures = f"loss {float(logs.get('loss', np.nan)):.4f}  acc {float(accuracy):.4f}  {ips:,.0f} img/s"
        self.progress.update(self.task, completed=batch + 1, figures=figures)

    def on_epoch_end(self, epoch, logs=None):
        self.progress.remove_task(self.task)
        shown = ("loss", "accuracy", "val_loss", "val_accuracy")
        values = "  ".join(f"{k} {logs[k]:.4f}" for k in shown if k in logs)
        self.console.print(
            f"epoch {epoch + 1}/{self.params.get('epochs')}  {values}  "
            f"{logs.get('images_per_second', 0):,.0f} img/s  {logs.get('epoch_seconds', 0):.1f} s",
            soft_wrap=True,
        )

    def on_train_end(self, logs=None):
        if self.progress is not None:
            self.progress.stop()
