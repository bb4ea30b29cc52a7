"""Layers the builders share that Keras does not have."""

from __future__ import annotations

import keras
from keras import ops

KERNEL_INITIALIZER = "he_normal"


def conv(x, filters: int, kernel, stride, name: str, use_bias: bool = False, padding: str = "same"):
    """A He-initialised Conv2D; every family's convs go through here."""
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=use_bias,
                               kernel_initializer=KERNEL_INITIALIZER, name=name)(x)


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
