"""Reading what the lab has trained from a tracking store: every run of each experiment read
comes from one paged `search_runs` (one query per experiment, not one per run); each sweep's
parent adds two artifact reads (its trials.csv and config.yaml).

A run is a training run when it carries `lab.spec_hash` (a `task=train` run, a trial, an
execution). Trials and executions describe themselves through the runs above them: an
execution logs only its seed, so its model, data and device come from its trial's run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from lab.config.spec_hash import HOW_IT_RUNS
from lab.errors import LabError
from lab.tasks.report.records import RunRecord, SweepRecord
from lab.tracking.runs import every_run
from lab.tracking.tags import (
    CONTINUED_FROM_TAG,
    DEVICE_TAG,
    ERROR_TAG,
    NOT_TRAINED_TAG,
    PARENT,
    PARENT_TAG,
    PRUNED_REASON_TAG,
    PRUNED_TAG,
    ROLE_TAG,
    SEARCH_TAG,
    SPEC_HASH_TAG,
    TASK_TAG,
    TRIAL_TAG,
)
from lab.tracking.uris import sqlite_file
from lab.training.trained import trained

# Hyperband's bookkeeping in a trial's values: its bracket, round, epochs
KERAS_TUNER_KEYS = "hp.tuner/"
REPORTS_EXPERIMENT = "reports"  # where `task=report` logs its own runs; never read back as results


class ReportInputError(LabError):
    """`task=report` has nothing it can report: an unknown experiment, an empty store, a metric
    no run logged."""


@dataclass
class Collected:
    """What the store holds for a report: the training runs (pooled or left out, each with why),
    the sweeps, and how many runs were neither (evaluations, benchmarks, the trial runs above
    several executions, runs older than spec hashes)."""

    uri: str
    experiments: List[str]
    runs: List[RunRecord] = field(default_factory=list)
    sweeps: List[SweepRecord] = field(default_factory=list)
    # sweeps that could not be read back, and why
    sweep_notes: List[str] = field(default_factory=list)
    other_runs: int = 0
    metrics_seen: set = field(default_factory=set)


def chosen_experiments(client, uri: str, names: Optional[List[str]]) -> list:
    """The active experiments named (all but `reports` when `names` is None); an unknown name is
    a ReportInputError that lists the ones there are."""
    active = {experiment.name: experiment for experiment in client.search_experiments()}
    if names is None:
        return [
            experiment for name, experiment in sorted(active.items()) if name != REPORTS_EXPERIMENT
        ]
    missing = [name for name in names if name not in active]
    if missing:
        there = ", ".join(sorted(name for name in active if name != REPORTS_EXPERIMENT)) or "none"
        raise ReportInputError(
            f"report.experiments names {', '.join(missing)}, which {uri} does not hold; "
            f"its experiments: {there}"
        )
    return [active[name] for name in names]


def described_by(run, runs: Dict[str, object]):
    """The run whose params describe `run`'s network: itself, or (an execution, which logs only its
    seed) the trial run above it."""
    if "model.name" in run.data.params:
        return run
    return runs.get(run.data.tags.get(PARENT_TAG), run)


def sweep_of(run, runs: Dict[str, object]) -> Optional[str]:
    """The `search.name` of the sweep a trial or execution belongs to (None for a `task=train` run)."""
    seen = 0
    while run is not None and seen < 3:  # execution -> trial -> parent
        if run.data.tags.get(ROLE_TAG) == PARENT:
            return run.data.tags.get(SEARCH_TAG)
        run, seen = runs.get(run.data.tags.get(PARENT_TAG)), seen + 1
    return None


def axis_paths(params: Dict[str, str]) -> Dict[str, str]:
    """{axis name: the config key it sets}, from a trial's logged `search.space.N.*` params."""
    prefixes = {
        key[: -len(".name")]
        for key in params
        if key.startswith("search.space.") and key.endswith(".name")
    }
    return {params[f"{prefix}.name"]: params.get(f"{prefix}.path", "") for prefix in prefixes}


