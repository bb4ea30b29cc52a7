"""A training's state after an epoch, to go on training it later, in another process or on another
machine: every variable of the model (weights, batch-norm statistics, the standardisation, the
augmentation's random-seed state) and every variable of its optimizer (its step count
`iterations`, which the learning-rate schedule reads, and its momenta). Held as numpy arrays
(`keras.ops.convert_to_numpy`, any backend) and written as one `.npz` file.

Loading assigns the arrays in order to a model built and compiled as the saved one was; a count
or a shape that differs is an error naming the first variable that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import keras
import numpy as np

from lab.errors import LabError


class StateMismatchError(LabError):
    """A saved training state does not fit the model (or optimizer) it is loaded into."""


@dataclass
class TrainingState:
    epoch: int  # epochs trained so far (the next fit starts at initial_epoch=epoch)
    model_paths: List[str]  # each model variable's path, for the error that names one
    model_values: List[np.ndarray]
    optimizer_paths: List[str]
    optimizer_values: List[np.ndarray]


def host_copy(variables) -> List[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(variable)) for variable in variables]


def capture(model: keras.Model, epoch: int) -> TrainingState:
    """`model`'s and its optimizer's state now, after `epoch` epochs of training."""
    optimizer = model.optimizer
    return TrainingState(
        epoch,
        [v.path for v in model.variables],
        host_copy(model.variables),
        [v.path for v in optimizer.variables],
        host_copy(optimizer.variables),
    )


def save(state: TrainingState, path: Path) -> int:
    """Writes `state` to `path` (.npz, numpy only: no pickled objects); returns its size in bytes."""
    arrays = {
        "epoch": np.array(state.epoch),
        "model_paths": np.array(state.model_paths),
        "optimizer_paths": np.array(state.optimizer_paths),
    }
    arrays.update({f"model_{i:05d}": value for i, value in enumerate(state.model_values)})
    arrays.update({f"optimizer_{i:05d}": value for i, value in enumerate(state.optimizer_values)})
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path.stat().st_size


def load(path: Path) -> TrainingState:
    """The state `save` wrote to `path`."""
    with np.load(path, allow_pickle=False) as arrays:
        model_paths, optimizer_paths = (
            [str(p) for p in arrays["model_paths"]],
            [str(p) for p in arrays["optimizer_paths"]],
        )
        return TrainingState(
            int(arrays["epoch"]),
            model_paths,
            [arrays[f"model_{i:05d}"] for i in range(len(model_paths))],
            optimizer_paths,
            [arrays[f"optimizer_{i:05d}"] for i in range(len(optimizer_paths))],
        )


def check_fits(what: str, variables, paths: List[str], values: List[np.ndarray]) -> None:
    """Raises `StateMismatchError` unless `values` are as many as `variables`, each of its shape."""
    if len(variables) != len(values):
        raise StateMismatchError(
            f"the saved state has {len(values)} {what} variables and the model to continue has "
            f"{len(variables)}: it was saved from another network or optimizer"
        )
    for variable, path, value in zip(variables, paths, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise StateMismatchError(
                f"saved {what} variable {path} has shape {tuple(value.shape)}, the model's "
                f"{variable.path} has {tuple(variable.shape)}: it was saved from another network"
            )


def restore(model: keras.Model, state: TrainingState) -> None:
    """Puts `state` into `model`, built and compiled as the saved one was: its optimizer is built
    on the trainable variables first (Keras builds it lazily, on the first step), then every
    model and optimizer variable is assigned in order, after checking counts and shapes."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    check_fits("model", model.variables, state.model_paths, state.model_values)
    check_fits("optimizer", optimizer.variables, state.optimizer_paths, state.optimizer_values)
    for variable, value in zip(model.variables, state.model_values):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, state.optimizer_values):
        variable.assign(value)
