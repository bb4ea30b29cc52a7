"""Datasets by name: `load_splits(data_config, seed)` is all training needs."""

from __future__ import annotations

from typing import Callable, Dict

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
    "synthetic": lambda cfg: make_synthetic(cfg.train_size, cfg.test_size, cfg.image_size, cfg.channels,
                                            cfg.classes),
}


def load_dataset(cfg: DataConfig) -> ImageDataset:
    if cfg.name not in DATASETS:
        raise ConfigValueError(f"Unknown dataset. Received: data.name={cfg.name!r}; known: {sorted(DATASETS)}")
    return DATASETS[cfg.name](cfg)


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Loads a dataset and splits it as `data.limit` and `data.val_fraction` say."""
    dataset = load_dataset(cfg)
    if cfg.limit is not None and cfg.limit > len(dataset.x_train):
        raise ConfigValueError(f"data.limit is larger than the {len(dataset.x_train)} training examples of "
                               f"{cfg.name}. Received: data.limit={cfg.limit}")
    return split(dataset, cfg.limit, cfg.val_fraction, seed)


__all__ = ["DATASETS", "ImageDataset", "Splits", "load_dataset", "load_splits"]
