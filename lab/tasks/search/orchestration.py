"""`search(cfg)`, the body of `task=search`: runs or resumes a sweep (alone, as a distributed chief or
as a worker), then reports it on its MLflow parent run (trials.csv, summary.md, figures)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import keras_tuner as kt
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from lab import runtime
from lab.compat.keras_tuner import complete_recorded_trials
from lab.config import AblationConfig, Role, RunConfig, SearchConfig, TunerName
from lab.config.overrides import config_yaml, run_params
from lab.data import load_splits
from lab.errors import LabError, require
from lab.stats.testset import CORRECT_ARTIFACT, decode_by_trial
from lab.tasks.search import continuation
from lab.tasks.search.distributed import check_address_free, set_role_environment, wait_for_chief
from lab.tasks.search.identity import (
    FINGERPRINT_TAG,
    check_resumable,
    check_same_as_chief,
    digest,
    fingerprint,
    write_record,
)
from lab.tasks.search.ownership import sweep_owner
from lab.tasks.search.ranking import best_first
from lab.tasks.search.space import validate_space
from lab.tasks.search.summary import summary_markdown, to_csv, trial_rows
from lab.tasks.search.sweep import LabTuner, Sweep, find_parent, make_oracle
from lab.tracking import tracked_run
from lab.tracking.roles import PARENT, ROLE_TAG, SEARCH_TAG
from lab.tracking.runs import TrackedRun
from lab.training.trained import PRUNED, trained

STOPPED_BY_TAG = "lab.stopped_by"


class SweepFailedError(LabError):
    """keras-tuner stopped the sweep: too many trials failed in a row (the report is written)."""


@dataclass
class SearchResult:
    parent_run_id: str
    experiment_id: str
    rows: List[dict]
    best_trial: Optional[str]
    best_value: Optional[float]
    trial_seconds: Dict[str, float]  # trials run by this process: keras-tuner's begin to end
    fit_seconds: Dict[str, float]  # the same trials: time inside `fit` (the sum of their epochs)
    figures: Dict[str, str] = field(
        default_factory=dict
    )  # parent's PNG artifacts: name -> path or URI
    summary: Optional[str] = None  # where summary.md is
    correct: Dict[str, object] = field(
        default_factory=dict
    )  # trial id -> which test images its run got right


def search(cfg: RunConfig) -> SearchResult:
    """Runs (or resumes) the sweep `search.name`: one MLflow parent run, one child per trial.
    With `search.distributed.role=chief` this process serves the oracle and reports; with
    `worker` it trains trials for the chief at `search.distributed.address`.

    Example:
        >>> from lab.config import run_config
        >>> result = search(run_config(["task=search", "data=synthetic", "search.max_trials=2"]))
        >>> len(result.rows)
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
        splits = (
            None if chief else load_splits(run_cfg.data, run_cfg.seed)
        )  # the chief trains nothing
        with tracked_run(
            run_cfg.tracking,
            search_cfg.name,
            parent_tags(run_cfg),
            resume_run_id=earlier.info.run_id if earlier else None,
        ) as parent:
            if earlier is None:
                begin_record(run_cfg, parent, folder)
            parent.set_tags({runtime.REFERENCE_TAG: str(runtime.reference_loop_seconds(5_000_000))})
            sweep = Sweep(run_cfg, splits, parent)
            if not chief:  # a chief's workers may still be training their runs
                sweep.close_stale_children()
            tuner = LabTuner(make_oracle(run_cfg), sweep, search_cfg.directory, search_cfg.name)
            if hasattr(
                tuner.oracle, "rows_source"
            ):  # seeds as needed: the oracle reads the trials' figures
                tuner.oracle.rows_source = lambda: trial_rows(
                    tuner.oracle, search_cfg.space, sweep.children()
                )
            recorded = sweep.children()  # one query for both
            complete_recorded_trials(
                tuner.oracle,
                sweep.recorded_objectives(recorded),
                search_cfg.objective,
                sweep.recorded_pruned(recorded),
            )
            try:
                tuner.search()
            except (
                RuntimeError
            ) as error:  # keras-tuner gives up after max_consecutive_failed_trials
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
                say_budget_spent(run_cfg, tuner, parent)
            result = report(tuner, sweep)
            check_some_trial_completed(search_cfg.name, result)
            return result


