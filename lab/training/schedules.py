"""Learning-rate schedules, evaluated per optimizer step with keras.ops (any backend, in XLA).

All share one shape: an optional linear warmup over the first `warmup_steps`, then a decay of
`progress` (0 -> 1 over the remaining steps). Step milestones are fractions of that progress.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

ONE_CYCLE_START = 1 / 25  # one-cycle starts at lr/25 (Smith & Topin 2017; PyTorch's div_factor)
ONE_CYCLE_WARMUP = 0.3  # share of training spent rising when no warmup is configured


def constant_decay(progress, milestones, gamma):
    return ops.ones_like(progress)


def step_decay(progress, milestones, gamma):
    passed = ops.zeros_like(progress)
    for milestone in milestones:
        passed = passed + ops.cast(progress >= milestone, progress.dtype)
    return ops.power(gamma, passed)


def cosine_decay(progress, milestones, gamma):
    return 0.5 * (1.0 + ops.cos(math.pi * progress))


def linear_decay(progress, milestones, gamma):
    return 1.0 - progress


DECAYS = {
    "constant": constant_decay,
    "step": step_decay,
    "cosine": cosine_decay,
    "one_cycle": linear_decay,
}


@keras.saving.register_keras_serializable(package="lab")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = base_lr * warmup(step) * decay(progress)."""

    def __init__(
        self,
        base_lr: float,
        kind: str,
        total_steps: int,
        warmup_steps: int = 0,
        milestones: Sequence[float] = (),
        gamma: float = 0.1,
    ):
        if kind not in DECAYS:
            raise ValueError(f"Unknown schedule. Received: kind={kind!r}; known: {sorted(DECAYS)}")
        if kind == "one_cycle" and warmup_steps == 0:
            warmup_steps = int(ONE_CYCLE_WARMUP * total_steps)
        self.base_lr, self.kind, self.total_steps = float(base_lr), kind, int(total_steps)
        self.warmup_steps, self.milestones, self.gamma = (
            int(warmup_steps),
            [float(m) for m in milestones],
            gamma,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = ONE_CYCLE_START if self.kind == "one_cycle" else 0.0
        warmup = 1.0
        if self.warmup_steps:
            warmup = ops.minimum(1.0, start + (1.0 - start) * (step + 1.0) / self.warmup_steps)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        return self.base_lr * warmup * DECAYS[self.kind](progress, self.milestones, self.gamma)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "kind": self.kind,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "milestones": self.milestones,
            "gamma": self.gamma,
        }
