"""A sweep with several objectives reports its Pareto set on the parent run: the section of
summary.md, pareto.png, the `hypervolume` curve (one step per trial) and `pareto_size`, and with
`search.register_as` the kept models of the front's members, with an alias per objective.

The sweeps here are written into MLflow directly (a parent, one child run per trial with the
metrics a trial logs), so every figure is known: trials 0, 2, 4 and 7 are on the front of
(val_accuracy max, macs min), trial 1 is dominated by trial 0, trial 3 failed, trial 5 scored
best on both but did not train, trial 6 was pruned."""

import re
import time
from types import SimpleNamespace

import pytest
from conftest import TINY_SPACE
from mlflow.tracking import MlflowClient

from lab.config import run_config
from lab.tasks.search.model_registry import front_aliases
from lab.tasks.search.orchestration import report
from lab.tasks.search.pareto_set import pareto_set
from lab.tasks.search.sweep import Sweep
from lab.tracking.runs import TrackedRun

NAME = "fronts"
TWO = "search.objectives=[{name: val_accuracy, reference: 0.5}, {name: macs}]"
# trial id -> (val_accuracy, macs, connectivity, lr); a second seed's spread on trial 2
SCORED = {
    "0": (0.80, 1e6, "plain", 0.05),
    "1": (0.70, 3e6, "plain", 0.2),  # dominated by trial 0
    "2": (0.90, 4e6, "residual", 0.1),
    "4": (0.895, 2e6, "residual", 0.03),
    "7": (0.60, 5e5, "plain", 0.01),  # on the front, its model not kept
}
STD = {"2": 0.01}


def sweep_config(tracking, *overrides):
    return run_config(
        [
            "task=search",
            "data=synthetic",
            TINY_SPACE,
            f"search.name={NAME}",
            "search.keep_models=null",
            "search.register_as=fronts_model",
            *overrides,
            *tracking,
        ]
    )


def child_run(client, experiment, parent_id, trial, status="FINISHED", **record):
    """A trial's run as a sweep leaves it: its tags, `hp.*` params, metrics and, unless
    `model=False`, an MLflow 3 logged model named `model`."""
    tags = {
        "lab.role": "trial",
        "lab.parent": parent_id,
        "lab.trial": trial,
        "lab.search": NAME,
        "lab.trained": "true",
        "mlflow.parentRunId": parent_id,
        **record.get("tags", {}),
    }
    run = client.create_run(experiment, tags=tags)
    run_id = run.info.run_id
    for key, value in record.get("params", {}).items():
        client.log_param(run_id, key, value)
    now = int(time.time() * 1000)
    for key, value in record.get("metrics", {}).items():
        client.log_metric(run_id, key, value, now, 0)
    if record.get("model", True) and status == "FINISHED":
        client.create_logged_model(
            experiment, name="model", source_run_id=run_id, model_type="keras"
        )
        client.set_tag(run_id, "lab.model_uri", f"runs:/{run_id}/model")
    client.set_terminated(run_id, status)
    return run_id


def scored_metrics(accuracy, macs, std=None):
    metrics = {
        "trial_objective": accuracy,
        "objective.val_accuracy": accuracy,
        "objective.macs": macs,
        "val_accuracy": accuracy,
        "macs": macs,
        "params_total": macs / 100,
        "depth": 8,
    }
    return metrics if std is None else {**metrics, "objective_std.val_accuracy": std}


def hp(connectivity, lr):
    return {"hp.connectivity": connectivity, "hp.lr": str(lr)}


def fake_trial(status, score, values):
    return SimpleNamespace(
        status=status,
        score=score,
        message="boom" if status == "FAILED" else None,
        hyperparameters=SimpleNamespace(values=values, is_active=lambda name: name in values),
    )


