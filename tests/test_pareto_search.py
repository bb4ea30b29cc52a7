"""A sweep with several objectives (accuracy, MACs, latency) under `search.tuner=optuna`, for
real: distributed (a chief and a worker), its chief killed mid-sweep and restarted; its parent
run shows the Pareto set. Every process is a real `python run.py`, bounded in time.
tests/test_optuna_oracle.py drives the oracle itself through the same events, without training."""

import json
import signal
from pathlib import Path

import optuna
import pytest
from conftest import FAST_TRAIN, TINY_RESNET
from mlflow.tracking import MlflowClient
from test_distributed import finish, no_process_left_behind, start, wait_for

from lab.tasks.search.optuna_oracle import STUDY_FILE
from lab.tracking.server import free_port

__all__ = ["no_process_left_behind"]  # the fixture, used here by its autouse

TRIALS = 4


def sweep_args(tmp_path: Path, name: str, *extra) -> list:
    return [
        "task=search",
        "data=synthetic",
        "data.train_size=256",
        "data.test_size=64",
        *TINY_RESNET,
        "train.epochs=2",
        *FAST_TRAIN,
        "search.tuner=optuna",
        f"search.max_trials={TRIALS}",
        "search.objectives=[{name: val_accuracy}, {name: macs}]",
        "search.space=[{name: connectivity, path: model.connectivity, values: [plain, residual]},"
        " {name: blocks, path: 'model.stages.*.blocks', kind: int, min: 1, max: 2},"
        " {name: lr, path: train.lr, values: [0.05, 0.1]}]",
        f"search.name={name}",
        f"search.directory={tmp_path}/tuner",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"tracking.experiment={name}",
        *extra,
    ]


def runs_of(tmp_path: Path, name: str, role: str) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.data.tags.get("lab.role") == role]


def study_of(tmp_path: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "tuner" / name / STUDY_FILE))
    )
    return optuna.load_study(study_name=name, storage=storage)


def assert_front_on_parent(tmp_path: Path, name: str, objectives=("val_accuracy", "macs")) -> None:
    """Every trial trained once; the study learnt each one's recorded objectives; the parent has
    the Pareto set (summary.md's section, pareto.png, the hypervolume)."""
    children = [c for c in runs_of(tmp_path, name, "trial") if c.info.status == "FINISHED"]
    assert sorted(c.data.tags["lab.trial"] for c in children) == [str(t) for t in range(TRIALS)]
    numbers = json.loads((tmp_path / "tuner" / name / "oracle.json").read_text())["optuna_numbers"]
    study = {t.number: t for t in study_of(tmp_path, name).trials}
    for child in children:
        told = study[numbers[child.data.tags["lab.trial"]]]
        metrics = child.data.metrics
        assert told.values == [metrics[f"objective.{o}"] for o in objectives]
    [parent] = runs_of(tmp_path, name, "parent")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto.png", "summary.md"} <= artifacts
    summary = Path(client.download_artifacts(parent.info.run_id, "summary.md")).read_text()
    assert "## Pareto set" in summary
    history = client.get_metric_history(parent.info.run_id, "hypervolume")
    assert sorted(m.step for m in history) == list(range(1, TRIALS + 1))


def test_a_distributed_two_objective_sweep_survives_its_chief_killed_and_ends_in_its_front(
    tmp_path,
):
    """The study lives with the chief's oracle: the chief is SIGKILLed once a trial has finished
    and another is training, and restarted; the worker goes on, and every trial is told to the
    study once, with what its run recorded (a measured latency among the objectives)."""
    name = "spread"
    three = "search.objectives=[{name: val_accuracy}, {name: macs}, {name: latency_ms}]"
    args = sweep_args(
        tmp_path,
        name,
        f"search.distributed.address=127.0.0.1:{free_port()}",
        three,
        "search.latency_batch=16",
        "search.latency_repeats=5",
        "train.epochs=3",
    )
    logs = [tmp_path / "chief.log", tmp_path / "worker0.log", tmp_path / "chief-again.log"]
    chief = start(args, logs[0], "chief")
    worker = start(args, logs[1], "worker", "search.distributed.worker_index=0")

    def one_finished_and_one_running():
        states = [c.info.status for c in runs_of(tmp_path, name, "trial")]
        if states.count("FINISHED") == TRIALS:
            pytest.fail("the sweep finished before its chief could be killed: nothing was tested")
        return "FINISHED" in states and "RUNNING" in states

    wait_for(one_finished_and_one_running, "a finished trial and a running one")
    chief.send_signal(signal.SIGKILL)
    chief.wait()
    chief = start(args, logs[2], "chief")
    codes = [finish(chief, logs[2]), finish(worker, logs[1])]
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    assert_front_on_parent(tmp_path, name, ("val_accuracy", "macs", "latency_ms"))
    # the report reads a file per trial: MLflow's progress bar for each would bury the summary
    assert "Downloading artifacts" not in logs[2].read_text()
    for child in runs_of(tmp_path, name, "trial"):  # measured where it trained, and said how
        metrics, params = child.data.metrics, child.data.params
        assert (
            metrics["latency_ms_fastest"] <= metrics["latency_ms"] <= metrics["latency_ms_slowest"]
        )
        assert metrics["inference_images_per_second"] == pytest.approx(
            16_000 / metrics["latency_ms"]
        )
        assert params["latency.batch"] == "16" and params["latency.repeats"] == "5"
        assert params["latency.device"] == child.data.tags["lab.device"] == "cpu"
