"""The Optuna-private attribute the lab reads, in one place: a study trial's storage id, which
`optuna.trial.Trial(study, trial_id)` needs and a `FrozenTrial` keeps as `_trial_id` only. The
Optuna oracle (`lab.tasks.search.optuna_oracle`) uses it to set a budget's constraint on a trial
it asked before a restart (it has only the trial's number then). `tests/test_optuna_oracle.py`
checks it, so an Optuna upgrade that moves it fails there."""

from __future__ import annotations

import optuna


def trial_of(study: optuna.Study, number: int) -> optuna.trial.Trial:
    """The live (askable, tellable) trial `number` of `study`."""
    frozen = study.get_trials(deepcopy=False)[number]
    return optuna.trial.Trial(study, frozen._trial_id)
