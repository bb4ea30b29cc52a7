"""The Inception family's spec (the Hydra schema of `family: inception`: GoogLeNet, Szegedy et al.
2014); its builder is `lab.models.inception`. Module records are the rows of Table 1, and each
module's output is a tap named as the module (`inception4a`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List

from omegaconf import MISSING

from lab.errors import require
from lab.models.specs.base import BaseSpec


class Stem(Enum):
    # Table 1: conv 7x7/2, max-pool 3x3/2, conv 1x1 + 3x3, max-pool 3x3/2 (224 -> 28).
    imagenet = "imagenet"
    # One 3x3 conv, stride 1, no pooling (32 -> 32), as common CIFAR GoogLeNets use.
    small = "small"


@dataclass
class InceptionModuleSpec:
    """One row of Table 1: the output widths of the four branches and their reductions.

    A reduction or projection of 0 leaves it out (the naive form of that branch).
    """

    name: str = MISSING
    b1: int = MISSING  # #1x1
    b2_reduce: int = 0  # #3x3 reduce
    b2: int = MISSING  # #3x3
    b3_reduce: int = 0  # #5x5 reduce
    b3: int = MISSING  # #5x5
    b4_proj: int = 0  # pool proj

    def __post_init__(self) -> None:
        for key in ("b1", "b2", "b3"):
            require(getattr(self, key) > 0, f"modules.{key}", getattr(self, key), "> 0")
        for key in ("b2_reduce", "b3_reduce", "b4_proj"):
            require(getattr(self, key) >= 0, f"modules.{key}", getattr(self, key), ">= 0 (0: none)")


@dataclass
class InceptionSpec(BaseSpec):
    """Every axis of the family. Defaults are GoogLeNet's stem and head (Table 1)."""

    family: str = "inception"
    name: str = "googlenet"
    stem: Stem = Stem.imagenet
    stem_width: int = 64  # conv1 7x7/2 and the conv2 1x1 reduce (imagenet stem)
    stem_out: int = 192  # conv2 3x3 (imagenet stem), the one 3x3 conv (small stem)
    modules: List[InceptionModuleSpec] = field(default_factory=list)
    pool_before: List[str] = field(default_factory=list)  # modules preceded by a 3x3/2 max-pool
    naive: bool = False  # Figure 2a: ignore every reduction and projection
    batch_norm: bool = False  # after every conv, before its ReLU (convs then drop their bias)
    dropout: float = 0.4  # before the linear layer (section 5)

    def taps(self) -> List[str]:
        """The module names (`inception3a`, ...): each module's concatenated output."""
        return [module.name for module in self.modules]

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.modules) > 0, "model.modules", self.modules, "a non-empty list")
        require(
            self.stem_width > 0 and self.stem_out > 0,
            "model.stem_width/stem_out",
            (self.stem_width, self.stem_out),
            "both > 0",
        )
        names = [module.name for module in self.modules]
        require(len(set(names)) == len(names), "model.modules.name", names, "unique")
        unknown = sorted(set(self.pool_before) - set(names))
        require(
            not unknown, "model.pool_before", self.pool_before, f"module names; unknown: {unknown}"
        )
        require(0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")
