"""The Inception family: both module forms, GoogLeNet's Table 1 shapes, exact parameter counts, aux heads."""

import dataclasses

import keras
import numpy as np
import pytest

from lab.errors import ConfigValueError
from lab.models import build_model
from lab.models.heads import AuxHeadSpec
from lab.models.inception import InceptionModuleSpec, InceptionSpec, Stem, apply_inception_module
from lab.models.variants import load_variant

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)

# Table 1 of Szegedy et al. (2014): module, output depth, output size at 224x224.
TABLE_1 = [
    ("inception3a", 256, 28),
    ("inception3b", 480, 28),
    ("inception4a", 512, 14),
    ("inception4b", 512, 14),
    ("inception4c", 512, 14),
    ("inception4d", 528, 14),
    ("inception4e", 832, 14),
    ("inception5a", 832, 7),
    ("inception5b", 1024, 7),
]
INCEPTION_3A = InceptionModuleSpec(
    "inception3a", b1=64, b2_reduce=96, b2=128, b3_reduce=16, b3=32, b4_proj=32
)


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def module_model(shape, module, naive, batch_norm=False) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(
        inputs, apply_inception_module(inputs, module, module.name, naive, batch_norm)
    )


def googlenet(input_shape=(224, 224, 3), classes=1000, overrides=()):
    return build_model(load_variant("googlenet", list(overrides)), input_shape, classes)


def test_naive_module_concatenates_three_convs_and_the_pooled_input():
    """Section 4's example: 28x28x256 in, 1x1 128 + 3x3 192 + 5x5 96 + 256 pooled = 28x28x672 out.
    Weights: 256*128+128 + 256*192*9+192 + 256*96*25+96 = 32,896 + 442,560 + 614,496."""
    module = InceptionModuleSpec("naive", b1=128, b2=192, b3=96)
    model = module_model((28, 28, 256), module, naive=True)
    assert model.output.shape == (None, 28, 28, 672)
    assert model.count_params() == 1_089_952
    assert not [
        layer.name for layer in model.layers if "reduce" in layer.name or "proj" in layer.name
    ]
    assert isinstance(model.get_layer("naive_concat"), keras.layers.Concatenate)

    x = np.random.default_rng(0).normal(size=(1, 28, 28, 256)).astype("float32")
    pooled = keras.ops.convert_to_numpy(model(x))[..., 416:]  # after 128 + 192 + 96 conv channels
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    expected = np.max(
        [padded[:, i : i + 28, j : j + 28] for i in range(3) for j in range(3)], axis=0
    )
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)


def test_reduced_module_is_table_1_row_3a():
    """28x28x192 in, 64 + 128 + 32 + 32 = 256 out. Weights 192*64 + 192*96 + 96*128*9 + 192*16
    + 16*32*25 + 192*32 = 163,328, biases 64+96+128+16+32+32 = 368: 163,696."""
    model = module_model((28, 28, 192), INCEPTION_3A, naive=False)
    assert model.output.shape == (None, 28, 28, 256)
    assert model.count_params() == 163_696
    convs = {
        layer.name: layer.kernel.shape
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
    }
    assert convs == {
        "inception3a_b1_1x1_conv": (1, 1, 192, 64),
        "inception3a_b2_reduce_conv": (1, 1, 192, 96),
        "inception3a_b2_3x3_conv": (3, 3, 96, 128),
        "inception3a_b3_reduce_conv": (1, 1, 192, 16),
        "inception3a_b3_5x5_conv": (5, 5, 16, 32),
        "inception3a_b4_proj_conv": (1, 1, 192, 32),
    }
    relus = [layer.name for layer in model.layers if layer.name.endswith("_relu")]
    assert sorted(relus) == sorted(name.replace("_conv", "_relu") for name in convs)
    assert model.get_layer("inception3a_b4_pool").strides == (1, 1)