def recorded_sweep(cfg):
    """The sweep's parent and its eight trials' runs in the store; a tuner whose oracle holds the
    trials as keras-tuner would."""
    client = MlflowClient(cfg.tracking.uri)
    experiment = client.create_experiment(cfg.tracking.experiment)
    parent_id = client.create_run(
        experiment, tags={"lab.role": "parent", "lab.search": NAME}
    ).info.run_id
    trials = {}
    for trial, (accuracy, macs, connectivity, lr) in SCORED.items():
        child_run(
            client,
            experiment,
            parent_id,
            trial,
            metrics=scored_metrics(accuracy, macs, STD.get(trial)),
            params=hp(connectivity, lr),
            model=trial != "7",
        )
        trials[trial] = fake_trial("COMPLETED", accuracy, {"connectivity": connectivity, "lr": lr})
    child_run(client, experiment, parent_id, "3", "FAILED", params=hp("plain", 0.3))
    trials["3"] = fake_trial("FAILED", None, {"connectivity": "plain", "lr": 0.3})
    child_run(
        client,
        experiment,
        parent_id,
        "5",
        metrics=scored_metrics(0.99, 1e5),
        params=hp("residual", 0.3),
        tags={"lab.trained": "false", "lab.not_trained": "final training loss above chance"},
    )
    trials["5"] = fake_trial("COMPLETED", 0.99, {"connectivity": "residual", "lr": 0.3})
    child_run(
        client,
        experiment,
        parent_id,
        "6",
        metrics={"pruned_objective": 0.3},
        params=hp("plain", 0.02),
        tags={"lab.pruned_at_epoch": "1", "lab.pruned_reason": "below the median"},
        model=False,
    )
    trials["6"] = fake_trial("STOPPED", None, {"connectivity": "plain", "lr": 0.02})
    sweep = Sweep(cfg, None, TrackedRun(client, parent_id, experiment))
    oracle = SimpleNamespace(
        trials=trials, deadline_passed=False, remaining_trials=lambda: 0, deadline=None
    )
    return sweep, SimpleNamespace(oracle=oracle, trial_seconds={})


# The reference: val_accuracy 0.5 (set); macs unset, so the worst scored (4e6) plus a tenth of
# the scored range (4e6 - 5e5 = 3.5e6): 4.35e6. Trial order 0..7, the dominated area by hand:
# 0 (0.80, 1e6):   0.3 x 3.35e6                                          = 1.005e6
# 1 dominated; 2 (0.90, 4e6) adds 0.1 x (4.35e6 - 4e6) = 0.035e6         -> 1.04e6
# 3 failed; 4 (0.895, 2e6) adds (0.895 - 0.8) x (4e6 - 2e6) = 0.19e6     -> 1.23e6
# 5 untrained, 6 pruned: nothing; 7 (0.60, 5e5) adds 0.1 x (1e6 - 5e5)   -> 1.28e6
HISTORY = [1.005e6, 1.005e6, 1.04e6, 1.04e6, 1.23e6, 1.23e6, 1.23e6, 1.28e6]

SECTION = "\n".join(
    [
        "## Pareto set",
        "",
        "Objectives: val_accuracy (max, the ranking one), macs (min). A trial is on the front "
        "when no other scored trial is at least as good on every objective and better on one.",
        "",
        "| trial | val_accuracy (max) | macs (min) | connectivity | lr |",
        "|---|---|---|---|---|",
        "| 2 | 0.9000 ± 0.0100 | 4,000,000 | residual | 0.1 |",
        "| 4 | 0.8950 | 2,000,000 | residual | 0.03 |",
        "| 0 | 0.8000 | 1,000,000 | plain | 0.05 |",
        "| 7 | 0.6000 | 500,000 | plain | 0.01 |",
        "",
        "4 of 5 scored trials on the front (8 trials in all).",
        "",
        "Hypervolume 1.28e+06 after the last trial (the parent's metric `hypervolume`, one step "
        "per trial), from the reference point val_accuracy = 0.5000 (search.objectives), "
        "macs = 4,350,000 (default: the worst scored value, a tenth of the range further).",
        "",
        "",
    ]
)


