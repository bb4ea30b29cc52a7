"""Classifier heads: the main head, and auxiliary heads attached to named taps.

An auxiliary head (GoogLeNet's "auxiliary classifier", Szegedy et al. 2014) adds a loss on an
intermediate feature map, with its own weight. It only shapes training: evaluation and
inference read the main head, whose output is always named `predictions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping

import keras
from omegaconf import MISSING

from lab.errors import SpecError, require

MAIN_OUTPUT = "predictions"


@dataclass
class AuxHeadSpec:
    """A classifier on the tap named `tap` (a stage or module name such as `conv3`).

    The default is a global-average-pool linear probe. GoogLeNet's heads (Szegedy et al. 2014,
    section 5) are `pool_size: 5, pool_stride: 3, conv_width: 128, hidden: 1024, dropout: 0.7`:
    an average pool, a 1x1 conv + ReLU, flatten, a dense + ReLU layer, dropout, softmax.
    """

    tap: str = MISSING
    loss_weight: float = 0.3
    pool_size: int = 0  # 0: global average pool
    pool_stride: int = 1
    conv_width: int = 0  # 0: no 1x1 conv
    hidden: int = 0  # 0: no hidden dense layer
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.loss_weight >= 0, "aux_heads.loss_weight", self.loss_weight, ">= 0")
        require(self.pool_size >= 0 and self.pool_stride > 0, "aux_heads.pool_size/pool_stride",
                (self.pool_size, self.pool_stride), "pool_size >= 0 and pool_stride > 0")
        require(self.conv_width >= 0, "aux_heads.conv_width", self.conv_width, ">= 0 (0: no conv)")
        require(self.hidden >= 0, "aux_heads.hidden", self.hidden, ">= 0 (0: no hidden layer)")
        require(0 <= self.dropout < 1, "aux_heads.dropout", self.dropout, "in [0, 1)")


def aux_output_name(tap: str) -> str:
    return f"aux_{tap}"


def softmax_output(x, classes: int, name: str = MAIN_OUTPUT):
    """The softmax layer of every head, in float32 so that mixed precision never computes the
    softmax in 16 bits."""
    return keras.layers.Dense(classes, activation="softmax", dtype="float32", name=name)(x)


def apply_classifier(x, classes: int, name: str, hidden: int = 0, dropout: float = 0.0):
    """Global average pool, optional hidden layer and dropout, softmax in float32."""
    prefix = "" if name == MAIN_OUTPUT else f"{name}_"
    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name=f"{prefix}fc")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    return softmax_output(x, classes, name)


def apply_aux_head(x, head: AuxHeadSpec, classes: int, name: str):
    """An auxiliary classifier as `head` describes. A pool larger than the feature map (a small
    input) shrinks to the map's size, so every variant builds for any input."""
    if not head.pool_size:
        return apply_classifier(x, classes, name, head.hidden, head.dropout)
    size = min(head.pool_size, x.shape[1], x.shape[2])
    x = keras.layers.AveragePooling2D(size, strides=head.pool_stride, name=f"{name}_pool")(x)
    if head.conv_width:
        x = keras.layers.Conv2D(head.conv_width, 1, activation="relu", name=f"{name}_conv")(x)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    if head.hidden:
        x = keras.layers.Dense(head.hidden, activation="relu", name=f"{name}_fc")(x)
    if head.dropout:
        x = keras.layers.Dropout(head.dropout, name=f"{name}_dropout")(x)
    return softmax_output(x, classes, name)


def attach_aux_heads(taps: Mapping[str, object], heads: List[AuxHeadSpec], classes: int) -> Dict[str, object]:
    """Returns one auxiliary output per head spec, keyed by its output name."""
    outputs = {}
    for head in heads:
        if head.tap not in taps:
            raise SpecError(f"Auxiliary head tap not found. Received: tap={head.tap!r}; taps: {sorted(taps)}")
        name = aux_output_name(head.tap)
        if name in outputs:
            raise SpecError(f"Two auxiliary heads on one tap. Received: tap={head.tap!r}")
        outputs[name] = apply_aux_head(taps[head.tap], head, classes, name)
    return outputs


def assemble_model(inputs, main_output, aux_outputs: Mapping[str, object], name: str) -> keras.Model:
    """One output when there are no auxiliary heads; a dict keyed by output name when there are."""
    outputs = {MAIN_OUTPUT: main_output, **aux_outputs} if aux_outputs else main_output
    return keras.Model(inputs, outputs, name=name)
