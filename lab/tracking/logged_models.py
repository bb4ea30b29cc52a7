"""A run's model in MLflow: the trained network as one Keras model of Keras' own layers that
takes the dataset's raw uint8 images (the lab's downsampling and standardisation inside it) and
returns the main head's probabilities, saved in MLflow's Keras flavour as an MLflow 3 logged model
of the run, with its signature, an input example and its requirements. It loads with
`mlflow.keras.load_model` or `mlflow.pyfunc.load_model` without this project
(`lab.tracking.portable` says why and how).

`load_logged_model` (and `task=evaluate`) opens only that format, with Keras' safe mode
(`keras_file` says what it refuses), after registering the lab's custom layers, which models
logged by earlier versions of the lab name.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import keras
import numpy as np

from lab.errors import LabError, first_line
from lab.tracking.portable import portable_model
from lab.tracking.registered import SWEEP_KEY, check_name_free
from lab.tracking.runs import TrackedRun, delete_artifact_folder

MODEL_DIR = "model"
BEST_ALIAS = "best"  # the alias a sweep's registered model version gets


@dataclass
class LoggedModel:
    uri: str  # runs:/RUN_ID/model
    seconds: float  # building, saving and uploading it
    bytes: int  # on disk, every file of the MLflow model


def network_of(fitted: keras.Model) -> keras.Model:
    """The network inside the lab's training model (uint8 -> augment -> standardize -> network)."""
    [net] = [layer for layer in fitted.layers if isinstance(layer, keras.Model)]
    return net


def inference_model(
    fitted: keras.Model, raw_shape: Tuple[int, int, int], downsample: int
) -> keras.Model:
    """Raw uint8 images -> (downsampling) -> standardisation -> the network -> the main head's
    probabilities, of Keras' own layers only (`lab.tracking.portable`); augmentation, the identity
    at inference, is left out."""
    return portable_model(
        network_of(fitted), fitted.get_layer("standardize"), raw_shape, downsample
    )


def signature(model: keras.Model):
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    shape = tuple(model.inputs[0].shape[1:])
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *shape), "images")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, model.outputs[0].shape[-1]))]),
    )


def input_example(images: np.ndarray, downsample: int) -> np.ndarray:
    """Two test images at the model's input size: as loaded, or (a run on downsampled images,
    which holds only those) each pixel repeated `downsample` times both ways, which the model's
    block average turns back into the image it was tested on."""
    example = images[:2]
    return (
        np.repeat(np.repeat(example, downsample, axis=1), downsample, axis=2)
        if downsample > 1
        else example
    )


def requirements() -> List[str]:
    """What loading the model needs: Keras, MLflow and the backend it ran on (any Keras backend
    loads it: the model holds only Keras' own layers). Not this project."""
    from importlib.metadata import PackageNotFoundError, version

    needed = [f"keras=={keras.__version__}", f"mlflow=={version('mlflow')}"]
    backend = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(
        keras.backend.backend()
    )
    try:
        needed.append(f"{backend}=={version(backend)}")
    except (PackageNotFoundError, TypeError):
        pass
    return needed


def log_model(
    run: TrackedRun, fitted: keras.Model, test_images: np.ndarray, downsample: int
) -> LoggedModel:
    """Saves `fitted`'s inference model in MLflow's Keras flavour as an MLflow 3 logged model
    named `model` of the run (listed in the experiment's Models tab; `runs:/RUN_ID/model` finds
    it), with its signature, an input example and its requirements."""
    import mlflow.keras
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    start = time.perf_counter()
    height, width, channels = fitted.inputs[0].shape[1:]
    model = inference_model(fitted, (height * downsample, width * downsample, channels), downsample)
    record = run.client.create_logged_model(
        run.experiment_id, name=MODEL_DIR, source_run_id=run.run_id, model_type="keras"
    )
    folder = Path(tempfile.mkdtemp(prefix="lab-model-"))
    try:
        card = Model(
            artifact_path=record.artifact_location,
            model_uuid=record.model_id,
            run_id=run.run_id,
            model_id=record.model_id,
        )
        (
            folder / MODEL_DIR
        ).mkdir()  # MLflow's Keras flavour writes the input example before it creates the folder
        mlflow.keras.save_model(
            model,
            str(folder / MODEL_DIR),
            mlflow_model=card,
            signature=signature(model),
            input_example=input_example(test_images, downsample),
            pip_requirements=requirements(),
        )
        size = sum(p.stat().st_size for p in (folder / MODEL_DIR).rglob("*") if p.is_file())
        run.client.log_model_artifacts(record.model_id, str(folder / MODEL_DIR))
    # not left PENDING in the Models tab: FAILED, as MLflow's own log_model marks it
    except BaseException:
        run.client.finalize_logged_model(record.model_id, LoggedModelStatus.FAILED)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    run.client.log_outputs(run.run_id, [LoggedModelOutput(record.model_id, step=0)])
    run.client.finalize_logged_model(record.model_id, LoggedModelStatus.READY)
    return LoggedModel(f"runs:/{run.run_id}/{MODEL_DIR}", time.perf_counter() - start, size)


