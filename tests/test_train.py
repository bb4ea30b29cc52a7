"""`train(cfg)` end to end: what one MLflow run holds, and the status of runs that fail or are stopped."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml
from conftest import FAST_TRAIN, TINY_RESNET, needs_fashion_mnist
from mlflow.tracking import MlflowClient

from lab.config import PROJECT_ROOT, run_config
from lab.errors import NonFiniteLossError
from lab.stats.testset import decode_correct
from lab.training.train import train

EPOCH_METRICS = {
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "epoch_seconds",
    "images_per_second",
}
FINAL_METRICS = {
    "test_loss",
    "test_accuracy",
    "params_total",
    "params_trainable",
    "params_non_trainable",
    "macs",
    "activations",
    "activation_bytes",
}
SYNTHETIC = ["data=synthetic", *TINY_RESNET, *FAST_TRAIN]


def runs(uri, experiment="test"):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return client, ([] if found is None else client.search_runs([found.experiment_id]))


@needs_fashion_mnist
def test_one_epoch_on_real_fashion_mnist_records_one_finished_run(tracking):
    result = train(
        run_config(
            [
                "data=fashion_mnist",
                "data.limit=400",
                "train.epochs=1",
                *TINY_RESNET,
                *FAST_TRAIN,
                *tracking,
            ]
        )
    )
    client, [run] = runs(tracking.uri)
    assert run.info.status == "FINISHED" and run.info.run_id == result.run_id

    params = run.data.params
    assert params["model.name"] == "resnet20" and params["data.name"] == "fashion_mnist"
    assert params["data.limit"] == "400" and params["train.epochs"] == "1" and params["seed"] == "0"
    assert params["model.stages.2.width"] == "64" and params["train.schedule"] == "cosine"
    assert params["data.source"] == "/usr/share/datasets/fashion-mnist"
    assert (
        params["data.train_examples"],
        params["data.val_examples"],
        params["data.test_examples"],
    ) == ("360", "40", "10000")

    tags = run.data.tags
    assert tags["lab.task"] == "train" and tags["lab.backend"] == keras.backend.backend()
    assert tags["lab.device"] and tags["lab.git_commit"]

    metrics = run.data.metrics
    assert EPOCH_METRICS | FINAL_METRICS <= set(metrics)
    for name in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1]
    # ResNet-20 at 28x28x1 has 269,434 (the stem's 1*3*3*16 weights instead of 3*3*3*16: 269,722 - 288);
    # ResNet-8 drops two basic blocks per stage, each two 3x3 convolutions and two batch norms' scale and
    # offset: 2 * (4,672 + 18,560 + 73,984) at widths 16, 32 and 64.
    resnet8 = 269_434 - 2 * (
        2 * (9 * 16 * 16 + 2 * 16) + 2 * (9 * 32 * 32 + 2 * 32) + 2 * (9 * 64 * 64 + 2 * 64)
    )
    assert metrics["params_trainable"] == resnet8 == 75_002
    assert metrics["params_total"] == resnet8 + metrics["params_non_trainable"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_accuracy"] == pytest.approx(
        result.test_accuracy
    )
    assert metrics["images_per_second"] > 0

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "model_summary.txt", "analysis.json", "test_correct.json"}
    correct = decode_correct(
        json.load(open(client.download_artifacts(run.info.run_id, "test_correct.json")))
    )
    assert len(correct) == int(params["data.test_examples"]) and correct.mean() == pytest.approx(
        result.test_accuracy
    )
    analysis = json.load(open(client.download_artifacts(run.info.run_id, "analysis.json")))
    assert analysis["input_shape"] == [28, 28, 1] and analysis["totals"]["macs"] == metrics["macs"]
    config = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config.yaml")))
    assert config["model"]["name"] == "resnet20" and config["data"]["limit"] == 400
    summary = open(client.download_artifacts(run.info.run_id, "model_summary.txt")).read()
    assert "conv4_block1_out" in summary and "conv4_block2" not in summary and "75,002" in summary


@pytest.mark.core
def test_training_learns_the_synthetic_classes(tracking):
    result = train(run_config([*SYNTHETIC, "train.epochs=3", "train.lr=0.05", *tracking]))
    assert result.best_val_accuracy > 0.5  # chance is 0.1
    assert result.test_accuracy > 0.5
    assert (
        len(result.history["loss"]) == 3 and result.history["loss"][-1] < result.history["loss"][0]
    )


@pytest.mark.core
def test_auxiliary_head_is_trained_and_evaluation_reports_the_main_head(tracking):
    # 256 training and 64 validation examples: whole batches of 32, so Keras' epoch means of the
    # per-head losses (per batch) and of the total (per example) average the same way.
    result = train(
        run_config(
            [
                *SYNTHETIC,
                "train.epochs=1",
                "model.aux_heads=[{tap: conv3, loss_weight: 0.3}]",
                "data.train_size=320",
                "data.val_fraction=0.2",
                *tracking,
            ]
        )
    )
    history = result.history
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "total_loss", "aux_conv3_loss"} <= set(
        history
    )
    assert not any(key.startswith("predictions_") for key in history)
    # The optimised loss is the main loss plus 0.3 times the auxiliary one.
    for prefix in ("", "val_"):
        main, aux = history[f"{prefix}loss"][0], history[f"{prefix}aux_conv3_loss"][0]
        assert history[f"{prefix}total_loss"][0] == pytest.approx(main + 0.3 * aux, rel=1e-4)
    _, [run] = runs(tracking.uri)
    assert "aux_conv3_loss" in run.data.metrics and run.data.metrics["test_loss"] == pytest.approx(
        result.test_loss
    )


def test_an_exception_during_training_leaves_the_run_failed_with_the_reason(tracking, monkeypatch):
    def broken_fit(self, *args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(keras.Model, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="injected failure"):
        train(run_config([*SYNTHETIC, "train.epochs=1", *tracking]))
    _, [run] = runs(tracking.uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["lab.error"] == "RuntimeError: injected failure"
    assert run.data.params["model.name"] == "resnet20"  # what was recorded before the failure stays


def test_ctrl_c_leaves_the_run_killed(tracking, monkeypatch):
    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        train(run_config([*SYNTHETIC, "train.epochs=1", *tracking]))
    _, [run] = runs(tracking.uri)
    assert run.info.status == "KILLED"


@pytest.mark.core
def test_nan_loss_stops_with_a_clear_error_and_a_failed_run(tracking):
    # cosine over one epoch: the schedule is at 0 when the guard fires, the configured lr is named
    with pytest.raises(NonFiniteLossError, match=r"in epoch 1; lower train.lr \(train.lr=1e\+30\)"):
        train(
            run_config(
                [*SYNTHETIC, "train.epochs=1", "train.lr=1e30", "train.schedule=cosine", *tracking]
            )
        )
    client, [run] = runs(tracking.uri)
    assert run.info.status == "FAILED" and "NonFiniteLossError" in run.data.tags["lab.error"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [
        1
    ]  # epoch 1 kept
    assert not math.isfinite(run.data.metrics["loss"])


def test_missing_data_root_is_named_before_any_run_is_opened(tracking, tmp_path):
    from lab.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="nowhere"):
        train(
            run_config(
                [*SYNTHETIC, "data=fashion_mnist", f"data.root={tmp_path}/nowhere", *tracking]
            )
        )
    _, found = runs(tracking.uri)
    assert found == []  # bad input, not a failed training: nothing to record


def test_sigterm_leaves_the_run_killed(tracking):
    """A real process, stopped with SIGTERM mid-training (as a scheduler or `kill` would)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "run.py",
            *SYNTHETIC,
            "train.epochs=1000",
            "data.train_size=2048",
            *tracking,
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        client, found = runs(tracking.uri)
        while time.monotonic() < deadline:
            found = (
                runs(tracking.uri)[1] if os.path.exists(tracking.uri[len("sqlite:///") :]) else []
            )
            # an epoch has finished: training is under way
            if found and "loss" in found[0].data.metrics:
                break
            assert process.poll() is None, process.stdout.read()
            time.sleep(1)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    finally:
        process.kill()
    _, [run] = runs(tracking.uri)
    assert run.info.status == "KILLED"
    assert "Terminated" in run.data.tags["lab.error"]
    assert process.returncode == 143  # as a shell reports SIGTERM
    assert (
        output.strip().endswith("stopped by SIGTERM: open runs were closed KILLED")
        and "Traceback" not in output
    )
    # TF's native start-up lines
    assert "cuda drivers" not in output and "absl::InitializeLog" not in output


