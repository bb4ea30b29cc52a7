"""`task=report`: runs pooled by `lab.spec_hash` across experiments, with exact means and
intervals; every run that does not count listed with why; an ablation's verdicts recomputed from
its trials.csv; the report written whole and logged to the experiment `reports`; bad input in one
line with exit 2 and no half report. Runs are logged directly (their tags, params and metrics as
the lab writes them) except in the last test, which reads the real sweep `kept`."""

from __future__ import annotations

import csv
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser import PNG_SIGNATURE, artifacts_folder, headless_chromium
from conftest import USES_KEPT_SWEEP, kept_at
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lab.config import run_config
from lab.config.overrides import config_yaml
from lab.errors import LabError
from lab.tasks.report.build import build_report
from lab.tasks.report.collect import ReportInputError, read_store
from lab.tasks.report.pool import pooled_rows
from lab.tasks.search.summary import to_csv
from lab.tracking.tags import SPEC_HASH_TAG
from lab.verdicts.ablation import verdicts

PROJECT_ROOT = Path(__file__).resolve().parents[1]
T_975_2DF = 4.302652729749462  # Student's t, 97.5th percentile, 2 degrees of freedom (scipy.stats.t.ppf(0.975, 2))


def log_run(
    client,
    experiment_id: str,
    spec: str,
    accuracy,
    seed: int = 0,
    variant: str = "resnet20",
    status: str = "FINISHED",
    tags=None,
    metrics=None,
    params=None,
) -> str:
    """A training run as `fit_and_evaluate` records it: spec hash, device and trained tags; the
    model, data and seed params; the final metrics."""
    all_tags = {SPEC_HASH_TAG: spec, "lab.device": "cpu", "lab.trained": "true", **(tags or {})}
    run = client.create_run(experiment_id, tags=all_tags)
    run_id = run.info.run_id
    values = {
        "params_total": 271_098,
        "macs": 40_551_424,
        "activation_bytes": 2_359_296,
        "best_epoch": 3,
        "epochs_trained": 4,
        "epoch_seconds_median": 2.5,
        **({"test_accuracy": accuracy} if accuracy is not None else {}),
        **(metrics or {}),
    }
    logged = {
        "model.name": variant,
        "model.family": "resnet",
        "data.name": "fashion_mnist",
        "seed": str(seed),
        "train.epochs": "4",
        **(params or {}),
    }
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), 0, 0) for k, v in values.items()],
        params=[Param(k, str(v)) for k, v in logged.items()],
    )
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture
def store(tmp_path, empty_store):
    """Two experiments: network `aaa` trained with seeds 0 and 1 in one and seed 2 in the other,
    `bbb` (the same variant under another protocol) once, and five runs that must not count."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    first, second = (
        client.create_experiment("plain_vs_residual"),
        client.create_experiment("deep_vs_wide"),
    )
    log_run(client, first, "aaa", 0.80, seed=0)
    log_run(client, first, "aaa", 0.84, seed=1)
    log_run(client, second, "aaa", 0.82, seed=2)
    log_run(client, second, "bbb", 0.90, seed=0, params={"train.epochs": "30"})
    log_run(
        client, first, "aaa", 0.99, seed=3, status="FAILED", tags={"lab.error": "ValueError: boom"}
    )
    log_run(client, first, "aaa", 0.98, seed=4, status="KILLED")
    log_run(
        client,
        first,
        "aaa",
        0.97,
        seed=5,
        tags={"lab.pruned_at_epoch": "1", "lab.pruned_reason": "pruned at epoch 1"},
    )
    log_run(
        client,
        second,
        "aaa",
        0.10,
        seed=6,
        tags={"lab.trained": "false", "lab.not_trained": "loss above chance"},
    )
    log_run(client, second, "aaa", None, seed=7)
    client.create_run(first, tags={"lab.task": "evaluate"})  # not a training run
    return uri


def report_cfg(uri: str, *overrides: str):
    return run_config(["task=report", f"tracking.uri={uri}", *overrides])


def test_runs_pool_by_what_they_trained_across_experiments_with_exact_means_and_intervals(store):
    collected = read_store(store, None, None, "test_accuracy")
    rows = pooled_rows(collected.runs, "test_accuracy")
    assert [(row.spec_hash, row.n) for row in rows] == [("bbb", 1), ("aaa", 3)]  # best first
    aaa = rows[1]
    # (0.80 + 0.84 + 0.82) / 3 = 0.82; deviations -0.02, +0.02, 0: std = sqrt(0.0008 / 2) = 0.02
    assert aaa.mean == pytest.approx(0.82, abs=1e-15) and aaa.std == pytest.approx(0.02, abs=1e-15)
    half = T_975_2DF * 0.02 / math.sqrt(3)
    assert (aaa.low, aaa.high) == (
        pytest.approx(0.82 - half, abs=1e-15),
        pytest.approx(0.82 + half, abs=1e-15),
    )
    assert aaa.experiments == ("deep_vs_wide", "plain_vs_residual") and aaa.devices == ("cpu",)
    assert (aaa.params, aaa.macs, aaa.best_epoch, aaa.wall_per_epoch) == (
        271_098,
        40_551_424,
        3,
        2.5,
    )
    assert math.isnan(rows[0].std) and not rows[0].has_interval
    assert [row.variant for row in rows] == [
        "resnet20 [bbb]",
        "resnet20 [aaa]",
    ]  # one name, two networks
    reasons = sorted((run.seed, run.left_out) for run in collected.runs if run.left_out)
    assert reasons == [
        (3, "FAILED: ValueError: boom"),
        (4, "KILLED"),
        (5, "pruned at epoch 1"),
        (6, "did not train: loss above chance"),
        (7, "logged no test_accuracy"),
    ]
    assert collected.other_runs == 1


def test_reading_a_store_makes_one_run_query_per_experiment_and_none_per_run(store, monkeypatch):
    calls = {"search_runs": 0, "get_run": 0, "get_metric_history": 0}

    def counted(name):
        original = getattr(MlflowClient, name)

        def call(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)

        return call

    for name in calls:
        monkeypatch.setattr(MlflowClient, name, counted(name))
    collected = read_store(store, None, None, "test_accuracy")
    # Default, deep_vs_wide, plain_vs_residual
    assert len(collected.runs) == 9 and len(collected.experiments) == 3
    assert calls == {"search_runs": 3, "get_run": 0, "get_metric_history": 0}


def test_a_report_is_written_whole_and_logged_to_the_experiment_reports(store, tmp_path):
    result = build_report(
        report_cfg(
            store, f"report.out={tmp_path / 'out'}", "report.experiments=[plain_vs_residual]"
        )
    )
    folder = tmp_path / "out"
    assert result.folder == folder
    names = {path.name for path in folder.iterdir()}
    assert {
        "report.md",
        "report.csv",
        "report.html",
        "metric_vs_macs.png",
        "metric_vs_wall_time.png",
    } <= names
    with open(folder / "report.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [(row["spec_hash"], row["n"], float(row["mean"])) for row in table] == [
        ("aaa", "2", pytest.approx(0.82))
    ]
    # numbers in [0, 1]
    assert all(0 <= float(row[key]) <= 1 for row in table for key in ("ci95_low", "ci95_high"))
    text = (folder / "report.md").read_text()
    assert (
        "FAILED: ValueError: boom" in text
        and "pruned at epoch 1" in text
        and "deep_vs_wide" not in text
    )
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert (
        client.get_experiment(run.info.experiment_id).name == "reports"
        and run.data.tags["lab.task"] == "report"
    )
    assert {a.path for a in client.list_artifacts(result.run_id)} == names
    # the reports experiment is not read back
    again = build_report(report_cfg(store, f"report.out={tmp_path / 'again'}"))
    assert [row.n for row in again.rows] == [1, 3]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["report.experiments=[plain_vs_residal]"],
            "report.experiments names plain_vs_residal, which",
        ),
        (["report.metric=test_acuracy"], "report.metric=test_acuracy: no run in"),
        (["report.data=cifar10"], "no training runs on data cifar10 in"),
    ],
)
def test_bad_input_names_what_was_wrong_and_writes_no_report(store, tmp_path, overrides, message):
    with pytest.raises(ReportInputError, match=message.replace("[", r"\[")):
        build_report(report_cfg(store, f"report.out={tmp_path / 'out'}", *overrides))
    assert not (tmp_path / "out").exists()


def test_an_error_while_writing_leaves_no_half_report(store, tmp_path, monkeypatch):
    import lab.tasks.report.page

    def broken(*args, **kwargs):
        (args[2] / "report.html").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(lab.tasks.report.page, "write_html", broken)
    # one line (issue 32)
    with pytest.raises(LabError, match=r"report.out=.*out cannot be written: disk full"):
        build_report(report_cfg(store, f"report.out={tmp_path / 'out'}"))
    assert list(tmp_path.iterdir()) == [
        tmp_path / "mlflow.db"
    ]  # neither the folder nor its staging copy


def logged(
    client, experiment_id: str, tags, params, metrics=None, status="FINISHED", start=0, seconds=1.0
) -> str:
    """A run with exactly these tags, params and final metrics, from `start` (ms) for `seconds`."""
    run = client.create_run(experiment_id, start_time=1_000_000 + start, tags=tags)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id, status, end_time=1_000_000 + start + int(seconds * 1000))
    return run.info.run_id


def test_a_seed_counts_once_and_executions_and_rungs_are_read_through_the_runs_above_them(
    tmp_path, empty_store
):
    """A trial of two executions killed after its first, then retried; a Hyperband rung that
    continued another; a bench run and a NaN run of the same network."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("sweeps")
    # reported nothing: no trials.csv
    parent = logged(client, exp, {"lab.role": "parent", "lab.search": "s"}, {})
    described = {
        "model.name": "resnet20",
        "model.family": "resnet",
        "data.name": "synthetic",
        "hp.lr": 0.1,
        "hp.tuner/epochs": 3,
        "hp.tuner/bracket": 0,
        "search.space.0.name": "lr",
        "search.space.0.path": "train.lr",
    }
    trial = {"lab.role": "trial", "lab.parent": parent, "lab.trial": "0", "lab.device": "cpu"}
    killed = logged(client, exp, trial, described, status="KILLED", start=0)
    retried = logged(client, exp, trial, described, start=10_000)
    execution = {
        "lab.role": "execution",
        "lab.trial": "0",
        SPEC_HASH_TAG: "ccc",
        "lab.trained": "true",
    }
    first = logged(
        client,
        exp,
        {**execution, "lab.parent": killed},
        {"seed": 0},
        {"test_accuracy": 0.70},
        start=1,
    )
    again = logged(
        client,
        exp,
        {**execution, "lab.parent": retried},
        {"seed": 0},
        {"test_accuracy": 0.72},
        start=10_001,
    )
    other = logged(
        client,
        exp,
        {**execution, "lab.parent": retried},
        {"seed": 1},
        {"test_accuracy": 0.74},
        start=20_000,
    )
    logged(
        client,
        exp,
        {SPEC_HASH_TAG: "ccc", "lab.task": "bench", "lab.trained": "true"},
        {**described, "seed": 2},
        {"test_accuracy": 0.99},
    )
    logged(
        client,
        exp,
        {SPEC_HASH_TAG: "ccc", "lab.trained": "true"},
        {**described, "seed": 3},
        {"test_accuracy": math.nan},
    )
    rung = {"lab.role": "trial", "lab.parent": parent, "lab.device": "cpu", "lab.trained": "true"}
    logged(
        client,
        exp,
        {**rung, "lab.trial": "1", SPEC_HASH_TAG: "r1"},
        {**described, "seed": 0},
        {"test_accuracy": 0.6},
        seconds=10,
    )
    logged(
        client,
        exp,
        {**rung, "lab.trial": "2", SPEC_HASH_TAG: "r2", "lab.continued_from": "1"},
        {**described, "seed": 0},
        {"test_accuracy": 0.8},
        start=30_000,
        seconds=5,
    )

    collected = read_store(uri, None, None, "test_accuracy")
    rows = {row.spec_hash: row for row in pooled_rows(collected.runs, "test_accuracy")}
    # No Hyperband bookkeeping (tuner/epochs) in the name; the hash tells apart three networks of one name.
    assert (rows["ccc"].n, rows["ccc"].mean, rows["ccc"].variant) == (
        2,
        pytest.approx(0.73),
        "resnet20 lr=0.1 [ccc]",
    )
    assert rows["ccc"].devices == ("cpu",) and sorted(rows["ccc"].run_ids) == sorted([again, other])
    # the rung with the rung before it
    assert (rows["r1"].wall_per_run, rows["r2"].wall_per_run) == (10.0, 15.0)
    reasons = {run.run_id: run.left_out for run in collected.runs if run.left_out}
    assert reasons[first] == f"seed 0 again: run {again} (the latest) counts"
    assert sorted(reasons.values())[-1] == "test_accuracy is nan" and len(reasons) == 2
    assert collected.other_runs == 3  # the two trial runs above their executions, the bench run
    assert collected.sweep_notes == [
        f"sweep s (sweeps, run {parent}): no trials.csv or config.yaml (a sweep writes "
        "trials.csv when it reports: still running, or stopped before)"
    ]
    assert [row.spec_hash for row in pooled_rows(collected.runs, "test_loss_is_lower")] == [
        "r1",
        "ccc",
        "r2",
    ]


