"""`lab.training.latency`: a model's inference latency, measured on one batch, median of repeats."""

import keras
import numpy as np
import pytest

from lab.training.latency import measure_latency, one_batch

pytestmark = pytest.mark.core


def test_latency_is_the_median_of_timed_passes_with_its_spread_and_settings():
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    images = np.zeros((5, 4, 4, 1), dtype="float32")
    latency = measure_latency(model, images, batch=8, repeats=7)
    metrics = latency.metrics()
    assert 0 < latency.fastest_ms <= latency.median_ms <= latency.slowest_ms
    assert metrics["latency_ms"] == latency.median_ms
    assert metrics["inference_images_per_second"] == pytest.approx(8 * 1000 / latency.median_ms)
    assert latency.params() == {
        "latency.batch": 8,
        "latency.repeats": 7,
        "latency.device": latency.device,
    }


def test_a_batch_larger_than_the_images_repeats_them():
    images = np.arange(3).reshape(3, 1)
    assert one_batch(images, 7).ravel().tolist() == [0, 1, 2, 0, 1, 2, 0]
