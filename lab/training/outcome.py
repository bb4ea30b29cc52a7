"""What a fitted run records after its epochs: the test pass (the main head's figures, whether
the run trained, which test images it got right) and the weights it keeps, logged as its model."""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

import keras

from lab.config import RunConfig
from lab.data import Splits
from lab.stats.testset import CORRECT_ARTIFACT, encode_correct
from lab.tracking import TrackedRun
from lab.tracking.logged_models import log_model
from lab.tracking.tags import CHECKPOINT_TAG, MODEL_URI_TAG
from lab.training.callbacks import main_head_logs
from lab.training.compiled import Training, correct_flags, evaluation_batch, targets
from lab.training.trained import not_trained_reason, trained_tags


def tested(
    cfg: RunConfig,
    splits: Splits,
    run: TrackedRun,
    training: Training,
    history: Dict[str, List[float]],
) -> Tuple[Dict[str, float], Optional[str]]:
    """Tests the model on the test split, tags whether the run trained and logs which test images
    it got right. Returns the main head's test figures and why the run does not count as trained
    (None when it does)."""
    model = training.model
    test = main_head_logs(
        model.evaluate(
            splits.x_test,
            targets(training.net, splits.y_test, splits.classes),
            batch_size=evaluation_batch(cfg),
            return_dict=True,
            verbose=0,
        )
    )
    not_trained = not_trained_reason(history, splits.classes, test["loss"])
    run.set_tags(trained_tags(not_trained))
    flags = correct_flags(model, splits.x_test, splits.y_test, evaluation_batch(cfg))
    run.log_text(json.dumps(encode_correct(flags)), CORRECT_ARTIFACT)
    return test, not_trained


def log_kept_model(
    cfg: RunConfig, splits: Splits, run: TrackedRun, model: keras.Model, kept_epoch: int
) -> Dict[str, float]:
    """Logs the kept weights as the run's model, tagged with its URI and the epoch they are
    from. Returns the metrics that record it."""
    logged = log_model(run, model, splits.x_test, cfg.data.downsample)
    run.set_tags(
        {
            MODEL_URI_TAG: logged.uri,
            CHECKPOINT_TAG: f"{cfg.train.checkpoint.value}, epoch {kept_epoch}",
        }
    )
    return dict(
        checkpoint_epoch=kept_epoch, model_log_seconds=logged.seconds, model_bytes=logged.bytes
    )