def variant_label(params: Dict[str, str]) -> str:
    """model.name, plus the values a trial's axes set that are not the model or the seed
    (`resnet20 width=1.5`): the same variant under another axis value is another network."""
    paths = axis_paths(params)
    changed = [
        f"{key[3:]}={value}"
        for key, value in sorted(params.items())
        if key.startswith("hp.")
        and not key.startswith(KERAS_TUNER_KEYS)
        and paths.get(key[3:]) not in ("seed", "model")
    ]
    return " ".join([params.get("model.name", "?"), *changed])


# Params that say where or how a run ran, not what it trained: `HOW_IT_RUNS`, and the folder
# its data files were found in (`data.source`: the same files in another folder are the same data).
WHERE_IT_RAN = (*HOW_IT_RUNS, "data.source")


def protocol_of(params: Dict[str, str]) -> Tuple[Tuple[str, str], ...]:
    """The data set and training protocol a run trained under: its `data.` and `train.` params
    but where and how it ran (`HOW_IT_RUNS`), sorted. They are what the spec hash hashes less
    the model, so the networks of one protocol differ in their model alone (`WHERE_IT_RAN` is
    left out)."""
    return tuple(
        sorted(
            (key, value)
            for key, value in params.items()
            if key.startswith(("data.", "train.")) and not key.startswith(WHERE_IT_RAN)
        )
    )


def left_out_reason(run, metric: str) -> Optional[str]:
    """Why a training run is not pooled, in one line; None when it counts."""
    tags, status = run.data.tags, run.info.status
    if status in ("FAILED", "KILLED"):
        error = (tags.get(ERROR_TAG) or "").strip().splitlines()
        return f"{status}: {error[-1][:200]}" if error else status
    if status != "FINISHED":
        return f"{status} (still running, or its process died)"
    if PRUNED_TAG in tags:
        return tags.get(PRUNED_REASON_TAG) or f"pruned at epoch {tags[PRUNED_TAG]}"
    if not trained(tags):
        return f"did not train: {tags.get(NOT_TRAINED_TAG, 'no reason recorded')}"
    if metric not in run.data.metrics:
        return f"logged no {metric}"
    if not math.isfinite(run.data.metrics[metric]):
        return f"{metric} is {run.data.metrics[metric]}"
    return None


def metric_value(metrics: Dict[str, float], key: str, kind=int):
    return kind(metrics[key]) if key in metrics else None


