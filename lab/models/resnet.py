"""The ResNet family: plain and residual networks, post- and pre-activation, basic and bottleneck.

One builder covers ResNet v1 (He et al. 2015, "Deep Residual Learning"), its plain twins,
pre-activation ResNet v2 (He et al. 2016, "Identity Mappings") and Wide ResNet (Zagoruyko &
Komodakis 2016). Variants are data: `conf/model/*.yaml` with `family: resnet`, read into a
`ResNetSpec`; the spec and its enums live in `lab.models.specs.resnet` (the Hydra schema).

Layer names follow `keras.applications.resnet` (`conv3_block2_1_conv`), so a built model can
be compared with Keras' own ResNet50 layer by layer. Stage `i` (0-based) is named
`conv{i+2}`, after the paper's tables; each stage output is a tap for auxiliary heads.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import keras

from lab.errors import SpecError
from lab.models import layers
from lab.models.heads import MAIN_OUTPUT, apply_classifier, assemble_model, attach_aux_heads
from lab.models.layers import ZeroPadShortcut, relu
from lab.models.registry import register_family
from lab.models.specs.base import Connectivity
from lab.models.specs.resnet import Block, BottleneckStride, ResNetSpec, Shortcut, StageSpec, Stem

# A conv of a residual branch: (filters, kernel size, stride).
ConvShape = Tuple[int, int, int]


def basic_branch(spec: ResNetSpec, width: int, stride: int) -> List[ConvShape]:
    k = spec.kernel_size
    return [(width, k, stride), (width, k, 1)]


def bottleneck_branch(spec: ResNetSpec, width: int, stride: int) -> List[ConvShape]:
    k = spec.kernel_size
    reduce_stride, spatial_stride = (
        (stride, 1) if spec.bottleneck_stride is BottleneckStride.reduce else (1, stride)
    )
    return [(width, 1, reduce_stride), (width, k, spatial_stride), (width * spec.expansion, 1, 1)]


BRANCHES = {Block.basic: basic_branch, Block.bottleneck: bottleneck_branch}


def conv(x, filters: int, kernel: int, stride: int, spec: ResNetSpec, name: str):
    return layers.conv(filters, kernel, stride, name, use_bias=spec.conv_bias)(x)


def batch_norm(x, spec: ResNetSpec, name: str):
    return layers.batch_norm(x, name, epsilon=spec.bn_epsilon, momentum=spec.bn_momentum)


def apply_shortcut(x, preactivated, out_channels: int, stride: int, spec: ResNetSpec, name: str):
    """The identity path of a block: identity, option A padding, or a projection (B, C).

    A pre-activation block projects its pre-activated input (He et al. 2016); a post-activation
    block projects its input and normalises the projection (keras.applications' `_0_bn`).
    """
    changes_shape = stride != 1 or x.shape[-1] != out_channels
    if spec.shortcut is Shortcut.C or (changes_shape and spec.shortcut is Shortcut.B):
        if spec.preact:
            return conv(preactivated, out_channels, 1, stride, spec, f"{name}_0_conv")
        return batch_norm(
            conv(x, out_channels, 1, stride, spec, f"{name}_0_conv"), spec, f"{name}_0_bn"
        )
    if not changes_shape:
        return x
    if x.shape[-1] > out_channels:
        raise SpecError(
            f"Shortcut A can only add channels. Received: {x.shape[-1]} -> {out_channels} "
            f"channels in {name}; use model.shortcut=B"
        )
    return ZeroPadShortcut(out_channels, stride, name=f"{name}_0_pad")(x)


def apply_postact_block(x, branch: Sequence[ConvShape], spec: ResNetSpec, name: str):
    """conv-BN-ReLU ... conv-BN, add the shortcut, ReLU (He et al. 2015)."""
    out_channels, stride = branch[-1][0], branch[0][2] * branch[1][2]
    shortcut = None
    if spec.connectivity is Connectivity.residual:
        shortcut = apply_shortcut(x, None, out_channels, stride, spec, name)
    r = x
    for i, (filters, kernel, conv_stride) in enumerate(branch, start=1):
        if i == len(branch) and spec.dropout:
            r = keras.layers.Dropout(spec.dropout, name=f"{name}_drop")(r)
        r = batch_norm(
            conv(r, filters, kernel, conv_stride, spec, f"{name}_{i}_conv"), spec, f"{name}_{i}_bn"
        )
        if i < len(branch):
            r = relu(r, f"{name}_{i}_relu")
    if shortcut is not None:
        r = keras.layers.Add(name=f"{name}_add")([shortcut, r])
    return relu(r, f"{name}_out")


def apply_preact_block(x, branch: Sequence[ConvShape], spec: ResNetSpec, name: str):
    """BN-ReLU-conv ... BN-ReLU-conv, add the shortcut; no activation after the add (He et al. 2016)."""
    out_channels, stride = branch[-1][0], branch[0][2] * branch[1][2]
    preactivated = relu(batch_norm(x, spec, f"{name}_preact_bn"), f"{name}_preact_relu")
    shortcut = None
    if spec.connectivity is Connectivity.residual:
        shortcut = apply_shortcut(x, preactivated, out_channels, stride, spec, name)
    r = preactivated
    for i, (filters, kernel, conv_stride) in enumerate(branch, start=1):
        if i > 1:
            r = relu(batch_norm(r, spec, f"{name}_{i - 1}_bn"), f"{name}_{i - 1}_relu")
        if i == len(branch) and spec.dropout:
            r = keras.layers.Dropout(spec.dropout, name=f"{name}_drop")(r)
        r = conv(r, filters, kernel, conv_stride, spec, f"{name}_{i}_conv")
    if shortcut is None:
        return r
    return keras.layers.Add(name=f"{name}_out")([shortcut, r])


def apply_stage(x, stage: StageSpec, spec: ResNetSpec, name: str):
    width = int(round(stage.width * spec.width_multiplier))
    apply_block = apply_preact_block if spec.preact else apply_postact_block
    for b in range(stage.blocks):
        stride = stage.stride if b == 0 else 1
        x = apply_block(x, BRANCHES[spec.block](spec, width, stride), spec, f"{name}_block{b + 1}")
    return x


def apply_stem(x, spec: ResNetSpec):
    """CIFAR: one 3x3 conv. ImageNet: 7x7/2 conv and 3x3/2 max-pool, padded as Keras pads them.
    A pre-activation network leaves the stem's BN-ReLU to its first block."""
    if spec.stem is Stem.imagenet:
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
        x = layers.conv(
            spec.stem_width, 7, 2, "conv1_conv", use_bias=spec.conv_bias, padding="valid"
        )(x)
    else:
        x = conv(x, spec.stem_width, 3, 1, spec, "conv1_conv")
    if not spec.preact:
        x = relu(batch_norm(x, spec, "conv1_bn"), "conv1_relu")
    if spec.stem is Stem.imagenet:
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return x


@register_family(ResNetSpec)
def build_resnet(spec: ResNetSpec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds a plain or residual network from a ResNetSpec.

    Args:
        spec: the architecture; see ResNetSpec for every axis.
        input_shape: (height, width, channels) of one example.
        classes: number of classes of the softmax head(s).

    Returns:
        A functional model. With auxiliary heads its outputs are a dict: `predictions` (the main
        head) and `aux_<tap>` for each head; without, the main head's tensor.

    Example:
        >>> spec = ResNetSpec(stages=[StageSpec(3, 16), StageSpec(3, 32, 2), StageSpec(3, 64, 2)])
        >>> build_resnet(spec, (32, 32, 3), 10).count_params()  # ResNet-20 with BN statistics
        271098
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = apply_stem(inputs, spec)
    taps = {}
    for i, stage in enumerate(spec.stages):
        name = f"conv{i + 2}"
        x = taps[name] = apply_stage(x, stage, spec, name)
    if spec.preact:
        x = relu(batch_norm(x, spec, "post_bn"), "post_relu")
    main = apply_classifier(x, classes, MAIN_OUTPUT)
    return assemble_model(inputs, main, attach_aux_heads(taps, spec, classes), spec.name)
