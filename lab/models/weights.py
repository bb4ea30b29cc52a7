"""`model.weights=PATH`: published weights loaded into the lab's network. The lab's vgg16/vgg19 and
resnet50/101/152 have keras.applications' layer names and shapes, so its weight files load:

- a `.h5` file in the HDF5 layout keras.applications publishes its weights in (Keras 2's: the
  root's `layer_names`, each layer's `weight_names`) is read by layer name, every tensor's shape
  checked against the lab's layer before anything is assigned;
- a `.weights.h5` file (Keras 3's `save_weights`) is read by Keras itself, which matches layers
  by their place in the model, not by name; a mismatch is reported in one line.

A layer of the lab's network missing from the file, or a tensor of another shape, fails naming the
first one; only the classifier (`predictions`) may be absent (an `include_top=False` file), and is
then left as initialised.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List

import keras
import numpy as np

from lab.data.hdf5 import check_readable_hdf5
from lab.errors import WeightsMismatchError
from lab.models.heads import MAIN_OUTPUT


def read_legacy_h5(path: Path) -> Dict[str, List[np.ndarray]]:
    """{layer name: its tensors in order} from a keras.applications-style `.h5` weights file (or a
    whole-model `.h5`, whose weights are under `model_weights`)."""
    import h5py

    def text(value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as file:
        root = file["model_weights"] if "model_weights" in file else file
        if "layer_names" not in root.attrs:
            raise WeightsMismatchError(
                f"model.weights={path} is HDF5 but has no `layer_names`: not a Keras "
                "weights file (a Keras 3 file ends in .weights.h5)"
            )
        return {
            text(name): [
                np.asarray(root[text(name)][text(weight)])
                for weight in root[text(name)].attrs.get("weight_names", [])
            ]
            for name in root.attrs["layer_names"]
        }


def assign_by_name(net: keras.Model, stored: Dict[str, List[np.ndarray]], path: Path) -> None:
    """Checks every layer and tensor first, then assigns: a mismatch changes no weight."""
    pending = []
    for layer in net.layers:
        if not layer.weights:
            continue
        values = stored.get(layer.name)
        if values is None:
            if layer.name == MAIN_OUTPUT:
                continue  # an include_top=False file: the classifier stays as initialised
            raise WeightsMismatchError(
                f"model.weights={path} has no layer {layer.name!r} of {net.name} (a file for "
                f"another architecture?)"
            )
        if len(values) != len(layer.weights):
            raise WeightsMismatchError(
                f"model.weights={path}: layer {layer.name!r} has {len(values)} tensors in the "
                f"file, {len(layer.weights)} in {net.name}"
            )
        for variable, value in zip(layer.weights, values):
            if tuple(value.shape) != tuple(variable.shape):
                raise WeightsMismatchError(
                    f"model.weights={path}: {variable.path} has shape {tuple(value.shape)} in "
                    f"the file, {tuple(variable.shape)} in {net.name}"
                )
            pending.append((variable, value))
    for variable, value in pending:
        variable.assign(value)


def keras_reason(error: BaseException) -> str:
    """Keras' loading error on one line, whole: its first paragraphs (the count of objects that
    could not be loaded and its example), not the list of every object after them."""
    text = str(error).split("List of objects that could not be loaded", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:500]


def load_weights(net: keras.Model, path: str) -> None:
    """Loads `path` into `net` (see the module's docstring)."""
    file = Path(path)
    if not file.is_file():
        raise WeightsMismatchError(f"model.weights={path}: no such file")
    # again here, for callers that skip run.py's preflight: nothing outside the file
    check_readable_hdf5(path)
    try:
        if file.name.endswith(".weights.h5"):
            # Keras warns once per layer it skips; the error below says it once
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                net.load_weights(str(file))
        else:
            assign_by_name(net, read_legacy_h5(file), file)
    except WeightsMismatchError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
    ) as error:  # h5py's unreadable or truncated file; Keras' mismatch
        reason = keras_reason(error)
        raise WeightsMismatchError(
            f"model.weights={path} cannot be loaded into {net.name}: {reason}"
        ) from None
