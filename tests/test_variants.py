"""One harness over every registered variant of every family (the registry drives it, so a new
variant is tested the day it is added): builds for its published input and for a small input,
gives finite probabilities, has unique names, round-trips its config, and one SGD step moves
every trainable weight (each one receives a gradient). `task=list` covers every variant.

Each variant is built twice: at its published input (whose parameter and MAC counts `task=list`
prints, checked here from the same build; channels 3, and 1 for LeNet-5) and at 28x28x1, the
lab's own data, where small maps shrink to 1x1, with an auxiliary head on every tap (forward on
every head, config round trip, then the SGD step on that same model, heads included). Every build
also checks that the builder's taps are exactly `spec.taps()`, the names the spec checks its heads
against without Keras (`lab.models.heads.attach_aux_heads`)."""

from dataclasses import dataclass, replace
from typing import Dict, List, Optional

import keras
import numpy as np
import pytest

from lab.models import build_model
from lab.models.analysis import analyze_model
from lab.models.heads import MAIN_OUTPUT, aux_output_name
from lab.models.specs.base import AuxHeadSpec
from lab.models.variants import (
    VariantSummary,
    by_family,
    load_variant,
    summarize_variant,
    summarize_variants,
    variant_names,
)

VARIANTS = variant_names()
# A training step at 28x28 costs seconds for most variants; these keep ImageNet-size dense layers.
BUILD_ONLY = {"alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19"}


def forward_all(model, shape) -> Dict[str, np.ndarray]:
    """Every head's output on two random examples, keyed by output name."""
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, dict) else {MAIN_OUTPUT: outputs}
    return {name: keras.ops.convert_to_numpy(output) for name, output in outputs.items()}


def forward(model, shape, classes) -> np.ndarray:
    return forward_all(model, shape)[MAIN_OUTPUT]


def check_probabilities(probabilities, classes):
    assert probabilities.shape == (2, classes)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@dataclass
class PublishedBuild:
    """What one build of a variant at its published input showed (the model itself is dropped)."""

    model_name: str
    input_shape: tuple
    layer_names: List[str]
    probabilities: Optional[np.ndarray]  # a forward pass, for inputs up to 64x64
    params: int
    summary: VariantSummary  # what `task=list` prints
    depth: int


@pytest.fixture(scope="module")
def published():
    """Each variant built once at its published input, on first use."""
    builds: Dict[str, PublishedBuild] = {}

    def build(name: str) -> PublishedBuild:
        if name not in builds:
            spec = load_variant(name)
            model = build_model(spec, spec.input_shape, spec.classes)
            small = name not in BUILD_ONLY and max(spec.input_shape) <= 64
            analysis = analyze_model(model)
            builds[name] = PublishedBuild(
                model.name,
                tuple(model.inputs[0].shape[1:]),
                [layer.name for layer in model.layers],
                forward(model, spec.input_shape, spec.classes) if small else None,
                model.count_params(),
                summarize_variant(name, spec, analysis),
                analysis.totals["depth"],
            )
            keras.backend.clear_session()
        return builds[name]

    return build


# The tests that read the published-input builds run in one pytest-xdist worker, which builds each once.
SHARES_BUILDS = pytest.mark.xdist_group("published-builds")


@SHARES_BUILDS
@pytest.mark.parametrize("name", VARIANTS)
def test_builds_for_its_published_input(name, published):
    spec, built = load_variant(name), published(name)
    assert built.model_name == name
    assert built.input_shape == tuple(spec.input_shape)
    assert len(built.layer_names) == len(set(built.layer_names))
    if built.probabilities is not None:
        check_probabilities(built.probabilities, spec.classes)
    assert built.summary.params == built.params and built.summary.macs > 0


def one_sgd_step_moves_every_trainable_weight(model, shape, classes):
    """One SGD step, run eagerly: every weight must receive a gradient. (Tracing the step as a
    graph checks nothing more, and costs up to 10x for the deep nets on TensorFlow.)"""
    names = list(model.output) if isinstance(model.output, dict) else None  # auxiliary heads
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 3], classes)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = {n: "categorical_crossentropy" for n in names} if names else "categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=loss, jit_compile=False, run_eagerly=True
    )
    assert np.all(np.isfinite(model.train_on_batch(x, {n: y for n in names} if names else y)))
    unchanged = [
        w.path
        for w, old in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), old)
    ]
    assert unchanged == []


SMALL = (28, 28, 1)


@pytest.mark.parametrize("name", VARIANTS)
def test_at_28x28x1_heads_on_every_tap_config_round_trip_and_one_sgd_step(name):
    """Each tap `spec.taps()` names is a feature map of the build that takes a head, even where a
    28x28 input leaves it 1x1; the build fails if the builder's taps are not exactly those."""
    spec = load_variant(name)
    spec = replace(spec, aux_heads=[AuxHeadSpec(tap=tap) for tap in spec.taps()])
    model = build_model(spec, SMALL, 7)
    outputs = forward_all(model, SMALL)
    assert sorted(outputs) == sorted([MAIN_OUTPUT, *(aux_output_name(tap) for tap in spec.taps())])
    for probabilities in outputs.values():
        check_probabilities(probabilities, 7)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params()
    if name not in BUILD_ONLY:
        one_sgd_step_moves_every_trainable_weight(model, SMALL, 7)


@SHARES_BUILDS
def test_task_list_covers_every_variant_sorted_by_family(published, request):
    # a pytest-xdist worker under --dist loadgroup
    if getattr(request.config.option, "loadgroup", False):
        assert request.node.nodeid.endswith("@published-builds"), (
            "xdist_group took no effect (pytest 9.2?)"
        )
    rows = by_family([published(name).summary for name in VARIANTS])
    assert sorted(row.name for row in rows) == VARIANTS
    assert [row.family for row in rows] == sorted(row.family for row in rows)
    assert {row.family for row in rows} == {"resnet", "chain", "inception", "fractal"}
    resnet20 = next(row for row in rows if row.name == "resnet20")
    # MACs: stem 32*32*16*27 = 442,368; stage 1: 6 * 32*32*16*144 = 14,155,776; stages 2 and 3:
    # 1,179,648 (first conv) + 5 * 2,359,296 = 12,976,128 each; dense 64*10 = 640.
    assert (resnet20.params, resnet20.macs) == (271_098, 40_551_040)
    assert summarize_variants(["resnet20", "lenet5"]) == by_family(
        [published("lenet5").summary, resnet20]
    )


@SHARES_BUILDS
def test_depth_counts_weighted_layers_on_the_longest_path(published):
    """The papers' depths: shortcut projections and auxiliary heads do not add."""
    papers = {
        "resnet20": 20,
        "plain56": 56,
        "resnet50": 50,
        "vgg16": 16,
        "lenet5": 5,
        "googlenet": 22,
    }
    assert {name: published(name).depth for name in papers} == papers
