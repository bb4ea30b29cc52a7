"""`search.tuner=optuna`: an Optuna study inside keras-tuner's oracle. The oracle is driven here
as keras-tuner and its distributed chief drive it (create, update, end, save, reload), with no
training; tests/test_pareto_search.py runs whole sweeps."""

import math

import keras_tuner as kt
import optuna
import pytest

from lab.compat.optuna import trial_of
from lab.config import run_config
from lab.errors import ConfigValueError
from lab.tasks.search.optuna_oracle import OptunaOracle, study_result
from lab.tasks.search.sweep import make_oracle

pytestmark = pytest.mark.core

TWO_OBJECTIVES = "search.objectives=[{name: val_accuracy}, {name: macs}]"
SPACE = (
    "search.space=[{name: connectivity, path: model.connectivity, values: [plain, residual]},"
    " {name: shortcut, path: model.shortcut, values: [A, B], when: {connectivity: [residual]}},"
    " {name: blocks, path: 'model.stages.*.blocks', kind: int, min: 1, max: 3}]"
)


def oracle_in(tmp_path, *extra) -> OptunaOracle:
    cfg = run_config(
        ["task=search", "search.tuner=optuna", SPACE, "search.max_trials=6", TWO_OBJECTIVES, *extra]
    )
    oracle = make_oracle(cfg)
    oracle._set_project_dir(str(tmp_path), "study")
    return oracle


def end(oracle, trial, status="COMPLETED", **metrics):
    if metrics:
        oracle.update_trial(trial.trial_id, metrics)
    trial.status = status
    oracle.end_trial(trial)


def told(oracle):
    return {t.number: t for t in oracle.study.get_trials(deepcopy=False)}


def test_each_trial_gets_the_studys_values_and_the_study_learns_every_objective(tmp_path):
    oracle = oracle_in(tmp_path)
    assert isinstance(oracle, OptunaOracle)
    assert isinstance(oracle.study.sampler, optuna.samplers.NSGAIISampler)  # auto, two objectives
    assert oracle.study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    trial = oracle.create_trial("tuner0")
    values = trial.hyperparameters.values
    number = oracle.numbers[trial.trial_id]
    asked = told(oracle)[number]
    assert asked.params == values  # the study chose them
    # a conditional axis is asked only where active
    assert ("shortcut" in values) == (values["connectivity"] == "residual")
    end(oracle, trial, val_accuracy=0.8, macs=1000.0, params_total=50.0)
    result = told(oracle)[number]
    assert result.state is optuna.trial.TrialState.COMPLETE and result.values == [0.8, 1000.0]
    assert oracle.trials[trial.trial_id].score == 0.8  # keras-tuner still ranks by the first


def test_a_trial_over_a_budget_is_an_infeasible_trial_the_sampler_learns_from(tmp_path):
    oracle = oracle_in(tmp_path, "search.max_macs=500")
    recorded = {"macs": 900.0, "params_total": 10.0}  # its run logged its costs, then failed
    oracle.metrics_source = lambda trial_id: recorded
    over, under = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    end(oracle, over, "FAILED")
    end(oracle, under, val_accuracy=0.5, macs=400.0)
    trials = told(oracle)
    infeasible, feasible = (
        trials[oracle.numbers[over.trial_id]],
        trials[oracle.numbers[under.trial_id]],
    )
    assert infeasible.state is optuna.trial.TrialState.COMPLETE
    assert infeasible.values == [-math.inf, 900.0]
    assert infeasible.system_attrs["constraints:max_macs"] == 400.0
    assert feasible.system_attrs["constraints:max_macs"] == -100.0
    assert [t.number for t in oracle.study.best_trials] == [feasible.number]
    assert oracle.trials[over.trial_id].status == "FAILED"  # keras-tuner's and MLflow's record


def test_a_failure_that_is_no_budget_is_a_failed_study_trial(tmp_path):
    oracle = oracle_in(tmp_path, "search.max_macs=500")
    oracle.metrics_source = lambda trial_id: {"macs": 100.0}
    trial = oracle.create_trial("tuner0")
    end(oracle, trial, "FAILED")
    assert told(oracle)[oracle.numbers[trial.trial_id]].state is optuna.trial.TrialState.FAIL


@pytest.mark.parametrize(
    "status, metrics, state",
    [
        ("COMPLETED", {"val_accuracy": 0.5, "macs": 1.0}, "COMPLETE"),
        ("COMPLETED", {"val_accuracy": math.nan, "macs": 1.0}, "FAIL"),
        ("COMPLETED", {"val_accuracy": 0.5}, "FAIL"),  # an objective missing
        ("STOPPED", {"val_accuracy": 0.5}, "PRUNED"),
        ("FAILED", {}, "FAIL"),
    ],
)
def test_what_the_study_is_told_for_each_ending(status, metrics, state):
    search = run_config(["task=search", TWO_OBJECTIVES]).search
    assert study_result(search, status, metrics).state.name == state