def test_the_front_leaves_out_the_dominated_untrained_failed_and_pruned_trials(tracking):
    cfg = sweep_config(tracking, TWO)
    sweep, _ = recorded_sweep(cfg)
    pareto = pareto_set(cfg.search, sweep.children(), [str(i) for i in range(8)])
    assert [t.trial_id for t in pareto.scored] == ["0", "1", "2", "4", "7"]
    assert [t.trial_id for t in pareto.front] == ["2", "4", "0", "7"]  # best val_accuracy first
    assert pareto.front[0].stds == (0.01, None) and pareto.front[0].axis("lr") == "0.1"
    assert pareto.reference == pytest.approx([0.5, 4.35e6])
    assert pareto.history == pytest.approx(HISTORY)
    one = sweep_config(tracking)  # one objective: no Pareto set
    assert pareto_set(one.search, sweep.children()) is None


def reduced(trial_id, values):
    """A scored trial's run, reduced to what the Pareto set reads."""
    return SimpleNamespace(
        info=SimpleNamespace(status="FINISHED"),
        data=SimpleNamespace(
            metrics={
                "trial_objective": values["val_accuracy"],
                **{f"objective.{name}": value for name, value in values.items()},
            },
            tags={"lab.trial": trial_id},
            params={},
        ),
    )


def test_with_both_references_set_the_hypervolume_grows_by_the_rectangles_each_trial_adds():
    cfg = run_config(
        [
            "task=search",
            "search.objectives=[{name: val_accuracy, reference: 0.5}, {name: macs, reference: 5e6}]",
        ]
    )
    children = {
        trial: reduced(trial, {"val_accuracy": accuracy, "macs": macs})
        for trial, (accuracy, macs, _, _) in SCORED.items()
    }
    children["3"] = reduced("3", {"val_accuracy": 0.95})  # no objective.macs: left out, said
    pareto = pareto_set(cfg.search, children)
    # 0: 0.3 x 4e6 = 1.2e6; 2 adds 0.1 x 1e6; 4 adds 0.095 x 2e6 = 0.19e6; 7 adds 0.1 x 5e5
    assert pareto.history == pytest.approx([1.2e6, 1.2e6, 1.3e6, 1.3e6, 1.49e6, 1.54e6])
    assert pareto.reference == [0.5, 5e6] and pareto.unscored == ["3"]


def test_a_two_objective_sweep_reports_its_pareto_set_on_the_parent(tracking, capsys):
    cfg = sweep_config(tracking, TWO)
    sweep, tuner = recorded_sweep(cfg)
    result = report(tuner, sweep)
    client, parent_id = sweep.parent.client, sweep.parent.run_id
    summary = open(client.download_artifacts(parent_id, "summary.md")).read()
    assert SECTION + "## Trials" in summary  # after the best trial
    assert summary.index("\nBest: trial ") < summary.index(SECTION)
    # the trained best, as the parent's tag names it: trial 5 scored 0.99 without training
    assert "\nBest: trial 2, val_accuracy = 0.9000\n" in summary
    assert client.get_run(parent_id).data.tags["lab.best_trial"] == "2"

    assert "pareto.png" in result.figures
    with open(client.download_artifacts(parent_id, "pareto.png"), "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    curve = sorted(client.get_metric_history(parent_id, "hypervolume"), key=lambda m: m.step)
    assert [m.step for m in curve] == list(range(1, 9))
    assert [m.value for m in curve] == pytest.approx(HISTORY)
    assert client.get_run(parent_id).data.metrics["pareto_size"] == 4

    # Registered: the front's kept models (trial 7 kept none), an alias per objective, and the
    # cheapest within a point of the best accuracy (4: 0.895 >= 0.90 - 0.01).
    registry = MlflowClient(cfg.tracking.uri, registry_uri=cfg.tracking.uri)
    versions = registry.search_model_versions("name = 'fronts_model'")
    assert sorted(v.tags["lab.trial"] for v in versions) == ["0", "2", "4"]
    aliases = {
        alias: registry.get_model_version_by_alias("fronts_model", alias).tags["lab.trial"]
        for alias in ("best", "best_val_accuracy", "best_macs", "best_macs_within_1pt")
    }
    assert aliases == {
        "best": "2",
        "best_val_accuracy": "2",
        "best_macs": "0",
        "best_macs_within_1pt": "4",
    }
    cheap = registry.get_model_version_by_alias("fronts_model", "best_macs").tags
    assert (cheap["lab.objective.macs"], cheap["lab.objective.val_accuracy"]) == ("1e+06", "0.8")
    assert cheap["lab.search"] == NAME and cheap["lab.objective"] == "val_accuracy"
    best = registry.get_model_version_by_alias("fronts_model", "best")
    assert client.get_run(parent_id).data.tags["lab.registered_model"] == (
        f"models:/fronts_model/{best.version}"
    )
    printed = capsys.readouterr().out
    assert "search.register_as=fronts_model: Pareto set trial(s) 7 not registered" in printed
    assert "@best_macs_within_1pt = trial 4" in printed


def test_a_one_objective_sweep_reports_as_before(tracking, capsys):
    cfg = sweep_config(tracking)
    sweep, tuner = recorded_sweep(cfg)
    result = report(tuner, sweep)
    client, parent_id = sweep.parent.client, sweep.parent.run_id
    summary = open(client.download_artifacts(parent_id, "summary.md")).read()
    assert re.search(r"\nBest: trial \d, val_accuracy = 0\.\d{4}\n\n## Trials", summary)
    assert "Pareto" not in summary and "pareto.png" not in result.figures
    assert client.get_metric_history(parent_id, "hypervolume") == []
    assert "pareto_size" not in client.get_run(parent_id).data.metrics
    registry = MlflowClient(cfg.tracking.uri, registry_uri=cfg.tracking.uri)
    [version] = registry.search_model_versions("name = 'fronts_model'")
    assert version.tags["lab.trial"] == "2" and "lab.objective.macs" not in version.tags
    assert registry.get_model_version_by_alias("fronts_model", "best").version == version.version
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"registered the best trial's model as models:/fronts_model@best (version {version.version})"
        )
    )


