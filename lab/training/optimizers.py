"""The optimizer a TrainConfig names, with its learning-rate schedule."""

from __future__ import annotations

import keras

from lab.config import OptimizerName, TrainConfig
from lab.training.schedules import WarmupDecay


def make_schedule(cfg: TrainConfig, steps_per_epoch: int) -> WarmupDecay:
    """The schedule over `cfg.schedule_span` epochs (`train.schedule_epochs`, else `train.epochs`)."""
    return WarmupDecay(
        cfg.lr,
        cfg.schedule.value,
        total_steps=cfg.schedule_span * steps_per_epoch,
        warmup_steps=int(round(cfg.warmup_epochs * steps_per_epoch)),
        milestones=cfg.milestones,
        gamma=cfg.gamma,
    )


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW. Keras applies `weight_decay` decoupled and
    scaled by the learning rate: for plain SGD exactly an L2 penalty of the same coefficient,
    with momentum close to one."""
    schedule = make_schedule(cfg, steps_per_epoch)
    if cfg.optimizer is OptimizerName.sgd:
        return keras.optimizers.SGD(
            schedule,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay or None,
        )
    return keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay)
