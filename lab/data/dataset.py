"""In-memory image datasets and the fixed train/validation/test split every run uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass
class ImageDataset:
    """Images as uint8 NHWC arrays and integer labels, as read from their files."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    source: str  # where the files were found, for the run's record


@dataclass
class Splits:
    """What training sees: train/validation carved from the training set, the test set untouched,
    and per-channel statistics of the training split for standardisation."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    source: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """Adds the channel axis to greyscale (N, H, W) images."""
    return images[..., None] if images.ndim == 3 else images


def channel_stats(images: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, on the 0-255 scale."""
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    return tuple(pixels.mean(axis=0).tolist()), tuple(np.maximum(pixels.std(axis=0), 1e-3).tolist())


def downsampled(images: np.ndarray, factor: int) -> np.ndarray:
    """NHWC uint8 images with each `factor` x `factor` block of pixels averaged into one (rounded)."""
    if factor == 1:
        return images
    n, height, width, channels = images.shape
    blocks = images.reshape(n, height // factor, factor, width // factor, factor, channels)
    return np.rint(blocks.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)


def split(
    dataset: ImageDataset,
    limit: Optional[int],
    val_fraction: float,
    seed: int,
    test_limit: Optional[int] = None,
    downsample: int = 1,
) -> Splits:
    """Keeps the first `limit` training examples, then carves a seeded validation split from them;
    keeps the first `test_limit` test examples; averages `downsample` x `downsample` pixel blocks.

    The same (limit, val_fraction, seed) always gives the same split, whatever the backend.
    """
    x, y = as_nhwc(dataset.x_train), dataset.y_train.astype(np.int32)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    x = downsampled(x, downsample)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    x_train = x[train_idx]
    mean, std = channel_stats(x_train)
    return Splits(
        name=dataset.name,
        x_train=x_train,
        y_train=y[train_idx],
        x_val=x[val_idx],
        y_val=y[val_idx],
        x_test=downsampled(as_nhwc(dataset.x_test)[:test_limit], downsample),
        y_test=dataset.y_test.astype(np.int32)[:test_limit],
        classes=dataset.classes,
        source=dataset.source,
        mean=mean,
        std=std,
    )
