"""The Inception family: GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions").

An inception module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max-pool side by side and
concatenates them along channels (section 4, Figure 2). The naive form (Figure 2a) grows the
depth with every module, because the pool passes all input channels through; the dimension
reduced form (Figure 2b) puts 1x1 reductions before the 3x3 and 5x5 convs and a 1x1 projection
after the pool. Variants are data: `conf/model/*.yaml` with `family: inception`, whose module
records are the rows of Table 1; `InceptionSpec` and its records live in
`lab.models.specs.inception` (the Hydra schema).

Layer names follow Table 1: a module `inception3a` is built from `inception3a_b1_1x1_conv`,
`inception3a_b2_reduce_conv`, ..., `inception3a_concat`, and its output is the tap
`inception3a`, which GoogLeNet's auxiliary classifiers (section 5) attach to.

Local response normalisation (after conv1 and conv2 in Table 1) is left out: it has no
parameters, later Inception versions replaced it by batch norm (Ioffe & Szegedy 2015), and
torchvision's GoogLeNet drops it too.
"""

from __future__ import annotations

from typing import Sequence

import keras

from lab.models import layers
from lab.models.heads import MAIN_OUTPUT, apply_classifier, assemble_model, attach_aux_heads
from lab.models.layers import relu
from lab.models.registry import register_family
from lab.models.specs.inception import InceptionModuleSpec, InceptionSpec, Stem


def apply_conv_unit(x, filters: int, kernel: int, stride: int, batch_norm: bool, name: str):
    """Conv, optional batch norm, ReLU: every conv of the network is followed by a ReLU
    (section 5). With batch norm the conv has no bias, the norm's offset replaces it."""
    x = layers.conv(filters, kernel, stride, f"{name}_conv", use_bias=not batch_norm)(x)
    if batch_norm:
        x = layers.batch_norm(x, f"{name}_bn")
    return relu(x, f"{name}_relu")


def apply_reduced_conv(x, reduce: int, filters: int, kernel: int, batch_norm: bool, name: str):
    """An optional 1x1 reduction (`{name}_reduce`), then the kxk conv (`{name}_{k}x{k}`)."""
    if reduce:
        x = apply_conv_unit(x, reduce, 1, 1, batch_norm, f"{name}_reduce")
    return apply_conv_unit(x, filters, kernel, 1, batch_norm, f"{name}_{kernel}x{kernel}")


def apply_inception_module(
    x, module: InceptionModuleSpec, name: str, naive: bool, batch_norm: bool = False
):
    """The four parallel branches of Figure 2, concatenated along channels as `{name}_concat`.

    The naive form (Figure 2a) outputs b1 + b2 + b3 + the input's channels; the reduced form
    (Figure 2b) outputs b1 + b2 + b3 + b4_proj. All branches keep the spatial size.

    Args:
        x: a 4-D feature map.
        module: the branch widths (a row of Table 1).
        name: the layer name prefix, e.g. `inception3a`.
        naive: ignore the module's reductions and projection (Figure 2a).
        batch_norm: normalise after every conv.
    """
    b2_reduce, b3_reduce, b4_proj = (
        (0, 0, 0) if naive else (module.b2_reduce, module.b3_reduce, module.b4_proj)
    )
    b1 = apply_conv_unit(x, module.b1, 1, 1, batch_norm, f"{name}_b1_1x1")
    b2 = apply_reduced_conv(x, b2_reduce, module.b2, 3, batch_norm, f"{name}_b2")
    b3 = apply_reduced_conv(x, b3_reduce, module.b3, 5, batch_norm, f"{name}_b3")
    b4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_b4_pool")(x)
    if b4_proj:
        b4 = apply_conv_unit(b4, b4_proj, 1, 1, batch_norm, f"{name}_b4_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b2, b3, b4])


def max_pool(x, name: str):
    """3x3/2 max-pool. "same" padding gives Table 1's sizes (112 -> 56 -> 28 -> 14 -> 7, as
    Caffe's ceil mode does) and never shrinks a map below 1x1, so tiny inputs build."""
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)


def apply_stem(x, spec: InceptionSpec):
    """Table 1's stem (224 -> 28, LRN left out), or one 3x3 conv for 32x32 inputs."""
    if spec.stem is Stem.small:
        return apply_conv_unit(x, spec.stem_out, 3, 1, spec.batch_norm, "conv1_3x3")
    x = apply_conv_unit(x, spec.stem_width, 7, 2, spec.batch_norm, "conv1_7x7")
    x = max_pool(x, "pool1")
    x = apply_conv_unit(x, spec.stem_width, 1, 1, spec.batch_norm, "conv2_reduce")
    x = apply_conv_unit(x, spec.stem_out, 3, 1, spec.batch_norm, "conv2_3x3")
    return max_pool(x, "pool2")


@register_family(InceptionSpec)
def build_inception(spec: InceptionSpec, input_shape: Sequence[int], classes: int) -> keras.Model:
    """Builds a GoogLeNet-style network from an InceptionSpec.

    Args:
        spec: the architecture; see InceptionSpec for every axis.
        input_shape: (height, width, channels) of one example.
        classes: number of classes of the softmax head(s).

    Returns:
        A functional model. With auxiliary heads its outputs are a dict: `predictions` (the main
        head) and `aux_<module>` for each head; without, the main head's tensor.

    Example:
        >>> spec = InceptionSpec(stem=Stem.small, stem_out=32, batch_norm=True, modules=[
        ...     InceptionModuleSpec("m1", 16, 8, 16, 4, 8, 8), InceptionModuleSpec("m2", 16, 8, 16, 4, 8, 8)],
        ...     pool_before=["m2"])
        >>> build_inception(spec, (32, 32, 3), 10).get_layer("m2_concat").output.shape
        (None, 16, 16, 48)
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = apply_stem(inputs, spec)
    # Table 1 numbers pools in order: pool3 precedes 4a
    pools = 2 if spec.stem is Stem.imagenet else 0
    taps = {}
    for module in spec.modules:
        if module.name in spec.pool_before:
            pools += 1
            x = max_pool(x, f"pool{pools}")
        x = taps[module.name] = apply_inception_module(
            x, module, module.name, spec.naive, spec.batch_norm
        )
    # Global average pooling is Table 1's 7x7/1 average pool at 224x224, and any size elsewhere.
    main = apply_classifier(x, classes, MAIN_OUTPUT, dropout=spec.dropout)
    return assemble_model(inputs, main, attach_aux_heads(taps, spec, classes), spec.name)
