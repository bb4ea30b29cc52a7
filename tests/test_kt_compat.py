"""Every keras-tuner private name `lab/compat/keras_tuner.py` touches exists with the shape it
assumes. A keras-tuner upgrade that moves one fails here, by name."""

import inspect

import keras_tuner as kt
import pytest
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import oracle as oracle_module
from keras_tuner.src.tuners.gridsearch import LinkedList

from lab.compat import keras_tuner as kt_compat


def space():
    hp = kt.HyperParameters()
    hp.Choice("variant", ["a", "b"])
    hp.Choice("seed", [0, 1])
    return hp


def grid_oracle(tmp_path):
    oracle = kt_compat.ResumableGridOracle(
        objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=10
    )
    oracle._set_project_dir(str(tmp_path), "compat")
    return oracle


def test_the_version_is_the_one_the_workarounds_were_written_for():
    assert kt.__version__ == kt_compat.SUPPORTED
    with pytest.raises(ImportError, match="keras-tuner 1.4.8.*found keras-tuner 9.9"):
        kt_compat.check_version("9.9")
    for refused in ("1.4.7", "1.5.0", "2.0.0"):
        with pytest.raises(ImportError):
            kt_compat.check_version(refused)
    # a later patch: these contract tests decide, not an exact match
    kt_compat.check_version("1.4.9")


def test_oracle_internals_the_owner_keeping_and_resume_fixes_use(tmp_path):
    oracle = grid_oracle(tmp_path)
    assert isinstance(oracle._retry_queue, list) and isinstance(oracle.ongoing_trials, dict)
    assert (
        isinstance(oracle.tuner_ids, set)
        and isinstance(oracle.end_order, list)
        and isinstance(oracle.trials, dict)
    )
    assert isinstance(oracle._display.trial_start, dict) and isinstance(
        oracle._display.trial_number, dict
    )
    for method, parameters in (
        ("reload", []),
        ("set_state", ["state"]),
        ("get_state", []),
        ("remaining_trials", []),
    ):
        assert list(inspect.signature(getattr(kt.Oracle, method)).parameters)[1:] == parameters, (
            method
        )
    # wrapped by keras-tuner's `synchronized`, which hides the signature
    for method in ("create_trial", "end_trial"):
        assert getattr(kt.Oracle, method).__qualname__.startswith("synchronized"), method
    assert isinstance(oracle._ordered_ids, LinkedList) and isinstance(oracle._populate_next, list)
    assert oracle._ordered_ids._next_index[None] is None and isinstance(
        oracle._ordered_ids._memory, list
    )  # empty list
    with oracle_module.LOCKS[oracle]:  # the oracle's own lock, a mapping keyed by oracle
        pass


def test_a_grid_sweep_resumes_where_it_was_and_reports_what_is_left(tmp_path):
    """The saved grid order survives a reload (keras-tuner keeps it in memory only)."""
    oracle = grid_oracle(tmp_path)
    first = oracle.create_trial("tuner0")
    first.status = kt.engine.trial.TrialStatus.COMPLETED
    oracle.update_trial(first.trial_id, {"score": 1.0})
    oracle.end_trial(first)
    oracle.save()
    assert oracle.get_state()["lab_grid_order"] == [first.trial_id]
    again = grid_oracle(tmp_path)
    again.reload()
    assert again.get_state()["lab_grid_order"] == [first.trial_id]
    assert not kt_compat.nothing_left(again)  # three grid cells are left
    second = again.create_trial("tuner0")
    assert (
        second.trial_id != first.trial_id
        and second.hyperparameters.values != first.hyperparameters.values
    )


def test_nothing_is_left_only_when_nothing_runs_waits_for_a_retry_or_remains(tmp_path):
    oracle = kt_compat.RandomOracle(
        objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=1
    )
    oracle._set_project_dir(str(tmp_path), "left")
    trials = [oracle.create_trial("tuner0")]
    assert oracle.remaining_trials() == 0 and not kt_compat.nothing_left(oracle)  # one running
    for trial in trials:
        trial.status = kt.engine.trial.TrialStatus.COMPLETED
        oracle.update_trial(trial.trial_id, {"score": 1.0})
        oracle.end_trial(trial)
    assert kt_compat.nothing_left(oracle)
    oracle._retry_queue.append(trials[0].trial_id)  # a trial a killed worker left to be retried
    assert not kt_compat.nothing_left(oracle)


