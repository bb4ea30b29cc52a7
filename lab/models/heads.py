"""Classifier heads: the main head, and auxiliary heads attached to named taps.

An auxiliary head (GoogLeNet's "auxiliary classifier", Szegedy et al. 2014) adds a loss on an
intermediate feature map, with its own weight. It only shapes training: evaluation and
inference read the main head, whose output is always named `predictions`. Its record,
`AuxHeadSpec`, lives with the specs in `lab.models.specs.base` (the Hydra schema).
"""

from __future__ import annotations

from typing import Dict, Mapping

import keras

from lab.models.specs.base import AuxHeadSpec, check_aux_heads

MAIN_OUTPUT = "predictions"


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


def attach_aux_heads(taps: Mapping[str, object], spec, classes: int) -> Dict[str, object]:
    """Returns one auxiliary output per head of `spec`, keyed by its output name.

    `taps` are the builder's named feature maps. They must be the ones `spec.taps()` names, in
    order: the spec checked its heads against those when it was made, before any build. (The
    heads are checked again, for a spec changed since.)
    """
    if list(taps) != spec.taps():  # a lab bug, not a bad config: no SpecError, keep the traceback
        raise RuntimeError(
            f"The {spec.family} builder's taps differ from its spec's taps(). "
            f"Received: taps={list(taps)}; spec.taps()={spec.taps()}"
        )
    check_aux_heads(spec.aux_heads, spec.taps())
    outputs = {}
    for head in spec.aux_heads:
        name = aux_output_name(head.tap)
        outputs[name] = apply_aux_head(taps[head.tap], head, classes, name)
    return outputs


def assemble_model(
    inputs, main_output, aux_outputs: Mapping[str, object], name: str
) -> keras.Model:
    """One output when there are no auxiliary heads; a dict keyed by output name when there are."""
    outputs = {MAIN_OUTPUT: main_output, **aux_outputs} if aux_outputs else main_output
    return keras.Model(inputs, outputs, name=name)
