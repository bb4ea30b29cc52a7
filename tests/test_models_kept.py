"""Models the lab keeps (issue 14): each run logs the weights `train.checkpoint` chose as an MLflow
Keras model that takes raw uint8 images; a sweep keeps the best `search.keep_models`;
`task=evaluate` tests a kept model without training."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import keras
import mlflow
import numpy as np
import pytest
from conftest import FAST_TRAIN, TINY_RESNET, TINY_SPACE
from mlflow.tracking import MlflowClient

from lab.config import TrackingConfig, compose, run_config
from lab.config.spec_hash import spec_hash
from lab.data import load_splits
from lab.models import build_model
from lab.models.specs.base import AuxHeadSpec
from lab.tasks import run_task
from lab.tasks.evaluate import ModelNotFoundError, evaluate
from lab.tasks.search.orchestration import best_scored, search
from lab.tasks.search.ranking import best_first, trial_order
from lab.tasks.search.sweep import Sweep
from lab.tracking import tracked_run
from lab.tracking.logged_models import (
    load_logged_model,
    log_model,
    logged_models_of,
    network_of,
    register_model,
)
from lab.tracking.portable import foreign_parts, main_output
from lab.tracking.tags import MODEL_URI_TAG, SPEC_HASH_TAG
from lab.training.train import train, training_model

KEEPS = [*FAST_TRAIN, "train.checkpoint=best"]  # after FAST_TRAIN's `none`
SMALL = ["data=synthetic", "data.train_size=192", "data.test_size=64", *TINY_RESNET]


# The tests of `trained` run on one xdist worker, which trains it once (8-10 s), not on each.
USES_TRAINED = pytest.mark.xdist_group("models-kept-trained")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run that kept its best epoch (4 epochs at a learning rate that makes them differ), trained
    on downsampled images (16x16 -> 8x8): its model takes the raw 16x16 images."""
    root = tmp_path_factory.mktemp("kept-model")
    tracking = [f"tracking.uri=sqlite:///{root}/mlflow.db", "tracking.experiment=models"]
    cfg = run_config(
        [*SMALL, "data.downsample=2", "train.epochs=4", "train.lr=0.05", *KEEPS, *tracking]
    )
    result = train(cfg)
    return cfg, result, MlflowClient(cfg.tracking.uri).get_run(result.run_id)


@USES_TRAINED
def test_a_run_logs_its_best_epoch_as_a_model_that_reproduces_its_test_pass(trained):
    cfg, result, run = trained
    metrics, tags = run.data.metrics, run.data.tags
    assert tags[MODEL_URI_TAG] == f"runs:/{result.run_id}/model"
    assert metrics["checkpoint_epoch"] == metrics["best_epoch"] == result.best_epoch
    assert tags["lab.checkpoint"] == f"best, epoch {result.best_epoch}"
    # what a report pools by
    assert tags[SPEC_HASH_TAG] == spec_hash(cfg, load_splits(cfg.data, cfg.seed).input_shape)
    assert metrics["model_bytes"] > 0 and metrics["model_log_seconds"] > 0
    model = load_logged_model(tags[MODEL_URI_TAG], cfg.tracking.uri)
    assert model.inputs[0].dtype == "uint8"
    splits = load_splits(replace(cfg.data, downsample=1), cfg.seed)
    assert tuple(model.inputs[0].shape[1:]) == splits.input_shape == (16, 16, 3)
    # raw uint8 images
    probabilities = keras.ops.convert_to_numpy(model.predict(splits.x_test, verbose=0))
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == splits.y_test))
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1 / len(splits.y_test))


