"""Rough edges (issue 32): each is one line naming what was wrong, exit 2, no traceback, nothing
changed, and (where the check needs none) before any framework loads."""

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from lab.config import PROJECT_ROOT, run_config
from lab.errors import ConfigValueError, LabError
from run import with_named_entries

NOT_A_STORE = b"this is not an SQLite database, though it is named like one\n" * 4

# (arguments, what the error names); {store} is a file that is not a database.
CASES = [
    (["task=train", "seed=-1"], "seed must be an integer from 0 to 2**32 - 1"),
    (["task=train", "tracking.uri=ftp://127.0.0.1:1/store"], "'ftp' is no store MLflow opens"),
    (["task=report", "tracking.uri=sqlite:///{store}"], "is not an SQLite database"),
    (
        ["task=list", "list.trained=true", "list.name=lenet5", "tracking.uri=sqlite:///{store}"],
        "is not an SQLite database",
    ),
    (
        ["task=train", "from_run=0123456789abcdef", "tracking.uri=sqlite:///{store}"],
        "MLflow cannot open it",
    ),
    (
        [
            "experiment=plain_vs_residual",
            "quick=true",
            "task=plan",
            "search.space.sed.values=[5,6]",
        ],
        "search.space has no entry named 'sed'",
    ),
]


@pytest.mark.parametrize("arguments, named", CASES, ids=lambda case: str(case)[:40])
def test_a_rough_edge_is_one_line_and_exit_2_before_any_framework(arguments, named, tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_bytes(NOT_A_STORE)
    command = [
        sys.executable,
        str(PROJECT_ROOT / "run.py"),
        *[a.replace("{store}", str(store)) for a in arguments],
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, (result.stdout[-1000:], result.stderr[-2000:])
    assert named in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "oneDNN" not in result.stderr  # TensorFlow never loaded
    assert store.read_bytes() == NOT_A_STORE and {p.name for p in tmp_path.iterdir()} <= {
        "hydra",
        "mlflow.db",
    }


def test_a_named_list_entry_on_the_command_line_means_what_it_means_in_an_experiment_file():
    arguments = [
        "experiment=plain_vs_residual",
        "quick=true",
        "search.space.seed.values=[5,6]",
        "train.epochs=2",
    ]
    assert with_named_entries(arguments) == [
        *arguments[:2],
        "search.space.1.values=[5,6]",
        "train.epochs=2",
    ]
    cfg = run_config(with_named_entries(arguments))
    # the command line wins over quick mode
    assert cfg.search.space[1].values == [5, 6] and cfg.train.epochs == 2
    with pytest.raises(ConfigValueError, match="has no entry named 'sed'"):
        with_named_entries(["experiment=plain_vs_residual", "search.space.sed.values=[5]"])


def test_register_as_refuses_a_name_that_holds_another_sweeps_models_before_training(tmp_path):
    from lab.tasks.preflight import preflight

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("shared")
    client.create_model_version("shared", str(tmp_path), tags={"lab.search": "other_sweep"})
    cfg = run_config(
        [
            "task=search",
            "data=synthetic",
            "search.name=mine",
            "search.register_as=shared",
            f"tracking.uri={uri}",
        ]
    )
    with pytest.raises(LabError, match="already holds the models of sweep other_sweep"):
        preflight(cfg)
    assert client.get_registered_model("shared").aliases == {}  # nothing moved
    preflight(
        run_config(
            [
                "task=search",
                "data=synthetic",
                "search.name=other_sweep",
                "search.register_as=shared",
                f"tracking.uri={uri}",
            ]
        )
    )  # its own sweep may register again


def test_evaluate_names_a_run_that_holds_no_model_in_one_line(tmp_path):
    from lab.tasks.evaluate import ModelNotFoundError, evaluate

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("no-model"))
    client.set_terminated(run.info.run_id)
    cfg = run_config(
        [
            "task=evaluate",
            f"evaluate.model_uri=runs:/{run.info.run_id}/model",
            f"tracking.uri={uri}",
            "data=synthetic",
            "data.train_size=32",
            "data.test_size=8",
        ]
    )
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        evaluate(cfg)


def test_from_run_does_not_take_the_recorded_runs_compile_cache(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    import lab.config.from_run as retrain
    from lab.config import compose, group_option, group_options

    recorded = compose(["train.compile_cache=/elsewhere/compile_cache"])
    OmegaConf.update(recorded, "tracking.experiment", "theirs", force_add=True)
    monkeypatch.setattr(retrain, "recorded_config", lambda run_id, uri: recorded)
    composed = compose(["from_run=abc"])
    result = retrain.with_recorded_run(composed, ["from_run"], group_options, group_option)
    assert result.train.compile_cache == composed.train.compile_cache != "/elsewhere/compile_cache"
    assert result.tracking.experiment == "theirs"


def test_a_report_folder_that_cannot_be_made_is_one_line_and_a_stopped_report_leaves_no_staging(
    tmp_path,
):
    import os
    import signal
    import time

    from lab.errors import Terminated
    from lab.tasks.report.build import written_whole
    from lab.tracking.runs import sigterm_raises

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(LabError, match=r"report.out=.*a-file/report cannot be written"):
        written_whole(blocker / "report", lambda folder: None)

    def stopped_half_way(folder):
        (folder / "report.md").write_text("half a report")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    with sigterm_raises(), pytest.raises(Terminated):
        written_whole(tmp_path / "report", stopped_half_way)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # no report, no staging folder


def test_a_report_over_runs_that_all_failed_says_so_not_that_the_metric_is_missing():
    from types import SimpleNamespace

    from lab.tasks.report.build import check_reportable
    from lab.tasks.report.collect import ReportInputError

    collected = SimpleNamespace(
        uri="sqlite:///s.db",
        experiments=["lab"],
        metrics_seen=set(),
        runs=[SimpleNamespace(status="FAILED")] * 3 + [SimpleNamespace(status="KILLED")],
    )
    report = run_config(["task=report"]).report
    with pytest.raises(
        ReportInputError, match=r"none of the 4 training runs .* finished \(FAILED 3, KILLED 1\)"
    ):
        check_reportable(collected, report)


def test_a_full_disk_is_one_line_not_a_traceback(monkeypatch, capsys):
    import errno

    import run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/mlruns/1/model.keras")

    monkeypatch.setattr(run, "main", full)
    monkeypatch.setattr(run, "with_named_entries", lambda arguments: arguments)
    assert run.run() == run.BAD_INPUT
    err = capsys.readouterr().err
    assert (
        err.startswith("error: no space left on the device writing /data/mlruns/1/model.keras")
        and err.count("\n") == 1
    )

    def sqlite_full():
        try:
            raise OSError("sqlite3.OperationalError: database or disk is full")
        except OSError as error:
            raise RuntimeError("(sqlalchemy.exc.OperationalError) wrapped by MLflow") from error

    monkeypatch.setattr(run, "main", sqlite_full)
    assert run.run() == run.BAD_INPUT and "database or disk is full" in capsys.readouterr().err
    monkeypatch.setattr(
        run, "main", lambda: (_ for _ in ()).throw(OSError(errno.EACCES, "Permission denied"))
    )
    with pytest.raises(PermissionError):  # any other OSError is a bug to see whole
        run.run()


def test_a_read_only_task_never_writes_mlflows_tables_into_another_programs_database(tmp_path):
    import sqlite3

    from lab.tracking.store import TrackingStoreError, check_readable_store

    other = tmp_path / "accounts.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE accounts (name TEXT)")
    before = other.read_bytes()
    with pytest.raises(TrackingStoreError, match="is not an MLflow store"):
        check_readable_store(f"sqlite:///{other}")
    assert other.read_bytes() == before


def test_from_run_of_a_run_in_a_deleted_experiment_is_one_line_unless_another_is_named(
    tmp_path, monkeypatch
):
    from omegaconf import OmegaConf

    import lab.config.from_run as retrain
    from lab.config import compose, group_option, group_options

    recorded = compose([])
    OmegaConf.update(recorded, "tracking.experiment", "gone", force_add=True)
    OmegaConf.update(recorded, "tracking.experiment_deleted", True, force_add=True)
    monkeypatch.setattr(retrain, "recorded_config", lambda run_id, uri: recorded)
    with pytest.raises(retrain.RunNotFoundError, match="in the deleted experiment 'gone'"):
        retrain.with_recorded_run(
            compose(["from_run=abc"]), ["from_run"], group_options, group_option
        )
    named = retrain.with_recorded_run(
        compose(["from_run=abc", "tracking.experiment=here"]),
        ["from_run", "tracking.experiment"],
        group_options,
        group_option,
    )
    assert named.tracking.experiment == "here"
