"""`task=evaluate`: a kept model (`evaluate.model_uri`: runs:/RUN_ID/model, models:/NAME@ALIAS or
models:/NAME/VERSION) tested on `data`'s test split without training, recorded as a new MLflow run
(`lab.task=evaluate`, tag `lab.evaluates` = the run that trained it: an ended run is never
modified). The test images go in as the dataset holds them: a logged model downsamples inside
if its run did. Test loss (cross-entropy, no label smoothing), accuracy, and top-5 accuracy where the
data have more than 5 classes."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

import numpy as np

from lab import runtime
from lab.config import RunConfig
from lab.data import Splits, load_splits
from lab.data.dataset import downsampled
from lab.errors import LabError, require
from lab.tracking import TrackedRun, tracked_run
from lab.tracking.logged_models import ModelUnavailableError, load_logged_model
from lab.tracking.tags import EVALUATES_TAG, MODEL_URI_TAG, TASK_TAG


class ModelNotFoundError(LabError):
    """`evaluate.model_uri` names no model in the tracking store."""


@dataclass
class Evaluation:
    run_id: str
    experiment_id: str
    source_run_id: Optional[str]
    metrics: Dict[str, float]


def source_run(model_uri: str, tracking_uri: str) -> Optional[str]:
    """The run that logged the model: from a runs:/ URI, or the registered version's run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    try:
        if model_uri.startswith("runs:/"):
            run_id = model_uri[len("runs:/") :].split("/")[0]
            client.get_run(run_id)
            return run_id
        name_alias = re.fullmatch(r"models:/([^/@]+)@(.+)", model_uri)
        name_version = re.fullmatch(r"models:/([^/@]+)/(\d+)", model_uri)
        if name_alias:
            return client.get_model_version_by_alias(*name_alias.groups()).run_id
        if name_version:
            return client.get_model_version(*name_version.groups()).run_id
    except MlflowException as error:
        raise not_found(model_uri, tracking_uri, str(error).splitlines()[0]) from None
    raise not_found(
        model_uri,
        tracking_uri,
        "expected runs:/RUN_ID/model, models:/NAME@ALIAS or models:/NAME/VERSION",
    )


def not_found(model_uri: str, tracking_uri: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"evaluate.model_uri={model_uri} names no model in tracking.uri={tracking_uri} ({why})"
    )


def scores(probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Mean cross-entropy, accuracy and (more than 5 classes) top-5 accuracy."""
    picked = probabilities[np.arange(len(labels)), labels]
    figures = {
        "test_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "test_accuracy": float(np.mean(np.argmax(probabilities, axis=1) == labels)),
    }
    if probabilities.shape[1] > 5:
        top5 = np.argsort(probabilities, axis=1)[:, -5:]
        figures["test_top5_accuracy"] = float(np.mean(np.any(top5 == labels[:, None], axis=1)))
    return figures


def downsample_factor(raw: Tuple[int, ...], takes: Tuple[int, ...]) -> Optional[int]:
    """k where a model takes `raw` images downsampled k times (1: it takes them as they are), or
    None where its input fits no k."""
    height, width, channels = raw
    for k in range(1, height + 1):
        if (height, width) == (takes[0] * k, takes[1] * k) and channels == takes[2]:
            return k
    return None


def kept_model(model_uri: str, tracking_uri: str):
    """The logged Keras model `model_uri` names; ModelNotFoundError where the run holds none (never
    logged, deleted) or one the lab will not load."""
    try:
        return load_logged_model(model_uri, tracking_uri)
    except ModelUnavailableError as error:
        raise ModelNotFoundError(
            f"evaluate.model_uri={model_uri} in tracking.uri={tracking_uri}: {error}"
        ) from None


def fitting_downsample(model, splits: Splits, model_uri: str, data_name: str) -> int:
    """How many times `splits`' images are downsampled for `model` (1: as they are); LabError
    naming both shapes where the model's input or class count does not fit them."""
    expected = tuple(model.inputs[0].shape[1:])
    factor = downsample_factor(splits.input_shape, expected)
    if factor is None or model.outputs[0].shape[-1] != splits.classes:
        raise LabError(
            f"evaluate.model_uri={model_uri} takes {'x'.join(map(str, expected))} images and "
            f"{model.outputs[0].shape[-1]} classes; data={data_name} has "
            f"{'x'.join(map(str, splits.input_shape))} and {splits.classes}"
        )
    return factor


def log_evaluation(
    cfg: RunConfig,
    splits: Splits,
    trained_by: Optional[str],
    factor: int,
    figures: Dict[str, float],
) -> TrackedRun:
    """Records the test figures in a new run, tagged with the model and the run that trained it."""
    model_uri = cfg.evaluate.model_uri
    tags = {
        TASK_TAG: "evaluate",
        MODEL_URI_TAG: model_uri,
        **runtime.provenance_tags(),
        **({EVALUATES_TAG: trained_by} if trained_by else {}),
    }
    with tracked_run(
        cfg.tracking, cfg.tracking.run_name or f"evaluate-{trained_by or model_uri}", tags
    ) as run:
        run.log_params(
            {
                "evaluate.model_uri": model_uri,
                "data.name": cfg.data.name,
                "data.test_examples": len(splits.x_test),
                "data.source": splits.source,
                "data.downsample": factor,
            }
        )
        run.log_metrics(figures)
    return run


def evaluate(cfg: RunConfig) -> Evaluation:
    """Tests the kept model `evaluate.model_uri` names on `data`'s test split, without training,
    and records the figures in a new MLflow run.

    Args:
        cfg: the run's config: `evaluate.model_uri` (runs:/RUN_ID/model, models:/NAME@ALIAS or
            models:/NAME/VERSION), `data`, `seed` and `tracking`.

    Returns:
        The new run's `Evaluation`: its ids, the run that trained the model (None where no run
        is known) and the test figures (`scores`).

    Raises:
        ConfigValueError: `evaluate.model_uri` is not set.
        ModelNotFoundError: the URI names no model in the tracking store, or a run without one
            the lab will load.
        LabError: the model's input shape or class count does not fit `data`.
    """
    model_uri = cfg.evaluate.model_uri
    require(
        model_uri is not None,
        "evaluate.model_uri",
        model_uri,
        "runs:/RUN_ID/model or models:/NAME@ALIAS",
    )
    trained_by = source_run(model_uri, cfg.tracking.uri)
    # the model downsamples, if it was trained so
    splits = load_splits(replace(cfg.data, downsample=1), cfg.seed)
    model = kept_model(model_uri, cfg.tracking.uri)
    factor = fitting_downsample(model, splits, model_uri, cfg.data.name)
    # factor 1, except for models logged before they took raw images
    images = downsampled(splits.x_test, factor)
    probabilities = np.asarray(model.predict(images, batch_size=256, verbose=0), dtype=np.float64)
    figures = scores(probabilities, splits.y_test)
    run = log_evaluation(cfg, splits, trained_by, factor, figures)
    return Evaluation(run.run_id, run.experiment_id, trained_by, figures)


def run(cfg: RunConfig) -> float:
    from lab.tasks.evaluate import evaluate
    from lab.tracking.runs import ui_hint

    result = evaluate(cfg)
    print("  ".join(f"{name} {value:.4f}" for name, value in result.metrics.items()))
    print(
        f"MLflow run {result.run_id} in {cfg.tracking.uri}"
        + (f" (evaluates run {result.source_run_id})" if result.source_run_id else "")
    )
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    return result.metrics["test_accuracy"]
