"""Hyperband continues a promoted trial from its previous rung's training state
(`search.hyperband_resume`, `lab/tasks/search/continuation.py`, `lab/training/state.py`)."""

import importlib
import math

import keras
import numpy as np
import pytest
from conftest import FAST_TRAIN, TINY_RESNET
from mlflow.tracking import MlflowClient

from lab.config import run_config
from lab.data import load_splits
from lab.tasks.search import continuation
from lab.tasks.search.orchestration import search
from lab.tracking import tags
from lab.training import state as training_state

# max_epochs=3, factor=3: bracket 1 trains trials 0-2 for 1 epoch and promotes the best to 3 epochs
# (trial 3, which continues it from epoch 1); bracket 0 trains trials 4 and 5 for 3 epochs.
SPACE = "search.space=[{name: lr, path: train.lr, kind: float, min: 0.02, max: 0.2, log: true}]"
HYPERBAND = [
    "task=search",
    "data=synthetic",
    "data.train_size=256",
    "data.test_size=64",
    "model=lenet5",
    *FAST_TRAIN,
    "search.tuner=hyperband",
    "search.max_epochs=3",
    "search.factor=3",
    SPACE,
]


def trial_runs(uri):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("test").experiment_id
    runs = client.search_runs([experiment], "tags.`lab.role` = 'trial'")
    return client, runs


def steps_per_epoch(overrides) -> int:
    cfg = run_config(overrides)
    return math.ceil(len(load_splits(cfg.data, cfg.seed).x_train) / cfg.train.batch_size)


def steps(client, run, metric="loss"):
    return [
        m.step
        for m in sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
    ]


def cosine_lr(base_lr, step, total_steps):
    """The default schedule (cosine, no warmup) after `step` optimizer steps."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def finished_run_of(runs, trial):
    [run] = [r for r in runs if r.data.tags["lab.trial"] == trial and r.info.status == "FINISHED"]
    return run


def check_continued(client, runs, run, per_epoch):
    """`run` continued its previous rung: epochs numbered on, its own steps, the optimizer's step
    count (and so its learning rate) carried on from where the previous trial's training stopped."""
    previous = finished_run_of(runs, run.data.tags[tags.CONTINUED_FROM_TAG])
    initial, epochs = (
        int(run.data.params["hp.tuner/initial_epoch"]),
        int(run.data.params["hp.tuner/epochs"]),
    )
    assert initial == int(previous.data.params["hp.tuner/epochs"]) and 0 < initial < epochs
    assert steps(client, run) == list(range(initial + 1, epochs + 1))
    assert run.data.metrics["initial_epoch"] == initial
    assert run.data.metrics["train_steps"] == (epochs - initial) * per_epoch
    carried = (
        previous.data.metrics.get("initial_train_steps", 0) + previous.data.metrics["train_steps"]
    )
    assert run.data.metrics["initial_train_steps"] == carried == initial * per_epoch
    assert initial < run.data.metrics["best_epoch"] <= epochs
    total = int(run.data.params["train.schedule_epochs"]) * per_epoch
    [first_lr, *_] = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)
    assert first_lr.value == pytest.approx(
        cosine_lr(float(run.data.params["train.lr"]), (initial + 1) * per_epoch, total), rel=1e-4
    )
    assert previous.data.metrics[continuation.STATE_BYTES] > 0
    return previous


def check_no_state_left(client, runs):
    for run in runs:
        assert tags.CONTINUATION_STATE_TAG not in run.data.tags
        assert [
            a.path for a in client.list_artifacts(run.info.run_id, continuation.STATE_DIR)
        ] == []


