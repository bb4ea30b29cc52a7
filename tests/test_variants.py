"""One harness over every registered variant of every family (the registry drives it, so a new
variant is tested the day it is added): builds for its published input and for small inputs,
gives finite probabilities, has unique names, round-trips its config, and one SGD step moves
every trainable weight (each one receives a gradient)."""

import keras
import numpy as np
import pytest

from lab.models import build_model
from lab.models.variants import load_variant, variant_names

VARIANTS = variant_names()
SMALL_INPUTS = [(32, 32, 3), (28, 28, 1)]
# Training a step at 32x32 costs seconds for most variants; these are ImageNet-size even there.
BUILD_ONLY = {"alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19"}


def check_forward(model, shape, classes):
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    outputs = model(x, training=False)
    main = outputs["predictions"] if isinstance(outputs, dict) else outputs
    probabilities = keras.ops.convert_to_numpy(main)
    assert probabilities.shape == (2, classes)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_builds_for_its_published_input(name):
    spec = load_variant(name)
    model = build_model(spec, spec.input_shape, spec.classes)
    assert model.name == name
    assert tuple(model.inputs[0].shape[1:]) == tuple(spec.input_shape)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    if name not in BUILD_ONLY and max(spec.input_shape) <= 64:
        check_forward(model, spec.input_shape, spec.classes)


@pytest.mark.parametrize("shape", SMALL_INPUTS, ids=["32x32x3", "28x28x1"])
@pytest.mark.parametrize("name", VARIANTS)
def test_small_input_forward_and_config_round_trip(name, shape):
    model = build_model(load_variant(name), shape, 10)
    check_forward(model, shape, 10)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params()


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in BUILD_ONLY])
def test_one_sgd_step_moves_every_trainable_weight(name):
    model = build_model(load_variant(name), (32, 32, 3), 7)
    names = list(model.output) if isinstance(model.output, dict) else None  # auxiliary heads
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 3], 7)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = {n: "categorical_crossentropy" for n in names} if names else "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, jit_compile=False)
    assert np.all(np.isfinite(model.train_on_batch(x, {n: y for n in names} if names else y)))
    unchanged = [w.path for w, old in zip(model.trainable_weights, before)
                 if np.array_equal(keras.ops.convert_to_numpy(w), old)]
    assert unchanged == []