def test_an_empty_store_exits_2_with_one_line_and_creates_nothing(tmp_path, empty_store):
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "task=report",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"report.out={tmp_path / 'out'}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: no training runs in sqlite:///")
    )
    assert not (tmp_path / "out").exists()
    assert "tensorflow" not in result.stderr.lower()  # the report loads no framework


def ablation_rows():
    """plain_vs_residual's grid, 4 variants x 5 seeds, as trials.csv rows: plain56 trains worse
    than plain20 (degradation), resnet56 better than plain56 and as well as resnet20."""
    base = {"plain20": 0.10, "resnet20": 0.08, "plain56": 0.30, "resnet56": 0.07}
    rows, noise = [], random.Random(0)
    for index, (variant, seed) in enumerate((v, s) for v in base for s in range(5)):
        error = base[variant] + noise.gauss(0, 0.004)
        rows.append(
            {
                "trial_id": str(index),
                "status": "COMPLETED",
                "variant": variant,
                "seed": seed,
                "params_total": 1000,
                "macs": 2000,
                "train_steps": 320,
                "best_epoch": 10,
                "best_objective": 1 - error,
                "train_loss": error,
                "train_error": round(error, 6),
                "test_loss": error,
                "test_error": round(error + 0.02, 6),
                "not_trained": "",
                "wall_seconds": 10.0,
                "reason": "",
            }
        )
    return rows