def test_multirun_sweeps_seeds_into_separate_runs(tracking, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "-m",
            *SYNTHETIC,
            "train.epochs=1",
            "seed=0,1",
            *tracking,
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    _, found = runs(tracking.uri)
    assert sorted(run.data.params["seed"] for run in found) == ["0", "1"]
    assert {run.info.status for run in found} == {"FINISHED"}
    assert sorted(run.info.run_name for run in found) == [
        "resnet20-synthetic-seed0",
        "resnet20-synthetic-seed1",
    ]


@pytest.mark.core
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_a_float32_softmax(tracking, precision):
    result = train(
        run_config([*SYNTHETIC, "train.epochs=1", f"train.precision={precision}", *tracking])
    )
    assert np.isfinite(result.test_loss)
    assert keras.config.dtype_policy().name == precision
    from lab.models import build_model
    from lab.models.variants import load_variant

    with_aux = load_variant("resnet20", ["model.aux_heads=[{tap: conv3, loss_weight: 0.3}]"])
    # the classifier, an auxiliary head, the chain's dense head
    for spec in (with_aux, load_variant("lenet5")):
        model = build_model(spec, (32, 32, 3), 10)
        assert [output.dtype for output in model.outputs] == ["float32"] * len(model.outputs), (
            spec.name
        )
        assert model.get_layer("predictions").compute_dtype == "float32"


@pytest.mark.core  # on JAX a fresh model once drew one more shuffle than a reused one
def test_a_reused_compiled_model_trains_exactly_as_a_fresh_one(tracking):
    """Seed 1 after seed 0 of the same network reuses seed 0's compiled model (lab/training/reuse.py),
    reset to seed 1's initial state, with the backend's compiled step kept between the runs: its
    history must be the fresh model's to the last bit, and so must seed 1's again after both (the
    seeding that keeps TensorFlow's kernel cache must not leave a random stream going on)."""
    from lab.training import reuse

    def history(seed, reuse_compiled):
        cfg = run_config(
            [
                *SYNTHETIC,
                "train.epochs=2",
                "data.train_size=256",
                "data.val_fraction=0.25",
                f"seed={seed}",
                f"train.reuse_compiled={str(reuse_compiled).lower()}",
                *tracking,
            ]
        )
        result = train(cfg)
        reuse.free_memory()  # as a sweep does between trials
        return result

    def same(a, b):
        return a.test_loss == b.test_loss and all(
            list(a.history[key]) == list(b.history[key]) for key in LEARNING
        )

    reuse.forget()
    fresh = history(1, False)
    first = history(0, True)
    reused = history(1, True)
    again = history(1, True)
    assert reuse._last.runs == 3  # seeds 1 and 1 again trained seed 0's compiled model
    assert same(reused, fresh) and same(again, fresh)
    assert not same(first, fresh)
    reuse.forget()


LEARNING = ("loss", "accuracy", "val_loss", "val_accuracy")  # the history keys that are not timings


def test_the_progress_bar_shows_no_nan_before_the_first_step():
    """Issue 29: the bar said `loss nan` while the first step compiled."""
    import io

    from rich.console import Console

    from lab.training.callbacks import RichProgress

    bar = RichProgress(32, Console(file=io.StringIO(), width=120))
    bar.set_params({"epochs": 2, "steps": 10})
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    assert bar.progress.tasks[0].fields["figures"] == "compiling, first step"
    bar.on_train_batch_end(0, {"loss": 2.0, "accuracy": 0.25})
    assert bar.progress.tasks[0].fields["figures"].startswith("loss 2.0000  acc 0.2500")
    bar.on_train_end()