def test_a_resumed_study_keeps_its_trials_and_fails_the_one_asked_before_the_kill(tmp_path):
    first = oracle_in(tmp_path)
    done, running = first.create_trial("tuner0"), first.create_trial("tuner1")
    end(first, done, val_accuracy=0.7, macs=10.0)
    first.save()
    orphan = first.study.ask()  # asked, and the process died before keras-tuner saved a trial
    again = oracle_in(tmp_path)
    again.reload()
    assert again.numbers == first.numbers
    trials = told(again)
    assert trials[orphan.number].state is optuna.trial.TrialState.FAIL
    assert trials[again.numbers[running.trial_id]].state is optuna.trial.TrialState.RUNNING
    assert trials[again.numbers[done.trial_id]].values == [0.7, 10.0]
    # the retried trial ends in the study trial it was asked as, once
    retried = again.trials[running.trial_id]
    end(again, retried, val_accuracy=0.6, macs=20.0)
    end(again, retried, val_accuracy=0.6, macs=20.0)  # a worker retrying the call
    assert told(again)[again.numbers[running.trial_id]].values == [0.6, 20.0]
    assert len(told(again)) == 3


def test_a_proposal_already_tried_is_told_the_earlier_result_not_trained_again(tmp_path):
    oracle = oracle_in(
        tmp_path,
        "search.space=[{name: lr, path: train.lr, values: [0.1, 0.2]}]",
        "search.max_trials=4",
    )
    first = oracle.create_trial("tuner0")
    end(oracle, first, val_accuracy=0.5, macs=3.0)
    second = oracle.create_trial("tuner0")
    if second.status == "RUNNING":
        assert second.hyperparameters.values != first.hyperparameters.values
        end(oracle, second, val_accuracy=0.6, macs=3.0)
    third = oracle.create_trial("tuner0")
    assert third.status == "STOPPED"  # both values tried: the space is exhausted
    assert oracle.remaining_trials() == 0  # though max_trials allows 4
    oracle.save()
    again = oracle_in(
        tmp_path,
        "search.space=[{name: lr, path: train.lr, values: [0.1, 0.2]}]",
        "search.max_trials=4",
    )
    again.reload()
    assert again.remaining_trials() == 0
    repeats = [t for t in told(oracle).values() if t.number not in oracle.numbers.values()]
    assert repeats and all(t.state is optuna.trial.TrialState.COMPLETE for t in repeats)


def test_published_variants_run_first(tmp_path):
    oracle = oracle_in(
        tmp_path,
        "search.enqueue=[{connectivity: residual, shortcut: A, blocks: 3}, {connectivity: plain, blocks: 1}]",
    )
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    assert first.hyperparameters.values == {
        "connectivity": "residual",
        "shortcut": "A",
        "blocks": 3,
    }
    assert second.hyperparameters.values == {"connectivity": "plain", "blocks": 1}


def test_a_trial_asked_before_a_restart_takes_its_constraint(tmp_path):
    """`lab.compat.optuna.trial_of`: the one Optuna-private attribute the oracle reads."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    asked = study.ask()
    live = trial_of(study, asked.number)
    live.set_constraint("max_macs", 3.0)
    study.tell(asked.number, [1.0, 2.0])
    assert study.trials[0].system_attrs["constraints:max_macs"] == 3.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["search.objectives=[{name: val_accuracy}, {name: flops}]"], "search.objectives[flops]"),
        (["search.objectives=[{name: val_accuracy}, {name: macs, direction: up}]"], "min or max"),
        (["search.objectives=[{name: val_accuracy}, {name: macs, direction: max}]"], "must be min"),
        (["search.objectives=[{name: macs}, {name: val_accuracy}]"], "a first objective"),
        ([TWO_OBJECTIVES, "search.tuner=bayesian"], "optimises one number"),
        ([TWO_OBJECTIVES, "search.pruner=median"], "pruned on one curve"),
        (["search.sampler=tpe"], "unless search.tuner=optuna"),
        (["search.tuner=optuna", SPACE, "search.enqueue=[{depth: 3}]"], "axes of the space"),
        (["search.tuner=optuna", SPACE, "search.enqueue=[{blocks: 9}]"], "int in [1.0, 3.0]"),
    ],
)
def test_objectives_and_sampler_settings_that_cannot_work_fail_with_the_config(overrides, message):
    with pytest.raises(ConfigValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_config(["task=search", *overrides])


def test_keras_tuners_own_space_types_are_asked_as_optunas():
    hps = kt.HyperParameters()
    hps.Int("units", 8, 32, step=8)
    hps.Float("lr", 1e-3, 1e-1, sampling="log")
    hps.Boolean("flag")
    hps.Fixed("fixed", 3)
    from lab.tasks.search.optuna_oracle import suggested_values

    study = optuna.create_study()
    values = suggested_values(study.ask(), hps)
    assert values["units"] in (8, 16, 24, 32) and 1e-3 <= values["lr"] <= 1e-1
    assert isinstance(values["flag"], bool) and values["fixed"] == 3


def test_the_gp_sampler_without_pytorch_is_refused_with_the_config():
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here: Optuna's GP sampler can run")
    with pytest.raises(ConfigValueError, match="GP sampler needs PyTorch"):
        run_config(["task=search", "search.tuner=optuna", "search.sampler=gp"])