def delete_model(client, run_id: str) -> None:
    """Removes a run's model: its logged models' files and records, and a `model/` run artifact
    (where an older version of the lab kept it). The run's other artifacts and its records stay."""
    run = client.get_run(run_id)
    for record in logged_models_of(client, run.info.experiment_id, run_id):
        if where_mlflow_puts(record.artifact_location, "models", record.model_id):
            delete_artifact_folder(record.artifact_location, None)
        client.delete_logged_model(record.model_id)
    if where_mlflow_puts(run.info.artifact_uri, run_id):
        delete_artifact_folder(run.info.artifact_uri, MODEL_DIR)


def where_mlflow_puts(location: str, *folders: str) -> bool:
    """Whether an artifact location read from the store ends as MLflow lays it out
    (`.../RUN_ID/artifacts`, `.../models/MODEL_ID/artifacts`): a store is not trusted to name what
    the lab deletes, and a location it crafted to point elsewhere (a home folder) is left alone."""
    parts = [part for part in location.rstrip("/").split("/") if part]
    return ".." not in parts and parts[-len(folders) - 1 :] == [*folders, "artifacts"]


def logged_model_uri(client, model_uri: str) -> str:
    """models:/MODEL_ID for a runs:/RUN_ID/model whose run logged an MLflow 3 logged model (what
    registration wants); any other URI as it is."""
    if not model_uri.startswith("runs:/"):
        return model_uri
    run = client.get_run(model_uri[len("runs:/") :].split("/")[0])
    records = logged_models_of(client, run.info.experiment_id, run.info.run_id)
    return f"models:/{records[0].model_id}" if records else model_uri


def logged_models_of(client, experiment_id: str, run_id: str) -> list:
    """The run's logged models named `model`."""
    return [
        record
        for record in client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_DIR}'"
        )
    ]


class ModelUnavailableError(LabError):
    """A model URI that holds no model the lab will load."""


def load_logged_model(model_uri: str, tracking_uri: str) -> keras.Model:
    """The Keras model at `model_uri` (runs:/... or models:/...) in the store at `tracking_uri`.

    A store is not trusted to run code: only MLflow's Keras flavour saved in the `.keras` format
    loads, with Keras' safe mode (which refuses Lambda layers and arbitrary functions). MLflow's
    exported-model path (a TensorFlow SavedModel, whose graph can run ops such as file writes when
    loaded), any other flavour or pickle, and a model file that is a link are refused in one line."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    import lab.training.preprocessing  # noqa: F401  (registers Standardize, for models logged before the export)
    from lab.models.registry import load_families

    load_families()  # the builders' custom layers, for the same older models
    # MLflow resolves a logged model's models:/ URI through the global store
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="lab-load-") as folder:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    model_uri, dst_path=folder, tracking_uri=tracking_uri
                )
            )
        except (MlflowException, OSError) as error:
            raise ModelUnavailableError(
                f"{model_uri} holds no model ({first_line(error)})"
            ) from None
        return keras.saving.load_model(str(keras_file(local, model_uri)), safe_mode=True)


def keras_file(local: Path, model_uri: str) -> Path:
    """The `.keras` file of a downloaded MLflow model, if its MLmodel asks for nothing else."""
    import yaml

    card_path = local / "MLmodel"
    if not card_path.is_file():
        raise ModelUnavailableError(f"{model_uri} holds no MLflow model (no MLmodel file)")
    card = yaml.safe_load(card_path.read_text()) or {}
    flavours = card.get("flavors") or {}
    keras_flavour = flavours.get("keras")
    if not isinstance(keras_flavour, dict) or keras_flavour.get("save_exported_model"):
        raise ModelUnavailableError(
            f"{model_uri} is not a Keras-format model (flavours {sorted(flavours)}"
            f"{', an exported SavedModel' if isinstance(keras_flavour, dict) else ''}): the lab loads only MLflow's "
            f"Keras flavour in the .keras format, in Keras' safe mode, because loading other formats can run code"
        )
    data = local / str(keras_flavour.get("data", "data"))
    file = data / "model.keras" if data.is_dir() else data.with_name(data.name + ".keras")
    inside = file.resolve().is_relative_to(local.resolve())
    if not inside or file.is_symlink() or not file.is_file():
        raise ModelUnavailableError(
            f"{model_uri} has no model.keras file of its own where its MLmodel says"
        )
    return file


def register_model(tracking_uri: str, model_uri: str, name: str, tags: dict) -> str:
    """Registers `model_uri` as a version of the registered model `name` (created if new) with
    `tags`, and points its alias `best` at it; returns the version. A version with the same tags
    already there (a sweep reported again) is reused, not registered twice."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    model_uri = logged_model_uri(client, model_uri)
    if SWEEP_KEY in tags:
        check_name_free(client, name, tags[SWEEP_KEY])
    same = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if all(v.tags.get(key) == value for key, value in tags.items())
    ]
    if same:
        version = same[0].version
    else:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        version = mlflow.register_model(model_uri, name, tags=tags).version
    client.set_registered_model_alias(name, BEST_ALIAS, version)
    return str(version)
