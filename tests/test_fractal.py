"""The FractalNet family: the expansion rule, drop-path's rules, determinism at inference, exact counts."""

import itertools

import keras
import numpy as np
import pytest

from lab.compat.keras import inbound_layers
from lab.errors import ConfigValueError
from lab.models import build_model
from lab.models.fractal import (
    Column,
    DropPath,
    DropPathSampler,
    FractalBlockSpec,
    FractalJoin,
    FractalSpec,
)
from lab.models.heads import AuxHeadSpec
from lab.models.variants import load_variant

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def small_spec(columns=3, blocks=(4, 8), **changes) -> FractalSpec:
    return FractalSpec(columns=columns, blocks=[FractalBlockSpec(w) for w in blocks], **changes)


def constants(*values, shape=(2, 3, 3, 4)):
    return [np.full(shape, v, "float32") for v in values]


def subset_means(values):
    """The mean of every non-empty subset of `values`: what a join may output in training."""
    return {
        float(np.mean(s))
        for r in range(1, len(values) + 1)
        for s in itertools.combinations(values, r)
    }


def layers_of(model, kind):
    return [layer.name for layer in model.layers if isinstance(layer, kind)]


def parents(layer):
    return [parent.name for parent in inbound_layers(layer)]


def conv_depth(model) -> int:
    """Convs on the longest input-to-output path of the graph (model.layers is topological)."""
    depth = {}
    for layer in model.layers:
        before = max((depth[p] for p in parents(layer)), default=0)  # an input layer has none
        depth[layer.name] = before + isinstance(layer, keras.layers.Conv2D)
    return depth[model.layers[-1].name]


def test_join_of_constants_is_their_exact_mean_at_inference_and_without_drop_path():
    inputs = constants(1.0, 2.0, 6.0)
    join = FractalJoin(columns=[1, 2, 3], drop_rate=0.0)
    for training in (False, True):  # drop_rate 0, no global sample: training equals inference
        np.testing.assert_array_equal(
            numpy(join(inputs, training=training)), np.full((2, 3, 3, 4), 3.0)
        )
    dropping = FractalJoin(columns=[1, 2, 3], drop_rate=0.99)
    first, second = numpy(dropping(inputs, training=False)), numpy(dropping(inputs, training=False))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, np.full((2, 3, 3, 4), 3.0))


def test_a_two_column_block_is_conv_joined_with_two_convs():
    model = build_model(small_spec(columns=2, blocks=(4,)), (8, 8, 3), 10)
    assert layers_of(model, keras.layers.Conv2D) == [
        "block1_col2_1_conv",
        "block1_col1_1_conv",
        "block1_col2_2_conv",
    ]
    assert layers_of(model, keras.layers.Average) == ["block1_join1"]
    assert parents(model.get_layer("block1_join1")) == ["block1_col1_1_relu", "block1_col2_2_relu"]
    assert parents(model.get_layer("block1_col2_2_conv")) == ["block1_col2_1_relu"]


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_column_c_has_2_to_the_c_minus_1_convs_and_the_deepest_path_is_2_to_the_C_minus_1(columns):
    model = build_model(small_spec(columns=columns, blocks=(4,)), (8, 8, 3), 10)
    convs = layers_of(model, keras.layers.Conv2D)
    for c in range(1, columns + 1):
        assert sum(name.startswith(f"block1_col{c}_") for name in convs) == 2 ** (c - 1)
    assert len(convs) == 2**columns - 1
    assert len(layers_of(model, keras.layers.Average)) == (2 ** (columns - 2) if columns > 1 else 0)
    assert conv_depth(model) == 2 ** (columns - 1)
    deepest = build_model(
        small_spec(columns=columns, blocks=(4,), column=Column.deepest), (8, 8, 3), 10
    )
    assert layers_of(deepest, keras.layers.Conv2D) == [
        f"block1_col{columns}_{k}_conv" for k in range(1, 2 ** (columns - 1) + 1)
    ]
    assert conv_depth(deepest) == 2 ** (columns - 1) and not layers_of(
        deepest, keras.layers.Average
    )


