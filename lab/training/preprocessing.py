"""On-device input layers: augmentation and standardisation, inside the model so that data
stay uint8 on the host and no per-step host-side conversion happens.

Keras' RandomTranslation costs 27.5 ms per batch of 512 on JAX (CPU), more than a whole
ResNet-20 step on a GPU; this pad-crop-flip is two gathers (`bench/augment.py` measures both).
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lab")
class RandomPadCropFlip(keras.layers.Layer):
    """Zero-pads each image by `pad` pixels, crops it back at a random offset, and flips it
    horizontally with probability 1/2 (when `flip`). Identity at inference.

    The crop and the flip are one gather per spatial axis: row indices `dy + i`, column indices
    `dx + j`, or `dx + W-1-j` for flipped images.
    """

    def __init__(self, pad: int, flip: bool, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.pad, self.flip, self.seed = pad, flip, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or (self.pad == 0 and not self.flip):
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        p = self.pad
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]]) if p else images
        dy = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        dx = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        rows = dy + ops.arange(height, dtype="int32")[None, :]
        cols = dx + ops.arange(width, dtype="int32")[None, :]
        if self.flip:
            flipped = keras.random.uniform((batch, 1), seed=self.seed_generator) < 0.5
            cols = ops.where(
                flipped, dx + (width - 1) - ops.arange(width, dtype="int32")[None, :], cols
            )
        channels = images.shape[3]
        rows = ops.broadcast_to(rows[:, :, None, None], (batch, height, width + 2 * p, channels))
        cropped = ops.take_along_axis(padded, rows, axis=1)
        cols = ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels))
        return ops.take_along_axis(cropped, cols, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "flip": self.flip, "seed": self.seed}


@keras.saving.register_keras_serializable(package="lab")
class Standardize(keras.layers.Layer):
    """(x - mean) / std per channel, from uint8 (or any) input to the layer's compute dtype.

    The statistics are (non-trainable) weights, not constants of the traced step: a compiled
    model reused for another seed (`lab.training.reuse`) gets that seed's split's statistics
    with the rest of its initial state."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def build(self, input_shape):
        channels = (len(self.mean),)
        self.channel_mean = self.add_weight(
            channels,
            keras.initializers.Constant(self.mean),
            name="mean",
            trainable=False,
            dtype="float32",
        )
        self.channel_std = self.add_weight(
            channels,
            keras.initializers.Constant(self.std),
            name="std",
            trainable=False,
            dtype="float32",
        )

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        mean = ops.cast(self.channel_mean, self.compute_dtype)
        std = ops.cast(self.channel_std, self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}
