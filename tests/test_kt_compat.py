"""Every keras-tuner private name `lab/search/kt_compat.py` touches exists with the shape it
assumes. A keras-tuner upgrade that moves one fails here, by name."""

import inspect

import keras_tuner as kt
import pytest

from lab.search import kt_compat
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import oracle as oracle_module
from keras_tuner.src.tuners.gridsearch import LinkedList


def space():
    hp = kt.HyperParameters()
    hp.Choice("variant", ["a", "b"])
    hp.Choice("seed", [0, 1])
    return hp


def grid_oracle(tmp_path):
    oracle = kt_compat.ResumableGridOracle(objective=kt.Objective("score", "max"), hyperparameters=space(),
                                           max_trials=10)
    oracle._set_project_dir(str(tmp_path), "compat")
    return oracle


def test_the_version_is_the_one_the_workarounds_were_written_for():
    assert kt.__version__ == kt_compat.SUPPORTED
    with pytest.raises(ImportError, match="keras-tuner 1.4.8.*found keras-tuner 9.9"):
        kt_compat.check_version("9.9")


def test_oracle_internals_the_owner_keeping_and_resume_fixes_use(tmp_path):
    oracle = grid_oracle(tmp_path)
    assert isinstance(oracle._retry_queue, list) and isinstance(oracle.ongoing_trials, dict)
    assert isinstance(oracle.tuner_ids, set) and isinstance(oracle.end_order, list) and isinstance(oracle.trials, dict)
    assert isinstance(oracle._display.trial_start, dict) and isinstance(oracle._display.trial_number, dict)
    for method, parameters in (("reload", []), ("set_state", ["state"]), ("get_state", []), ("remaining_trials", [])):
        assert list(inspect.signature(getattr(kt.Oracle, method)).parameters)[1:] == parameters, method
    for method in ("create_trial", "end_trial"):  # wrapped by keras-tuner's `synchronized`, which hides the signature
        assert getattr(kt.Oracle, method).__qualname__.startswith("synchronized"), method
    assert isinstance(oracle._ordered_ids, LinkedList) and isinstance(oracle._populate_next, list)
    assert oracle._ordered_ids._next_index[None] is None and isinstance(oracle._ordered_ids._memory, list)  # empty list
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
    assert second.trial_id != first.trial_id and second.hyperparameters.values != first.hyperparameters.values


def test_nothing_is_left_only_when_nothing_runs_waits_for_a_retry_or_remains(tmp_path):
    oracle = kt_compat.RandomOracle(objective=kt.Objective("score", "max"), hyperparameters=space(), max_trials=1)
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
    assert "owners_at_reload" not in vars(b) and "owners_at_reload" not in vars(kt_compat.KeepsTrialOwners)


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
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")  # a channel connects lazily: nothing listens here
    client = kt_compat.PacedOracleClient(oracle, patience_s=0.1)
    assert issubclass(kt_compat.PacedOracleClient, oracle_client.OracleClient)
    assert kt_compat.oracle_behind_client(client) is oracle and hasattr(client.stub.stub, "CreateTrial")
    assert callable(getattr(kt.Tuner, "_is_worker"))


def test_no_other_module_of_the_lab_touches_keras_tuner_or_keras_internals():
    from lab.config import PROJECT_ROOT

    def users(*needles):
        return sorted(str(path.relative_to(PROJECT_ROOT)) for path in (PROJECT_ROOT / "lab").rglob("*.py")
                      if any(needle in path.read_text() for needle in needles))

    assert users("from keras_tuner.src", "import keras_tuner.src") == ["lab/search/kt_compat.py"]
    assert users("._inbound_nodes", "._keras_history") == ["lab/keras_internals.py"]
