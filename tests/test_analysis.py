"""The analyzer agrees with facts checkable by hand."""

import json
import subprocess
import sys

import keras

from lab.config import PROJECT_ROOT
from lab.models import build_model
from lab.models.analysis import analyze_model
from lab.models.variants import load_variant


def chain(input_shape, *layers):
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def by_name(analysis):
    return {row.name: row for row in analysis.layers}


def test_three_stacked_3x3_convs_see_7x7():
    model = chain(
        (32, 32, 3), *[keras.layers.Conv2D(8, 3, padding="same", name=f"c{i}") for i in range(3)]
    )
    rows = by_name(analyze_model(model))
    assert [rows[f"c{i}"].receptive_field for i in range(3)] == [3, 5, 7]
    assert rows["c2"].jump == 1


def test_strides_multiply_the_jump_and_widen_later_fields():
    model = chain(
        (32, 32, 3),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", name="a"),
        keras.layers.MaxPooling2D(2, name="p"),
        keras.layers.Conv2D(4, 3, padding="same", name="b"),
    )
    rows = by_name(analyze_model(model))
    # a: rf 3, jump 2; p: rf 3 + 1*2 = 5, jump 4; b: rf 5 + 2*4 = 13, jump 4.
    assert [(rows[n].receptive_field, rows[n].jump) for n in ("a", "p", "b")] == [
        (3, 2),
        (5, 4),
        (13, 4),
    ]


def test_alexnet_first_layers():
    analysis = analyze_model(build_model(load_variant("alexnet"), (227, 227, 3), 1000))
    conv1, pool1 = analysis.layers[1], analysis.layers[2]
    assert (conv1.output_shape, conv1.params) == ([55, 55, 96], 34_944)  # 11*11*3*96 + 96
    assert conv1.macs == 55 * 55 * 96 * 11 * 11 * 3
    assert (conv1.receptive_field, conv1.jump) == (11, 4)
    assert pool1.type == "MaxPooling2D" and (pool1.output_shape, pool1.params) == ([27, 27, 96], 0)
    assert (pool1.receptive_field, pool1.jump) == (11 + 2 * 4, 8)


def inception_module(naive):
    from lab.models.inception import InceptionModuleSpec, apply_inception_module

    module = InceptionModuleSpec(
        name="m", b1=128, b2_reduce=96, b2=192, b3_reduce=16, b3=96, b4_proj=32
    )
    inputs = keras.Input((28, 28, 256), name="input")
    return keras.Model(inputs, apply_inception_module(inputs, module, name="m", naive=naive))


def test_naive_inception_module_output_and_macs():
    analysis = analyze_model(inception_module(naive=True))
    assert analysis.layers[-1].output_shape == [28, 28, 128 + 192 + 96 + 256]
    conv_macs = sum(row.macs for row in analysis.layers if row.type == "Conv2D")
    # 28*28 positions * (256*128*1*1 + 256*192*3*3 + 256*96*5*5) = 784 * 1,089,536
    assert conv_macs == 854_196_224 == analysis.totals["macs"]
    concat = analysis.layers[-1]
    assert len(concat.inputs) == 4  # the four branches are visible
    assert concat.receptive_field == 5  # the widest branch, the 5x5 conv


def test_bottleneck_inception_module_costs_the_sum_of_its_parts():
    hw, c = 28 * 28, 256
    reductions = hw * c * (128 + 96 + 16)  # the 1x1 branch and the two 1x1 reductions
    spatial = hw * (96 * 192 * 9 + 16 * 96 * 25)  # 3x3 and 5x5 convs on the reduced maps
    projection = hw * c * 32  # the 1x1 projection after the 3x3 max-pool
    analysis = analyze_model(inception_module(naive=False))
    assert analysis.totals["macs"] == reductions + spatial + projection
    assert analysis.layers[-1].output_shape == [28, 28, 128 + 192 + 96 + 32]


def test_totals_and_memory_at_the_chosen_precision():
    model = build_model(load_variant("resnet20"), (32, 32, 3), 10)
    full, half = analyze_model(model, "float32"), analyze_model(model, "mixed_bfloat16")
    assert full.totals["params_trainable"] == 269_722
    assert full.totals["activations"] == sum(row.activations for row in full.layers)
    assert (
        full.totals["activation_bytes"]
        == 4 * full.totals["activations"]
        == 2 * half.totals["activation_bytes"]
    )
    assert full.totals["macs"] == sum(row.macs for row in full.layers)


def test_fractal_blocks_show_their_joins():
    analysis = analyze_model(build_model(load_variant("fractalnet20"), (32, 32, 3), 10))
    joins = [row for row in analysis.layers if len(row.inputs) > 2]
    assert joins, "no multi-input join layer found"


def test_task_analyze_writes_analysis_json(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "task=analyze",
            "model=resnet20",
            "analyze.input_shape=[28,28,1]",
            "analyze.classes=10",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    assert analysis["input_shape"] == [28, 28, 1] and analysis["classes"] == 10
    assert analysis["totals"]["params_trainable"] == 269_434
    assert {
        "name",
        "type",
        "output_shape",
        "params",
        "macs",
        "activations",
        "receptive_field",
        "jump",
    } <= set(analysis["layers"][1])
    assert "conv4_block3_out" in result.stdout and "MACs" in result.stdout


def test_task_analyze_takes_the_input_of_data_given_on_the_command_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "task=analyze",
            "model=resnet20",
            "data=cifar100",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    assert (analysis["input_shape"], analysis["classes"]) == ([32, 32, 3], 100)
