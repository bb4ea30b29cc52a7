"""Layers the builders share that Keras does not have."""

from __future__ import annotations

import keras
from keras import ops


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