def test_local_drop_path_never_drops_every_input():
    values = (1.0, 10.0, 100.0)  # every subset has a different mean
    allowed = subset_means(values)
    for rate, singles_only in ((0.99, True), (0.5, False)):
        join = FractalJoin(columns=[1, 2, 3], drop_rate=rate)
        seen = set()
        for _ in range(150):
            out = numpy(join(constants(*values), training=True))
            assert np.all(out == out.flat[0]), "a join drops whole inputs, not pixels"
            seen.add(round(float(out.flat[0]), 4))
        assert seen <= {round(m, 4) for m in allowed}
        if singles_only:  # nearly always all three are dropped, and the survivor is drawn uniformly
            assert {1.0, 10.0, 100.0} <= seen
        else:
            assert len(seen) >= 5


def test_global_drop_path_keeps_exactly_the_chosen_column_where_it_is_present():
    tensors = constants(2.0, 8.0)  # columns 2 and 3
    join = FractalJoin(columns=[2, 3], drop_rate=0.0, global_sample=True)
    # column 1 absent: the join stays a full mean
    for column, expected in ((2, 2.0), (3, 8.0), (1, 5.0)):
        sample = np.array([[1.0, column]], "float32")
        for _ in range(5):
            np.testing.assert_array_equal(
                numpy(join([*tensors, sample], training=True)), np.full((2, 3, 3, 4), expected)
            )
    local_batch = np.array([[0.0, 3.0]], "float32")
    np.testing.assert_array_equal(
        numpy(join([*tensors, local_batch], training=True)), np.full((2, 3, 3, 4), 5.0)
    )


def test_sampler_draws_global_batches_and_columns_in_training_only():
    sampler = DropPathSampler(columns=3, global_fraction=0.5)
    x = np.zeros((2, 4, 4, 3), "float32")
    draws = np.array([numpy(sampler(x, training=True))[0] for _ in range(200)])
    assert set(draws[:, 0]) == {0.0, 1.0} and 0.35 < draws[:, 0].mean() < 0.65
    assert set(draws[:, 1]) == {1.0, 2.0, 3.0}
    np.testing.assert_array_equal(numpy(sampler(x, training=False)), [[0.0, 0.0]])
    always = DropPathSampler(columns=3, global_fraction=1.0)
    assert all(numpy(always(x, training=True))[0, 0] == 1.0 for _ in range(20))


def test_a_global_batch_runs_one_whole_column_the_deepest_equals_the_extracted_network():
    """With every batch global, training outputs take at most C values (one per column); column
    C's is the deepest-column network's output with the same weights, copied by layer name."""
    spec = small_spec(
        columns=3, drop_path=DropPath.local_global, global_fraction=1.0, local_drop_rate=0.5
    )
    full = build_model(spec, (8, 8, 3), 10)
    deepest = build_model(small_spec(columns=3, column=Column.deepest), (8, 8, 3), 10)
    for layer in deepest.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    outputs = {tuple(np.round(numpy(full(x, training=True)).ravel(), 5)) for _ in range(30)}
    assert len(outputs) <= 3
    assert tuple(np.round(numpy(deepest(x, training=True)).ravel(), 5)) in outputs


def test_fractalnet20_is_deterministic_at_inference_and_random_in_training_with_drop_path():
    spec = load_variant("fractalnet20", ["model.drop_path=local_global"])
    model = build_model(spec, (32, 32, 3), 10)
    assert model.get_layer("drop_path_sampler") and len(layers_of(model, FractalJoin)) == 10
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(numpy(model(x, training=False)), numpy(model(x, training=False)))
    trained = [numpy(model(x, training=True)) for _ in range(4)]
    assert any(not np.allclose(trained[0], other) for other in trained[1:])
    # drop_path none: training is deterministic
    plain = build_model(load_variant("fractalnet20"), (32, 32, 3), 10)
    np.testing.assert_array_equal(numpy(plain(x, training=True)), numpy(plain(x, training=True)))


def test_drop_path_model_round_trips_and_trains_a_step():
    spec = small_spec(drop_path=DropPath.local_global, blocks=(4, 8))
    model = build_model(spec, (8, 8, 3), 5)
    clone = keras.Model.from_config(model.get_config())
    join = clone.get_layer("block2_join2")
    assert isinstance(join, FractalJoin) and (join.columns, join.drop_rate, join.global_sample) == (
        [1, 2, 3],
        0.15,
        True,
    )
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype("float32")
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy", jit_compile=False
    )
    assert np.isfinite(model.train_on_batch(x, keras.utils.to_categorical([0, 1, 2, 3], 5)))


