"""Layer-by-layer analysis of any built model: shapes, parameters, MACs, activations, receptive field.

Walks the functional graph in topological order. Receptive field and jump (effective stride) of
each layer's output, per spatial axis, follow Araujo et al. (2019, "Computing Receptive Fields
of CNNs"): a window layer with kernel k, dilation d and stride s maps
`rf = rf_in + (d*(k-1)) * jump_in`, `jump = jump_in * s`; a merge takes the largest of its
spatial inputs; global pooling and flattening see the whole map. MACs (multiply-accumulates)
count convolutions and dense layers, where nearly all the arithmetic is; normalisation,
activations and pooling count zero. `depth` is the paper sense: weighted (conv, dense) layers on
the longest path from input to the main output (ResNet-20: 20; shortcut projections do not add).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import keras
import numpy as np

from lab.compat.keras import inbound_layers, producing_layer
from lab.models.heads import MAIN_OUTPUT
from lab.models.layers import ZeroPadShortcut

Field = Tuple[int, int]  # (height, width) of a receptive field or jump
BYTES_PER_VALUE = {"float32": 4, "mixed_bfloat16": 2, "mixed_float16": 2}


@dataclass
class LayerStats:
    name: str
    type: str
    output_shape: List[Optional[int]]
    params: int
    macs: int
    activations: int
    receptive_field: object  # an int for square fields, [height, width] otherwise
    jump: object
    inputs: List[str] = field(default_factory=list)


@dataclass
class Analysis:
    model: str
    input_shape: List[int]
    classes: int
    precision: str
    layers: List[LayerStats]
    totals: Dict[str, int]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def window(layer) -> Optional[Tuple[Field, Field, Field]]:
    """(kernel, stride, dilation) of layers that slide a window, else None."""
    if isinstance(layer, ZeroPadShortcut):
        return (1, 1), (layer.stride, layer.stride), (1, 1)
    if isinstance(layer, keras.layers.Conv2D):  # also DepthwiseConv2D, SeparableConv2D
        return tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return tuple(layer.pool_size), tuple(layer.strides), (1, 1)
    return None


def spatial(shape) -> bool:
    return len(shape) == 4


def field_of(layer, inputs: List[Tuple[object, Field, Field]]) -> Tuple[Field, Field]:
    """Receptive field and jump of `layer`'s output from its inputs' (shape, rf, jump)."""
    if not inputs:
        return (1, 1), (1, 1)
    maps = [item for item in inputs if spatial(item[0])] or inputs
    if len(maps) > 1:  # a merge: the union of its branches' fields
        return tuple(max(m[1][a] for m in maps) for a in (0, 1)), tuple(
            max(m[2][a] for m in maps) for a in (0, 1)
        )
    shape, rf, jump = maps[0]
    slide = window(layer)
    if slide is not None:
        kernel, stride, dilation = slide
        return (
            tuple(rf[a] + dilation[a] * (kernel[a] - 1) * jump[a] for a in (0, 1)),
            tuple(jump[a] * stride[a] for a in (0, 1)),
        )
    if spatial(shape) and isinstance(
        layer,
        (
            keras.layers.GlobalAveragePooling2D,
            keras.layers.GlobalMaxPooling2D,
            keras.layers.Flatten,
        ),
    ):
        return tuple(rf[a] + (shape[1 + a] - 1) * jump[a] for a in (0, 1)), tuple(
            jump[a] * shape[1 + a] for a in (0, 1)
        )
    return rf, jump


def macs_of(layer, input_shapes: List[tuple], output_shape: tuple) -> int:
    """Multiply-accumulates per example of convolutions and dense layers."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(output_shape[1:]) * np.prod(layer.kernel_size))
    if isinstance(layer, keras.layers.SeparableConv2D):
        c_in = input_shapes[0][-1]
        depthwise = (
            np.prod(output_shape[1:3]) * c_in * layer.depth_multiplier * np.prod(layer.kernel_size)
        )
        return int(
            depthwise
            + np.prod(output_shape[1:3]) * c_in * layer.depth_multiplier * output_shape[-1]
        )
    if isinstance(layer, keras.layers.Conv2D):
        c_in = input_shapes[0][-1] // layer.groups
        return int(np.prod(output_shape[1:]) * np.prod(layer.kernel_size) * c_in)
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(input_shapes[0][1:]) * layer.units)
    return 0