def check_some_trial_completed(name: str, result: SearchResult) -> None:
    """A sweep that ran trials and completed none has failed, whatever keras-tuner's limit on
    failures in a row let it reach: its parent ends FAILED, naming the most common reason."""
    if not result.rows or any(row["status"] in ("COMPLETED", PRUNED) for row in result.rows):
        return
    reasons = [str(row.get("reason") or row["status"]) for row in result.rows]
    kind, times = Counter(reason.split(":")[0] for reason in reasons).most_common(1)[
        0
    ]  # the error's type
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


def parent_tags(run_cfg: RunConfig) -> Dict[str, str]:
    return {
        ROLE_TAG: PARENT,
        SEARCH_TAG: run_cfg.search.name,
        "lab.task": "search",
        FINGERPRINT_TAG: digest(fingerprint(run_cfg)),
        **runtime.provenance_tags(),
    }


def begin_record(run_cfg: RunConfig, parent: TrackedRun, folder: Path) -> None:
    """A new sweep's parent: its params, config and fingerprint; the tuner folder's record of it."""
    parent.log_params(
        {
            key: value
            for key, value in run_params(run_cfg).items()
            if key.startswith(("search.", "data.", "train."))
        }
    )
    parent.log_params({"seed": run_cfg.seed, "search.base_model": run_cfg.model.name})
    parent.log_text(config_yaml(run_cfg), "config.yaml")
    definition = fingerprint(run_cfg)
    parent.log_text(json.dumps(definition, indent=1), "fingerprint.json")
    write_record(folder, parent.run_id, definition)


def has_more_trials(oracle) -> bool:
    """Whether a finished sweep's oracle would hand out another trial: a grid whose every cell was
    tried would not, whatever `search.max_trials` allows (the ablations' shared base allows 100 for
    grids of 6 to 20 cells). Hyperband's remaining trials are None: it ends by its brackets."""
    if not oracle.remaining_trials():
        return False
    if isinstance(
        oracle, kt.oracles.GridSearchOracle
    ):  # asked, not saved: the finished sweep is only read
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
    parent = TrackedRun(
        client, parent_run.info.run_id, parent_run.info.experiment_id
    )  # the chief closes it
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


def colour_value(run: Run, key: str) -> str:
    """A trial run's value for `key`: a param (`model.connectivity`, `hp.variant`) or a metric (`depth`)."""
    if key in run.data.params:
        return run.data.params[key]
    value = run.data.metrics.get(key)
    return "?" if value is None else f"{value:g}"


def colour_key_of(search_cfg: SearchConfig) -> str:
    """`search.colour_by`, else the first axis (`hp.NAME`)."""
    if search_cfg.colour_by:
        return search_cfg.colour_by
    return f"hp.{search_cfg.space[0].name}" if search_cfg.space else "hp.?"


def log_plots(sweep: Sweep, rows: List[dict], children: Dict[str, Run]) -> Dict[str, str]:
    """objective_vs_depth.png, objective_vs_params.png, objective_vs_macs.png, curves.png (coloured
    by `search.colour_by`) and, for an ablation, error_curves.png, on the parent; returns
    {name: where the file is}."""
    import matplotlib.pyplot as plt

    from lab.tasks.search import plots

    client, search_cfg = sweep.parent.client, sweep.run_cfg.search
    objective, colour_key = search_cfg.objective, colour_key_of(search_cfg)
    trials, curves = [], {}
    for row in rows:
        child = children.get(row["trial_id"])
        if child is None or row["best_objective"] == "":
            continue
        metrics = child.data.metrics
        trials.append(
            {
                "objective": float(row["best_objective"]),
                "depth": metrics.get("depth", 0),
                "params_total": metrics.get("params_total", 0),
                "macs": metrics.get("macs", 0),
                colour_key: colour_value(child, colour_key),
            }
        )
        history = client.get_metric_history(child.info.run_id, objective)
        curves[f"trial {row['trial_id']}"] = [
            (m.step, m.value) for m in sorted(history, key=lambda m: m.step)
        ]
    if not trials:
        return {}
    figures = {
        "objective_vs_depth.png": plots.depth_figure(trials, colour_key, objective),
        "objective_vs_params.png": plots.cost_figure(trials, "params_total", colour_key, objective),
        "objective_vs_macs.png": plots.cost_figure(trials, "macs", colour_key, objective),
        "curves.png": plots.curves_figure(curves, objective),
    }
    if search_cfg.ablation is not None:
        figures["error_curves.png"] = plots.error_curves_figure(
            ablation_curves(client, search_cfg.ablation, rows, children),
            f"{search_cfg.name}: {search_cfg.ablation.source or 'ablation'}",
        )
    for name, figure in figures.items():
        figure.tight_layout()
        client.log_figure(sweep.parent.run_id, figure, name)
        plt.close(figure)
    return {name: artifact_path(client, sweep.parent.run_id, name) for name in figures}