MAIN_JOB = ["experiment=plain_vs_residual", "quick=true"]


@pytest.fixture
def ablation_store(store):
    """`store` with the parent of a finished plain_vs_residual sweep: its config.yaml and trials.csv."""
    cfg = run_config(MAIN_JOB)
    client = MlflowClient(store)
    parent = client.create_run(
        client.get_experiment_by_name("plain_vs_residual").experiment_id,
        tags={"lab.role": "parent", "lab.search": cfg.search.name, "lab.task": "search"},
    )
    client.log_text(parent.info.run_id, config_yaml(cfg), "config.yaml")
    client.log_text(
        parent.info.run_id,
        to_csv(ablation_rows(), [axis.name for axis in cfg.search.space]),
        "trials.csv",
    )
    client.set_terminated(parent.info.run_id, "FINISHED")
    return store


def test_an_ablation_sweeps_verdicts_are_recomputed_from_its_trials_csv(ablation_store, tmp_path):
    store, cfg, rows = ablation_store, run_config(MAIN_JOB), ablation_rows()
    collected = read_store(store, ["plain_vs_residual"], None, "test_accuracy")
    (sweep,) = collected.sweeps
    expected = verdicts(rows, cfg.search.ablation, cfg.search.direction)
    assert [(v.verdict, v.outcome, v.p_holm, v.difference.mean) for v in sweep.verdicts] == [
        (v.verdict, v.outcome, pytest.approx(v.p_holm), pytest.approx(v.difference.mean))
        for v in expected
    ]
    assert [v.outcome for v in sweep.verdicts] == ["reproduced"] * 4
    result = build_report(report_cfg(store, f"report.out={tmp_path / 'out'}"))
    text = (result.folder / "report.md").read_text()
    assert f"## Ablation: {cfg.search.name}" in text and cfg.search.ablation.source in text
    assert (result.folder / f"forest_1_{cfg.search.name}.png").stat().st_size > 10_000
    assert "depth:connectivity" in text  # the degradation problem is that interaction