def shape_of(tensor) -> tuple:
    return tuple(tensor.shape)


def compact(value: Field):
    return value[0] if value[0] == value[1] else list(value)


def main_output(model: keras.Model) -> str:
    """The layer of the main head of a multi-output model (its `MAIN_OUTPUT` output)."""
    outputs = model.output
    tensor = outputs[MAIN_OUTPUT] if isinstance(outputs, dict) else outputs[0]
    return producing_layer(tensor).name


def analyze_model(model: keras.Model, precision: str = "float32") -> Analysis:
    """Every layer of a functional model, in topological order, with totals.

    Example:
        >>> from lab.models import build_model
        >>> from lab.models.variants import load_variant
        >>> analysis = analyze_model(build_model(load_variant("resnet20"), (32, 32, 3), 10))
        >>> analysis.totals["params_trainable"]
        269722
    """
    fields: Dict[str, Tuple[tuple, Field, Field]] = {}
    depth: Dict[str, int] = {}  # weighted (conv, dense) layers on the longest path from the input
    rows: List[LayerStats] = []
    for layer in model.layers:
        parents = inbound_layers(layer) if not isinstance(layer, keras.layers.InputLayer) else []
        weighted = isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        depth[layer.name] = max((depth[p.name] for p in parents), default=0) + int(weighted)
        in_shapes = [fields[p.name][0] for p in parents]
        out_shape = shape_of(layer.output)
        rf, jump = field_of(layer, [fields[p.name] for p in parents])
        fields[layer.name] = (out_shape, rf, jump)
        rows.append(
            LayerStats(
                name=layer.name,
                type=type(layer).__name__,
                output_shape=list(out_shape[1:]),
                params=layer.count_params() if layer.built else 0,
                macs=macs_of(layer, in_shapes, out_shape),
                activations=int(np.prod(out_shape[1:])),
                receptive_field=compact(rf),
                jump=compact(jump),
                inputs=[p.name for p in parents],
            )
        )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    activations = sum(row.activations for row in rows)
    totals = {
        "params_total": model.count_params(),
        "params_trainable": trainable,
        "params_non_trainable": model.count_params() - trainable,
        "macs": sum(r.macs for r in rows),
        "activations": activations,
        "activation_bytes": activations * BYTES_PER_VALUE[precision],
        "depth": depth[model.layers[-1].name]
        if len(model.outputs) == 1
        else depth[main_output(model)],
    }
    input_shape = list(shape_of(model.inputs[0])[1:])
    classes = int(shape_of(model.outputs[0])[-1])
    return Analysis(model.name, input_shape, classes, precision, rows, totals)


def wide_console():
    """A terminal's own width; 200 columns when writing to a file or pipe, so names are not cut."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def render_table(analysis: Analysis, console=None) -> None:
    """Prints the analysis as a table, one row per layer, then the totals."""
    from rich.table import Table

    console = console or wide_console()
    table = Table(
        title=f"{analysis.model}: input {analysis.input_shape}, {analysis.classes} classes"
    )
    for column in ("layer", "type", "output", "params", "MACs", "RF", "jump", "inputs"):
        table.add_column(
            column,
            justify="right" if column in ("params", "MACs", "RF", "jump") else "left",
            no_wrap=column != "inputs",
        )
    for row in analysis.layers:
        inputs = ", ".join(row.inputs) if len(row.inputs) > 1 else ""
        table.add_row(
            row.name,
            row.type,
            "x".join(str(d) for d in row.output_shape),
            f"{row.params:,}",
            f"{row.macs:,}",
            str(row.receptive_field),
            str(row.jump),
            inputs,
        )
    console.print(table)
    totals = analysis.totals
    console.print(
        f"params {totals['params_total']:,} (trainable {totals['params_trainable']:,}, non-trainable "
        f"{totals['params_non_trainable']:,})  MACs {totals['macs']:,}  activations "
        f"{totals['activations']:,}  forward activation memory {totals['activation_bytes']:,} bytes "
        f"per example at {analysis.precision}",
        soft_wrap=True,
    )
