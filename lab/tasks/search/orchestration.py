"""`search(cfg)`, the body of `task=search`: runs or resumes a sweep (alone, as a distributed chief or
as a worker), then reports it on its MLflow parent run (trials.csv, summary.md, figures).

The steps: check the config, own the sweep (its lock), refuse what cannot be resumed, open or
resume the parent run, start the tuner on what the records say, search, close what is left,
report. The records are `records.py`, the report's parts `sweep_report.py` and `figures.py`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import keras
import keras_tuner as kt
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lab import runtime
from lab.compat.keras_tuner import complete_recorded_trials
from lab.config import Role, RunConfig, SearchConfig
from lab.data import load_splits
from lab.errors import LabError, require
from lab.stats.testset import decode_by_trial
from lab.tasks.search.address import check_address_free
from lab.tasks.search.distributed import set_role_environment, wait_for_chief
from lab.tasks.search.figures import log_plots
from lab.tasks.search.identity import check_resumable, check_same_as_chief, digest, fingerprint
from lab.tasks.search.ownership import sweep_owner
from lab.tasks.search.pareto_set import log_pareto, pareto_set
from lab.tasks.search.ranking import best_first
from lab.tasks.search.records import (
    artifact_path,
    begin_record,
    find_parent,
    parent_tags,
)
from lab.tasks.search.space import validate_space
from lab.tasks.search.summary import to_csv, trial_rows
from lab.tasks.search.sweep import LabTuner, Sweep, make_oracle
from lab.tasks.search.sweep_report import (
    SearchResult,
    log_summary,
    record_best,
    recorded_report,
)
from lab.tracking import tracked_run
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import FINGERPRINT_TAG, REFERENCE_TAG, STOPPED_BY_TAG
from lab.training.trained import PRUNED, trained


class SweepFailedError(LabError):
    """keras-tuner stopped the sweep: too many trials failed in a row (the report is written)."""


def search(cfg: RunConfig) -> SearchResult:
    """Runs (or resumes) the sweep `search.name`: one MLflow parent run, one child per trial.
    With `search.distributed.role=chief` this process serves the oracle and reports; with
    `worker` it trains trials for the chief at `search.distributed.address`.

    Args:
        cfg: the composed config of `task=search`.

    Returns:
        The sweep's rows, best trial and figures (a worker's: the trials it ran).

    Raises:
        SweepFailedError: too many trials failed in a row, or every trial failed.
        LabError: a config, sweep or role that cannot run (the message says why).

    Example:
        >>> from lab.config import run_config
        >>> result = search(run_config(["task=search", "data=synthetic", "search.max_trials=2"]))  # doctest: +SKIP
        >>> len(result.rows)  # doctest: +SKIP
        2
    """
    validate_space(cfg)  # a malformed axis fails before any run or trial
    dist = cfg.search.distributed
    require(
        dist.role is not Role.launcher,
        "search.distributed.role",
        dist.role.value,
        "none, chief or worker here (the launcher is `python run.py task=search search.distributed.role=launcher`)",
    )
    set_role_environment(dist)
    keras.utils.set_random_seed(cfg.seed)
    runtime.configure(cfg.train)
    if dist.role is Role.worker:
        return work_for_chief(cfg)
    return lead_sweep(cfg)


def lead_sweep(run_cfg: RunConfig) -> SearchResult:
    """A sweep in one process, or a distributed chief: owns the sweep (its lock, its parent run,
    its oracle) and reports at the end. Everything that could refuse the sweep is checked before
    data are loaded or a run is touched."""
    search_cfg, chief = run_cfg.search, run_cfg.search.distributed.role is Role.chief
    folder = Path(search_cfg.directory) / search_cfg.name
    if chief:  # before it touches the sweep's runs or state
        check_address_free(search_cfg.distributed)
    with sweep_owner(folder, search_cfg.name):
        earlier = find_parent(run_cfg)
        check_resumable(run_cfg, folder, earlier)
        if earlier is not None and earlier.info.status == "FINISHED":
            return finished_sweep(run_cfg, earlier)
        # The chief trains nothing.
        splits = None if chief else load_splits(run_cfg.data, run_cfg.seed)
        with tracked_run(
            run_cfg.tracking,
            search_cfg.name,
            parent_tags(run_cfg),
            resume_run_id=earlier.info.run_id if earlier else None,
        ) as parent:
            if earlier is None:
                begin_record(run_cfg, parent, folder)
            # On a resume too: check_resumable accepted this config as the sweep's definition, and
            # a worker compares its own digest with this tag (the one an older lab wrote may
            # cover keys that no longer define a sweep).
            parent.set_tags(
                {
                    FINGERPRINT_TAG: digest(fingerprint(run_cfg)),
                    REFERENCE_TAG: str(runtime.reference_loop_seconds(5_000_000)),
                }
            )
            sweep = Sweep(run_cfg, splits, parent)
            return search_and_report(start_tuner(sweep), sweep)


def start_tuner(sweep: Sweep) -> LabTuner:
    """The sweep's tuner, its oracle told what the records say: the trials whose runs FINISHED
    (scored or pruned) are complete, and an oracle that adds seeds as needed reads the trials'
    rows. Runs a killed process left RUNNING are closed first, except by a chief (its workers
    may still be training them)."""
    run_cfg, search_cfg = sweep.run_cfg, sweep.run_cfg.search
    if search_cfg.distributed.role is not Role.chief:
        sweep.close_stale_children()
    tuner = LabTuner(make_oracle(run_cfg), sweep, search_cfg.directory, search_cfg.name)
    # seeds as needed: the oracle reads the trials' figures
    if hasattr(tuner.oracle, "rows_source"):
        tuner.oracle.rows_source = lambda: trial_rows(
            tuner.oracle, search_cfg.space, sweep.children()
        )
    # a failed trial's costs: the oracle reads them from its run
    if hasattr(tuner.oracle, "metrics_source"):
        tuner.oracle.metrics_source = lambda trial: recorded_metrics(sweep.children(), trial)
    recorded = sweep.children()  # one query for both
    pruned = {
        trial: {search_cfg.objective: score}
        for trial, score in sweep.recorded_pruned(recorded).items()
    }
    complete_recorded_trials(tuner.oracle, sweep.recorded_oracle_metrics(recorded), pruned)
    return tuner


def recorded_metrics(children: Dict[str, Run], trial_id: str) -> Dict[str, float]:
    """The metrics of the trial's latest attempt ({} for a trial without a run)."""
    run = children.get(trial_id)
    return dict(run.data.metrics) if run is not None else {}


