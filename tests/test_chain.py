"""The chain family (LeNet-5, AlexNet, ZFNet, VGG): exact published counts, Keras VGG parity, the axes."""

import dataclasses

import keras
import numpy as np
import pytest

from lab.errors import ConfigValueError
from lab.models import build_model
from lab.models.chain import (
    ChainSpec,
    Connectivity,
    ConvSpec,
    ConvStageSpec,
    LocalResponseNormalization,
    Padding,
    PoolSpec,
    PoolType,
)
from lab.models.heads import AuxHeadSpec
from lab.models.specs.chain import Activation
from lab.models.variants import load_variant

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)

CHAIN_VARIANTS = ["lenet5", "alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19"]


def published(name, overrides=()):
    spec = load_variant(name, list(overrides))
    return build_model(spec, spec.input_shape, spec.classes)


def out_shape(model, layer):
    return tuple(model.get_layer(layer).output.shape[1:])


# Totals (trainable + non-trainable; none of these has BN, so all trainable), at the published input.
# AlexNet: conv1 11*11*3*96+96 = 34,944; conv2 5*5*96*256+256 = 614,656; conv3 3*3*256*384+384 =
#   885,120; conv4 3*3*384*384+384 = 1,327,488; conv5 3*3*384*256+256 = 884,992; fc1 6*6*256*4096+4096
#   = 37,752,832; fc2 4096*4096+4096 = 16,781,312; predictions 4096*1000+1000 = 4,097,000.
# ZFNet (512/1024/512): conv1 7*7*3*96+96 = 14,208; conv2 614,656; conv3 3*3*256*512+512 = 1,180,160;
#   conv4 3*3*512*1024+1024 = 4,719,616; conv5 3*3*1024*512+512 = 4,719,104; fc1 6*6*512*4096+4096 =
#   75,501,568; fc2 16,781,312; predictions 4,097,000.
# VGG-11 (A): convs 1,792 + 73,856 + 295,168 + 590,080 + 1,180,160 + 3 * 2,359,808 = 9,220,480 (a 3x3
#   conv from c to f maps: 9*c*f + f); fc1 7*7*512*4096+4096 = 102,764,544, + 16,781,312 + 4,097,000.
# VGG-13 (B) adds block1_conv2 9*64*64+64 = 36,928 and block2_conv2 9*128*128+128 = 147,584.
# VGG-16/19 are Keras' own totals (test below).
EXACT_PARAMS = {
    "lenet5": 156 + 2_416 + 48_120 + 10_164 + 850,  # 61,706
    "alexnet": 34_944
    + 614_656
    + 885_120
    + 1_327_488
    + 884_992
    + 37_752_832
    + 16_781_312
    + 4_097_000,
    "zfnet": 14_208
    + 614_656
    + 1_180_160
    + 4_719_616
    + 4_719_104
    + 75_501_568
    + 16_781_312
    + 4_097_000,
    "vgg11": 9_220_480 + 102_764_544 + 16_781_312 + 4_097_000,  # 132,863,336
    "vgg13": 132_863_336 + 36_928 + 147_584,  # 133,047,848
}


@pytest.mark.parametrize("name, count", sorted(EXACT_PARAMS.items()))
def test_exact_parameter_count_at_the_published_input(name, count):
    model = published(name)
    assert model.count_params() == count
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == count


def test_hand_counts_sum_to_the_published_totals():
    assert EXACT_PARAMS == {
        "lenet5": 61_706,
        "alexnet": 62_378_344,
        "zfnet": 107_627_624,
        "vgg11": 132_863_336,
        "vgg13": 133_047_848,
    }


def test_lenet5_layer_counts_and_maps():
    """C1 5*5*1*6+6 = 156; C3 5*5*6*16+16 = 2,416; 400*120+120 = 48,120; 120*84+84 =
    10,164; 84*10+10 = 850. Maps 32 -> 28 -> 14 -> 10 -> 5."""
    model = published("lenet5")
    counts = [
        model.get_layer(n).count_params()
        for n in ("block1_conv1", "block2_conv1", "fc1", "fc2", "predictions")
    ]
    assert counts == [156, 2_416, 48_120, 10_164, 850]
    assert [
        out_shape(model, n) for n in ("block1_conv1", "block1_pool", "block2_conv1", "block2_pool")
    ] == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)]


