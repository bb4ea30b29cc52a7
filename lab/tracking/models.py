"""A run's model in MLflow: the trained network as one Keras model that takes raw uint8 images
(the lab's standardisation inside it) and returns the main head's probabilities, saved in MLflow's
Keras flavour under the run's `model/` artifact, with its input and output signature.

`load_logged_model` (and `task=evaluate`) opens it with `mlflow.keras.load_model`, after
registering the lab's custom layers (`lab.training.preprocessing` and every family's builder,
`lab.models.registry.load_families`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from lab.models.heads import MAIN_OUTPUT
from lab.tracking.runs import TrackedRun, delete_artifact_folder

MODEL_DIR = "model"
BEST_ALIAS = "best"  # the alias a sweep's registered model version gets
MODEL_URI_TAG = "lab.model_uri"  # on a run that logged its model: runs:/RUN_ID/model


@dataclass
class LoggedModel:
    uri: str  # runs:/RUN_ID/model
    seconds: float  # building, saving and uploading it
    bytes: int  # on disk, every file of the MLflow model


def network_of(fitted: keras.Model) -> keras.Model:
    """The network inside the lab's training model (uint8 -> augment -> standardize -> network)."""
    [net] = [layer for layer in fitted.layers if isinstance(layer, keras.Model)]
    return net


def inference_model(fitted: keras.Model) -> keras.Model:
    """Raw uint8 images -> standardisation -> the network -> the main head's probabilities. It
    shares the fitted model's layers (so its weights); augmentation, the identity at inference,
    is left out."""
    net = network_of(fitted)
    images = keras.Input(tuple(fitted.inputs[0].shape[1:]), dtype="uint8", name="images")
    outputs = net(fitted.get_layer("standardize")(images))
    if isinstance(outputs, dict):
        outputs = outputs[MAIN_OUTPUT]
    return keras.Model(images, outputs, name=net.name)


def signature(model: keras.Model):
    from mlflow.models.signature import ModelSignature  # noqa: PLC0415
    from mlflow.types.schema import Schema, TensorSpec  # noqa: PLC0415

    shape = tuple(model.inputs[0].shape[1:])
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *shape), "images")]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, model.outputs[0].shape[-1]))]))


def requirements() -> list:
    """What loading the model needs, stated (MLflow would otherwise infer it in a subprocess)."""
    from importlib.metadata import version  # noqa: PLC0415

    return [f"keras=={keras.__version__}", f"mlflow=={version('mlflow')}", "keras-ablation-lab"]


def log_model(run: TrackedRun, fitted: keras.Model) -> LoggedModel:
    """Saves `fitted`'s inference model in MLflow's Keras flavour and logs it as `model/`."""
    import mlflow.keras  # noqa: PLC0415

    start = time.perf_counter()
    model = inference_model(fitted)
    folder = Path(tempfile.mkdtemp(prefix="lab-model-"))
    try:
        mlflow.keras.save_model(model, str(folder / MODEL_DIR), signature=signature(model),
                                pip_requirements=requirements())
        size = sum(p.stat().st_size for p in (folder / MODEL_DIR).rglob("*") if p.is_file())
        run.client.log_artifacts(run.run_id, str(folder / MODEL_DIR), MODEL_DIR)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return LoggedModel(f"runs:/{run.run_id}/{MODEL_DIR}", time.perf_counter() - start, size)


def delete_model(client, run_id: str) -> None:
    """Removes a run's `model/` artifact (its other artifacts and its records stay)."""
    delete_artifact_folder(client.get_run(run_id).info.artifact_uri, MODEL_DIR)


def load_logged_model(model_uri: str, tracking_uri: str) -> keras.Model:
    """The Keras model at `model_uri` (runs:/... or models:/...) in the store at `tracking_uri`."""
    import mlflow  # noqa: PLC0415
    import mlflow.keras  # noqa: PLC0415

    import lab.training.preprocessing  # noqa: F401, PLC0415  (registers Standardize)
    from lab.models.registry import load_families  # noqa: PLC0415

    load_families()  # registers the builders' custom layers

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.keras.load_model(model_uri)


def register_model(tracking_uri: str, model_uri: str, name: str, tags: dict) -> str:
    """Registers `model_uri` as a version of the registered model `name` (created if new) with
    `tags`, and points its alias `best` at it; returns the version. A version with the same tags
    already there (a sweep reported again) is reused, not registered twice."""
    import mlflow  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    same = [v for v in client.search_model_versions(f"name = '{name}'")
            if all(v.tags.get(key) == value for key, value in tags.items())]
    if same:
        version = same[0].version
    else:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        version = mlflow.register_model(model_uri, name, tags=tags).version
    client.set_registered_model_alias(name, BEST_ALIAS, version)
    return str(version)
