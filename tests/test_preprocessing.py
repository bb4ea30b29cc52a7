"""On-device augmentation: every output is a flipped-or-not crop of the zero-padded input."""

import keras
import numpy as np
import pytest

from lab.training.preprocessing import RandomPadCropFlip, Standardize

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)


def windows(image, pad):
    """Every crop (and its mirror) that pad-and-crop could produce from one image."""
    height, width = image.shape[:2]
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    crops = [
        padded[dy : dy + height, dx : dx + width]
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
    ]
    return crops + [crop[:, ::-1] for crop in crops]


def test_training_output_is_a_window_of_the_padded_image_possibly_flipped():
    images = np.random.default_rng(0).integers(1, 255, (64, 8, 8, 2)).astype("uint8")
    layer = RandomPadCropFlip(pad=2, flip=True, seed=1)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    assert out.shape == images.shape and out.dtype == np.uint8
    for image, augmented in zip(images, out):
        assert any(np.array_equal(augmented, w) for w in windows(image, 2))
    # Randomness is real: many distinct offsets and both flip states occur in a batch of 64.
    unchanged = sum(np.array_equal(a, b) for a, b in zip(images, out))
    assert unchanged < 16
    zero_rows = (out == 0).all(axis=(2, 3)).any(axis=1)
    assert 0 < zero_rows.sum() < 64


def test_flip_only_mirrors_about_half():
    images = np.random.default_rng(0).integers(0, 255, (200, 5, 6, 1)).astype("float32")
    out = keras.ops.convert_to_numpy(
        RandomPadCropFlip(pad=0, flip=True, seed=2)(images, training=True)
    )
    same = [np.array_equal(a, b) for a, b in zip(images, out)]
    mirrored = [np.array_equal(a[:, ::-1], b) for a, b in zip(images, out)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 60 < sum(mirrored) < 140


def test_inference_is_the_identity():
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3)).astype("uint8")
    out = keras.ops.convert_to_numpy(RandomPadCropFlip(pad=4, flip=True)(images, training=False))
    np.testing.assert_array_equal(out, images)


def test_standardize_uses_per_channel_statistics():
    images = np.array([[[[10, 200]]]], dtype="uint8")
    out = keras.ops.convert_to_numpy(Standardize(mean=[10.0, 100.0], std=[1.0, 50.0])(images))
    np.testing.assert_allclose(out, [[[[0.0, 2.0]]]])
    assert out.dtype == np.float32
