"""The FractalNet family: self-similar networks without residuals, with drop-path.

Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals"
(ICLR 2017). A fractal block of C columns follows the expansion rule of section 2,

    f_1(z) = conv(z),    f_{C+1}(z) = join(f_C(f_C(z)), conv(z)),

where join is the element-wise mean and conv is 3x3 conv, BN, ReLU (section 4). As in the paper's
Figure 1 and the authors' Caffe generator, the last join of the outer f_C merges with the join
above it, so a join takes one input per column that ends there (the block's last join has C).
Columns are numbered 1 (shallowest: one conv per block) to C (deepest: 2^(C-1) convs); layer
names carry them (`block2_col3_4_conv` is the 4th conv of column 3 in block 2), and the
deepest-column network (`column: deepest`) uses the same names, so weights move between the two
by layer name. Each block is followed by 2x2 max-pooling; block outputs are taps `block1`...
`FractalSpec` and its records live in `lab.models.specs.fractal` (the Hydra schema).

Drop-path (section 3.1) only acts in training. Local: each input of a join is dropped with
probability `local_drop_rate`, at least one survives, and the join averages the survivors.
Global: one column is drawn per batch and every join it passes through keeps only that column.
A `DropPathSampler` at the input draws, once per call, whether the batch is global and which
column; every join takes its (1, 2) output as a last, non-spatial input.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import keras
from keras import ops

from lab.models import layers
from lab.models.heads import MAIN_OUTPUT, apply_classifier, assemble_model, attach_aux_heads
from lab.models.registry import register_family
from lab.models.specs.fractal import Column, DropPath, FractalBlockSpec, FractalSpec


@keras.saving.register_keras_serializable(package="lab")
class DropPathSampler(keras.layers.Layer):
    """Draws one global drop-path decision per call: `[[is_global, column]]`, shape (1, 2).

    In training `is_global` is 1 with probability `global_fraction` and `column` is uniform in
    1..`columns`; at inference the sample is zeros. The input only anchors the layer in the graph.
    """

    def __init__(
        self, columns: int, global_fraction: float = 0.5, seed: Optional[int] = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.columns = columns
        self.global_fraction = global_fraction
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return ops.zeros((1, 2), dtype="float32")
        is_global = ops.cast(
            keras.random.uniform((1, 1), seed=self.seed_generator) < self.global_fraction, "float32"
        )
        column = keras.random.randint((1, 1), 1, self.columns + 1, seed=self.seed_generator)
        return ops.concatenate([is_global, ops.cast(column, "float32")], axis=1)

    def compute_output_shape(self, input_shape):
        return (1, 2)

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "global_fraction": self.global_fraction,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="lab")
class FractalJoin(keras.layers.Layer):
    """The element-wise mean of one tensor per column, with drop-path in training.

    Args:
        columns: the column number of each joined input, in input order.
        drop_rate: local drop-path: the probability of dropping each input.
        global_sample: whether a `DropPathSampler` output follows the joined tensors.
        seed: of the local draws.
    """

    def __init__(
        self,
        columns: Sequence[int],
        drop_rate: float = 0.0,
        global_sample: bool = False,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]
        self.drop_rate = drop_rate
        self.global_sample = global_sample
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def local_keep(self):
        """A 0/1 keep mask over the inputs; never all zeros (one survivor drawn uniformly)."""
        n = len(self.columns)
        keep = ops.cast(
            keras.random.uniform((n,), seed=self.seed_generator) >= self.drop_rate, "float32"
        )
        survivor = ops.one_hot(ops.argmax(keras.random.uniform((n,), seed=self.seed_generator)), n)
        return ops.where(ops.sum(keep) > 0, keep, ops.cast(survivor, "float32"))

    def call(self, inputs, training=None):
        tensors = inputs[: len(self.columns)]
        if not training or (self.drop_rate == 0 and not self.global_sample):
            return sum(tensors) / len(tensors)
        keep = self.local_keep()
        if self.global_sample:
            sample = ops.cast(inputs[-1], "float32")
            chosen = ops.cast(
                ops.equal(ops.convert_to_tensor(self.columns, "float32"), sample[0, 1]), "float32"
            )
            # A join the chosen column does not pass through keeps its local draw: its output is unused.
            keep = ops.where(ops.logical_and(sample[0, 0] > 0.5, ops.sum(chosen) > 0), chosen, keep)
        weights = keep / ops.sum(keep)
        return sum(ops.cast(weights[i], x.dtype) * x for i, x in enumerate(tensors))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "drop_rate": self.drop_rate,
            "global_sample": self.global_sample,
            "seed": self.seed,
        }


def apply_conv_unit(x, block: FractalBlockSpec, name: str):
    """conv, (dropout), BN, ReLU: the paper's base case f_1 (section 4)."""
    x = layers.conv(block.width, 3, 1, f"{name}_conv")(x)
    if block.dropout:
        x = keras.layers.Dropout(block.dropout, name=f"{name}_drop")(x)
    return layers.relu(layers.batch_norm(x, f"{name}_bn"), f"{name}_relu")


