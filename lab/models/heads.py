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
    """A classifier on the tap named `tap` (a stage name such as `conv3`)."""

    tap: str = MISSING
    loss_weight: float = 0.3
    hidden: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.loss_weight >= 0, "aux_heads.loss_weight", self.loss_weight, ">= 0")
        require(self.hidden >= 0, "aux_heads.hidden", self.hidden, ">= 0 (0: no hidden layer)")
        require(0 <= self.dropout < 1, "aux_heads.dropout", self.dropout, "in [0, 1)")


def aux_output_name(tap: str) -> str:
    return f"aux_{tap}"


def apply_classifier(x, classes: int, name: str, hidden: int = 0, dropout: float = 0.0):
    """Global average pool, optional hidden layer and dropout, softmax in float32."""
    prefix = "" if name == MAIN_OUTPUT else f"{name}_"
    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name=f"{prefix}fc")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    # float32 so that mixed precision never computes the softmax in 16 bits.
    return keras.layers.Dense(classes, activation="softmax", dtype="float32", name=name)(x)


def attach_aux_heads(taps: Mapping[str, object], heads: List[AuxHeadSpec], classes: int) -> Dict[str, object]:
    """Returns one auxiliary output per head spec, keyed by its output name."""
    outputs = {}
    for head in heads:
        if head.tap not in taps:
            raise SpecError(f"Auxiliary head tap not found. Received: tap={head.tap!r}; taps: {sorted(taps)}")
        name = aux_output_name(head.tap)
        if name in outputs:
            raise SpecError(f"Two auxiliary heads on one tap. Received: tap={head.tap!r}")
        outputs[name] = apply_classifier(taps[head.tap], classes, name, head.hidden, head.dropout)
    return outputs


def assemble_model(inputs, main_output, aux_outputs: Mapping[str, object], name: str) -> keras.Model:
    """One output when there are no auxiliary heads; a dict keyed by output name when there are."""
    outputs = {MAIN_OUTPUT: main_output, **aux_outputs} if aux_outputs else main_output
    return keras.Model(inputs, outputs, name=name)
