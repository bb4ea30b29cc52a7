"""Planted attacks (issue 32): nothing a store, a folder or a weights file holds can run code,
read another file of this machine, or overwrite one. Each test plants the attack for real, shows
that it works where the lab's guard is absent, and asserts the lab refuses it in one line."""

import os

import numpy as np
import pytest

from lab.data.hdf5 import check_readable_hdf5
from lab.errors import LabError, WeightsMismatchError
from lab.tasks.search.ownership import sweep_owner

SECRET = b"root:x:0:0:a line of a file the lab must never read\n"


def test_a_symlinked_owner_lock_is_refused_and_the_file_it_points_at_is_untouched(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_bytes(SECRET)
    folder = tmp_path / "tuner" / "sweep"
    folder.mkdir(parents=True)
    (folder / "owner.lock").symlink_to(victim)
    with pytest.raises(LabError, match="cannot be the sweep's lock file"):
        with sweep_owner(folder, "sweep"):
            pytest.fail("took a lock through a symbolic link")
    assert victim.read_bytes() == SECRET


def external_storage_weights(path, secret):
    """A Keras 3 weights file whose one dataset's bytes live in `secret` (HDF5 external storage)."""
    import h5py

    with h5py.File(path, "w") as file:
        file.create_dataset(
            "layers/dense/vars/0",
            shape=(len(SECRET),),
            dtype="uint8",
            external=[(str(secret), 0, len(SECRET))],
        )


def external_link_weights(path, elsewhere):
    import h5py

    with h5py.File(elsewhere, "w") as other:
        other.create_dataset("vars/0", data=np.frombuffer(SECRET, dtype="uint8"))
    with h5py.File(path, "w") as file:
        file.create_group("layers")
        file["layers/dense"] = h5py.ExternalLink(str(elsewhere), "/")


@pytest.mark.parametrize(
    "plant", [external_storage_weights, external_link_weights], ids=["storage", "link"]
)
def test_a_weights_file_that_points_outside_itself_is_refused_before_anything_reads_through_it(
    plant, tmp_path
):
    import h5py

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    weights = tmp_path / "crafted.weights.h5"
    plant(weights, secret)
    with h5py.File(weights, "r") as file:  # the plant works: h5py reads the other file through it
        assert bytes(file["layers/dense/vars/0"][()]) == SECRET
    with pytest.raises(WeightsMismatchError, match="refers to data outside the file"):
        check_readable_hdf5(str(weights))
    import keras

    from lab.models.weights import load_weights

    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    with pytest.raises(WeightsMismatchError, match="refers to data outside the file"):
        load_weights(net, str(weights))  # the builders' own path refuses it too


SAVEDMODEL = """
import sys
import tensorflow as tf
marker = sys.argv[2]
class Writer(tf.saved_model.experimental.TrackableResource):
    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="w")
    def _initialize(self):  # runs when the SavedModel is loaded
        tf.io.write_file(marker, "code from the store ran")
        return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=tf.constant(1.0))
module = tf.Module()
module.writer = Writer()
tf.saved_model.save(module, sys.argv[1])
"""

MLMODEL = """flavors:
  keras:
    data: data
    keras_version: 3.15.1
    save_exported_model: true
  python_function:
    loader_module: mlflow.keras
    python_version: 3.11.7
    data: data
"""


def test_a_crafted_exported_model_in_the_store_is_refused_and_runs_nothing(tmp_path):
    """An MLmodel asking for MLflow's exported-model path, with a SavedModel whose resource
    initializer writes a file: MLflow's own loader runs it; `task=evaluate`'s loader refuses."""
    pytest.importorskip("tensorflow")
    import subprocess
    import sys

    import mlflow.keras
    from mlflow.tracking import MlflowClient

    from lab.config import run_config
    from lab.tasks.evaluate import ModelNotFoundError, evaluate
    from lab.tracking.logged_models import ModelUnavailableError, load_logged_model

    marker = tmp_path / "written-by-the-model"
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    made = subprocess.run(
        [sys.executable, "-c", SAVEDMODEL, str(folder / "data" / "model"), str(marker)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    (folder / "MLmodel").write_text(MLMODEL)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("planted"))
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    model_uri = f"runs:/{run.info.run_id}/model"

    with pytest.raises(ModelUnavailableError, match="not a Keras-format model"):
        load_logged_model(model_uri, uri)
    cfg = run_config(
        [
            "task=evaluate",
            f"evaluate.model_uri={model_uri}",
            f"tracking.uri={uri}",
            "data=synthetic",
            "data.train_size=32",
            "data.test_size=8",
        ]
    )
    with pytest.raises(
        ModelNotFoundError, match="loads only MLflow's Keras flavour in the .keras format"
    ):
        evaluate(cfg)
    assert not marker.exists(), "the model's code ran"

    mlflow.set_tracking_uri(uri)
    try:  # the plant is real: MLflow's loader, which the lab does not use, runs it
        mlflow.keras.load_model(model_uri)
    except Exception:
        pass
    assert marker.exists()
    os.remove(marker)


def test_a_hard_linked_owner_lock_is_refused_and_the_other_file_untouched(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_bytes(SECRET)
    folder = tmp_path / "tuner" / "sweep"
    folder.mkdir(parents=True)
    os.link(victim, folder / "owner.lock")
    with pytest.raises(LabError, match="hard link"):
        with sweep_owner(folder, "sweep"):
            pytest.fail("took a lock through a hard link")
    assert victim.read_bytes() == SECRET


def test_a_weights_file_whose_group_links_back_to_itself_is_walked_once(tmp_path):
    """A crafted file must not hang the check (a group hard-linked into itself, links fanning out)."""
    import h5py

    path = tmp_path / "cyclic.weights.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("layers")
        group["loop"] = group
        for i in range(40):
            file[f"fan{i}"] = group
        group.create_dataset("vars/0", data=np.zeros(3, dtype="float32"))
    check_readable_hdf5(str(path))  # returns: nothing outside the file, each object walked once


def test_a_store_cannot_point_the_deletion_of_a_model_at_another_folder(tmp_path):
    """`search.keep_models` deletes fallen models' files where the store says they are: a crafted
    logged-model record naming another folder gets its record deleted, its folder left alone."""
    from mlflow.tracking import MlflowClient

    from lab.tracking.logged_models import delete_model, where_mlflow_puts

    precious = tmp_path / "home" / "work"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_bytes(SECRET)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("crafted")
    run = client.create_run(experiment)
    record = client.create_logged_model(experiment, name="model", source_run_id=run.info.run_id)
    import sqlite3

    with sqlite3.connect(tmp_path / "mlflow.db") as connection:
        connection.execute(
            "UPDATE logged_models SET artifact_location = ? WHERE model_id = ?",
            (precious.as_uri(), record.model_id),
        )
    assert client.get_logged_model(record.model_id).artifact_location == precious.as_uri()
    delete_model(client, run.info.run_id)
    assert (precious / "thesis.tex").read_bytes() == SECRET
    assert where_mlflow_puts(
        f"file:///s/mlruns/1/models/{record.model_id}/artifacts", "models", record.model_id
    )
    assert not where_mlflow_puts(
        f"file:///s/mlruns/1/models/{record.model_id}/artifacts/../../..", "models", record.model_id
    )
