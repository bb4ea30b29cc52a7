"""The FractalNet family's spec (the Hydra schema of `family: fractal`: Larsson et al. 2017); its
builder is `lab.models.fractal`. Block `i` (1-based) is the tap `block{i}`, its join before pooling."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List

from omegaconf import MISSING

from lab.errors import require
from lab.models.specs.base import BaseSpec


class Column(Enum):
    all = "all"  # the whole fractal
    # only column C: a plain chain of 2^(C-1) convs per block (Table 1, "=> deepest")
    deepest = "deepest"


class DropPath(Enum):
    none = "none"  # joins are plain means, in training too
    local = "local"  # every join drops inputs on its own
    local_global = "local_global"  # a `global_fraction` of batches keep one column network-wide


@dataclass
class FractalBlockSpec:
    width: int = MISSING  # output channels of every conv in the block
    dropout: float = 0.0  # after each conv, before its BN, as in the authors' Caffe code

    def __post_init__(self) -> None:
        require(self.width > 0, "blocks.width", self.width, "> 0")
        require(0 <= self.dropout < 1, "blocks.dropout", self.dropout, "in [0, 1)")


@dataclass
class FractalSpec(BaseSpec):
    """Every axis of the family. Drop-path and dropout default to off, as in Table 1's plain
    FractalNet rows; the drop rate and the global fraction default to the paper's (sections 3.1, 4)."""

    family: str = "fractal"
    name: str = "fractal"
    columns: int = 3  # C
    blocks: List[FractalBlockSpec] = field(default_factory=list)  # B blocks, each pooled 2x2
    column: Column = Column.all
    drop_path: DropPath = DropPath.none
    local_drop_rate: float = 0.15  # section 4: 15% across the network
    global_fraction: float = 0.5  # section 3.1: 50% local and 50% global batches

    def taps(self) -> List[str]:
        """`block1`, `block2`, ...: each block's output before its pool (the deepest column's
        last conv when `column: deepest`)."""
        return [f"block{i}" for i in range(1, len(self.blocks) + 1)]

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.columns > 0, "model.columns", self.columns, "> 0")
        require(len(self.blocks) > 0, "model.blocks", self.blocks, "a non-empty list")
        require(
            0 <= self.local_drop_rate < 1,
            "model.local_drop_rate",
            self.local_drop_rate,
            "in [0, 1)",
        )
        require(
            0 <= self.global_fraction <= 1,
            "model.global_fraction",
            self.global_fraction,
            "in [0, 1]",
        )
