"""Every MLflow tag the lab writes, by name: the only place a tag's name is spelled out. Plain
strings (no MLflow, no config), so the light modules and `task=report` read them too.

A sweep's runs are told apart by `ROLE_TAG`: its parent, one run per trial attempt under it, and,
with `search.executions_per_trial > 1`, one run per execution under the trial's.
"""

# What a run is, and where it stands in a sweep.
TASK_TAG = "lab.task"  # the task that made the run: train, search, evaluate, report, bench
ROLE_TAG = "lab.role"  # in a sweep: PARENT, CHILD or EXECUTION
PARENT, CHILD, EXECUTION = "parent", "trial", "execution"
SEARCH_TAG = "lab.search"  # on every run of a sweep (parent, trials, executions): its `search.name`
TRIAL_TAG = "lab.trial"  # on a trial's runs: keras-tuner's trial id
# on a trial's runs: the run above (the parent, or the trial for an execution)
PARENT_TAG = "lab.parent"
ATTEMPT_TAG = "lab.attempt"  # on a trial's run: which attempt at the trial it is (1, 2, ...)
EXECUTION_TAG = "lab.execution"  # on an execution's run: its index within the trial
TUNER_TAG = "lab.tuner"  # on a trial's run: the keras-tuner id of the process that ran it
HOST_TAG = "lab.host"  # on a trial's run: the machine that ran it
PID_TAG = "lab.pid"  # on a trial's run: the process that ran it
CONTINUED_FROM_TAG = "lab.continued_from"  # on a Hyperband trial that continued another: its id

# What was trained, and whether it trained.
MODEL_TAG = "lab.model"  # the variant's name
FAMILY_TAG = "lab.family"  # the variant's family
SPEC_HASH_TAG = "lab.spec_hash"  # what was trained, as one hash (lab.config.spec_hash)
FROM_RUN_TAG = "lab.from_run"  # on a run made with from_run=RUN_ID: that run
TRAINED_TAG = "lab.trained"  # "true" or "false" on every training run
NOT_TRAINED_TAG = "lab.not_trained"  # the reason, on runs that did not train
PRUNED_TAG = "lab.pruned_at_epoch"  # on a trial search.pruner stopped: the epoch
PRUNED_REASON_TAG = "lab.pruned_reason"  # and why
CHECKPOINT_TAG = "lab.checkpoint"  # the epoch whose weights the run kept, and by which rule
ERROR_TAG = "lab.error"  # on a FAILED run: the error, in one line

# Where and how it ran.
BACKEND_TAG = "lab.backend"
DEVICE_TAG = "lab.device"
GIT_COMMIT_TAG = "lab.git_commit"
DTYPE_POLICY_TAG = "lab.dtype_policy"
REFERENCE_TAG = "lab.reference_loop_seconds"  # on a sweep's parent: the day's speed when it started

# A sweep's parent, at the end.
FINGERPRINT_TAG = "lab.fingerprint"  # what makes the sweep the same sweep
OBJECTIVE_TAG = "lab.objective"
OBJECTIVE_VALUE_TAG = "lab.objective_value"
BEST_TRIAL_TAG = "lab.best_trial"
BEST_CHILD_TAG = "lab.best_child"
STOPPED_BY_TAG = "lab.stopped_by"  # why a sweep stopped before its trials ran out
REGISTERED_MODEL_TAG = "lab.registered_model"  # search.register_as: NAME and version
RUN_TAG = "lab.run"  # on a registered model version: the run whose model it is
# On a registered version from a sweep with several objectives: one tag per objective, its value
# (`OBJECTIVE_OF_TAG.format("macs")`: lab.objective.macs).
OBJECTIVE_OF_TAG = "lab.objective.{}"

# Kept models and their state.
MODEL_URI_TAG = "lab.model_uri"  # on a run that logged its model: runs:/RUN_ID/model
MODEL_DELETED_TAG = "lab.model_deleted"  # on a trial whose model search.keep_models deleted
CONTINUATION_STATE_TAG = "lab.continuation_state"  # on a run holding its state: where
CONTINUATION_DELETED_TAG = "lab.continuation_deleted"  # on a run whose state is gone: size, when
NOT_CONTINUED_TAG = "lab.not_continued"  # on a promoted trial trained from scratch: why
EVALUATES_TAG = "lab.evaluates"  # on a task=evaluate run: the run whose model it tested