# Run in a Python where `import lab` fails: MLflow, Keras and the backend only.
WITHOUT_THE_LAB = """
import json, sys
class NoLab:
    def find_spec(self, name, path=None, target=None):
        if name == "lab" or name.startswith("lab."):
            raise ImportError("this Python has no keras-ablation-lab")
sys.meta_path.insert(0, NoLab())
import mlflow, mlflow.keras, mlflow.pyfunc, numpy as np
mlflow.set_tracking_uri(sys.argv[1])
images, labels = np.load(sys.argv[3]), np.load(sys.argv[4])
accuracy = {}
for loader in ("pyfunc", "keras"):
    model = getattr(mlflow, loader).load_model(sys.argv[2])
    probabilities = np.asarray(model.predict(images))
    accuracy[loader] = float(np.mean(np.argmax(probabilities, axis=1) == labels))
try:
    import lab
    accuracy["lab"] = "importable"
except ImportError:
    pass
print(json.dumps(accuracy))
"""


@USES_TRAINED
def test_a_logged_model_loads_with_mlflow_alone_and_reproduces_its_runs_test_accuracy(
    trained, tmp_path
):
    """Issue 29: MLflow's own loaders, in a Python where the project cannot be imported, open the
    model of a run trained on downsampled images, take the raw test images, and score what the run
    scored. The model is an MLflow 3 logged model of its run (the Models tab lists it), with a
    signature, an input example, and requirements that MLflow can install."""
    import subprocess
    import sys

    cfg, result, run = trained
    raw = load_splits(replace(cfg.data, downsample=1), cfg.seed)
    np.save(tmp_path / "images.npy", raw.x_test)
    np.save(tmp_path / "labels.npy", raw.y_test)
    model_uri = run.data.tags[MODEL_URI_TAG]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_THE_LAB,
            cfg.tracking.uri,
            model_uri,
            str(tmp_path / "images.npy"),
            str(tmp_path / "labels.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = json.loads(done.stdout.strip().splitlines()[-1])
    expected = run.data.metrics["test_accuracy"]
    assert accuracy == {
        "pyfunc": pytest.approx(expected, abs=1 / len(raw.y_test)),
        "keras": pytest.approx(expected, abs=1 / len(raw.y_test)),
    }

    client = MlflowClient(cfg.tracking.uri)
    [record] = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{result.run_id}'"
    )
    assert record.name == "model" and str(record.status) in ("READY", "LoggedModelStatus.READY")
    (tmp_path / "m").mkdir()
    # MLflow resolves the logged model through the global store
    mlflow.set_tracking_uri(cfg.tracking.uri)
    folder = mlflow.artifacts.download_artifacts(
        model_uri, tracking_uri=cfg.tracking.uri, dst_path=str(tmp_path / "m")
    )
    card = mlflow.models.Model.load(folder)
    assert card.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 16, 16, 3)
    assert card.saved_input_example_info is not None
    needs = Path(folder, "requirements.txt").read_text()
    assert "keras==" in needs and "mlflow==" in needs and "keras-ablation-lab" not in needs


def test_checkpoint_last_keeps_the_last_epoch_and_none_logs_no_model(tmp_path):
    tracking = [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "tracking.experiment=models"]
    last = train(
        run_config([*SMALL, "train.epochs=2", *FAST_TRAIN, "train.checkpoint=last", *tracking])
    )
    none = train(run_config([*SMALL, "train.epochs=1", *FAST_TRAIN, *tracking]))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(last.run_id).data.metrics["checkpoint_epoch"] == 2
    assert [m.name for m in logged_models_of(client, last.experiment_id, last.run_id)] == ["model"]
    assert MODEL_URI_TAG not in client.get_run(none.run_id).data.tags
    assert logged_models_of(client, none.experiment_id, none.run_id) == []