def test_same_module_in_naive_form_ignores_reductions():
    model = module_model((28, 28, 192), INCEPTION_3A, naive=True)
    assert model.output.shape == (None, 28, 28, 64 + 128 + 32 + 192)
    # 192*64+64 + 192*128*9+128 + 192*32*25+32
    assert model.count_params() == 12_352 + 221_312 + 153_632


def test_batch_norm_axis_drops_conv_biases_and_adds_one_norm_per_conv():
    """Weights 163,328 as above; BN gamma and beta 2*368 trainable, mean and variance 2*368 not."""
    model = module_model((28, 28, 192), INCEPTION_3A, naive=False, batch_norm=True)
    assert trainable_count(model) == 163_328 + 736
    assert model.count_params() == 163_328 + 1_472
    assert not any(
        layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    )
    assert (
        len([layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)])
        == 6
    )


SHARES_GOOGLENET = pytest.mark.xdist_group("published-googlenet")  # one worker builds it once


@pytest.fixture(scope="module")
def published_googlenet():
    """GoogLeNet at 224x224x3 with its auxiliary heads, built once for the tests that only read it."""
    return googlenet()


@SHARES_GOOGLENET
def test_googlenet_module_depths_and_sizes_are_table_1(published_googlenet):
    model = published_googlenet
    for name, depth, size in TABLE_1:
        assert model.get_layer(f"{name}_concat").output.shape == (None, size, size, depth), name
    assert model.get_layer("pool2").output.shape == (None, 28, 28, 192)
    assert [layer.name for layer in model.layers if layer.name.startswith("pool")] == [
        "pool1",
        "pool2",
        "pool3",
        "pool4",
    ]


# GoogLeNet without auxiliary heads, convs with bias: stem 7*7*3*64+64 + 64*64+64 + 64*192*9+192
# = 124,416; modules (weights + biases, as in the 3a test) 3a 163,696, 3b 388,736, 4a 376,176,
# 4b 449,160, 4c 510,104, 4d 605,376, 4e 868,352, 5a 1,043,456, 5b 1,444,080 = 5,849,136;
# linear 1024*1000+1000 = 1,025,000. Total 6,998,552; Table 1's column sums to 6,797.7K, which
# rounds its per-layer entries and leaves out biases.
GOOGLENET = 6_998_552
# Each auxiliary head (section 5): 1x1 conv 128 on the tap, FC 1024 on the 4x4x128 pooled map,
# linear 1000.
AUX_4A = (512 * 128 + 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * 1000 + 1000)  # 3,188,840
AUX_4D = (528 * 128 + 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * 1000 + 1000)  # 3,190,888


@SHARES_GOOGLENET
def test_googlenet_parameter_count_with_and_without_auxiliary_heads(published_googlenet):
    without = googlenet(overrides=["model.aux_heads=[]"])
    assert without.count_params() == GOOGLENET
    assert GOOGLENET == pytest.approx(6.8e6, rel=0.05)
    with_heads = published_googlenet
    assert with_heads.count_params() == GOOGLENET + AUX_4A + AUX_4D == 13_378_280
    assert with_heads.get_layer("aux_inception4a_pool").output.shape == (None, 4, 4, 512)


def test_googlenet_auxiliary_heads_follow_section_5():
    spec = load_variant("googlenet")
    assert [(head.tap, head.loss_weight) for head in spec.aux_heads] == [
        ("inception4a", 0.3),
        ("inception4d", 0.3),
    ]
    assert {
        (head.pool_size, head.pool_stride, head.conv_width, head.hidden, head.dropout)
        for head in spec.aux_heads
    } == {(5, 3, 128, 1024, 0.7)}
    assert spec.dropout == 0.4


# inception5b's map: "same" 3x3/2 pools halve rounding up. GoogLeNet: 32 -> 16 (conv1) -> 8 -> 4 -> 2 -> 1 and
# 28 -> 14 -> 7 -> 4 -> 2 -> 1; googlenet_small pools twice: 32 -> 16 -> 8 and 28 -> 14 -> 7.
FINAL_SIZE = {
    ("googlenet", 32): 1,
    ("googlenet", 28): 1,
    ("googlenet_small", 32): 8,
    ("googlenet_small", 28): 7,
}


