"""What each variant has measured: its best `test_accuracy` over the runs recorded for it.

A run counts for variant V when it is tagged `lab.model=V` (every `task=train` and `task=bench`
run is; sweep trials are not), FINISHED, has a `test_accuracy`, and is not tagged
`lab.trained=false` (a network that did not train measured nothing about its architecture).
One search over every active experiment serves all the variants of a `task=list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List

from lab.tracking.tags import MODEL_TAG
from lab.tracking.uris import sqlite_file
from lab.training.trained import trained

METRIC = "test_accuracy"
# MLflow's filters take no `IN` on tags: every finished run that names a model, grouped here.
QUERY = f"attributes.status = 'FINISHED' and tags.`{MODEL_TAG}` LIKE '%'"


@dataclass(frozen=True)
class Measured:
    """A variant's best `test_accuracy`, how many runs counted, and the run that scored it."""

    best: float
    runs: int
    best_run_id: str


def finished_model_runs(uri: str) -> Iterator[object]:
    """Every FINISHED run tagged with a model, in every active experiment of `uri`, page by page
    of one query. A SQLite store that does not exist has none (and is not created)."""
    database = sqlite_file(uri)
    if database is not None and not database.exists():
        return
    from mlflow.tracking import MlflowClient

    from lab.tracking.runs import every_run

    client = MlflowClient(uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if experiments:
        yield from every_run(client, experiments, QUERY)


def counts(run) -> bool:
    """Whether a run measured its variant: it trained, and logged the metric."""
    return trained(run.data.tags) and METRIC in run.data.metrics


def best_per_variant(runs: Iterable[object], variants: List[str]) -> Dict[str, Measured]:
    """{variant: Measured} for the variants that have a counting run (ties: the earlier run)."""
    wanted, grouped = set(variants), {}
    for run in runs:
        name = run.data.tags.get(MODEL_TAG)
        if name in wanted and counts(run):
            grouped.setdefault(name, []).append(run)
    measured = {}
    for name, group in grouped.items():
        best = max(group, key=lambda run: (run.data.metrics[METRIC], -run.info.start_time))
        measured[name] = Measured(best.data.metrics[METRIC], len(group), best.info.run_id)
    return measured


def measured_variants(uri: str, variants: List[str]) -> Dict[str, Measured]:
    """The best measured `test_accuracy` of each of `variants` in the store `uri` (those with no
    counting run are absent)."""
    return best_per_variant(finished_model_runs(uri), variants)