def wall_seconds(run) -> Optional[float]:
    return (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None


def finished_trials(runs: Dict[str, object]) -> Dict[Tuple[str, str], object]:
    """{(parent run, trial id): its FINISHED attempt}: where a continued Hyperband rung finds the
    rung it went on from."""
    return {
        (run.data.tags.get(PARENT_TAG), run.data.tags[TRIAL_TAG]): run
        for run in runs.values()
        if run.info.status == "FINISHED" and TRIAL_TAG in run.data.tags
    }


def with_earlier_rungs(run, trials: Dict[Tuple[str, str], object]) -> Optional[float]:
    """A run's wall time, plus, for a Hyperband rung that continued another, the rungs it went
    on from: what its network cost to train, which its metric measures."""
    total, seen = wall_seconds(run), 0
    while total is not None and CONTINUED_FROM_TAG in run.data.tags and seen < 50:
        run = trials.get((run.data.tags.get(PARENT_TAG), run.data.tags[CONTINUED_FROM_TAG]))
        earlier = wall_seconds(run) if run is not None else None
        total, seen = (total + earlier if earlier is not None else None), seen + 1
    return total


def run_record(run, experiment: str, runs: Dict[str, object], trials, metric: str) -> RunRecord:
    """A training run as the report sees it."""
    described = described_by(run, runs)
    params, metrics = described.data.params, run.data.metrics
    seed = run.data.params.get("seed", params.get("seed"))
    wall = with_earlier_rungs(run, trials)
    epochs = metric_value(metrics, "epochs_trained")
    if epochs is None and "train.epochs" in params:  # a run logged before `epochs_trained` was
        epochs = int(params["train.epochs"]) - int(metrics.get("initial_epoch", 0))
    return RunRecord(
        run_id=run.info.run_id,
        experiment=experiment,
        status=run.info.status,
        spec_hash=run.data.tags[SPEC_HASH_TAG],
        variant=variant_label(params),
        family=params.get("model.family", "?"),
        data=params.get("data.name", "?"),
        seed=int(seed) if seed is not None else None,
        metric=metrics.get(metric),
        params=metric_value(metrics, "params_total"),
        macs=metric_value(metrics, "macs"),
        activation_bytes=metric_value(metrics, "activation_bytes"),
        best_epoch=metric_value(metrics, "best_epoch"),
        wall_seconds=wall,
        epochs=epochs,
        epoch_seconds=metric_value(metrics, "epoch_seconds_median", float),
        device=run.data.tags.get(DEVICE_TAG) or described.data.tags.get(DEVICE_TAG, "?"),
        sweep=sweep_of(run, runs),
        left_out=left_out_reason(run, metric),
        started=run.info.start_time or 0,
        protocol=protocol_of(params),
    )


def one_run_per_seed(runs: List[RunRecord]) -> List[RunRecord]:
    """Of the counting runs of one network with one seed (a retried trial's executions, the same
    network and seed in two experiments), the latest counts and the others are left out, saying
    which: a sample of n seeds is n runs, not n plus their repeats."""
    latest: Dict[Tuple[str, Optional[int]], RunRecord] = {}
    for run in sorted((run for run in runs if run.left_out is None), key=lambda run: run.started):
        latest[(run.spec_hash, run.seed)] = run
    kept = {run.run_id for run in latest.values()}
    return [
        run
        if run.left_out is not None or run.run_id in kept
        else replace(
            run,
            left_out=f"seed {run.seed} again: run {latest[(run.spec_hash, run.seed)].run_id} (the latest) counts",
        )
        for run in runs
    ]


def read_store(uri: str, names: Optional[List[str]], data: Optional[str], metric: str) -> Collected:
    """Every training run and sweep of the chosen experiments in `uri` (training runs on `data`
    only, when it is set)."""
    from mlflow.tracking import MlflowClient

    from lab.tasks.report.sweeps import sweep_record

    database = sqlite_file(uri)
    if database is not None and not database.exists():  # MlflowClient would create an empty one
        raise ReportInputError(
            f"tracking.uri={uri}: no such store ({database} does not exist): nothing to report"
        )
    client = MlflowClient(uri)
    experiments = chosen_experiments(client, uri, list(dict.fromkeys(names)) if names else names)
    collected = Collected(uri, [experiment.name for experiment in experiments])
    for experiment in experiments:
        runs = {run.info.run_id: run for run in every_run(client, [experiment.experiment_id])}
        trials = finished_trials(runs)
        for run in runs.values():
            # bench: timing data
            if SPEC_HASH_TAG in run.data.tags and run.data.tags.get(TASK_TAG) != "bench":
                record = run_record(run, experiment.name, runs, trials, metric)
                if data is None or record.data == data:
                    collected.runs.append(record)
                    collected.metrics_seen.update(run.data.metrics)
            elif run.data.tags.get(ROLE_TAG) == PARENT:
                sweep, note = sweep_record(client, run, experiment.name)
                if sweep is not None and (data is None or run.data.params.get("data.name") == data):
                    collected.sweeps.append(sweep)
                elif note:
                    collected.sweep_notes.append(note)
            else:
                collected.other_runs += 1
    collected.runs = one_run_per_seed(collected.runs)
    return collected
