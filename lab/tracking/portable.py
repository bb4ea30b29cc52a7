"""A trained network as a Keras model of Keras' own layers and operations only, so that it loads
with `mlflow.keras.load_model` or `mlflow.pyfunc.load_model` wherever Keras and MLflow are
installed, without this project.

Why only built-in layers: MLflow's Keras flavour has no `code_paths`, and Keras imports a class
named in a saved model only from Keras' own packages, so a model that names one of the lab's
classes (`Standardize`, `ZeroPadShortcut`, `HeNormal`, ...) loads only after `import lab`. Each
of the lab's layers is therefore replaced at export by what it computes at inference, written as
`keras.ops` calls on the functional graph (which Keras saves as built-in operation nodes):

- the lab's layers whose inference is weight-free (`ZeroPadShortcut`, `LocalResponseNormalization`,
  `FractalJoin`, `DropPathSampler`, `RandomPadCropFlip`) by their own `call(..., training=False)`
  traced on the graph;
- `Standardize` by (x - mean) / std with the run's statistics as constants;
- the lab's `HeNormal` initializer in a layer's config by Keras' `he_normal` (the weights are
  copied, so the initializer only matters to a user who re-initialises the model).

The exported model takes the dataset's raw uint8 images: a run trained on downsampled images
(`data.downsample=k`) averages each k x k block and rounds, as `lab.data.dataset.downsampled` did.
"""

from __future__ import annotations

import inspect
from typing import Dict, List, Tuple

import keras
from keras import ops

from lab.models.heads import MAIN_OUTPUT


def is_keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def is_builtin(obj) -> bool:
    """Whether Keras itself defines `obj`'s class (so a saved model naming it loads without the lab)."""
    return is_keras_module(type(obj).__module__)


def builtin_config(config: dict) -> dict:
    """A layer's config with every initializer, regularizer or constraint the lab defines replaced
    by Keras' `he_normal` (initializers) or dropped (the others: none is used at inference); any
    other object of the lab's in a config is refused."""
    cleaned = {}
    for key, value in config.items():
        foreign = isinstance(value, dict) and not is_keras_module(str(value.get("module", "keras")))
        if foreign and key.endswith("initializer"):
            value = "he_normal"
        elif foreign and key.endswith(("regularizer", "constraint")):
            value = None
        elif foreign:  # it would change what the layer computes
            raise TypeError(
                f"{key} of a layer is the lab's own ({value.get('class_name')}): no built-in equivalent for export"
            )
        cleaned[key] = value
    return cleaned


class Exporter:
    """Clones a functional network with Keras' `clone_model`, keeping built-in layers (fresh
    copies, weights copied after) and tracing the lab's layers' inference calls as operations."""

    def __init__(self):
        self.copies: List[Tuple[keras.layers.Layer, keras.layers.Layer]] = []

    def clone_layer(self, layer):
        if not is_builtin(layer):
            return layer  # traced by call_layer, never called as a layer
        copy = type(layer).from_config(builtin_config(layer.get_config()))
        self.copies.append((layer, copy))
        return copy

    def call_layer(self, layer, *args, **kwargs):
        if is_builtin(layer):
            return layer(*args, **kwargs)
        if layer.weights:
            raise TypeError(
                f"{type(layer).__name__} ({layer.name}) holds weights; it has no built-in "
                f"equivalent for export (lab.tracking.portable)"
            )
        kwargs.pop("training", None)
        if "training" in inspect.signature(layer.call).parameters:
            kwargs["training"] = False
        return layer.call(*args, **kwargs)

    def export(self, net: keras.Model) -> keras.Model:
        clone = keras.models.clone_model(
            net, clone_function=self.clone_layer, call_function=self.call_layer, recursive=True
        )
        for original, copy in self.copies:
            copy.set_weights(original.get_weights())
        return clone


def main_output(outputs):
    return outputs[MAIN_OUTPUT] if isinstance(outputs, dict) else outputs


def portable_model(
    net: keras.Model,
    standardize: keras.layers.Layer,
    raw_shape: Tuple[int, int, int],
    downsample: int,
) -> keras.Model:
    """Raw uint8 images of `raw_shape` -> (block average and round, when `downsample` > 1) ->
    `standardize`'s (x - mean) / std -> `net` -> its main head's probabilities; built-in only."""
    images = keras.Input(raw_shape, dtype="uint8", name="images")
    x = ops.cast(images, "float32")
    if downsample > 1:
        # float32 whatever the dtype policy: the data were averaged in float32, then rounded
        x = ops.round(
            keras.layers.AveragePooling2D(downsample, dtype="float32", name="downsample")(x)
        )
    dtype = standardize.compute_dtype
    mean, std = (
        ops.convert_to_numpy(ops.cast(w, dtype))
        for w in (standardize.channel_mean, standardize.channel_std)
    )
    x = (
        ops.cast(x, dtype) - mean
    ) / std  # numpy constants: saved in the graph, as the layer's weights were
    exported = Exporter().export(net)
    model = keras.Model(images, main_output(exported(x)), name=net.name)
    check_builtin(model)
    return model


def foreign_parts(model: keras.Model) -> Dict[str, str]:
    """Layer name -> class for every layer (nested models included) Keras does not define."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(foreign_parts(layer))
        elif not is_builtin(layer):
            found[layer.name] = type(layer).__name__
    return found


def check_builtin(model: keras.Model) -> None:
    foreign = foreign_parts(model)
    if foreign:
        raise TypeError(f"the exported model still holds the lab's layers {foreign}")
