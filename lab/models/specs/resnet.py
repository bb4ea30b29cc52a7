"""The ResNet family's spec (the Hydra schema of `family: resnet`); its builder is
`lab.models.resnet`. Stage `i` (0-based) is named `conv{i+2}`, after the papers' tables, and
each stage output is a tap."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List

from omegaconf import MISSING

from lab.errors import require
from lab.models.specs.base import BaseSpec, Connectivity


class Stem(Enum):
    cifar = "cifar"  # 3x3 conv, stride 1
    imagenet = "imagenet"  # 7x7/2 conv, then 3x3/2 max-pool


class Block(Enum):
    basic = "basic"  # two kxk convs
    bottleneck = "bottleneck"  # 1x1 reduce, kxk, 1x1 expand (x expansion)


class Shortcut(Enum):
    A = "A"  # identity; zero-padded channels and strided subsampling where shapes change
    B = "B"  # identity; 1x1 projection where shapes change
    C = "C"  # 1x1 projection on every block


class BottleneckStride(Enum):
    reduce = "reduce"  # stride on the first 1x1 conv (He et al. 2015, keras.applications)
    spatial = "spatial"  # stride on the kxk conv (ResNet v1.5, He et al. 2016)


@dataclass
class StageSpec:
    blocks: int = MISSING
    width: int = MISSING  # output channels of a basic block; inner channels of a bottleneck
    stride: int = 1  # of the stage's first block

    def __post_init__(self) -> None:
        require(self.blocks > 0, "stages.blocks", self.blocks, "> 0")
        require(self.width > 0, "stages.width", self.width, "> 0")
        require(self.stride > 0, "stages.stride", self.stride, "> 0")


@dataclass
class ResNetSpec(BaseSpec):
    """Every axis of the family. Defaults are the CIFAR ResNet of He et al. (2015)."""

    family: str = "resnet"
    name: str = "resnet"
    stem: Stem = Stem.cifar
    stem_width: int = 16
    stages: List[StageSpec] = field(default_factory=list)
    block: Block = Block.basic
    expansion: int = 4
    bottleneck_stride: BottleneckStride = BottleneckStride.reduce
    connectivity: Connectivity = Connectivity.residual
    shortcut: Shortcut = Shortcut.A
    preact: bool = False
    width_multiplier: float = 1.0
    kernel_size: int = 3
    dropout: float = 0.0  # inside each block, before its last conv (as in Wide ResNet)
    conv_bias: bool = False
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9

    def taps(self) -> List[str]:
        """The stage names `conv2`, `conv3`, ...: each stage's last block output."""
        return [f"conv{i + 2}" for i in range(len(self.stages))]

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.stages) > 0, "model.stages", self.stages, "a non-empty list")
        require(self.stem_width > 0, "model.stem_width", self.stem_width, "> 0")
        require(self.expansion > 0, "model.expansion", self.expansion, "> 0")
        require(self.width_multiplier > 0, "model.width_multiplier", self.width_multiplier, "> 0")
        require(
            self.kernel_size > 0 and self.kernel_size % 2 == 1,
            "model.kernel_size",
            self.kernel_size,
            "a positive odd number",
        )
        require(0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")