@pytest.mark.parametrize(
    "name, head",
    [("lenet5", True), ("resnet20", True), ("googlenet_small", False), ("fractalnet20", False)],
)
def test_every_family_round_trips_through_the_logged_model(name, head, tmp_path):
    """Save, load, identical outputs: what the lab's own layers (LRN, drop-path joins, the
    standardisation, the option-A shortcut) compute at inference survives their replacement by
    Keras' own operations, and a model with auxiliary heads exports its main head."""
    cfg = run_config(
        [
            "data=synthetic",
            "data.image_size=32",
            "data.channels=3",
            "data.train_size=32",
            "data.test_size=8",
            f"model={name}",
            *FAST_TRAIN,
        ]
    )
    splits = load_splits(cfg.data, cfg.seed)
    spec = (
        replace(cfg.model, aux_heads=[AuxHeadSpec(tap=cfg.model.taps()[0])]) if head else cfg.model
    )
    fitted = training_model(build_model(spec, splits.input_shape, splits.classes), splits, cfg)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="round-trip")
    with tracked_run(tracking, name) as run:
        logged = log_model(run, fitted, splits.x_test, downsample=1)
    loaded = load_logged_model(logged.uri, tracking.uri)
    assert foreign_parts(loaded) == {}  # Keras' own layers only: it loads without the lab
    outputs = network_of(fitted)(fitted.get_layer("standardize")(splits.x_test), training=False)
    expected = keras.ops.convert_to_numpy(main_output(outputs))  # the training graph's inference
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(splits.x_test, training=False)),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_sweep_keeps_the_models_of_its_best_trials_only(tmp_path):
    cfg = run_config(
        [
            "task=search",
            *SMALL,
            TINY_SPACE,
            "train.epochs=1",
            *KEEPS,
            "search.max_trials=3",
            "search.keep_models=1",
            "search.register_as=keeps_best",
            "search.name=keeps",
            f"search.directory={tmp_path}/tuner",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            "tracking.experiment=keeps",
        ]
    )
    result = search(cfg)
    client = MlflowClient(cfg.tracking.uri)
    trials = [
        r
        for r in client.search_runs([result.experiment_id])
        if r.data.tags.get("lab.role") == "trial"
    ]
    with_model = [
        r for r in trials if logged_models_of(client, r.info.experiment_id, r.info.run_id)
    ]
    top = max(r.data.metrics["trial_objective"] for r in trials)
    best = min(
        (r for r in trials if r.data.metrics["trial_objective"] == top),
        key=lambda r: trial_order(r.data.tags["lab.trial"]),
    )
    assert [r.info.run_id for r in with_model] == [
        best.info.run_id
    ]  # of equal scores, the earlier trial
    assert client.get_run(result.parent_run_id).data.tags["lab.best_child"] == best.info.run_id
    # each logged one; the ended runs' records stay
    assert all(MODEL_URI_TAG in r.data.tags for r in trials)
    deleted = sorted(r.info.run_id for r in trials if "lab.model_deleted" in r.data.tags)
    assert (
        deleted == sorted(r.info.run_id for r in trials if r not in with_model)
        and len(deleted) == 2
    )
    assert all(
        "fell out of the best search.keep_models=1" in r.data.tags["lab.model_deleted"]
        for r in trials
        if r.info.run_id in deleted
    )

    # search.register_as: the best trial's model, registered with alias `best`, loads and predicts as it did.
    version = client.get_model_version_by_alias("keeps_best", "best")
    assert (
        version.run_id == best.info.run_id
        and version.tags["lab.trial"] == best.data.tags["lab.trial"]
    )
    assert version.tags["lab.search"] == "keeps" and version.tags["lab.objective"] == "val_accuracy"
    assert float(version.tags["lab.objective_value"]) == pytest.approx(
        best.data.metrics["trial_objective"], rel=1e-5
    )
    assert (
        client.get_run(result.parent_run_id).data.tags["lab.registered_model"]
        == f"models:/keeps_best/{version.version}"
    )
    registered = load_logged_model("models:/keeps_best@best", cfg.tracking.uri)
    logged = load_logged_model(best.data.tags[MODEL_URI_TAG], cfg.tracking.uri)
    images = np.random.default_rng(0).integers(
        0, 256, (4, *registered.inputs[0].shape[1:]), dtype="uint8"
    )
    assert np.array_equal(
        keras.ops.convert_to_numpy(registered(images)), keras.ops.convert_to_numpy(logged(images))
    )
    assert register_model(
        cfg.tracking.uri, best.data.tags[MODEL_URI_TAG], "keeps_best", dict(version.tags)
    ) == str(version.version)  # reported again: not registered twice

    # from_run: a trial's recorded config (the sweep's base with the trial's values) trains again.
    again = run_config(
        ["task=train", f"from_run={best.info.run_id}", f"tracking.uri={cfg.tracking.uri}"]
    )
    assert again.model.connectivity.value == best.data.params["hp.connectivity"]
    assert [stage.blocks for stage in again.model.stages] == [
        1,
        1,
        1,
    ]  # the sweep's base (TINY_RESNET), no axis over it
    assert (
        again.train.lr == pytest.approx(float(best.data.params["hp.lr"])) and again.data == cfg.data
    )