def test_alexnet_feature_maps_follow_the_paper():
    model = published("alexnet")
    assert out_shape(model, "block1_conv1") == (55, 55, 96)  # (227 - 11) / 4 + 1
    assert model.get_layer("block1_conv1").count_params() == 34_944
    assert out_shape(model, "block1_pool") == (27, 27, 96)  # (55 - 3) / 2 + 1
    assert model.get_layer("block1_pool").count_params() == 0
    assert out_shape(model, "block2_pool") == (13, 13, 256)
    assert out_shape(model, "block3_pool") == (6, 6, 256)
    assert [model.get_layer(f"fc{i}_dropout").rate for i in (1, 2)] == [0.5, 0.5]


def test_zfnet_feature_maps_are_figure_3s():
    model = published("zfnet")
    layers = [
        "block1_conv1",
        "block1_pool",
        "block2_conv1",
        "block2_pool",
        "block3_conv1",
        "block3_conv3",
        "block3_pool",
    ]
    assert [out_shape(model, n)[0] for n in layers] == [110, 55, 26, 13, 13, 13, 6]


@pytest.mark.parametrize(
    "name, application, total", [("vgg16", "VGG16", 138_357_544), ("vgg19", "VGG19", 143_667_240)]
)
def test_vgg_equals_keras_applications_layer_by_layer(name, application, total):
    ours = published(name)
    theirs = getattr(keras.applications, application)(weights=None)
    assert ours.count_params() == theirs.count_params() == total
    assert len(ours.layers) == len(theirs.layers)
    for mine, layer in zip(ours.layers[1:], theirs.layers[1:]):  # [0] is the input layer
        assert mine.name == layer.name
        assert type(mine) is type(layer), layer.name
        assert mine.output.shape == layer.output.shape, layer.name
        assert mine.count_params() == layer.count_params(), layer.name


def small_spec(**changes) -> ChainSpec:
    """Two stages (8; 16, 16 maps) and one hidden dense layer: fast to build."""
    stages = [ConvStageSpec([ConvSpec(8)]), ConvStageSpec([ConvSpec(16, repeat=2)])]
    return dataclasses.replace(ChainSpec(stages=stages, dense=[32]), **changes)


def test_batch_norm_follows_every_conv_and_adds_four_numbers_per_filter():
    spec = load_variant("vgg11", ["model.batch_norm=true"])
    plain = build_model(load_variant("vgg11"), (32, 32, 3), 10)
    normed = build_model(spec, (32, 32, 3), 10)
    convs = [layer for layer in normed.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 8
    for conv in convs:
        bn = normed.get_layer(f"{conv.name}_bn")
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert bn.input is conv.output
        assert conv.activation is keras.activations.linear  # the ReLU moves after the BN
    filters = sum(conv.filters for conv in convs)  # 64 + 128 + 2*256 + 4*512 = 2,752
    assert filters == 2_752
    assert normed.count_params() - plain.count_params() == 4 * filters
    non_trainable = sum(int(np.prod(w.shape)) for w in normed.non_trainable_weights)
    assert non_trainable == 2 * filters  # moving mean and variance


def test_residual_vgg_adds_identity_shortcuts_where_shapes_match_and_no_parameters():
    plain = build_model(load_variant("vgg16"), (32, 32, 3), 10)
    residual = build_model(load_variant("vgg16", ["model.connectivity=residual"]), (32, 32, 3), 10)
    assert residual.count_params() == plain.count_params()
    adds = [layer for layer in residual.layers if isinstance(layer, keras.layers.Add)]
    # Every conv after a stage's first, and block5_conv1 (512 -> 512 maps after block4's pool).
    assert sorted(add.name for add in adds) == sorted(
        [
            "block1_conv2_add",
            "block2_conv2_add",
            "block3_conv2_add",
            "block3_conv3_add",
            "block4_conv2_add",
            "block4_conv3_add",
            "block5_conv1_add",
            "block5_conv2_add",
            "block5_conv3_add",
        ]
    )
    for add in adds:
        conv = residual.get_layer(add.name[: -len("_add")])
        assert add.input[0] is conv.input  # the identity is the conv's own input
        assert add.output.shape == conv.input.shape
    for stage in range(1, 6):
        assert out_shape(residual, f"block{stage}_pool") == out_shape(plain, f"block{stage}_pool")


def test_residual_sum_is_input_plus_conv_before_the_activation():
    spec = small_spec(connectivity=Connectivity.residual)
    model = build_model(spec, (8, 8, 3), 10)
    conv = model.get_layer("block2_conv2")
    conv.kernel.assign(np.zeros(conv.kernel.shape, "float32"))
    conv.bias.assign(np.full(conv.bias.shape, -0.5, "float32"))
    probe = keras.Model(model.input, [conv.input, model.get_layer("block2_conv2_relu").output])
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(x))
    np.testing.assert_allclose(after, np.maximum(before - 0.5, 0), atol=1e-6)