def search_and_report(tuner: LabTuner, sweep: Sweep) -> SearchResult:
    """Runs the search to its end, closes what is left of it and reports the sweep.

    Raises:
        SweepFailedError: keras-tuner gave up after `search.max_consecutive_failed_trials`, or
            no trial completed (the report is written first).
    """
    search_cfg = sweep.run_cfg.search
    try:
        tuner.search()
    except RuntimeError as error:  # keras-tuner gives up after max_consecutive_failed_trials
        if "consecutive failures" not in str(error):
            raise
        sweep.close_stale_children()
        result = report(tuner, sweep)
        raise SweepFailedError(
            f"sweep {search_cfg.name} stopped after {search_cfg.max_consecutive_failed_trials} "
            f"failed trials in a row ({str(error).splitlines()[-1][:200]}); every trial's "
            f"reason is in trials.csv on parent run {result.parent_run_id}"
        ) from None
    sweep.close_stale_children()  # nothing runs any more
    sweep.delete_continuation_states()  # no trial will continue another now
    if tuner.oracle.deadline_passed:
        say_budget_spent(sweep.run_cfg, tuner, sweep.parent)
    result = report(tuner, sweep)
    check_some_trial_completed(search_cfg.name, result)
    return result


def check_some_trial_completed(name: str, result: SearchResult) -> None:
    """A sweep that ran trials and completed none has failed, whatever keras-tuner's limit on
    failures in a row let it reach: its parent ends FAILED, naming the most common reason."""
    if not result.rows or any(row["status"] in ("COMPLETED", PRUNED) for row in result.rows):
        return
    reasons = [str(row.get("reason") or row["status"]) for row in result.rows]
    # The most common type of error.
    kind, times = Counter(reason.split(":")[0] for reason in reasons).most_common(1)[0]
    example = next(reason for reason in reasons if reason.split(":")[0] == kind)
    raise SweepFailedError(
        f"sweep {name}: every one of its {len(result.rows)} trials failed ({times} of them: "
        f"{example[:200]}); every trial's reason is in trials.csv on parent run {result.parent_run_id}"
    )


def say_budget_spent(run_cfg: RunConfig, tuner: LabTuner, parent: TrackedRun) -> None:
    """The sweep ended on `search.max_seconds`: tagged on the parent (lab.stopped_by) and said."""
    parent.set_tags({STOPPED_BY_TAG: f"search.max_seconds={run_cfg.search.max_seconds:g}"})
    print(
        f"sweep {run_cfg.search.name}: search.max_seconds={run_cfg.search.max_seconds:g} spent, no new trial "
        f"started after it ({len(tuner.oracle.trials)} trials in all); reporting",
        flush=True,
    )


def has_more_trials(oracle) -> bool:
    """Whether a finished sweep's oracle would hand out another trial: a grid whose every cell was
    tried would not, whatever `search.max_trials` allows (the ablations' shared base allows 100 for
    grids of 6 to 20 cells). Hyperband's remaining trials are None: it ends by its brackets."""
    if not oracle.remaining_trials():
        return False
    # Asked, not saved: the finished sweep is only read.
    if isinstance(oracle, kt.oracles.GridSearchOracle):
        return oracle.populate_space("probe")["status"] == "RUNNING"
    return True


