"""The ResNet family: exact published parameter counts, Keras parity, and each axis doing what it says.
(tests/test_variants.py runs the generic checks over every variant of every family.)"""

import dataclasses

import keras
import numpy as np
import pytest

from lab.errors import SpecError
from lab.models import build_model
from lab.models.heads import AuxHeadSpec
from lab.models.layers import ZeroPadShortcut
from lab.models.resnet import ResNetSpec, Shortcut, StageSpec
from lab.models.variants import load_variant, variant_names

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_registry_holds_every_published_resnet_variant():
    expected = {f"{kind}{depth}" for kind in ("resnet", "plain") for depth in (20, 32, 44, 56, 110)}
    expected |= {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "preact_resnet110",
        "preact_resnet164",
        "wrn_16_8",
        "wrn_28_10",
        "wrn_40_4",
    }
    assert expected <= set(variant_names())


# Trainable parameters, 10 classes at 32x32x3 (CIFAR forms) or 1000 classes at 224x224x3 (ImageNet).
# ResNet-20 (He et al. 2015): stem 3*3*3*16 + BN 2*16 = 464; stage 1: 6 convs 16*16*9 + BN 32 each
# = 14,016; stage 2: 16*32*9 + 5*32*32*9 + 6*64 = 51,072; stage 3: 32*64*9 + 5*64*64*9 + 6*128
# = 203,520; dense 64*10 + 10 = 650. Total 269,722. Option A shortcuts add nothing, so the plain
# twins match. ResNet-18/34 are torchvision's published counts (biasless convs + BN, projection B).
# WRN-28-10 (Zagoruyko & Komodakis): 36,479,194, as the authors' PyTorch code prints.
EXACT_TRAINABLE = {
    "resnet20": 269_722,
    "plain20": 269_722,
    "resnet56": 853_018,
    "plain56": 853_018,
    "resnet110": 1_727_962,
    "plain110": 1_727_962,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "wrn_28_10": 36_479_194,
}
# Published to one decimal (in millions), so within half that unit: He et al. 2016 (Table 2)
# 1.7M for pre-act ResNet-110 and -164; Zagoruyko & Komodakis 11.0M for WRN-16-8, 8.9M for WRN-40-4.
APPROX_TRAINABLE = {
    "preact_resnet110": 1.7e6,
    "preact_resnet164": 1.7e6,
    "wrn_16_8": 11.0e6,
    "wrn_40_4": 8.9e6,
}


def published_input(name):
    spec = load_variant(name)
    return spec, (spec.input_shape, spec.classes)


@pytest.mark.parametrize("name, count", sorted(EXACT_TRAINABLE.items()))
def test_exact_trainable_parameter_count(name, count):
    spec, (shape, classes) = published_input(name)
    assert trainable_count(build_model(spec, shape, classes)) == count


@pytest.mark.parametrize("name, count", sorted(APPROX_TRAINABLE.items()))
def test_published_approximate_parameter_count(name, count):
    spec, (shape, classes) = published_input(name)
    assert trainable_count(build_model(spec, shape, classes)) == pytest.approx(count, abs=0.05e6)


@pytest.mark.parametrize(
    "depth, application", [(50, "ResNet50"), (101, "ResNet101"), (152, "ResNet152")]
)
def test_bottleneck_resnets_equal_keras_applications_layer_by_layer(depth, application):
    """Same total (25,636,712 / 44,707,176 / 60,419,944), and every Keras layer has a twin of the
    same name, type, output shape and parameter count."""
    ours = build_model(load_variant(f"resnet{depth}"), (224, 224, 3), 1000)
    theirs = getattr(keras.applications, application)(weights=None)
    assert ours.count_params() == theirs.count_params()
    mine = {layer.name: layer for layer in ours.layers}
    for layer in theirs.layers[1:]:  # [0] is the input layer
        twin = mine.get(layer.name)
        assert twin is not None, f"{layer.name} missing"
        assert type(twin) is type(layer), layer.name
        assert twin.output.shape == layer.output.shape, layer.name
        assert twin.count_params() == layer.count_params(), layer.name
    assert len(ours.layers) == len(theirs.layers)