def test_owners_kept_at_reload_belong_to_each_oracle(tmp_path):
    """Not a class attribute shared by every oracle."""
    a, b = grid_oracle(tmp_path / "a"), grid_oracle(tmp_path / "b")
    a.set_state({**a.get_state(), "ongoing_trials": {}})
    assert "owners_at_reload" not in vars(b) and "owners_at_reload" not in vars(
        kt_compat.KeepsTrialOwners
    )


def test_distributed_internals_the_chief_and_the_paced_client_use(tmp_path, monkeypatch):
    oracle = grid_oracle(tmp_path)
    servicer = oracle_chief.OracleServicer(oracle)
    assert servicer.stop_triggered is False
    assert callable(oracle_chief.exit_chief)  # synchronized too: called with the oracle
    assert callable(protos.get_service_grpc().add_OracleServicer_to_server)
    assert kt_compat.chief_may_exit(servicer, oracle) is False
    assert kt_compat.trials_by_tuner(oracle) == ({}, [])
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    # a channel connects lazily: nothing listens here
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    client = kt_compat.PacedOracleClient(oracle, patience_s=0.1)
    assert issubclass(kt_compat.PacedOracleClient, oracle_client.OracleClient)
    assert kt_compat.oracle_behind_client(client) is oracle and hasattr(
        client.stub.stub, "CreateTrial"
    )
    assert callable(kt.Tuner._is_worker)


def test_no_other_module_of_the_lab_touches_keras_tuner_or_keras_internals():
    from lab.config import PROJECT_ROOT

    def users(*needles):
        return sorted(
            str(path.relative_to(PROJECT_ROOT))
            for path in (PROJECT_ROOT / "lab").rglob("*.py")
            if any(needle in path.read_text() for needle in needles)
        )

    assert users("from keras_tuner.src", "import keras_tuner.src") == ["lab/compat/keras_tuner.py"]
    assert users("._inbound_nodes", "._keras_history") == ["lab/compat/keras.py"]


def test_no_test_but_this_one_reaches_into_keras_tuner_or_keras_privates():
    """The tests go through lab.compat.keras_tuner and lab.compat.keras too, so that a keras-tuner
    or Keras upgrade fails the contract tests here, not tests about something else."""
    from lab.config import PROJECT_ROOT

    needles = (
        "from keras_tuner.src",
        "import keras_tuner.src",
        "._retry_queue",
        "._display",
        "._inbound_nodes",
        "._keras_history",
        "._is_worker",
    )
    leaking = sorted(
        path.name
        for path in (PROJECT_ROOT / "tests").glob("*.py")
        if path.name not in ("test_kt_compat.py", "test_keras_internals.py")
        and any(needle in path.read_text() for needle in needles)
    )
    assert leaking == []


def end(oracle, trial, status, score=None):
    if score is not None:
        oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    oracle.end_trial(trial)


def test_a_bayesian_fit_sees_no_stopped_trial_where_keras_tuners_own_gives_it_another_trials_score(
    tmp_path,
):
    oracle = kt_compat.BayesianOracle(
        objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=10
    )
    oracle._set_project_dir(str(tmp_path), "bayes")
    status = kt.engine.trial.TrialStatus
    for score in (0.2, 0.8):
        end(oracle, oracle.create_trial("tuner0"), status.COMPLETED, score)
    end(oracle, oracle.create_trial("tuner0"), status.STOPPED)  # pruned: no score
    _, y = oracle._vectorize_trials()
    assert sorted(y) == [-0.8, -0.2]  # maximised: negated for scipy
    _, y_kt = kt.oracles.BayesianOptimizationOracle._vectorize_trials(oracle)
    # the workaround is still needed: the stopped trial got 0.8's
    assert len(y_kt) == 3 and y_kt[-1] == y_kt[-2]


