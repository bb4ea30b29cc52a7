"""How a sweep's runs are told apart in MLflow (tag `lab.role`): the sweep's parent, one run per
trial attempt under it, and, with `search.executions_per_trial > 1`, one run per execution under
the trial's. Light (no Keras, no MLflow): `task=report` reads these tags too."""

ROLE_TAG = "lab.role"
PARENT, CHILD, EXECUTION = "parent", "trial", "execution"
SEARCH_TAG = "lab.search"  # on every run of a sweep (parent, trials, executions): its `search.name`
TRIAL_TAG = "lab.trial"  # on a trial's runs: keras-tuner's trial id
PARENT_TAG = (
    "lab.parent"  # on a trial's runs: the run above (the parent, or the trial for an execution)
)
CONTINUED_FROM_TAG = (
    "lab.continued_from"  # on a Hyperband trial that continued another: that trial's id
)
