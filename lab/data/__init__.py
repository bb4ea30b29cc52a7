"""Datasets by name: `load_splits(data_config, seed)` is all training needs."""

from __future__ import annotations

from typing import Callable, Dict, Tuple

from lab.config import DataConfig
from lab.data.dataset import ImageDataset, Splits, split
from lab.data.sources import load_cifar, load_fashion_mnist, load_mnist
from lab.data.synthetic import make_synthetic
from lab.errors import ConfigValueError

DATASETS: Dict[str, Callable[[DataConfig], ImageDataset]] = {
    "fashion_mnist": lambda cfg: load_fashion_mnist(cfg.root),
    "mnist": lambda cfg: load_mnist(cfg.root),
    "cifar10": lambda cfg: load_cifar("cifar10", cfg.root, 10),
    "cifar100": lambda cfg: load_cifar("cifar100", cfg.root, 100),
    "synthetic": lambda cfg: make_synthetic(
        cfg.train_size, cfg.test_size, cfg.image_size, cfg.channels, cfg.classes
    ),
}


# Shapes and class counts known without reading any file (for `task=analyze data=NAME`).
SHAPES = {
    "fashion_mnist": ((28, 28, 1), 10),
    "mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
}


def known_dataset(cfg: DataConfig) -> Callable[[DataConfig], ImageDataset]:
    """The loader of `data.name`; an unknown name fails listing the known ones."""
    if cfg.name not in DATASETS:
        raise ConfigValueError(
            f"Unknown dataset. Received: data.name={cfg.name!r}; known: {sorted(DATASETS)}"
        )
    return DATASETS[cfg.name]


def input_spec(cfg: DataConfig) -> Tuple[Tuple[int, int, int], int]:
    """(image shape, classes) of a dataset, without loading it."""
    known_dataset(cfg)
    if cfg.name == "synthetic":
        (height, width, channels), classes = (
            (cfg.image_size, cfg.image_size, cfg.channels),
            cfg.classes,
        )
    else:
        (height, width, channels), classes = SHAPES[cfg.name]
    check_downsample(cfg, height, width)
    return (height // cfg.downsample, width // cfg.downsample, channels), classes


def check_downsample(cfg: DataConfig, height: int, width: int) -> None:
    if height % cfg.downsample or width % cfg.downsample:
        raise ConfigValueError(
            f"data.downsample must divide {cfg.name}'s {height}x{width} images. "
            f"Received: data.downsample={cfg.downsample}"
        )


READ_AHEAD: Dict[tuple, ImageDataset] = {}  # read by `read_ahead`, taken by the next `load_dataset`


def dataset_key(cfg: DataConfig) -> tuple:
    """What decides a dataset's contents (not how it is split, limited or downsampled)."""
    if cfg.name == "synthetic":
        return (cfg.name, cfg.train_size, cfg.test_size, cfg.image_size, cfg.channels, cfg.classes)
    return (cfg.name, cfg.root)


def load_dataset(cfg: DataConfig) -> ImageDataset:
    """The dataset `data` names: the one `read_ahead` read for it, else read from its files now."""
    ahead = READ_AHEAD.pop(dataset_key(cfg), None)
    return ahead if ahead is not None else known_dataset(cfg)(cfg)


def read_ahead(cfg: DataConfig) -> None:
    """Reads and checks the dataset now (`check_data`), before the framework loads, so that bad
    data fail in a second; the task's `load_dataset` then takes it instead of reading it again."""
    READ_AHEAD.clear()
    READ_AHEAD[dataset_key(cfg)] = check_data(cfg)


def check_data(cfg: DataConfig) -> ImageDataset:
    """Loads the dataset and checks that `data.limit`, `data.test_limit` and `data.downsample`
    fit it: a missing or corrupt file, or a limit too large, fails here."""
    dataset = load_dataset(cfg)
    if cfg.limit is not None and cfg.limit > len(dataset.x_train):
        raise ConfigValueError(
            f"data.limit is larger than the {len(dataset.x_train)} training examples of "
            f"{cfg.name}. Received: data.limit={cfg.limit}"
        )
    if cfg.test_limit is not None and cfg.test_limit > len(dataset.x_test):
        raise ConfigValueError(
            f"data.test_limit is larger than the {len(dataset.x_test)} test examples of "
            f"{cfg.name}. Received: data.test_limit={cfg.test_limit}"
        )
    check_downsample(cfg, *dataset.x_train.shape[1:3])
    return dataset


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Loads a dataset and splits it as `data.limit` and `data.val_fraction` say."""
    dataset = check_data(cfg)
    return split(dataset, cfg.limit, cfg.val_fraction, seed, cfg.test_limit, cfg.downsample)


__all__ = [
    "DATASETS",
    "ImageDataset",
    "Splits",
    "check_data",
    "input_spec",
    "load_dataset",
    "load_splits",
    "read_ahead",
]