@USES_KEPT_SWEEP
def test_the_report_of_a_real_sweep_reads_every_trial_and_says_why_its_untrained_ones_do_not_count(
    kept_sweep, tmp_path
):
    """The sweep `kept` (two one-epoch trials on 64 synthetic images) trained nothing: its trials
    are read with what they trained and left out with the reason their runs were tagged with."""
    root = tmp_path / "kept"
    shutil.copytree(kept_sweep, root)  # the report logs a run: never into the shared record
    uri = kept_at(root)[0].split("=", 1)[1]
    client = MlflowClient(uri)
    trials = {
        run.info.run_id: run
        for run in client.search_runs([e.experiment_id for e in client.search_experiments()])
        if run.data.tags.get("lab.role") == "trial"
    }
    result = build_report(report_cfg(uri, f"report.out={tmp_path / 'out'}"))
    assert len(trials) == 2 and sorted(run.run_id for run in result.collected.runs) == sorted(
        trials
    )
    for record in result.collected.runs:
        run = trials[record.run_id]
        assert record.spec_hash == run.data.tags[SPEC_HASH_TAG] and record.family == "resnet"
        assert (
            record.params == run.data.metrics["params_total"]
            and record.metric == run.data.metrics["test_accuracy"]
        )
        values = " ".join(
            f"{key[3:]}={value}"
            for key, value in sorted(run.data.params.items())
            if key.startswith("hp.") and key != "hp.seed"
        )
        assert record.variant == f"resnet20 {values}" and record.sweep == "kept"
        assert record.left_out == f"did not train: {run.data.tags['lab.not_trained']}"
    assert result.rows == [] and [sweep.name for sweep in result.collected.sweeps] == ["kept"]
    assert "did not train: final training loss" in (result.folder / "report.md").read_text()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")  # one Chromium at a time, with test_browser.py's
