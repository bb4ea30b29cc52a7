"""The chain family's spec (the Hydra schema of `family: chain`: LeNet, AlexNet, ZFNet, VGG); its
builder is `lab.models.chain`. Stage `i` (1-based) is the tap `block{i}`, after its pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List

from omegaconf import MISSING

from lab.errors import require
from lab.models.specs.base import BaseSpec, Connectivity


class Padding(Enum):
    same = "same"
    valid = "valid"


class PoolType(Enum):
    max = "max"
    avg = "avg"
    none = "none"


class Activation(Enum):
    relu = "relu"
    tanh = "tanh"  # LeNet-5's original squashing function (LeCun et al. 1998)


@dataclass
class ConvSpec:
    """`repeat` identical convs. `pad` zeros are added on every side first (Caffe-style explicit
    padding, for maps Keras' same/valid cannot give, as ZFNet's 110x110 conv1)."""

    filters: int = MISSING
    kernel: int = 3
    stride: int = 1
    padding: Padding = Padding.same
    pad: int = 0
    repeat: int = 1

    def __post_init__(self) -> None:
        require(self.filters > 0, "stages.convs.filters", self.filters, "> 0")
        require(self.kernel > 0, "stages.convs.kernel", self.kernel, "> 0")
        require(self.stride > 0, "stages.convs.stride", self.stride, "> 0")
        require(self.pad >= 0, "stages.convs.pad", self.pad, ">= 0")
        require(self.repeat > 0, "stages.convs.repeat", self.repeat, "> 0")


@dataclass
class PoolSpec:
    type: PoolType = PoolType.max
    size: int = 2
    stride: int = 2
    padding: Padding = Padding.valid

    def __post_init__(self) -> None:
        require(self.size > 0, "stages.pool.size", self.size, "> 0")
        require(self.stride > 0, "stages.pool.stride", self.stride, "> 0")


@dataclass
class ConvStageSpec:
    convs: List[ConvSpec] = field(default_factory=list)
    pool: PoolSpec = field(default_factory=PoolSpec)

    def __post_init__(self) -> None:
        require(len(self.convs) > 0, "stages.convs", self.convs, "a non-empty list")


@dataclass
class ChainSpec(BaseSpec):
    """Every axis of the family. `dense` lists the hidden widths before the softmax layer."""

    family: str = "chain"
    name: str = "chain"
    stages: List[ConvStageSpec] = field(default_factory=list)
    dense: List[int] = field(default_factory=list)
    activation: Activation = Activation.relu
    batch_norm: bool = False  # after every conv, before its activation (convs keep their bias)
    # after every hidden dense layer (AlexNet section 4.2, VGG section 3.1: 0.5)
    dropout: float = 0.0
    lrn: bool = False  # local response normalisation (AlexNet section 3.3) ...
    # ... before the pool of this many leading stages (AlexNet: conv1 and conv2)
    lrn_stages: int = 2
    connectivity: Connectivity = Connectivity.plain

    def taps(self) -> List[str]:
        """`block1`, `block2`, ...: each stage's output, after its pool."""
        return [f"block{i}" for i in range(1, len(self.stages) + 1)]

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.stages) > 0, "model.stages", self.stages, "a non-empty list")
        require(all(width > 0 for width in self.dense), "model.dense", self.dense, "widths > 0")
        require(0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")
        require(self.lrn_stages >= 0, "model.lrn_stages", self.lrn_stages, ">= 0")