@pytest.mark.parametrize("name", ["googlenet", "googlenet_small"])
@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1)])
def test_variant_builds_and_predicts_at_small_inputs(name, shape):
    model = build_model(load_variant(name), shape, 10)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, dict) else {"predictions": outputs}
    expected = (
        {"predictions", "aux_inception4a", "aux_inception4d"}
        if name == "googlenet"
        else {"predictions"}
    )
    assert set(outputs) == expected
    for output in outputs.values():
        probabilities = keras.ops.convert_to_numpy(output)
        assert probabilities.shape == (2, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("inception5b_concat").output.shape[1] == FINAL_SIZE[name, shape[0]]
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))


# googlenet_small: stem 3*3*3*192 + BN 2*192 = 5,568; modules with BN instead of bias (weights +
# 2 per channel) 164,064 + 389,376 + 376,800 + 449,808 + 510,768 + 606,080 + 869,376 + 1,044,480
# + 1,445,344 = 5,856,096; linear 1024*10+10 = 10,250. Total trainable 5,871,914.
def test_googlenet_small_keeps_32x32_to_the_first_module():
    spec = load_variant("googlenet_small")
    model = build_model(spec, spec.input_shape, spec.classes)
    assert trainable_count(model) == 5_871_914
    assert model.get_layer("inception3a_concat").output.shape == (None, 32, 32, 256)
    assert model.get_layer("inception4e_concat").output.shape == (None, 16, 16, 832)
    assert model.get_layer("inception5b_concat").output.shape == (None, 8, 8, 1024)
    assert model.get_layer("conv1_3x3_conv").kernel.shape == (3, 3, 3, 192)


def tiny_spec(**changes) -> InceptionSpec:
    modules = [
        InceptionModuleSpec("m1", 8, 4, 8, 2, 4, 4),
        InceptionModuleSpec("m2", 8, 4, 8, 2, 4, 4),
    ]
    spec = InceptionSpec(
        stem=Stem.small, stem_out=8, modules=modules, pool_before=["m2"], dropout=0.0
    )
    return dataclasses.replace(spec, **changes)


def test_auxiliary_head_on_a_module_tap_learns_and_round_trips():
    # Every branch at least 8 wide: with 2 reduce filters (tiny_spec's 5x5 branch) or a 4-filter
    # head, some initialisations switch a branch's ReLUs off for the whole batch, and it gets no
    # gradient (4 of 16 seeds here); at 8 and 16, none of 16 seeds did.
    wide = [InceptionModuleSpec(name, 8, 8, 8, 8, 8, 8) for name in ("m1", "m2")]
    spec = tiny_spec(
        modules=wide,
        aux_heads=[AuxHeadSpec(tap="m1", pool_size=5, pool_stride=3, conv_width=16, hidden=16)],
    )
    model = build_model(spec, (12, 12, 3), 5)
    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    x = np.random.default_rng(0).normal(size=(4, 12, 12, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 3], 5)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        jit_compile=False,
        loss={"predictions": "categorical_crossentropy", "aux_m1": "categorical_crossentropy"},
        loss_weights={"predictions": 1.0, "aux_m1": 0.3},
    )
    model.train_on_batch(x, {"predictions": y, "aux_m1": y})
    unchanged = [
        w.path
        for w, old in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), old)
    ]
    assert unchanged == []


def test_spec_errors_name_the_key_and_value():
    with pytest.raises(ConfigValueError, match=r"model.pool_before.*unknown: \['m9'\]"):
        tiny_spec(pool_before=["m9"])
    with pytest.raises(ConfigValueError, match=r"modules.b2=0"):
        InceptionModuleSpec("bad", b1=8, b2=0, b3=8)
    with pytest.raises(ConfigValueError, match=r"model.modules.name"):
        tiny_spec(modules=[INCEPTION_3A, INCEPTION_3A], pool_before=[])