def artifact_path(client: MlflowClient, run_id: str, name: str) -> str:
    """A local path for a file store's artifact, else its URI."""
    uri = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{name}"
    return uri[len("file://") :] if uri.startswith("file://") else uri


def mean_curve(client: MlflowClient, runs: List[Run], accuracy_key: str) -> List[tuple]:
    """[(epoch, 1 - mean accuracy over the runs)] for the epochs every run logged."""
    per_run = [
        {m.step: m.value for m in client.get_metric_history(r.info.run_id, accuracy_key)}
        for r in runs
    ]
    epochs = sorted(set.intersection(*(set(h) for h in per_run))) if per_run else []
    return [(epoch, 1 - sum(h[epoch] for h in per_run) / len(per_run)) for epoch in epochs]


def ablation_curves(
    client: MlflowClient, cfg: AblationConfig, rows: List[dict], children: Dict[str, Run]
):
    """One mean error curve per value of the ablation's axis, over its trained runs."""
    from lab.tasks.search import plots
    from lab.verdicts.ablation import usable

    by_value: Dict[str, List[Run]] = {}
    for row in usable(rows):
        if row["trial_id"] in children:
            by_value.setdefault(str(row[cfg.axis]), []).append(children[row["trial_id"]])
    style = cfg.curves
    curves = []
    for value, runs in by_value.items():
        group = colour_value(runs[0], style.colour_by) if style.colour_by else value
        dashed = style.dash_by is not None and colour_value(runs[0], style.dash_by) in style.dashed
        curves.append(
            plots.ErrorCurve(
                value,
                group,
                dashed,
                mean_curve(client, runs, "accuracy"),
                mean_curve(client, runs, "val_accuracy"),
                len(runs),
            )
        )
    return curves


def test_correct_records(client: MlflowClient, children: Dict[str, Run]) -> Dict[str, dict]:
    """Trial id -> which test images its run got right, for the trials whose runs logged it."""
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for trial_id, child in children.items():
            if any(a.path == CORRECT_ARTIFACT for a in client.list_artifacts(child.info.run_id)):
                path = client.download_artifacts(
                    child.info.run_id, CORRECT_ARTIFACT, f"{folder}/{trial_id}"
                )
                found[trial_id] = json.loads(Path(path).read_text())
    return found


def recorded_correct(client: MlflowClient, run_id: str) -> Dict[str, dict]:
    """A finished sweep's parent's test_correct.json (trial id -> record)."""
    with tempfile.TemporaryDirectory() as folder:
        return json.loads(
            Path(client.download_artifacts(run_id, CORRECT_ARTIFACT, folder)).read_text()
        )


def sweep_wall_time(children: Dict[str, Run]) -> str:
    """From the first trial's start to the last trial's end, and summed over trials (a resumed
    sweep's pause counts in the first, not in the second)."""
    spans = [(c.info.start_time, c.info.end_time) for c in children.values() if c.info.end_time]
    if not spans:
        return "no trial ended"
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return (
        f"{(last - first) / 1000:.0f} s from the first trial's start to the last trial's end "
        f"({sum(e - s for s, e in spans) / 1000:.0f} s summed over {len(spans)} trials)"
    )


def register_best(
    run_cfg: RunConfig, parent: TrackedRun, best_child: Run, best_value: float
) -> None:
    """`search.register_as`: the best trial's kept model, registered (alias `best`), said and tagged
    on the parent (`lab.registered_model`)."""
    from lab.tracking.logged_models import BEST_ALIAS, MODEL_URI_TAG, register_model

    name, search_cfg = run_cfg.search.register_as, run_cfg.search
    model_uri = best_child.data.tags.get(MODEL_URI_TAG)
    if model_uri is None:
        raise LabError(
            f"search.register_as={name}: the best trial's run {best_child.info.run_id} has no model"
        )
    tags = {
        "lab.search": search_cfg.name,
        "lab.parent": parent.run_id,
        "lab.trial": best_child.data.tags["lab.trial"],
        "lab.run": best_child.info.run_id,
        "lab.objective": search_cfg.objective,
        "lab.objective_value": f"{best_value:.6g}",
    }
    version = register_model(run_cfg.tracking.uri, model_uri, name, tags)
    parent.set_tags({"lab.registered_model": f"models:/{name}/{version}"})
    print(
        f"registered the best trial's model as models:/{name}@{BEST_ALIAS} (version {version})",
        flush=True,
    )