def test_the_report_page_renders_in_chromium_with_every_figure_and_row(ablation_store, tmp_path):
    result = build_report(report_cfg(ablation_store, f"report.out={tmp_path / 'out'}"))
    with headless_chromium(1400, 1000) as chromium:
        chromium.get((result.folder / "report.html").as_uri())
        WebDriverWait(chromium, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        images = chromium.find_elements(By.TAG_NAME, "img")
        drawn = {
            image.get_attribute("alt"): chromium.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", image
            )
            for image in images
        }
        assert (
            sorted(drawn) == sorted(path.name for path in result.folder.glob("*.png"))
            and len(drawn) == 3
        )
        assert all(width > 500 for width in drawn.values()), drawn
        table = "//section[h2[.='Every network trained']]//table[@class='report-table']/tbody/tr"
        assert len(chromium.find_elements(By.XPATH, table)) == len(result.rows) == 2
        headings = [h.text for h in chromium.find_elements(By.TAG_NAME, "h2")]
        assert "Ablation: plain_vs_residual_quick" in headings and "Runs left out" in headings
        chromium.set_window_size(
            1400, min(12000, chromium.execute_script("return document.body.scrollHeight") + 100)
        )
        shot = artifacts_folder("report") / "report_page.png"
        assert chromium.save_screenshot(str(shot)) and shot.read_bytes().startswith(PNG_SIGNATURE)


def test_a_remote_store_is_checked_reachable_before_anything_is_read():
    from lab.tasks.preflight import preflight
    from lab.tracking.server import TrackingUnreachableError, free_port

    with pytest.raises(TrackingUnreachableError, match="tracking.uri=http://127.0.0.1"):
        preflight(report_cfg(f"http://127.0.0.1:{free_port()}"))
