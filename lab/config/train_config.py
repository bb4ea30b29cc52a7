"""The `train` group's schema: the training protocol (optimizer, schedule, precision,
augmentation, early stopping) and which weights a run keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional

from lab.errors import require


class Checkpoint(Enum):
    """Which weights a run keeps (and tests, and logs as its model): the best epoch's by the
    run's objective, the last epoch's, or none (nothing logged; tested at the last epoch)."""

    best = "best"
    last = "last"
    none = "none"


class OptimizerName(Enum):
    sgd = "sgd"
    adamw = "adamw"


class Schedule(Enum):
    constant = "constant"
    step = "step"
    cosine = "cosine"
    one_cycle = "one_cycle"


class Precision(Enum):
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"
    mixed_float16 = "mixed_float16"


@dataclass
class AugmentConfig:
    """On-device augmentation: zero-pad by `pad` pixels then crop back at random; random flips."""

    pad: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        require(self.pad >= 0, "train.augment.pad", self.pad, ">= 0")


@dataclass
class EarlyStoppingConfig:
    """Stop a run when its objective (the one `train.checkpoint=best` follows; training loss
    without a validation split) has not improved by more than `min_delta` for `patience` epochs.
    patience null: off."""

    patience: Optional[int] = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.patience is None or self.patience >= 1,
            "train.early_stopping.patience",
            self.patience,
            "null (off) or >= 1",
        )
        require(self.min_delta >= 0, "train.early_stopping.min_delta", self.min_delta, ">= 0")


@dataclass
class TrainConfig:
    """The training protocol. Milestones of the step schedule are fractions of the training after
    warmup (0.5: halfway); `lr` is the peak learning rate of every schedule."""

    epochs: int = 30
    batch_size: int = 128
    optimizer: OptimizerName = OptimizerName.sgd
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Schedule = Schedule.cosine
    warmup_epochs: float = 0.0
    milestones: List[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    label_smoothing: float = 0.0
    precision: Precision = Precision.float32
    jit_compile: bool = True
    # XLA's persistent compilation cache (JAX; TensorFlow's XLA), so an architecture compiles once
    # per project, not once per seed or trial; null: off.
    compile_cache: Optional[str] = "outputs/compile_cache"
    # A run of the same network under the same protocol as this process's previous run (the next
    # seed of an ablation grid) trains that run's compiled model, reset to its own initial state,
    # instead of tracing its own step again (lab/training/reuse.py); false: always trace.
    reuse_compiled: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # The weights the run tests and logs as its MLflow model (`model/`, Keras flavour: raw uint8
    # images in, the main head's probabilities out): `best` epoch by the run's objective
    # (val_accuracy, or the sweep's per-epoch objective; the last epoch without a validation
    # split), `last`, or `none` (no model logged).
    checkpoint: Checkpoint = Checkpoint.best
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    # The epochs the learning-rate schedule spans (its warmup, milestones and decay are fractions
    # of them); null: `epochs`. A Hyperband trial sets it to `search.max_epochs`, so a rung of k
    # epochs is the first k epochs of one max_epochs training and the next rung can continue it.
    schedule_epochs: Optional[int] = None
    verbose: int = 1

    @property
    def schedule_span(self) -> int:
        """The epochs the learning-rate schedule spans: `schedule_epochs`, else `epochs`."""
        return self.schedule_epochs if self.schedule_epochs is not None else self.epochs

    def __post_init__(self) -> None:
        require(self.epochs > 0, "train.epochs", self.epochs, "> 0")
        require(self.batch_size > 0, "train.batch_size", self.batch_size, "> 0")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0")
        require(
            0 <= self.label_smoothing < 1,
            "train.label_smoothing",
            self.label_smoothing,
            "in [0, 1)",
        )
        require(
            self.schedule_epochs is None or self.schedule_epochs >= self.epochs,
            "train.schedule_epochs",
            self.schedule_epochs,
            f"null or >= train.epochs={self.epochs} (the schedule spans the whole training)",
        )
        require(
            0 <= self.warmup_epochs < self.schedule_span,
            "train.warmup_epochs",
            self.warmup_epochs,
            f"in [0, the {self.schedule_span} epochs the schedule spans: train.schedule_epochs, else train.epochs)",
        )
        require(
            all(0 < m < 1 for m in self.milestones),
            "train.milestones",
            self.milestones,
            "fractions of training strictly between 0 and 1",
        )