def best_scored(
    oracle, direction: str, untrained: Sequence[str] = ()
) -> Tuple[Optional[str], Optional[float]]:
    """The best COMPLETED trial's id and score among those that trained (`untrained`: the trial
    ids whose runs are tagged lab.trained=false), by the rule the kept models follow
    (`lab.tasks.search.ranking`); (None, None) when no trial completed with a score."""
    scores = {
        trial_id: trial.score
        for trial_id, trial in oracle.trials.items()
        if trial.status == "COMPLETED" and trial.score is not None and trial_id not in untrained
    }
    best = best_first(scores, direction)
    return (best[0], scores[best[0]]) if best else (None, None)


def report(tuner: LabTuner, sweep: Sweep, record: bool = True) -> SearchResult:
    """The sweep's rows, best trial and figures; with `record`, trials.csv, figures, summary.md and
    the best trial are logged on the parent (a FINISHED sweep's report is only read)."""
    parent, run_cfg, children = sweep.parent, sweep.run_cfg, sweep.children()
    rows = trial_rows(tuner.oracle, run_cfg.search.space, children)
    untrained = [trial for trial, run in children.items() if not trained(run.data.tags)]
    best_trial, best_value = best_scored(
        tuner.oracle, run_cfg.search.direction, untrained
    )  # none when none trained
    if not record:
        names = [a.path for a in parent.client.list_artifacts(parent.run_id)]
        figures = {
            name: artifact_path(parent.client, parent.run_id, name)
            for name in names
            if name.endswith(".png")
        }
        correct = (
            recorded_correct(parent.client, parent.run_id) if CORRECT_ARTIFACT in names else {}
        )
        return SearchResult(
            parent.run_id,
            parent.experiment_id,
            rows,
            best_trial,
            best_value,
            {},
            {},
            figures,
            artifact_path(parent.client, parent.run_id, "summary.md"),
            decode_by_trial(correct),
        )
    parent.log_text(to_csv(rows, [axis.name for axis in run_cfg.search.space]), "trials.csv")
    figures = log_plots(sweep, rows, children)
    facts = {**runtime.provenance(), "sweep wall time": sweep_wall_time(children)}
    speed = parent.client.get_run(parent.run_id).data.tags.get(runtime.REFERENCE_TAG)
    if speed is not None:
        facts["the day's speed"] = (
            f"the 20M-addition reference loop took {speed} s when the sweep (last) started "
            f"(1.3 s on a fast day here, 5.3 s on a slow one)"
        )
    if tuner.oracle.deadline_passed:
        facts["stopped by"] = (
            f"search.max_seconds={run_cfg.search.max_seconds:g}: no trial started after it, "
            f"{tuner.oracle.remaining_trials() or 0} of search.max_trials not run"
        )
    if run_cfg.search.tuner is TunerName.hyperband:
        facts["continuation"] = (
            continuation.summary_line(sweep.every_attempt())
            if run_cfg.search.hyperband_resume
            else "off (search.hyperband_resume=false): every rung trained from scratch"
        )
    pruned = [row["trial_id"] for row in rows if row["status"] == PRUNED]
    if pruned:
        facts["pruned"] = (
            f"{len(pruned)} trials by search.pruner={run_cfg.search.pruner.value} ({', '.join(pruned)})"
        )
    correct = test_correct_records(parent.client, children)
    if correct:
        parent.log_text(json.dumps(correct), CORRECT_ARTIFACT)
    summary = summary_markdown(
        rows,
        run_cfg,
        "\n".join(f"- {key}: {value}" for key, value in facts.items()),
        decode_by_trial(correct),
    )
    parent.log_text(summary, "summary.md")
    if best_trial is not None:
        parent.set_tags(
            {"lab.best_trial": best_trial, "lab.best_child": children[best_trial].info.run_id}
        )
        parent.log_metrics({"best_objective": best_value})
        parent.log_text(
            OmegaConf.to_yaml(tuner.oracle.trials[best_trial].hyperparameters.values),
            "best_values.yaml",
        )
        if run_cfg.search.register_as:
            register_best(run_cfg, parent, children[best_trial], best_value)
    elif run_cfg.search.register_as:
        print(
            f"search.register_as={run_cfg.search.register_as}: nothing registered, no trial trained to the end "
            "(trials.csv on the parent says why each did not)",
            flush=True,
        )
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
