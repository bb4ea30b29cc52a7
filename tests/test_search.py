"""Sweeps: keras-tuner drives, the lab trains, MLflow holds one parent and one child per trial."""

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import FAST_TRAIN, TINY_RESNET, TINY_SPACE
from mlflow.tracking import MlflowClient

from lab.config import PROJECT_ROOT, run_config
from lab.errors import ConfigValueError
from lab.stats.testset import decode_by_trial
from lab.tasks.search.orchestration import search

DEFAULT_SPACE_SWEEP = ["task=search", "data=synthetic", *TINY_RESNET, "train.epochs=1", *FAST_TRAIN]
SWEEP = [*DEFAULT_SPACE_SWEEP, TINY_SPACE]


def sweep_runs(uri):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    parents = [r for r in runs if r.data.tags.get("lab.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("lab.role") == "trial"]
    return client, parents, children


def artifact(client, run, path):
    return open(client.download_artifacts(run.info.run_id, path)).read()


@pytest.mark.core
def test_three_trial_sweep_records_parent_children_and_reports(tracking, tmp_path):
    overrides = [
        *DEFAULT_SPACE_SWEEP,
        "search.max_trials=3",
        "search.name=three",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    result = search(run_config(overrides))
    client, [parent], children = sweep_runs(tracking.uri)
    assert parent.info.status == "FINISHED" and parent.info.run_id == result.parent_run_id
    assert len(children) == 3 and {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.data.tags["lab.trial"] for c in children) == sorted(
        r["trial_id"] for r in result.rows
    )
    for child in children:
        assert {"hp.connectivity", "hp.blocks_per_stage", "hp.lr", "model.name", "train.lr"} <= set(
            child.data.params
        )
        assert child.data.params["train.lr"] == child.data.params["hp.lr"]
        assert {"val_accuracy", "loss", "params_total", "macs", "test_accuracy"} <= set(
            child.data.metrics
        )
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")] == [1]
        # a report pools the trials that trained the same thing
        assert len(child.data.tags["lab.spec_hash"]) == 16
    assert len({c.data.tags["lab.spec_hash"] for c in children}) == len(
        {
            tuple(sorted((k, v) for k, v in c.data.params.items() if k.startswith("hp.")))
            for c in children
        }
    )

    rows = list(csv.DictReader(io.StringIO(artifact(client, parent, "trials.csv"))))
    assert list(rows[0]) == [
        "trial_id",
        "status",
        "connectivity",
        "blocks_per_stage",
        "shortcut",
        "lr",
        "params_total",
        "macs",
        "train_steps",
        "best_epoch",
        "best_objective",
        "train_loss",
        "train_error",
        "test_loss",
        "test_error",
        "train_examples",
        "test_examples",
        "improving",
        "not_trained",
        "wall_seconds",
        "reason",
    ]
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3
    for row in rows:
        assert (row["shortcut"] == "") == (row["connectivity"] == "plain")  # conditional axis
        child = next(c for c in children if c.data.tags["lab.trial"] == row["trial_id"])
        assert int(row["params_total"]) == child.data.metrics["params_total"]
        assert float(row["best_objective"]) == pytest.approx(
            child.data.metrics["best_val_accuracy"]
        )
        assert float(row["wall_seconds"]) > 0
        assert float(row["train_loss"]) == pytest.approx(child.data.metrics["loss"], abs=1e-6)
        assert float(row["test_error"]) == pytest.approx(
            1 - child.data.metrics["test_accuracy"], abs=1e-6
        )
        assert child.data.tags["lab.trained"] in ("true", "false")
        assert (row["not_trained"] == "") == (child.data.tags["lab.trained"] == "true")
    # Which test images each run got right, on the parent: the flags give back each run's test accuracy.
    correct = decode_by_trial(json.loads(artifact(client, parent, "test_correct.json")))
    for row in rows:
        child = next(c for c in children if c.data.tags["lab.trial"] == row["trial_id"])
        assert (
            len(correct[row["trial_id"]])
            == int(row["test_examples"])
            == int(child.data.params["data.test_examples"])
        )
        assert correct[row["trial_id"]].mean() == pytest.approx(
            child.data.metrics["test_accuracy"], abs=1e-6
        )
    best = max(rows, key=lambda r: float(r["best_objective"]))
    assert (
        result.best_trial == best["trial_id"]
        and parent.data.tags["lab.best_trial"] == best["trial_id"]
    )
    assert f"Best: trial {best['trial_id']}" in artifact(client, parent, "summary.md")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    plots = {
        "objective_vs_depth.png",
        "objective_vs_params.png",
        "objective_vs_macs.png",
        "curves.png",
    }
    assert plots | {"trials.csv", "summary.md", "best_values.yaml", "config.yaml"} <= artifacts
    for name in plots:
        with open(client.download_artifacts(parent.info.run_id, name), "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"

    # The same name again: nothing is re-run, nothing duplicated, the parent is reused.
    again = search(run_config(overrides))
    _, parents, children_again = sweep_runs(tracking.uri)
    assert [p.info.run_id for p in parents] == [parent.info.run_id] == [again.parent_run_id]
    assert sorted(c.info.run_id for c in children_again) == sorted(c.info.run_id for c in children)


def test_the_plots_colour_by_what_the_sweep_says_else_its_first_axis():
    from lab.tasks.search import plots
    from lab.tasks.search.orchestration import colour_key_of

    assert colour_key_of(run_config(SWEEP).search) == "hp.connectivity"
    assert colour_key_of(run_config(["experiment=deep_vs_wide"]).search) == "hp.variant"
    chosen = run_config([*SWEEP, "search.colour_by=model.block"]).search
    assert colour_key_of(chosen) == "model.block"
    trials = [
        {"objective": 0.5, "depth": 20, "model.block": "basic"},
        {"objective": 0.6, "depth": 50, "model.block": "bottleneck"},
    ]
    legend = plots.depth_figure(trials, colour_key_of(chosen), "val_accuracy").axes[0].get_legend()
    assert legend.get_title().get_text() == "model.block"
    assert [text.get_text() for text in legend.get_texts()] == ["basic", "bottleneck"]


def test_pareto_front_keeps_only_undominated_points():
    from lab.tasks.search.plots import pareto_front

    points = [(100, 0.5), (200, 0.7), (150, 0.4), (300, 0.7), (400, 0.9), (50, 0.3)]
    assert pareto_front(points) == [(50, 0.3), (100, 0.5), (200, 0.7), (400, 0.9)]


def test_a_loss_objectives_front_keeps_the_cheap_low_losses():
    """objective_vs_macs.png of a val_loss sweep: a lower loss is better (the front used to be
    drawn as if a higher one were); a repeated point is drawn once, a NaN on no front."""
    from lab.tasks.search.plots import pareto_front

    points = [
        (100, 0.5),
        (200, 0.3),
        (150, 0.6),
        (300, 0.3),
        (50, 0.9),
        (50, 0.9),
        (60, float("nan")),
    ]
    assert pareto_front(points, "min") == [(50, 0.9), (100, 0.5), (200, 0.3)]


def test_nan_and_over_budget_trials_fail_and_the_sweep_completes(tracking, tmp_path):
    # Grid over lr x width: lr 1e30 makes the loss NaN; width x4 is over the parameter budget.
    space = (
        "search.space=[{name: lr, path: train.lr, kind: choice, values: [0.05, 1.0e+30]},"
        "{name: width, path: model.width_multiplier, kind: choice, values: [1.0, 4.0]}]"
    )
    result = search(
        run_config(
            [
                *SWEEP,
                "search.tuner=grid",
                space,
                "search.max_params=1000000",
                "search.max_consecutive_failed_trials=5",
                "train.schedule=constant",
                "search.name=faults",
                f"search.directory={tmp_path}/tuner",
                *tracking,
            ]
        )
    )
    statuses = {(r["lr"], r["width"]): r["status"] for r in result.rows}
    assert statuses == {
        (0.05, 1.0): "COMPLETED",
        (1e30, 1.0): "FAILED",
        (0.05, 4.0): "FAILED",
        (1e30, 4.0): "FAILED",
    }
    _, [parent], children = sweep_runs(tracking.uri)
    assert parent.info.status == "FINISHED"
    reasons = sorted(
        c.data.tags.get("lab.error", "").split(":")[0]
        for c in children
        if c.info.status == "FAILED"
    )
    assert reasons == ["ModelTooBigError", "ModelTooBigError", "NonFiniteLossError"]
    assert [c.info.status for c in children].count("FINISHED") == 1


def test_a_sweep_whose_trials_all_fail_reports_each_reason_and_fails_in_one_line(
    tracking, tmp_path
):
    from lab.tasks.search.orchestration import SweepFailedError

    space = "search.space=[{name: lr, path: train.lr, kind: choice, values: [1.0e+30, 1.0e+31]}]"
    with pytest.raises(SweepFailedError, match="stopped after 2 failed trials in a row") as error:
        search(
            run_config(
                [
                    *SWEEP,
                    "search.tuner=grid",
                    space,
                    "search.max_consecutive_failed_trials=2",
                    "train.schedule=constant",
                    "search.name=doomed",
                    f"search.directory={tmp_path}/tuner",
                    *tracking,
                ]
            )
        )
    client, [parent], children = sweep_runs(tracking.uri)
    assert parent.info.status == "FAILED" and parent.info.run_id in str(error.value)
    rows = list(csv.DictReader(io.StringIO(artifact(client, parent, "trials.csv"))))
    assert [(r["status"], r["reason"].split(":")[0]) for r in rows] == [
        ("FAILED", "NonFiniteLossError")
    ] * 2
    assert "\n" not in str(error.value)


def test_a_sweep_that_completed_no_trial_fails_though_keras_tuner_stopped_short_of_its_limit(
    tracking, tmp_path
):
    """Two trials, both failed, below keras-tuner's limit of 3 in a row: the grid simply ran out,
    and the sweep ended FINISHED with exit 0 (issue 32). It fails, naming the most common reason."""
    from lab.tasks.search.orchestration import SweepFailedError

    space = "search.space=[{name: lr, path: train.lr, kind: choice, values: [1.0e+30, 1.0e+31]}]"
    with pytest.raises(
        SweepFailedError, match=r"every one of its 2 trials failed \(2 of them: NonFiniteLossError"
    ):
        search(
            run_config(
                [
                    *SWEEP,
                    "search.tuner=grid",
                    space,
                    "train.schedule=constant",
                    "search.name=doomed2",
                    f"search.directory={tmp_path}/tuner",
                    *tracking,
                ]
            )
        )
    _, [parent], _ = sweep_runs(tracking.uri)
    assert parent.info.status == "FAILED"


def test_malformed_axis_fails_before_any_run(tracking):
    cfg = run_config(
        [
            *SWEEP,
            "search.space=[{name: w, path: model.widht, kind: choice, values: [1]}]",
            *tracking,
        ]
    )
    with pytest.raises(ConfigValueError, match="axis 'w' cannot set 'model.widht'"):
        search(cfg)
    with pytest.raises(ConfigValueError, match=r"search.space\[s\].when"):
        search(
            run_config(
                [
                    *SWEEP,
                    "search.space=[{name: s, path: model.shortcut, kind: choice, values: [A],"
                    " when: {nothing: [1]}}]",
                    *tracking,
                ]
            )
        )
    assert MlflowClient(tracking.uri).get_experiment_by_name("test") is None


def test_sigkill_mid_trial_then_resume_runs_each_trial_once(tracking, tmp_path):
    """A real sweep process killed with SIGKILL during a trial, then the same command again."""
    command = [
        sys.executable,
        "run.py",
        *SWEEP,
        "search.max_trials=3",
        "search.name=killed",
        "train.epochs=3",
        "data.train_size=1024",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until a trial has finished an epoch
            time.sleep(0.5)
            try:
                _, _, children = sweep_runs(tracking.uri)
            except Exception:
                continue
            if any(c.info.status == "RUNNING" and "loss" in c.data.metrics for c in children):
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    client, [parent], children = sweep_runs(tracking.uri)
    assert parent.info.status == "RUNNING" and "RUNNING" in [c.info.status for c in children]
    [victim] = [c for c in children if c.info.status == "RUNNING"]
    history_at_kill = metric_points(client, victim)

    resumed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client, parents, children = sweep_runs(tracking.uri)
    assert [p.info.run_id for p in parents] == [parent.info.run_id] and parents[
        0
    ].info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.tags["lab.trial"] for c in finished) == [
        "0",
        "1",
        "2",
    ]  # one finished attempt per trial
    [killed] = [c for c in children if c.info.status != "FINISHED"]
    assert killed.info.run_id == victim.info.run_id and killed.info.status == "KILLED"
    # the dead attempt's history is left as it was
    assert metric_points(client, killed) == history_at_kill
    retry = next(c for c in finished if c.data.tags["lab.trial"] == victim.data.tags["lab.trial"])
    assert retry.data.tags["lab.attempt"] == "2" and retry.info.run_name.endswith("-attempt-2")
    for run in children:  # every metric: one point per step
        for key, points in metric_points(client, run).items():
            steps = [step for step, _ in points]
            assert len(steps) == len(set(steps)), (run.info.run_name, key, steps)


def metric_points(client, run):
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def test_executions_per_trial_average_seeded_trainings_nested_in_the_trial(tracking, tmp_path):
    result = search(
        run_config(
            [
                *SWEEP,
                "search.max_trials=2",
                "search.executions_per_trial=2",
                "search.name=twice",
                f"search.directory={tmp_path}/tuner",
                *tracking,
            ]
        )
    )
    client, [parent], children = sweep_runs(tracking.uri)
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    runs = client.search_runs([parent.info.experiment_id], "tags.`lab.role` = 'execution'")
    for child in children:
        executions = sorted(
            (r for r in runs if r.data.tags["lab.parent"] == child.info.run_id),
            key=lambda r: r.data.tags["lab.execution"],
        )
        assert [r.data.tags["mlflow.parentRunId"] for r in executions] == [child.info.run_id] * 2
        seeds = [int(r.data.params["seed"]) for r in executions]
        assert seeds == [seeds[0], seeds[0] + 1]
        scores = [r.data.metrics["best_val_accuracy"] for r in executions]
        row = next(r for r in result.rows if r["trial_id"] == child.data.tags["lab.trial"])
        assert row["best_objective"] == pytest.approx(sum(scores) / 2)
        assert child.data.metrics["objective_mean"] == pytest.approx(sum(scores) / 2)
        curve = client.get_metric_history(child.info.run_id, "val_accuracy")
        per_execution = [r.data.metrics["val_accuracy"] for r in executions]  # one epoch each
        assert [m.value for m in curve] == [pytest.approx(sum(per_execution) / 2)]
        assert child.data.metrics["params_total"] == executions[0].data.metrics["params_total"]


@pytest.mark.core
def test_every_trial_trains_at_the_configured_precision(tracking, tmp_path):
    """clear_session() between trials resets Keras' global dtype policy: each trial sets its own."""
    search(
        run_config(
            [
                *SWEEP,
                "search.max_trials=2",
                "train.precision=mixed_bfloat16",
                "search.name=bf16",
                f"search.directory={tmp_path}/tuner",
                *tracking,
            ]
        )
    )
    _, _, children = sweep_runs(tracking.uri)
    assert [c.data.tags["lab.dtype_policy"] for c in children] == ["mixed_bfloat16"] * 2


def test_a_grid_sweep_over_its_memory_limit_restarts_and_resumes_in_a_fresh_process(
    tracking, tmp_path
):
    """The first trial of a process sets its memory baseline; growth over the limit after a later
    trial restarts it. A reloaded grid oracle must still know where it was in the grid."""
    command = [
        sys.executable,
        "run.py",
        *SWEEP,
        "search.tuner=grid",
        "search.name=restarted",
        "search.space=[{name: seed, path: seed, kind: choice, values: [0, 1, 2]}]",
        "search.restart_after_mib=1",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    finished = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    # after trial 1 only
    assert finished.stdout.count("restarting to resume it in a fresh process") == 1
    client, [parent], children = sweep_runs(tracking.uri)
    assert parent.info.status == "FINISHED"
    assert sorted((c.data.tags["lab.trial"], c.data.params["seed"]) for c in children) == [
        ("0", "0"),
        ("1", "1"),
        ("2", "2"),
    ]
    assert {c.info.status for c in children} == {"FINISHED"}
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "rss_mib")] == [1, 2, 3]


def test_a_finished_grid_run_again_is_reported_whatever_max_trials_allows(
    tracking, tmp_path, capsys
):
    """The ablations' shared base allows 100 trials for grids of 6 to 20 cells: a grid whose every
    cell was tried is finished, and running it again reports it (issue 29: `python run.py` twice)."""
    space = "search.space=[{name: connectivity, path: model.connectivity, kind: choice, values: [plain, residual]}]"
    overrides = [
        *DEFAULT_SPACE_SWEEP,
        space,
        "search.tuner=grid",
        "search.max_trials=100",
        "search.name=grid2",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    first = search(run_config(overrides))
    again = search(run_config(overrides))
    assert (
        len(first.rows) == 2
        and again.rows == first.rows
        and again.parent_run_id == first.parent_run_id
    )
    assert (
        "grid2 had FINISHED: its report, from the records (nothing was changed)"
        in capsys.readouterr().out
    )
    _, parents, children = sweep_runs(tracking.uri)
    assert len(parents) == 1 and len(children) == 2
