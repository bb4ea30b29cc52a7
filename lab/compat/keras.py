"""The Keras-private attributes the lab reads, in one place: a functional graph's wiring, which
Keras 3 keeps on `layer._inbound_nodes` and `tensor._keras_history` with no public accessor.
`tests/test_keras_internals.py` checks both on a small functional model, so a Keras upgrade that
moves them fails that test, not the analysis."""

from __future__ import annotations

from typing import List

import keras


def producing_layer(tensor) -> keras.layers.Layer:
    """The layer (or operation) whose call produced a symbolic `tensor` of a functional model."""
    return tensor._keras_history.operation


def inbound_layers(layer) -> List[keras.layers.Layer]:
    """The layers whose outputs feed `layer`'s first call in a functional model, in input order."""
    return [producing_layer(tensor) for tensor in layer._inbound_nodes[0].input_tensors]


def build_for_fit(model: keras.Model, x, y) -> None:
    """Builds a compiled model's loss, metric and optimizer state from the shapes of one batch
    (`x`, `y`), as `fit` does before its first step. Left to `fit`, JAX and torch take that batch
    from the shuffled epoch iterator, which draws one more permutation from NumPy's global
    generator than fitting an already built model: a fresh model and a reused one
    (`lab.training.reuse`) would then see their data in different orders for the same seed."""
    model._symbolic_build(data_batch=(x, y, None))