def test_a_promoted_trial_continues_its_previous_rung_even_after_a_kill_mid_rung_and_no_state_is_left(
    tracking, tmp_path, monkeypatch
):
    """Ctrl-C in the continued trial's first epoch ends the sweep; the same command again retries
    that trial, which finds its predecessor's state still there and continues from it: epochs
    numbered on, the optimizer's step count (and so its learning rate) carried on. Every rung
    trains on one max_epochs schedule; the states are deleted when their successor finished or
    the sweep ended. (One sweep for all of it: two would double the test's time.)"""
    train_module = importlib.import_module("lab.training.train")

    fit_and_evaluate = train_module.fit_and_evaluate

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    def interrupted_when_continued(*args, **kwargs):
        extra = [CtrlC()] if kwargs.get("start") is not None else []
        return fit_and_evaluate(*args, extra_callbacks=extra, **kwargs)

    overrides = [
        *HYPERBAND,
        "search.name=hb_killed",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    monkeypatch.setattr(train_module, "fit_and_evaluate", interrupted_when_continued)
    with pytest.raises(KeyboardInterrupt):
        search(run_config(overrides))
    _, runs = trial_runs(tracking.uri)
    [killed] = [r for r in runs if r.info.status == "KILLED"]
    assert tags.CONTINUED_FROM_TAG in killed.data.tags
    waiting = finished_run_of(runs, killed.data.tags[tags.CONTINUED_FROM_TAG])
    # not deleted when its successor started
    assert tags.CONTINUATION_STATE_TAG in waiting.data.tags

    monkeypatch.setattr(train_module, "fit_and_evaluate", fit_and_evaluate)
    result = search(run_config(overrides))
    client, runs = trial_runs(tracking.uri)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 6 and [r.info.status for r in runs].count("KILLED") == 1
    assert {r.data.params["train.schedule_epochs"] for r in runs} == {
        "3"
    }  # every rung on one 3-epoch schedule
    [retry] = [r for r in finished if tags.CONTINUED_FROM_TAG in r.data.tags]
    assert (
        retry.data.tags["lab.trial"] == killed.data.tags["lab.trial"]
        and retry.data.tags["lab.attempt"] == "2"
    )
    assert retry.data.tags[tags.CONTINUED_FROM_TAG] == waiting.data.tags["lab.trial"]
    previous = check_continued(client, runs, retry, steps_per_epoch(overrides))
    # when its successor finished
    assert "when trial" in previous.data.tags[tags.CONTINUATION_DELETED_TAG]
    kept = sorted(
        r.data.tags["lab.trial"] for r in runs if continuation.STATE_BYTES in r.data.metrics
    )
    first_rung = sorted(
        r.data.tags["lab.trial"] for r in runs if r.data.params["hp.tuner/epochs"] == "1"
    )
    # a 3-epoch trial is never continued: keeps none
    assert kept == first_rung == ["0000", "0001", "0002"]
    for run in runs:
        # never promoted
        if run.data.tags["lab.trial"] in kept and run.info.run_id != previous.info.run_id:
            assert "when the sweep ended" in run.data.tags[tags.CONTINUATION_DELETED_TAG]
    check_no_state_left(client, runs)
    assert client.get_run(result.parent_run_id).data.metrics["continuation_states_deleted"] == 2
    summary = open(client.download_artifacts(result.parent_run_id, "summary.md")).read()
    # not the killed one
    assert "1 trials continued their previous rung's training; 3 training states kept" in summary
    assert "0 left" in summary


def test_with_resume_off_a_promoted_trial_trains_from_scratch_on_the_same_schedule_and_keeps_no_state():
    """What decides continuing, without a sweep: resume off keeps no state and names why a promoted
    trial starts from scratch; both modes give a rung the max_epochs schedule, so a comparison of
    the two (bench/hyperband_resume.py) is of the same trainings."""
    on, off = (
        run_config([*HYPERBAND, f"search.hyperband_resume={v}"]).search for v in ("true", "false")
    )
    first_rung = {"lr": 0.05, "tuner/epochs": 1, "tuner/initial_epoch": 0}
    promoted = {"lr": 0.05, "tuner/epochs": 3, "tuner/initial_epoch": 1, "tuner/trial_id": "0001"}
    for search_cfg in (on, off):
        assert continuation.rung_overrides(search_cfg, promoted) == {
            "train.epochs": 3,
            "train.schedule_epochs": 3,
        }
    # not Hyperband
    assert continuation.rung_overrides(run_config(["task=search"]).search, {"lr": 0.05}) == {}
    assert continuation.keeps_state(on, first_rung) and not continuation.keeps_state(
        off, first_rung
    )
    assert not continuation.keeps_state(on, promoted)  # the last rung is never continued
    state, why = continuation.state_to_continue(None, off, promoted, previous=None)
    assert state is None and why.startswith("search.hyperband_resume=false")
    state, why = continuation.state_to_continue(None, on, promoted, previous=None)
    assert state is None and why == "trial 0001 has no FINISHED run"


def test_a_saved_state_is_the_last_epoch_and_loads_into_a_fresh_model_exactly(tracking, tmp_path):
    """The state a run keeps is its last epoch's, not the best epoch's that `train.checkpoint=best`
    puts back; saved and loaded into a freshly built and compiled model, every model variable
    (batch-norm statistics included) and every optimizer variable is the same; another network's
    state is refused naming what does not fit."""
    from lab.tracking import tracked_run
    from lab.training.train import compile_model, fit_and_evaluate, seeded_network, training_model

    overrides = [
        "data=synthetic",
        "data.train_size=64",
        "data.test_size=16",
        *TINY_RESNET,
        *FAST_TRAIN,
        "train.checkpoint=best",
        "train.epochs=2",
        "train.lr=0.05",
        *tracking,
    ]
    cfg = run_config(overrides)
    splits = load_splits(cfg.data, cfg.seed)

    class LastEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.values = [np.array(keras.ops.convert_to_numpy(v)) for v in self.model.variables]

    kept, last = [], LastEpoch()
    with tracked_run(
        cfg.tracking, "state"
    ) as run:  # best = the epoch of highest training loss: the first
        result = fit_and_evaluate(
            cfg,
            splits,
            run,
            objective=("loss", "max"),
            extra_callbacks=[last],
            keep_last_state=kept.append,
        )
    [state] = kept
    assert state.epoch == 2 and result.history["loss"][0] > result.history["loss"][1]
    assert all(np.array_equal(a, b) for a, b in zip(state.model_values, last.values))
    tested = [
        keras.ops.convert_to_numpy(v) for v in last.model.variables
    ]  # the best epoch's, put back
    assert not all(np.array_equal(a, b) for a, b in zip(state.model_values, tested))
    assert any("moving_variance" in path for path in state.model_paths)
    assert any(path.endswith("iteration") for path in state.optimizer_paths)

    size = training_state.save(state, tmp_path / "state.npz")
    assert size == (tmp_path / "state.npz").stat().st_size > 0
    loaded = training_state.load(tmp_path / "state.npz")
    keras.backend.clear_session()
    net = seeded_network(cfg.with_overrides({"seed": 7}), splits)  # other initial weights
    fresh = training_model(net, splits, cfg)
    compile_model(fresh, net, cfg.model, cfg, steps_per_epoch=2)
    training_state.restore(fresh, loaded)
    assert (
        loaded.epoch == 2 and [v.path for v in fresh.optimizer.variables] == state.optimizer_paths
    )
    for variables, values in (
        (fresh.variables, state.model_values),
        (fresh.optimizer.variables, state.optimizer_values),
    ):
        assert len(variables) == len(values)
        for variable, value in zip(variables, values):
            assert np.array_equal(keras.ops.convert_to_numpy(variable), value), variable.path
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 2 * math.ceil(
        len(splits.x_train) / 32
    )

    other_cfg = cfg.with_overrides({"model": "lenet5"})
    other_net = seeded_network(other_cfg, splits)
    other = training_model(other_net, splits, other_cfg)
    compile_model(other, other_net, other_cfg.model, other_cfg, steps_per_epoch=2)
    with pytest.raises(training_state.StateMismatchError, match="saved from another network"):
        training_state.restore(other, loaded)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["train.epochs=3", "train.schedule_epochs=2"], "train.schedule_epochs"),
        (["search.tuner=hyperband", "search.executions_per_trial=2"], "search.hyperband_resume"),
    ],
)
def test_a_schedule_shorter_than_the_training_and_a_continued_mean_of_executions_are_refused(
    overrides, key
):
    from lab.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match=key):
        run_config(overrides)
    run_config(
        ["search.tuner=hyperband", "search.executions_per_trial=2", "search.hyperband_resume=false"]
    )
    run_config(["search.tuner=random", "search.executions_per_trial=2"])  # other tuners ignore it


def test_resume_is_part_of_the_sweep_definition_and_warmup_counts_in_the_schedule():
    from lab.tasks.search.identity import fingerprint

    on, off = (run_config([*HYPERBAND, f"search.hyperband_resume={v}"]) for v in ("true", "false"))
    assert fingerprint(on)["search.hyperband_resume"] == "True" and fingerprint(on) != fingerprint(
        off
    )
    assert (
        run_config(
            ["train.epochs=1", "train.schedule_epochs=9", "train.warmup_epochs=2"]
        ).train.schedule_span
        == 9
    )