@dataclass
class BlockBuild:
    """What building one fractal block shares across its recursion: the block and network specs,
    the drop-path sample (None without global drop-path), the block's name and its layer counts
    (convs per column, joins), which number the layers."""

    block: FractalBlockSpec
    spec: FractalSpec
    sample: Any
    name: str
    counts: Counter = field(default_factory=Counter)


def conv_in_column(x, column: int, build: BlockBuild):
    build.counts[column] += 1
    return apply_conv_unit(x, build.block, f"{build.name}_col{column}_{build.counts[column]}")


def apply_join(paths, first: int, build: BlockBuild):
    """The mean of `paths`, the outputs of columns first, first+1, ...; drop-path as the spec says."""
    spec, sample = build.spec, build.sample
    build.counts["join"] += 1
    join_name = f"{build.name}_join{build.counts['join']}"
    if spec.drop_path is DropPath.none:
        return keras.layers.Average(name=join_name)(paths)
    columns = list(range(first, first + len(paths)))
    join = FractalJoin(
        columns, spec.local_drop_rate, global_sample=sample is not None, name=join_name
    )
    return join([*paths, sample] if sample is not None else paths)


def fractal_columns(x, columns: int, first: int, build: BlockBuild) -> list:
    """f_C(z) before its last join: one tensor per column, columns first .. first+C-1.

    f_1(z) = conv(z); f_{C}(z) = join(f_{C-1}(f_{C-1}(z)), conv(z)), with the outer f_{C-1} left
    unjoined so that its columns merge into this join (Figure 1).
    """
    shallow = conv_in_column(x, first, build)
    if columns == 1:
        return [shallow]
    inner = apply_fractal(x, columns - 1, first + 1, build)
    return [shallow, *fractal_columns(inner, columns - 1, first + 1, build)]


def apply_fractal(x, columns: int, first: int, build: BlockBuild):
    """f_C(z): a fractal of `columns` columns numbered from `first`, joined."""
    paths = fractal_columns(x, columns, first, build)
    return paths[0] if len(paths) == 1 else apply_join(paths, first, build)


def apply_block(x, block: FractalBlockSpec, spec: FractalSpec, sample, name: str):
    """One fractal block (or its deepest column alone), before pooling."""
    build = BlockBuild(block, spec, sample, name)
    if spec.column is Column.deepest:
        for _ in range(2 ** (spec.columns - 1)):
            x = conv_in_column(x, spec.columns, build)
        return x
    return apply_fractal(x, spec.columns, 1, build)


def apply_pool(x, name: str):
    """2x2 max-pooling (section 4), shrunk to the map on small inputs so that every block builds."""
    size = min(2, x.shape[1], x.shape[2])
    return keras.layers.MaxPooling2D(size, strides=size, name=name)(x)


@register_family(FractalSpec)
def build_fractal(spec: FractalSpec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds a FractalNet (or its deepest column alone) from a FractalSpec.

    Args:
        spec: the architecture; see FractalSpec for every axis.
        input_shape: (height, width, channels) of one example.
        classes: number of classes of the softmax head(s).

    Returns:
        A functional model. With auxiliary heads its outputs are a dict: `predictions` and
        `aux_<tap>` for each head (taps `block1`..`blockB`, each block's join before pooling).

    Example:
        >>> spec = FractalSpec(columns=2, blocks=[FractalBlockSpec(16), FractalBlockSpec(32)])
        >>> build_fractal(spec, (32, 32, 3), 10).count_params()  # 6 convs, 6 BNs (with statistics), dense
        22506
    """
    inputs = keras.Input(shape=input_shape, name="input")
    has_joins = spec.column is Column.all and spec.columns > 1
    sample = None
    if has_joins and spec.drop_path is DropPath.local_global:
        sample = DropPathSampler(spec.columns, spec.global_fraction, name="drop_path_sampler")(
            inputs
        )
    x, taps = inputs, {}
    for i, block in enumerate(spec.blocks, start=1):
        x = taps[f"block{i}"] = apply_block(x, block, spec, sample, f"block{i}")
        x = apply_pool(x, f"block{i}_pool")
    main = apply_classifier(x, classes, MAIN_OUTPUT)
    return assemble_model(inputs, main, attach_aux_heads(taps, spec, classes), spec.name)