def test_trials_rank_by_objective_and_a_tie_goes_to_the_earlier_trial():
    scores = {"10": 0.7, "0": 0.5, "2": 0.7, "1": 0.7}
    assert best_first(scores, "max") == ["1", "2", "10", "0"]
    assert best_first(scores, "min") == ["0", "1", "2", "10"]
    with pytest.raises(ValueError, match="direction"):
        best_first(scores, "up")


def test_the_best_trial_and_the_kept_models_agree_on_a_tie():
    """The parent's best trial (registered by search.register_as) is the kept one when trials tie,
    whatever order MLflow lists the runs in (newest first) or the oracle holds them."""

    def trial(score, status="COMPLETED"):
        return SimpleNamespace(score=score, status=status)

    oracle = SimpleNamespace(
        trials={"2": trial(0.25), "1": trial(0.25), "0": trial(0.125), "3": trial(None, "FAILED")}
    )
    assert best_scored(oracle, "max") == ("1", 0.25)
    assert best_scored(SimpleNamespace(trials={"0": trial(None, "FAILED")}), "max") == (None, None)
    # A network that did not train is never the best, whatever its score (issue 29).
    assert best_scored(oracle, "max", untrained=["1", "2"]) == ("0", 0.125)
    assert best_scored(oracle, "max", untrained=["0", "1", "2"]) == (None, None)

    def run(trial_id, score, trained="true"):
        return SimpleNamespace(
            info=SimpleNamespace(status="FINISHED"),
            data=SimpleNamespace(
                metrics={"trial_objective": score},
                tags={MODEL_URI_TAG: f"m{trial_id}", "lab.trained": trained},
            ),
        )

    children = {"2": run("2", 0.25), "1": run("1", 0.25), "0": run("0", 0.125)}
    cfg = run_config(["task=search", "search.keep_models=1"])
    sweep = Sweep(run_cfg=cfg, splits=None, parent=None)
    assert sweep.kept_models(children) == ["1"]
    children["1"] = run("1", 0.25, trained="false")
    assert sweep.kept_models(children) == [
        "2"
    ]  # an untrained network's model is not kept as one of the best


@USES_TRAINED
def test_from_run_trains_again_what_a_run_trained_with_the_command_line_on_top(trained):
    cfg, result, _ = trained
    again = run_config(
        [
            "task=train",
            f"from_run={result.run_id}",
            "train.epochs=1",
            f"tracking.uri={cfg.tracking.uri}",
            "tracking.experiment=again",
        ]
    )
    assert again.model == cfg.model and again.data == cfg.data and again.seed == cfg.seed
    assert again.train == replace(cfg.train, epochs=1) and again.from_run == result.run_id
    # named on the command line; else the recorded run's:
    assert again.tracking.experiment == "again"
    assert (
        run_config(
            ["task=train", f"from_run={result.run_id}", f"tracking.uri={cfg.tracking.uri}"]
        ).tracking.experiment
        == "models"
    )
    retrained = MlflowClient(cfg.tracking.uri).get_run(train(again).run_id)
    assert (
        retrained.data.tags["lab.from_run"] == result.run_id
        and retrained.data.params["train.lr"] == "0.05"
    )


