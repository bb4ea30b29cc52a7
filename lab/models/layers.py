"""Layers the builders share that Keras does not have."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

# the std of a unit normal truncated at +-2: Keras' he_normal scaling
TRUNCATION_STDDEV = 0.87962566103423978


@keras.saving.register_keras_serializable(package="lab")
class HeNormal(keras.initializers.Initializer):
    """He et al. (2015)'s initialisation as Keras' `he_normal` draws it (a normal truncated at two
    standard deviations, scaled to variance 2 / fan_in), drawn on the host with NumPy.

    Keras' own draws through the backend, and on JAX every new weight shape compiles its own
    random kernel: building GoogLeNet at 224x224 took 59 s on JAX here, nearly all of it compiling
    truncated_normal once per conv shape (bench/init_compile.py). NumPy compiles nothing. The
    draws come from NumPy's global generator, which `keras.utils.set_random_seed` seeds, so a
    seeded build is reproducible, and the same on every backend."""

    def __call__(self, shape, dtype=None):
        # (kh, kw, in, out) for a conv, (in, out) for a dense layer
        fan_in = int(np.prod(shape[:-1]))
        generator = np.random.default_rng(np.random.randint(2**31))
        # float32 draws: 3x faster than float64 and a cast
        values = generator.standard_normal(shape, dtype=np.float32)
        outside = np.abs(values) > 2
        # truncated: redrawn, as tf.random.truncated_normal and jax.random.truncated_normal do
        while outside.any():
            values[outside] = generator.standard_normal(int(outside.sum()), dtype=np.float32)
            outside = np.abs(values) > 2
        values *= np.float32(math.sqrt(2.0 / fan_in) / TRUNCATION_STDDEV)
        return values

    def get_config(self):
        return {}


def kernel_initializer() -> HeNormal:
    """Every conv's (and the chain family's dense layers') initialiser: one instance per layer."""
    return HeNormal()


def conv(filters: int, kernel, stride, name: str, use_bias: bool = False, padding: str = "same"):
    """A He-initialised Conv2D layer, to be called on its input; every family's convs are made here."""
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer(),
        name=name,
    )


def batch_norm(x, name: str, epsilon: float = 1e-5, momentum: float = 0.9):
    return keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def relu(x, name: str):
    return keras.layers.Activation("relu", name=name)(x)


@keras.saving.register_keras_serializable(package="lab")
class ZeroPadShortcut(keras.layers.Layer):
    """The parameter-free "option A" shortcut of He et al. (2015), section 4.2.

    Subsamples by `stride` (keeping every stride-th pixel, as a strided 1x1 identity would)
    and appends zero channels up to `channels`, so the identity path adds no parameters.
    """

    def __init__(self, channels: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.stride = stride

    def call(self, x):
        if self.stride > 1:
            x = x[:, :: self.stride, :: self.stride, :]
        extra = self.channels - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape

        def subsample(size):
            return None if size is None else -(-size // self.stride)

        return (batch, subsample(height), subsample(width), self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stride": self.stride}
