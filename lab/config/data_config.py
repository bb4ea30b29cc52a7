"""The `data` group's schema: which dataset a run reads, and how much of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from lab.errors import require


@dataclass
class DataConfig:
    """Which dataset, where its files are, and how much of it to use.

    `limit` keeps the first N training examples; the validation split (`val_fraction`,
    seeded by the run's seed) is then carved from those N. `test_limit` keeps the first N test
    examples (the same ones for every run, so comparisons stay paired); null: all of them.
    `downsample` averages each k x k block of pixels into one (area averaging, as Chrabaszcz et al.
    2017 built their downsampled ImageNet): 2 turns Fashion-MNIST's 28x28 into 14x14 and CIFAR's
    32x32 into 16x16, a quarter of every network's MACs; 1 keeps the native images.
    """

    name: str = MISSING
    root: Optional[str] = None
    limit: Optional[int] = None
    val_fraction: float = 0.1
    test_limit: Optional[int] = None
    downsample: int = 1

    def __post_init__(self) -> None:
        require(self.limit is None or self.limit > 1, "data.limit", self.limit, "null or > 1")
        require(self.downsample >= 1, "data.downsample", self.downsample, ">= 1")
        require(
            self.test_limit is None or self.test_limit > 0,
            "data.test_limit",
            self.test_limit,
            "null or > 0",
        )
        require(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")


@dataclass
class SyntheticDataConfig(DataConfig):
    """A small generated dataset with learnable class structure, for tests."""

    name: str = "synthetic"
    train_size: int = 512
    test_size: int = 128
    image_size: int = 16
    channels: int = 3
    classes: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("train_size", "test_size", "image_size", "channels"):
            value = getattr(self, key)
            require(value > 0, f"data.{key}", value, "> 0")
        require(self.classes > 1, "data.classes", self.classes, "> 1")
