"""Budgets: a model over `search.max_params`/`max_macs`/`max_activation_bytes` fails before it
trains, a sweep starts no trial after `search.max_seconds`, and `search.pruner=median` stops a
trial that is behind the completed ones (PRUNED, not FAILED) and keeps it pruned."""

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import keras_tuner as kt
import pytest
from conftest import FAST_TRAIN
from mlflow.tracking import MlflowClient

from lab.config import run_config
from lab.errors import ConfigValueError, ModelTooBigError
from lab.models import build_model
from lab.models.analysis import analyze_model
from lab.tasks.search.orchestration import search
from lab.tasks.search.sweep import Sweep
from lab.tracking.runs import TrackedRun
from lab.training.pruning import MedianPruner
from lab.training.train import check_budgets

SWEEP = ["task=search", "data=synthetic", "model=lenet5", *FAST_TRAIN]


def test_each_model_budget_fails_a_model_over_it_naming_the_budget_and_the_count():
    cfg = run_config(["model=resnet20"])
    totals = analyze_model(build_model(cfg.model, (32, 32, 3), 10)).totals
    budgets = {
        "max_params": "params_total",
        "max_macs": "macs",
        "max_activation_bytes": "activation_bytes",
    }
    # at each limit: fine
    check_budgets("resnet20", totals, {key: totals[total] for key, total in budgets.items()})
    for key, total in budgets.items():
        limit = totals[total] - 1
        with pytest.raises(
            ModelTooBigError,
            match=rf"^resnet20 has {totals[total]:,} .*over the budget "
            rf"search\.{key}={limit:,}$",
        ):
            check_budgets("resnet20", totals, {key: limit})


@pytest.mark.parametrize(
    "bad, named",
    [
        ("search.max_macs=0", "search.max_macs=0"),
        ("search.max_activation_bytes=-5", "search.max_activation_bytes=-5"),
        ("search.max_seconds=0", "search.max_seconds=0"),
        ("search.pruner=median search.tuner=hyperband", "with search.tuner=hyperband"),
        (
            "search.pruner=median search.executions_per_trial=2",
            "with search.executions_per_trial=2",
        ),
        ("search.pruner=median search.pruner_warmup=0", "search.pruner_warmup=0"),
        ("search.pruner=nope", "nope"),
    ],
)
def test_a_budget_or_pruner_that_cannot_work_fails_with_the_config(bad, named):
    space = "search.space=[{name: lr, path: train.lr, kind: choice, values: [0.1, 0.01]}]"
    with pytest.raises(Exception, match=named) as caught:
        run_config(["task=search", space, *bad.split()])
    assert isinstance(caught.value, ConfigValueError) or "nope" in named


def test_an_ablation_refuses_a_pruner_its_grid_must_stay_balanced():
    with pytest.raises(ConfigValueError, match="none in an ablation"):
        run_config(["experiment=plain_vs_residual", "search.pruner=median"])


def drive(pruner, values):
    """Feeds one epoch value after another; returns the epochs it saw before it stopped."""
    pruner.set_model(SimpleNamespace(stop_training=False))
    seen = 0
    for epoch, value in enumerate(values):
        pruner.on_epoch_end(epoch, {"val_accuracy": value})
        seen += 1
        if pruner.model.stop_training:
            break
    return seen


def test_the_median_rule_compares_the_best_so_far_with_the_completed_trials_at_that_epoch():
    reference = {1: [0.5, 0.6, 0.7], 2: [0.6, 0.7, 0.8], 3: [0.62, 0.71]}
    early = MedianPruner("val_accuracy", "max", reference, warmup=1, min_trials=3)
    assert drive(early, [0.55, 0.9]) == 1 and early.pruned_at == 1 and early.median == 0.6
    warm = MedianPruner("val_accuracy", "max", reference, warmup=2, min_trials=3)
    assert drive(warm, [0.55, 0.65, 0.1]) == 2 and warm.pruned_at == 2  # best 0.65 < median 0.7
    best_so_far = MedianPruner("val_accuracy", "max", reference, warmup=1, min_trials=3)
    # ties; epoch 3: 2 trials
    assert drive(best_so_far, [0.6, 0.7, 0.3]) == 3 and best_so_far.pruned_at is None
    loss = MedianPruner("val_accuracy", "min", reference, warmup=1, min_trials=3)
    assert drive(loss, [0.65]) == 1 and loss.pruned_at == 1  # minimised: 0.65 > median 0.6