@pytest.mark.parametrize("depth", [20, 56])
def test_residual_and_plain_twins_differ_only_by_shortcuts(depth):
    residual = build_model(load_variant(f"resnet{depth}"), (32, 32, 3), 10)
    plain = build_model(load_variant(f"plain{depth}"), (32, 32, 3), 10)

    def convs(model):
        return {
            layer.name: tuple(layer.kernel.shape)
            for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D)
        }

    assert convs(residual) == convs(plain)
    # 6n+1 convs plus the dense layer: 6n+2 weighted layers
    assert len(convs(residual)) == depth - 1
    extra = {layer.name for layer in residual.layers} - {layer.name for layer in plain.layers}
    assert extra and all(name.endswith(("_add", "_0_pad")) for name in extra)
    assert not {layer.name for layer in plain.layers} - {layer.name for layer in residual.layers}


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(channels=5, stride=2)(x))
    assert y.shape == (2, 2, 2, 5)
    np.testing.assert_array_equal(y[..., :2], x[:, ::2, ::2, :])
    assert not y[..., 2:].any()


def cifar_spec(**changes) -> ResNetSpec:
    stages = [StageSpec(2, 16), StageSpec(2, 32, 2), StageSpec(2, 64, 2)]
    return dataclasses.replace(ResNetSpec(stages=stages), **changes)


def test_shortcut_b_projects_only_where_shapes_change_and_c_everywhere():
    def projections(model):
        return sorted(layer.name for layer in model.layers if layer.name.endswith("_0_conv"))

    assert projections(build_model(cifar_spec(shortcut=Shortcut.B), (16, 16, 3), 10)) == [
        "conv3_block1_0_conv",
        "conv4_block1_0_conv",
    ]
    assert len(projections(build_model(cifar_spec(shortcut=Shortcut.C), (16, 16, 3), 10))) == 6


def test_width_multiplier_scales_stage_widths_not_the_stem():
    model = build_model(cifar_spec(width_multiplier=2, shortcut=Shortcut.B), (16, 16, 3), 10)
    assert model.get_layer("conv1_conv").filters == 16
    assert [model.get_layer(f"conv{i}_block1_2_conv").filters for i in (2, 3, 4)] == [32, 64, 128]


def test_kernel_size_and_dropout_axes():
    model = build_model(cifar_spec(kernel_size=5, dropout=0.3), (16, 16, 3), 10)
    assert model.get_layer("conv2_block1_1_conv").kernel_size == (5, 5)
    assert model.get_layer("conv2_block1_drop").rate == 0.3


def test_auxiliary_head_adds_a_named_output_on_its_tap():
    spec = cifar_spec(aux_heads=[AuxHeadSpec(tap="conv3", loss_weight=0.3)])
    model = build_model(spec, (16, 16, 1), 10)
    outputs = model(np.zeros((2, 16, 16, 1), "float32"))
    assert set(outputs) == {"predictions", "aux_conv3"}
    assert outputs["aux_conv3"].shape == (2, 10)
    assert (
        trainable_count(model)
        == trainable_count(build_model(cifar_spec(), (16, 16, 1), 10)) + 32 * 10 + 10
    )


def test_unknown_tap_names_the_value_and_the_taps():
    with pytest.raises(SpecError, match=r"tap='conv9'.*\['conv2', 'conv3', 'conv4'\]"):
        build_model(cifar_spec(aux_heads=[AuxHeadSpec(tap="conv9")]), (16, 16, 3), 10)


def test_every_variant_accepts_fashion_mnist_input():
    for name in ("resnet20", "resnet18", "wrn_16_8"):
        model = build_model(load_variant(name), (28, 28, 1), 10)
        assert model.output.shape == (None, 10)


def test_he_normal_is_drawn_on_the_host_with_keras_distribution_and_the_run_seed():
    """The lab's HeNormal: Keras' he_normal distribution (truncated at 2 sd, variance 2 / fan_in),
    a NumPy array (no backend kernel to compile per shape), the same draws for the same seed."""
    from lab.models.layers import TRUNCATION_STDDEV, HeNormal

    keras.utils.set_random_seed(3)
    values = HeNormal()((3, 3, 64, 128))
    assert isinstance(values, np.ndarray) and values.dtype == np.float32
    scale = np.sqrt(2.0 / (3 * 3 * 64))
    assert np.abs(values).max() <= 2 * scale / TRUNCATION_STDDEV
    assert values.std() == pytest.approx(scale, rel=0.02) and abs(values.mean()) < 0.01 * scale
    reference = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=1)((3, 3, 64, 128)))
    # the same distribution as Keras' own
    assert reference.std() == pytest.approx(values.std(), rel=0.03)
    keras.utils.set_random_seed(3)
    assert np.array_equal(HeNormal()((3, 3, 64, 128)), values)
    keras.utils.set_random_seed(4)
    assert not np.array_equal(HeNormal()((3, 3, 64, 128)), values)
    net = build_model(load_variant("resnet20"), (32, 32, 3), 10)
    assert isinstance(net.get_layer("conv1_conv").kernel_initializer, HeNormal)
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(HeNormal())
        ).__class__
        is HeNormal
    )
