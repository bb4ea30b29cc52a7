"""Training: `train(cfg)` and the pieces it composes (optimizers, schedules, on-device input layers)."""

from lab.training.train import TrainResult, train

__all__ = ["TrainResult", "train"]
