"""A trained model's inference latency, measured: the median wall time of `repeats` forward
passes over one batch of test images, after a warm-up pass that compiles the predict function,
on the device the process runs on. Recorded with its batch, repeats and device, because a
latency means nothing without them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict

import keras
import numpy as np

from lab import runtime


@dataclass(frozen=True)
class Latency:
    """One measurement: milliseconds per batch (median, fastest and slowest of the repeats)."""

    batch: int
    repeats: int
    median_ms: float
    fastest_ms: float
    slowest_ms: float
    device: str

    def metrics(self) -> Dict[str, float]:
        """What a run logs: `latency_ms` (median per batch), `inference_images_per_second` (at
        the batch; `images_per_second` is the training throughput per epoch), and the spread
        of the repeats."""
        return {
            "latency_ms": self.median_ms,
            "inference_images_per_second": self.batch * 1000.0 / self.median_ms,
            "latency_ms_fastest": self.fastest_ms,
            "latency_ms_slowest": self.slowest_ms,
        }

    def params(self) -> Dict[str, object]:
        return {
            "latency.batch": self.batch,
            "latency.repeats": self.repeats,
            "latency.device": self.device,
        }


def one_batch(images: np.ndarray, batch: int) -> np.ndarray:
    """`batch` images from `images`, repeated where there are fewer."""
    reps = -(-batch // len(images))
    return np.concatenate([images] * reps)[:batch]


def measure_latency(model: keras.Model, images: np.ndarray, batch: int, repeats: int) -> Latency:
    """Times `model.predict_on_batch` (inference mode; it returns host arrays, so each pass has
    finished when its time is taken) on one batch of `images`.

    Args:
        model: the model as it takes the images (the training model: uint8 in, standardised inside).
        images: test images, at least one.
        batch: images per pass.
        repeats: timed passes, after one untimed warm-up pass.

    Returns:
        The `Latency`, with this process's device.
    """
    x = one_batch(images, batch)
    model.predict_on_batch(x)  # compiles the predict function
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        model.predict_on_batch(x)
        times.append((time.perf_counter() - began) * 1000.0)
    return Latency(
        batch,
        repeats,
        float(np.median(times)),
        float(np.min(times)),
        float(np.max(times)),
        runtime.device_description(),
    )
