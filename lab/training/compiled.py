"""The model a run fits around its network: the on-device input layers (augmentation,
standardisation), its loss, metrics and optimizer, the targets each output is fitted to, the
passes over a split in inference mode, and `Training`: that model with where its fit starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import keras
import numpy as np

from lab.config import RunConfig
from lab.data import Splits
from lab.models.heads import MAIN_OUTPUT, aux_output_name
from lab.training.optimizers import make_optimizer
from lab.training.preprocessing import RandomPadCropFlip, Standardize
from lab.training.state import TrainingState


def training_model(net: keras.Model, splits: Splits, cfg: RunConfig) -> keras.Model:
    """uint8 images -> augmentation (training only) -> standardisation -> the network."""
    inputs = keras.Input(splits.input_shape, dtype="uint8", name="images")
    x = inputs
    augment = cfg.train.augment
    if augment.pad or augment.flip:
        x = RandomPadCropFlip(augment.pad, augment.flip, seed=cfg.seed, name="augment")(x)
    x = Standardize(splits.mean, splits.std, name="standardize")(x)
    return keras.Model(inputs, net(x), name=f"{net.name}_training")


def compile_model(
    model: keras.Model, net: keras.Model, spec, cfg: RunConfig, steps_per_epoch: int
) -> None:
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing)
    accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    options = dict(
        optimizer=make_optimizer(cfg.train, steps_per_epoch), jit_compile=cfg.train.jit_compile
    )
    if isinstance(net.output, dict):
        weights = {
            MAIN_OUTPUT: 1.0,
            **{aux_output_name(h.tap): h.loss_weight for h in spec.aux_heads},
        }
        model.compile(
            loss={name: loss for name in net.output},
            loss_weights=weights,
            metrics={MAIN_OUTPUT: [accuracy]},
            **options,
        )
    else:
        model.compile(loss=loss, metrics=[accuracy], **options)


def targets(net: keras.Model, labels: np.ndarray, classes: int):
    """One-hot labels (label smoothing needs them), one copy per output of a multi-output net."""
    one_hot = keras.utils.to_categorical(labels, classes).astype("float32")
    return {name: one_hot for name in net.output} if isinstance(net.output, dict) else one_hot


def evaluation_batch(cfg: RunConfig) -> int:
    """Evaluation runs in inference mode, where the batch size changes no result, and large
    batches are faster on CPU than a small training batch."""
    return max(cfg.train.batch_size, 256)


def correct_flags(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> np.ndarray:
    """Which images the main head classifies correctly (one more pass over the test set: the
    finite test set's noise is counted from these, `lab.stats.testset`)."""
    scores = model.predict(images, batch_size=batch_size, verbose=0)
    if isinstance(scores, dict):
        scores = scores[MAIN_OUTPUT]
    elif isinstance(scores, (list, tuple)):
        scores = scores[0]
    return np.argmax(np.asarray(scores), axis=-1) == np.asarray(labels).reshape(-1)


def optimizer_steps(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


@dataclass
class Training:
    """The compiled model a run fits around its network, and where its fit starts."""

    net: keras.Model  # the network: its outputs name the targets
    model: keras.Model  # input layers + the network, compiled (or a compiled one reused)
    start: Optional[TrainingState]  # the training it goes on with, if any
    steps_before: int  # optimizer steps before this fit: 0, or where the continued one stood

    @property
    def initial_epoch(self) -> int:
        return self.start.epoch if self.start is not None else 0