@USES_TRAINED
def test_task_evaluate_tests_a_kept_model_in_a_new_run_without_training(trained):
    cfg, result, run = trained
    evaluation = evaluate(
        cfg.with_overrides(
            {"task": "evaluate", "evaluate.model_uri": f"runs:/{result.run_id}/model"}
        )
    )
    client = MlflowClient(cfg.tracking.uri)
    new = client.get_run(evaluation.run_id)
    assert (
        new.data.tags["lab.task"] == "evaluate" and new.data.tags["lab.evaluates"] == result.run_id
    )
    assert new.data.metrics["test_accuracy"] == pytest.approx(
        run.data.metrics["test_accuracy"], abs=1 / 64
    )
    assert "epoch_seconds" not in new.data.metrics  # nothing trained
    assert ("test_top5_accuracy" in new.data.metrics) == (cfg.data.classes > 5)
    # the evaluated run is not modified
    assert client.get_run(result.run_id).info.end_time == run.info.end_time


@USES_TRAINED
def test_evaluate_names_a_model_uri_that_does_not_exist(trained):
    cfg, _, _ = trained
    for uri in ("runs:/0123456789abcdef/model", "models:/nobody@best"):
        with pytest.raises(ModelNotFoundError, match=f"evaluate.model_uri={uri} names no model"):
            run_task(
                compose(
                    [
                        *SMALL,
                        "task=evaluate",
                        f"evaluate.model_uri={uri}",
                        f"tracking.uri={cfg.tracking.uri}",
                    ]
                )
            )


def test_early_stopping_ends_a_run_that_stopped_improving_and_keeps_its_best_epoch(tmp_path):
    """The synthetic classes are learnt in a few epochs; validation accuracy then stays at its
    best, so with patience 1 the run stops long before its 12 epochs."""
    cfg = run_config(
        [
            *SMALL,
            "train.epochs=12",
            *KEEPS,
            "train.early_stopping.patience=1",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            "tracking.experiment=stops",
        ]
    )
    result = train(cfg)
    metrics = MlflowClient(cfg.tracking.uri).get_run(result.run_id).data.metrics
    trained = len(result.history["loss"])
    assert metrics["stopped_epoch"] == trained < 12
    assert metrics["checkpoint_epoch"] == result.best_epoch <= trained


def test_a_negative_patience_is_named():
    with pytest.raises(
        Exception, match=r"train.early_stopping.patience must be null \(off\) or >= 1"
    ):
        run_config([*SMALL, "train.early_stopping.patience=-1"])


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_run_on_downsampled_images_exports_the_pixels_it_trained_on(policy):
    """The exported model's block average runs in float32 whatever the dtype policy, as the data
    were averaged (a bf16 average put some pixels one grey level off at 4x4 blocks)."""
    from lab.data.dataset import downsampled
    from lab.tracking.portable import portable_model
    from lab.training.preprocessing import Standardize

    raw = np.random.default_rng(0).integers(0, 256, size=(16, 28, 28, 1), dtype=np.uint8)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        standardize = Standardize([72.9], [90.0], name="standardize")
        standardize.build((None, 7, 7, 1))
        inputs = keras.Input((7, 7, 1))
        # shows the pixels
        net = keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(inputs))
        exported = portable_model(net, standardize, (28, 28, 1), downsample=4)
        expected = keras.ops.convert_to_numpy(standardize(downsampled(raw, 4)))
        got = keras.ops.convert_to_numpy(exported(raw))
    finally:
        keras.config.set_dtype_policy(previous)
    np.testing.assert_array_equal(got.astype(np.float32), expected.astype(np.float32))


def test_a_model_that_fails_to_save_is_marked_failed_not_left_pending(tmp_path, monkeypatch):
    import mlflow.keras

    cfg = run_config(
        [
            "data=synthetic",
            "data.image_size=16",
            "data.train_size=32",
            "data.test_size=8",
            "model=lenet5",
            *FAST_TRAIN,
        ]
    )
    splits = load_splits(cfg.data, cfg.seed)
    fitted = training_model(build_model(cfg.model, splits.input_shape, splits.classes), splits, cfg)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="failing")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.keras, "save_model", full_disk)
    with pytest.raises(OSError), tracked_run(tracking, "failing") as run:
        log_model(run, fitted, splits.x_test, downsample=1)
    [record] = logged_models_of(MlflowClient(tracking.uri), run.experiment_id, run.run_id)
    assert "FAILED" in str(record.status)