def member(trial_id, *values):
    return SimpleNamespace(trial_id=trial_id, values=values)


def test_within_a_point_of_a_loss_is_within_one_percent_of_the_best():
    loss = run_config(["task=search", "search.objectives=[{name: val_loss}, {name: params_total}]"])
    front = [member("3", 0.300, 9e6), member("1", 0.302, 5e6), member("8", 0.31, 1e6)]
    pareto = SimpleNamespace(objectives=loss.search.objective_list(), front=front)
    assert front_aliases(pareto, front) == {
        "best": "3",
        "best_val_loss": "3",
        "best_params_total": "8",
        "best_params_total_within_1pt": "1",  # 0.302 <= 0.300 x 1.01; 0.31 is not
    }
    assert front_aliases(pareto, []) == {}


def test_the_figure_has_one_panel_per_other_objective_and_a_step_line_for_two():
    from lab.tasks.search import plots

    three = run_config(
        [
            "task=search",
            "search.objectives=[{name: val_accuracy}, {name: macs}, {name: params_total}]",
        ]
    )
    children = {
        trial: reduced(trial, {"val_accuracy": a, "macs": m, "params_total": m / 100})
        for trial, (a, m, _, _) in SCORED.items()
    }
    pareto = pareto_set(three.search, children)
    groups = {t.trial_id: "g" for t in pareto.scored}
    figure = plots.pareto_figure(pareto, groups, "hp.connectivity")
    assert [ax.get_xlabel() for ax in figure.axes] == ["macs (min)", "params_total (min)"]
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    assert "Pareto front" not in labels  # no staircase in a projection of a 3-D front

    two = plots.pareto_figure(
        pareto_set(run_config(["task=search", TWO]).search, children), groups, "hp.connectivity"
    )
    [ax] = two.axes
    [steps] = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert steps.get_drawstyle() == "steps-post"
    assert list(steps.get_xdata()) == [5e5, 1e6, 2e6, 4e6]  # the front by macs


def test_the_fronts_members_keep_their_models_beyond_the_best_by_the_first_objective(tracking):
    """keep_models=1 keeps trial 2 (the best accuracy) and every front member with a model (4 and
    0; 7 has none); the dominated trial 1 is not kept. (One objective: tests/test_models_kept.py.)"""
    sweep, _ = recorded_sweep(sweep_config(tracking, TWO, "search.keep_models=1"))
    assert sweep.kept_models() == ["2", "4", "0"]