# Trainable parameters at 32x32x3, 10 classes; convs are biasless (BN follows), each BN has 2w trainable
# (gamma, beta) and 2w non-trainable statistics. Block (in channels i, width w), C columns: each column's first
# conv reads the block input (C convs of 9*i*w), the other 2^C - 1 - C read w channels (9*w*w each).
# C=3 (7 convs/block): 3*9*3*64 + 4*9*64*64 = 152,640; 3*9*64*128 + 4*9*128^2 = 811,008;
#   3*9*128*256 + 4*9*256^2 = 3,244,032; 3*9*256*512 + 4*9*512^2 = 12,976,128; 3*9*512^2 + 4*9*512^2 = 16,515,072;
#   convs 33,698,880 + BN 2*7*(64+128+256+512+512) = 20,608 + dense 512*10 + 10 = 5,130 -> 33,724,618.
# C=4 (15 convs/block, 4 read the input, 11 read w): 412,416 + 1,916,928 + 7,667,712 + 30,670,848 + 35,389,440
#   = 76,057,344 + BN 2*15*1,472 = 44,160 + 5,130 -> 76,106,634.
# Deepest column of C=3 (4 convs/block, 1 reads the input): 112,320 + 516,096 + 2,064,384 + 8,257,536 + 9,437,184
#   = 20,387,520 + BN 2*4*1,472 = 11,776 + 5,130 -> 20,404,426.
# Deepest column of C=4 (8 convs/block): 259,776 + 1,105,920 + 4,423,680 + 17,694,720 + 18,874,368 = 42,358,464
#   + BN 2*8*1,472 = 23,552 + 5,130 -> 42,387,146.
# The paper reports 38.6M (20 layers) and 22.9M (40 layers) for its Caffe nets (Table 1); neither follows from
# the widths of section 4 (see the report), so the counts here are the derived ones.
EXACT = {
    "fractalnet20": (33_724_618, 20_608),
    "fractalnet40": (76_106_634, 44_160),
    "fractalnet20_deepest": (20_404_426, 11_776),
    "fractalnet40_deepest": (42_387_146, 23_552),
}


@pytest.mark.parametrize("name, counts", sorted(EXACT.items()))
def test_exact_parameter_counts(name, counts):
    spec = load_variant(name)
    model = build_model(spec, spec.input_shape, spec.classes)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params() - trainable) == counts


def test_deepest_variant_is_the_full_networks_deepest_column_by_name_and_shape():
    full = build_model(load_variant("fractalnet20"), (32, 32, 3), 10)
    deepest = build_model(load_variant("fractalnet20_deepest"), (32, 32, 3), 10)
    shapes = {w.path: tuple(w.shape) for w in full.weights}
    assert all(shapes[w.path] == tuple(w.shape) for w in deepest.weights)
    assert conv_depth(full) == conv_depth(deepest) == 20


def test_fashion_mnist_input_pools_down_to_1x1_and_taps_feed_aux_heads():
    spec = small_spec(blocks=(4, 4, 4, 4, 4, 4), aux_heads=[AuxHeadSpec(tap="block3")])
    # 28 -> 14 -> 7 -> 3 -> 1 -> 1 -> 1: small maps pool by 1
    model = build_model(spec, (28, 28, 1), 10)
    assert model.get_layer("block6_pool").output.shape == (None, 1, 1, 4)
    outputs = model(np.zeros((2, 28, 28, 1), "float32"))
    assert set(outputs) == {"predictions", "aux_block3"} and outputs["aux_block3"].shape == (2, 10)


def test_out_of_range_axes_name_the_key():
    with pytest.raises(ConfigValueError, match="model.local_drop_rate"):
        small_spec(local_drop_rate=1.0)
    with pytest.raises(ConfigValueError, match="model.columns"):
        small_spec(columns=0)
    with pytest.raises(ConfigValueError, match="blocks.dropout"):
        FractalBlockSpec(width=8, dropout=1.0)