def finished_sweep(run_cfg: RunConfig, parent_run: Run) -> SearchResult:
    """A sweep whose parent FINISHED: its runs are final, so it is reported from its records
    without a write; asking it for more trials is refused."""
    client = MlflowClient(run_cfg.tracking.uri)
    parent = TrackedRun(client, parent_run.info.run_id, parent_run.info.experiment_id)
    sweep = Sweep(run_cfg, None, parent)
    tuner = LabTuner(make_oracle(run_cfg), sweep, run_cfg.search.directory, run_cfg.search.name)
    if has_more_trials(tuner.oracle):
        raise LabError(
            f"sweep {run_cfg.search.name} has FINISHED with {len(tuner.oracle.trials)} trials and its runs "
            f"are final (parent run {parent.run_id}); to run more trials, run them under a new search.name"
        )
    print(
        f"sweep {run_cfg.search.name} had FINISHED: its report, from the records (nothing was changed)",
        flush=True,
    )
    return report(tuner, sweep, record=False)


def work_for_chief(run_cfg: RunConfig) -> SearchResult:
    """A distributed worker: trials come from the chief, their runs go under the chief's parent run,
    trained as the chief defined the sweep (the parent's fingerprint)."""
    dist = run_cfg.search.distributed
    splits = load_splits(run_cfg.data, run_cfg.seed)  # bad data fail before the wait
    wait_for_chief(dist)  # the chief opens the parent run before it listens
    parent_run = find_parent(run_cfg)
    if parent_run is None:
        raise LabError(
            f"the chief at {dist.address} has no parent run for search.name={run_cfg.search.name} "
            f"in {run_cfg.tracking.uri}: give every role the same search.name and tracking.uri"
        )
    check_same_as_chief(run_cfg, parent_run)
    client = MlflowClient(run_cfg.tracking.uri)
    # The chief closes it.
    parent = TrackedRun(client, parent_run.info.run_id, parent_run.info.experiment_id)
    sweep = Sweep(run_cfg, splits, parent)
    tuner = LabTuner(make_oracle(run_cfg), sweep, run_cfg.search.directory, run_cfg.search.name)
    tuner.search()
    rows = [
        {"trial_id": trial_id, "wall_seconds": seconds}
        for trial_id, seconds in tuner.trial_seconds.items()
    ]
    return SearchResult(
        parent.run_id,
        parent.experiment_id,
        rows,
        None,
        None,
        dict(tuner.trial_seconds),
        dict(sweep.fit_seconds),
    )


def colour_key_of(search_cfg: SearchConfig) -> str:
    """What the sweep's figures are coloured by: `search.colour_by`, else the first axis
    (`hp.NAME`)."""
    if search_cfg.colour_by:
        return search_cfg.colour_by
    return f"hp.{search_cfg.space[0].name}" if search_cfg.space else "hp.?"


def best_scored(
    oracle, direction: str, untrained: Sequence[str] = ()
) -> Tuple[Optional[str], Optional[float]]:
    """The best COMPLETED trial's id and score among those that trained, by the rule the kept
    models follow (`lab.tasks.search.ranking`).

    Args:
        oracle: the sweep's keras-tuner oracle.
        direction: "max" or "min".
        untrained: the trial ids whose runs are tagged lab.trained=false.

    Returns:
        (trial id, score), or (None, None) when no trial completed with a score.
    """
    scores = {
        trial_id: trial.score
        for trial_id, trial in oracle.trials.items()
        if trial.status == "COMPLETED" and trial.score is not None and trial_id not in untrained
    }
    best = best_first(scores, direction)
    return (best[0], scores[best[0]]) if best else (None, None)


def report(tuner: LabTuner, sweep: Sweep, record: bool = True) -> SearchResult:
    """The sweep's rows, best trial and figures; with `record`, trials.csv, figures, summary.md and
    the best trial are logged on the parent, and with several objectives the Pareto set (its
    section, pareto.png, `hypervolume` per trial, `pareto_size`; its kept models registered). A
    FINISHED sweep's report is only read."""
    parent, search_cfg, children = sweep.parent, sweep.run_cfg.search, sweep.children()
    rows = trial_rows(tuner.oracle, search_cfg.space, children)
    untrained = [trial for trial, run in children.items() if not trained(run.data.tags)]
    # None when no trial trained.
    best_trial, best_value = best_scored(tuner.oracle, search_cfg.direction, untrained)
    if not record:
        return recorded_report(parent, rows, best_trial, best_value)
    parent.log_text(to_csv(rows, [axis.name for axis in search_cfg.space]), "trials.csv")
    # None with one objective.
    pareto = pareto_set(search_cfg, children, [row["trial_id"] for row in rows])
    figures = log_plots(sweep, rows, children, colour_key_of(search_cfg), pareto)
    correct = log_summary(tuner, sweep, rows, children, pareto)
    if pareto is not None:
        log_pareto(parent, pareto)
    record_best(tuner, sweep, children, best_trial, best_value, pareto)
    return SearchResult(
        parent.run_id,
        parent.experiment_id,
        rows,
        best_trial,
        best_value,
        dict(tuner.trial_seconds),
        dict(sweep.fit_seconds),
        figures,
        artifact_path(parent.client, parent.run_id, "summary.md"),
        decode_by_trial(correct),
    )
