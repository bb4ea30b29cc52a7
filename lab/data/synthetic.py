"""A generated dataset with real class structure, so tests can check that training learns."""

from __future__ import annotations

import numpy as np

from lab.data.dataset import ImageDataset

GENERATOR_SEED = 1234  # the data are the same in every run; the run's seed only drives the split


def make_synthetic(
    train_size: int, test_size: int, image_size: int, channels: int, classes: int
) -> ImageDataset:
    """Each class is a smooth random prototype image; examples are the prototype plus noise."""
    rng = np.random.default_rng(GENERATOR_SEED)
    coarse = rng.uniform(0, 255, size=(classes, 4, 4, channels))
    repeat = -(-image_size // 4)
    prototypes = coarse.repeat(repeat, axis=1).repeat(repeat, axis=2)[:, :image_size, :image_size]

    def sample(n: int):
        labels = rng.integers(0, classes, size=n)
        noise = rng.normal(0, 40, size=(n, image_size, image_size, channels))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.int32)

    (x_train, y_train), (x_test, y_test) = sample(train_size), sample(test_size)
    return ImageDataset("synthetic", x_train, y_train, x_test, y_test, classes, source="generated")