def test_past_its_deadline_an_oracle_starts_no_trial_and_keeps_the_running_one(tmp_path):
    import time

    oracle = kt_compat.RandomOracle(
        objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=5
    )
    oracle._set_project_dir(str(tmp_path), "deadline")
    running = oracle.create_trial("worker0")
    oracle.deadline = time.monotonic() - 1
    # a tuner asking again for its own trial
    assert oracle.create_trial("worker0").trial_id == running.trial_id
    stopped = oracle.create_trial("worker1")
    assert stopped.status == kt.engine.trial.TrialStatus.STOPPED and oracle.deadline_passed
    assert "worker1" not in oracle.tuner_ids and list(oracle.trials) == [running.trial_id]
    end(oracle, running, kt.engine.trial.TrialStatus.COMPLETED, 0.5)
    assert oracle.create_trial("worker0").status == kt.engine.trial.TrialStatus.STOPPED
    assert oracle_chief.exit_chief(oracle)  # keras-tuner's chief may end: no tuner, no trial left


def test_a_recorded_pruned_trial_ends_stopped_and_unscored_on_reload(tmp_path):
    oracle = kt_compat.RandomOracle(
        objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=2
    )
    oracle._set_project_dir(str(tmp_path), "pruned")
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    done = kt_compat.complete_recorded_trials(
        oracle, {first.trial_id: {"score": 0.7}}, {second.trial_id: {"score": 0.1}}
    )
    assert done == sorted([first.trial_id, second.trial_id])
    assert (
        oracle.trials[first.trial_id].status == "COMPLETED"
        and oracle.trials[first.trial_id].score == 0.7
    )
    assert (
        oracle.trials[second.trial_id].status == "STOPPED"
        and oracle.trials[second.trial_id].score is None
    )
    assert kt_compat.nothing_left(oracle) and [t.trial_id for t in oracle.get_best_trials(1)] == [
        first.trial_id
    ]


def test_a_failed_trial_prints_its_traceback_at_most_once_and_the_labs_own_errors_in_one_line():
    """Issue 32: an over-budget sweep printed two keras-tuner tracebacks per trial."""
    from keras_tuner.src import config as kt_config

    from lab.compat.keras_tuner import quiet_trial_tracebacks
    from lab.tasks.search.sweep import short_message

    quiet_trial_tracebacks()
    assert kt_config.DEBUG is False  # keras-tuner's own print of the traceback
    import traceback

    import keras_tuner as kt

    from lab.errors import ModelTooBigError

    try:  # as Sweep.run_trial wraps a trial's error, and keras-tuner formats it (both tracebacks, chained)
        try:
            raise ModelTooBigError(
                "resnet110 has 1,727,962 parameters, over search.max_params=100000"
            )
        except ModelTooBigError as error:
            raise kt.errors.FailedTrialError(f"{type(error).__name__}: {error}") from error
    except kt.errors.FailedTrialError:
        budget = traceback.format_exc()
    assert budget.count("Traceback") == 2
    assert (
        short_message(budget)
        == "ModelTooBigError: resnet110 has 1,727,962 parameters, over search.max_params=100000"
    )
    bug = 'Traceback (most recent call last):\n  File "x.py", line 1, in f\nZeroDivisionError: division by zero\n'
    assert short_message(bug) == bug and short_message(None) is None


def test_the_oracle_and_its_trials_are_saved_whole_where_keras_tuner_reloads_them(
    tmp_path, monkeypatch
):
    """keras-tuner wrote oracle.json and trial.json in place: a chief killed mid-write left an
    empty file its restart could not load. The lab's oracles write a temporary file and rename."""
    assert list(inspect.signature(kt.Oracle._save_trial).parameters)[1:] == ["trial"]
    assert list(inspect.signature(kt.Oracle._get_trial_dir).parameters)[1:] == ["trial_id"]
    oracle = grid_oracle(tmp_path)
    assert oracle._get_oracle_fname() == str(tmp_path / "compat" / "oracle.json")
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    folder = tmp_path / "compat"
    assert sorted(p.name for p in folder.rglob("*.tmp")) == []
    assert (folder / f"trial_{trial.trial_id}" / "trial.json").is_file()

    def killed_mid_write(state, file):
        file.write("{")
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(kt_compat.json, "dump", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        oracle.save()
    again = grid_oracle(tmp_path)
    again.reload()  # the last whole state
    assert list(again.trials) == [trial.trial_id] and again.trials[trial.trial_id].score == 0.5