def lrn_reference(a, size=5, k=2.0, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. (2012), section 3.3, written as the paper's sum."""
    b = np.empty_like(a)
    channels = a.shape[-1]
    for i in range(channels):
        lo, hi = max(0, i - size // 2), min(channels - 1, i + size // 2)
        b[..., i] = a[..., i] / (k + alpha * np.sum(a[..., lo : hi + 1] ** 2, axis=-1)) ** beta
    return b


@pytest.mark.parametrize("kwargs", [{}, {"size": 3, "k": 1.0, "alpha": 0.5, "beta": 0.5}])
def test_lrn_matches_the_paper_formula(kwargs):
    a = np.random.default_rng(1).normal(scale=3.0, size=(2, 3, 4, 7)).astype("float32")
    got = keras.ops.convert_to_numpy(LocalResponseNormalization(**kwargs)(a))
    expected = lrn_reference(a.astype("float64"), **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # neighbours matter
    assert not np.allclose(got, a / kwargs.get("k", 2.0) ** kwargs.get("beta", 0.75))


def test_lrn_rejects_an_even_window():
    with pytest.raises(ValueError, match="size=4"):
        LocalResponseNormalization(size=4)


def test_lrn_axis_normalises_the_first_stages_before_their_pool_and_round_trips():
    model = published("alexnet", ["model.lrn=true"])
    lrns = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    assert [layer.name for layer in lrns] == ["block1_lrn", "block2_lrn"]
    assert model.get_layer("block1_lrn").input is model.get_layer("block1_conv1").output
    assert model.get_layer("block1_pool").input is model.get_layer("block1_lrn").output
    assert model.count_params() == 62_378_344
    small = build_model(small_spec(lrn=True, lrn_stages=1), (8, 8, 3), 10)
    clone = keras.Model.from_config(small.get_config())
    assert clone.get_layer("block1_lrn").get_config()["alpha"] == 1e-4
    assert [layer.name for layer in clone.layers] == [layer.name for layer in small.layers]


def test_tanh_dropout_and_pool_axes():
    stage = ConvStageSpec([ConvSpec(8, 5, padding=Padding.valid)], PoolSpec(PoolType.avg, 3, 1))
    model = build_model(
        small_spec(activation=Activation.tanh, dropout=0.25, stages=[stage]), (9, 9, 1), 10
    )
    assert model.get_layer("block1_conv1").activation is keras.activations.tanh
    assert model.get_layer("fc1").activation is keras.activations.tanh
    assert model.get_layer("fc1_dropout").rate == 0.25
    assert isinstance(model.get_layer("block1_pool"), keras.layers.AveragePooling2D)
    assert out_shape(model, "block1_pool") == (3, 3, 8)  # 9 - 5 + 1 = 5, then 3x3/1 valid


def test_auxiliary_head_on_a_stage_tap():
    spec = small_spec(aux_heads=[AuxHeadSpec(tap="block1")])
    model = build_model(spec, (8, 8, 3), 10)
    outputs = model(np.zeros((2, 8, 8, 3), "float32"))
    assert set(outputs) == {"predictions", "aux_block1"}
    assert (
        model.count_params()
        == build_model(small_spec(), (8, 8, 3), 10).count_params() + 8 * 10 + 10
    )


def test_spec_ranges_are_checked():
    with pytest.raises(ConfigValueError, match="stages.convs.filters"):
        ConvSpec(filters=0)
    with pytest.raises(ConfigValueError, match="model.dropout"):
        small_spec(dropout=1.0)


@pytest.mark.parametrize("name", CHAIN_VARIANTS)
def test_every_variant_builds_for_cifar_and_fashion_mnist_inputs(name):
    """Valid convs and pools larger than a small map shrink to it (AlexNet's conv1 leaves 6x6 of 32x32)."""
    spec = load_variant(name)
    for shape in ((32, 32, 3), (28, 28, 1)):
        model = build_model(spec, shape, 10)
        assert model.output.shape == (None, 10)
        assert all(dim >= 1 for dim in model.get_layer("flatten").input.shape[1:])
