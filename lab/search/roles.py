"""How a sweep's runs are told apart in MLflow (tag `lab.role`): the sweep's parent, one run per
trial attempt under it, and, with `search.executions_per_trial > 1`, one run per execution under
the trial's. Light (no Keras, no MLflow): `task=report` reads these tags too."""

ROLE_TAG = "lab.role"
PARENT, CHILD, EXECUTION = "parent", "trial", "execution"
SEARCH_TAG = "lab.search"  # on the parent: the sweep's `search.name`