def test_a_trial_behind_the_median_is_pruned_not_failed_and_stays_pruned(tracking, tmp_path):
    # Grid order: three trials that learn, then one whose learning rate leaves it at chance.
    space = "search.space=[{name: lr, path: train.lr, kind: choice, values: [0.05, 0.04, 0.03, 1.0e-9]}]"
    overrides = [
        *SWEEP,
        "train.epochs=2",
        "search.tuner=grid",
        space,
        "search.pruner=median",
        "train.checkpoint=best",
        "train.schedule=constant",
        "search.name=pruned",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    result = search(run_config(overrides))
    statuses = {row["lr"]: row["status"] for row in result.rows}
    assert statuses == {0.05: "COMPLETED", 0.04: "COMPLETED", 0.03: "COMPLETED", 1e-9: "PRUNED"}, (
        result.rows
    )
    [pruned_row] = [row for row in result.rows if row["status"] == "PRUNED"]
    pruned_id = pruned_row["trial_id"]
    assert pruned_row["best_objective"] == "" and pruned_row["reason"].startswith(
        "pruned at epoch 1: best val_accuracy"
    )
    assert result.best_trial != pruned_id

    client = MlflowClient(tracking.uri)
    runs = {
        r.data.tags["lab.trial"]: r
        for r in client.search_runs([result.experiment_id])
        if r.data.tags.get("lab.role") == "trial"
    }
    pruned = runs[pruned_id]
    assert pruned.info.status == "FINISHED" and pruned.data.tags["lab.pruned_at_epoch"] == "1"
    assert "lab.model_uri" not in pruned.data.tags and "trial_objective" not in pruned.data.metrics
    assert [m.step for m in client.get_metric_history(pruned.info.run_id, "val_accuracy")] == [1]
    for trial_id, run in runs.items():
        if trial_id != pruned_id:
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [
                1,
                2,
            ]
    trial_json = json.loads(
        (Path(tmp_path) / "tuner" / "pruned" / f"trial_{pruned_id}" / "trial.json").read_text()
    )
    # keras-tuner's own record
    assert trial_json["status"] == "STOPPED" and trial_json["score"] is None

    csv_rows = list(
        csv.DictReader(
            io.StringIO(open(client.download_artifacts(result.parent_run_id, "trials.csv")).read())
        )
    )
    assert [row["status"] for row in csv_rows].count("PRUNED") == 1
    assert f"1 trials by search.pruner=median ({pruned_id})" in open(result.summary).read()

    # Resumed, the pruned trial is not trained again: its record is what the oracle gets.
    parent = TrackedRun(client, result.parent_run_id, result.experiment_id)
    sweep = Sweep(run_config(overrides), None, parent)
    again = sweep.run_trial(
        kt.engine.trial.Trial(kt.HyperParameters(), trial_id=pruned_id), "tuner0"
    )
    assert again == {"val_accuracy": pytest.approx(pruned.data.metrics["pruned_objective"])}
    assert sweep.pruned == {pruned_id} and len(sweep.children()) == 4


def test_a_spent_wall_budget_starts_no_trial_and_the_sweep_ends_with_its_report(tracking, tmp_path):
    space = "search.space=[{name: lr, path: train.lr, kind: choice, values: [0.05, 0.01]}]"
    result = search(
        run_config(
            [
                *SWEEP,
                "train.epochs=1",
                space,
                "search.max_trials=2",
                "search.max_seconds=1e-9",
                "search.name=spent",
                f"search.directory={tmp_path}/tuner",
                *tracking,
            ]
        )
    )
    assert result.rows == [] and result.best_trial is None
    parent = MlflowClient(tracking.uri).get_run(result.parent_run_id)
    assert (
        parent.info.status == "FINISHED"
        and parent.data.tags["lab.stopped_by"] == "search.max_seconds=1e-09"
    )
    assert (
        "stopped by: search.max_seconds=1e-09: no trial started after it, 2 of search.max_trials not run"
        in open(result.summary).read()
    )
