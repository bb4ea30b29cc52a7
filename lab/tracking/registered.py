"""Which sweep a registered model's versions belong to: `search.register_as=NAME` points
`NAME@best` at a sweep's best model, so a NAME that holds another sweep's versions is refused
(before any training, and again at registration) rather than having its alias moved. Light: the
MLflow client only."""

from __future__ import annotations

from typing import List

from lab.errors import LabError
from lab.tracking.tags import SEARCH_TAG

SWEEP_KEY = SEARCH_TAG  # a registered version's tag: the sweep whose best it is


def other_sweeps(client, name: str, sweep: str) -> List[str]:
    """The sweeps other than `sweep` whose models `name` holds ("(none)" for a version the lab
    did not register)."""
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted({v.tags.get(SWEEP_KEY, "(none)") for v in versions} - {sweep})


def check_name_free(client, name: str, sweep: str) -> None:
    others = other_sweeps(client, name, sweep)
    if others:
        raise LabError(
            f"search.register_as={name} already holds the models of sweep {', '.join(others)}: "
            f"its @best would move to sweep {sweep}'s; register under another name"
        )
