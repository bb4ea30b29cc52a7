"""Training: `lab.training.train.train(cfg)` and the pieces it composes (optimizers, schedules,
on-device input layers). Importing the package loads none of them: `lab.training.trained`'s
tags are read by `task=report`, which loads no Keras."""
