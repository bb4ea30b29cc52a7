"""The chain family: stacks of convolutions and pools, then dense layers (LeNet, AlexNet, ZFNet, VGG).

One builder covers LeNet-5 (LeCun et al. 1998) in its ReLU/max-pool form, single-stream AlexNet
(Krizhevsky et al. 2012), ZFNet (Zeiler & Fergus 2013) and VGG A/B/D/E (Simonyan & Zisserman
2014). Variants are data: `conf/model/*.yaml` with `family: chain`, read into a `ChainSpec`; the
spec and its records live in `lab.models.specs.chain` (the Hydra schema).

A stage is a run of convolutions ended by (at most) one pool. Layers are named as in
`keras.applications.VGG16` (`block3_conv2`, `block3_pool`, `flatten`, `fc1`, `predictions`), so
VGG-16/19 compare with Keras' own layer by layer; stage `i` (1-based) is the tap `block{i}`.

Where nothing sits between a conv and its activation, the activation is fused into the Conv2D,
as Keras' VGG does; batch norm or a residual add splits it into a separate `Activation` layer.

Residual connectivity ("residual VGG") adds an identity shortcut around every conv whose output
has its input's shape, conv -> [BN] -> add -> activation. No projections, so it adds no
parameters; in VGG that is every conv of a stage after its first, and also block5_conv1 (512 maps
in and out).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import keras
from keras import ops

from lab.models import layers
from lab.models.heads import assemble_model, attach_aux_heads, softmax_output
from lab.models.registry import register_family
from lab.models.specs.base import Connectivity
from lab.models.specs.chain import (
    ChainSpec,
    ConvSpec,
    ConvStageSpec,
    Padding,
    PoolSpec,
    PoolType,
)


@keras.saving.register_keras_serializable(package="lab")
class LocalResponseNormalization(keras.layers.Layer):
    """Normalisation across neighbouring channels, Krizhevsky et al. (2012), section 3.3:

        b[c] = a[c] / (k + alpha * sum(a[j]**2 for j in c-size//2 .. c+size//2, clipped))**beta

    with the paper's k=2, n=5, alpha=1e-4, beta=0.75. Alpha multiplies the sum as in the paper
    (Caffe divides it by n). Channels last; computed in float32 so squares cannot overflow float16.
    """

    def __init__(
        self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs
    ):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd number. Received: size={size}")
        self.size, self.k, self.alpha, self.beta = size, k, alpha, beta

    def call(self, x):
        a = ops.cast(x, "float32")
        half, channels = self.size // 2, x.shape[-1]
        # Zero channels on both sides make the clipped window of the paper a fixed-size sum.
        padded = ops.pad(ops.square(a), [[0, 0], [0, 0], [0, 0], [half, half]])
        window = sum(padded[..., i : i + channels] for i in range(self.size))
        return ops.cast(a / ops.power(self.k + self.alpha * window, self.beta), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "k": self.k,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def fit_window(x, size: int, padding: Padding) -> Tuple[int, int]:
    """A valid window larger than the (padded) map shrinks to the map, so every variant builds for
    small inputs (AlexNet's 11x11/4 conv1 leaves 2x2 of a 32x32 image by pool2)."""
    if padding is Padding.same:
        return size, size
    return min(size, x.shape[1]), min(size, x.shape[2])


def keeps_shape(x, conv: ConvSpec) -> bool:
    """Whether a conv's output has its input's shape: where the residual rule adds a shortcut."""

    def out(size):
        padded = size + 2 * conv.pad
        if conv.padding is Padding.same:
            return -(-padded // conv.stride)
        return (padded - min(conv.kernel, padded)) // conv.stride + 1

    return (
        conv.filters == x.shape[-1]
        and out(x.shape[1]) == x.shape[1]
        and out(x.shape[2]) == x.shape[2]
    )


def apply_conv(x, conv: ConvSpec, spec: ChainSpec, name: str):
    """[pad] conv [BN] [add the input] activation. The residual shortcut adds the conv's input
    after BN and before the activation, as in He et al. (2015), Figure 2."""
    shortcut = x if spec.connectivity is Connectivity.residual and keeps_shape(x, conv) else None
    activation = spec.activation.value
    fused = not spec.batch_norm and shortcut is None
    if conv.pad:
        x = keras.layers.ZeroPadding2D(conv.pad, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        conv.filters,
        fit_window(x, conv.kernel, conv.padding),
        strides=conv.stride,
        padding=conv.padding.value,
        activation=activation if fused else None,
        kernel_initializer=layers.kernel_initializer(),
        name=name,
    )(x)
    if spec.batch_norm:
        x = layers.batch_norm(x, f"{name}_bn")
    if shortcut is not None:
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    if not fused:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_pool(x, pool: PoolSpec, name: str):
    if pool.type is PoolType.none:
        return x
    layer = (
        keras.layers.MaxPooling2D if pool.type is PoolType.max else keras.layers.AveragePooling2D
    )
    return layer(
        fit_window(x, pool.size, pool.padding),
        strides=pool.stride,
        padding=pool.padding.value,
        name=name,
    )(x)


def apply_stage(x, stage: ConvStageSpec, spec: ChainSpec, index: int):
    """Convs numbered across the stage (`block3_conv1` ...), LRN where asked, then the pool."""
    name = f"block{index}"
    number = 0
    for conv in stage.convs:
        for _ in range(conv.repeat):
            number += 1
            x = apply_conv(x, conv, spec, f"{name}_conv{number}")
    if spec.lrn and index <= spec.lrn_stages:
        x = LocalResponseNormalization(name=f"{name}_lrn")(x)
    return apply_pool(x, stage.pool, f"{name}_pool")


def apply_dense_head(x, spec: ChainSpec, classes: int):
    """Flatten, hidden dense layers each followed by dropout, softmax in float32."""
    x = keras.layers.Flatten(name="flatten")(x)
    for i, width in enumerate(spec.dense, start=1):
        x = keras.layers.Dense(width, activation=spec.activation.value, name=f"fc{i}")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"fc{i}_dropout")(x)
    return softmax_output(x, classes)


@register_family(ChainSpec)
def build_chain(spec: ChainSpec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds a conv/pool chain with a dense head from a ChainSpec.

    Args:
        spec: the architecture; see ChainSpec for every axis.
        input_shape: (height, width, channels) of one example.
        classes: number of classes of the softmax head(s).

    Returns:
        A functional model. With auxiliary heads (on taps `block1`, `block2`, ...) its outputs are
        a dict: `predictions` and `aux_<tap>` for each head; without, the main head's tensor.

    Example:
        >>> five = ConvSpec(filters=6, kernel=5, padding=Padding.valid)
        >>> spec = ChainSpec(stages=[ConvStageSpec([five]), ConvStageSpec([ConvSpec(16, 5, padding=Padding.valid)])],
        ...                  dense=[120, 84])
        >>> build_chain(spec, (32, 32, 1), 10).count_params()  # LeNet-5, ReLU and max-pool form
        61706
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    taps = {}
    for index, stage in enumerate(spec.stages, start=1):
        x = taps[f"block{index}"] = apply_stage(x, stage, spec, index)
    main = apply_dense_head(x, spec, classes)
    return assemble_model(inputs, main, attach_aux_heads(taps, spec, classes), spec.name)
