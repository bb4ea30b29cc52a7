"""What a sweep's parent run says at its end, besides trials.csv and the figures: summary.md with
the sweep's facts (provenance, wall time, the day's speed, what stopped it, continuation,
pruning; the Pareto set of a sweep with several objectives), test_correct.json, and the best
trial (tags, `best_objective`, best_values.yaml, its registered model, or the Pareto set's); for a
FINISHED sweep, the same read back. `SearchResult` is what `search(cfg)` returns."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from lab import runtime
from lab.config import TunerName
from lab.stats.testset import CORRECT_ARTIFACT, decode_by_trial
from lab.tasks.search import continuation
from lab.tasks.search.model_registry import register_best, register_front, say_nothing_registered
from lab.tasks.search.pareto_set import ParetoSet
from lab.tasks.search.records import artifact_path
from lab.tasks.search.summary import summary_markdown
from lab.tasks.search.sweep import LabTuner, Sweep
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import BEST_CHILD_TAG, BEST_TRIAL_TAG, REFERENCE_TAG
from lab.training.trained import PRUNED


@dataclass
class SearchResult:
    """A sweep's outcome, as `search(cfg)` returns it."""

    parent_run_id: str
    experiment_id: str
    rows: List[dict]
    best_trial: Optional[str]
    best_value: Optional[float]
    trial_seconds: Dict[str, float]  # trials run by this process: keras-tuner's begin to end
    fit_seconds: Dict[str, float]  # the same trials: time inside `fit` (the sum of their epochs)
    # parent's PNG artifacts: name -> path or URI
    figures: Dict[str, str] = field(default_factory=dict)
    summary: Optional[str] = None  # where summary.md is
    # trial id -> which test images its run got right
    correct: Dict[str, object] = field(default_factory=dict)


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


def sweep_facts(
    tuner: LabTuner, sweep: Sweep, rows: List[dict], children: Dict[str, Run]
) -> Dict[str, str]:
    """The facts summary.md opens with: provenance, the sweep's wall time, the day's speed, and,
    where they apply, what stopped it, what Hyperband continued and which trials were pruned."""
    parent, search_cfg = sweep.parent, sweep.run_cfg.search
    facts = {**runtime.provenance(), "sweep wall time": sweep_wall_time(children)}
    speed = parent.client.get_run(parent.run_id).data.tags.get(REFERENCE_TAG)
    if speed is not None:
        facts["the day's speed"] = (
            f"the 20M-addition reference loop took {speed} s when the sweep (last) started "
            f"(1.3 s on a fast day here, 5.3 s on a slow one)"
        )
    if tuner.oracle.deadline_passed:
        facts["stopped by"] = (
            f"search.max_seconds={search_cfg.max_seconds:g}: no trial started after it, "
            f"{tuner.oracle.remaining_trials() or 0} of search.max_trials not run"
        )
    if search_cfg.tuner is TunerName.hyperband:
        facts["continuation"] = (
            continuation.summary_line(sweep.every_attempt())
            if search_cfg.hyperband_resume
            else "off (search.hyperband_resume=false): every rung trained from scratch"
        )
    pruned = [row["trial_id"] for row in rows if row["status"] == PRUNED]
    if pruned:
        facts["pruned"] = (
            f"{len(pruned)} trials by search.pruner={search_cfg.pruner.value} ({', '.join(pruned)})"
        )
    return facts


def log_summary(
    tuner: LabTuner,
    sweep: Sweep,
    rows: List[dict],
    children: Dict[str, Run],
    pareto: Optional[ParetoSet] = None,
) -> Dict[str, dict]:
    """Logs summary.md (with the Pareto set's section where `pareto` is given) on the parent run,
    and test_correct.json where trials' runs recorded which test images they got right; returns
    those records (trial id -> record)."""
    parent = sweep.parent
    facts = sweep_facts(tuner, sweep, rows, children)
    correct = test_correct_records(parent.client, children)
    if correct:
        parent.log_text(json.dumps(correct), CORRECT_ARTIFACT)
    summary = summary_markdown(
        rows,
        sweep.run_cfg,
        "\n".join(f"- {key}: {value}" for key, value in facts.items()),
        decode_by_trial(correct),
        pareto,
    )
    parent.log_text(summary, "summary.md")
    return correct


def record_best(
    tuner: LabTuner,
    sweep: Sweep,
    children: Dict[str, Run],
    best_trial: Optional[str],
    best_value: Optional[float],
    pareto: Optional[ParetoSet] = None,
) -> None:
    """The best trial on the parent run (tags `lab.best_trial`/`lab.best_child`, metric
    `best_objective`, best_values.yaml) and, with `search.register_as`, its model registered (with
    `pareto`, several objectives: the kept models of the Pareto set's members); without a best
    trial (none trained), the registration is said not to happen."""
    parent, register_as = sweep.parent, sweep.run_cfg.search.register_as
    if best_trial is not None:
        best_child = children[best_trial]
        parent.set_tags({BEST_TRIAL_TAG: best_trial, BEST_CHILD_TAG: best_child.info.run_id})
        parent.log_metrics({"best_objective": best_value})
        parent.log_text(
            OmegaConf.to_yaml(tuner.oracle.trials[best_trial].hyperparameters.values),
            "best_values.yaml",
        )
        if register_as and pareto is not None:
            register_front(sweep.run_cfg, parent, pareto, sweep.kept_models(children))
        elif register_as:
            register_best(sweep.run_cfg, parent, best_child, best_value)
    elif register_as:
        say_nothing_registered(register_as)


def recorded_report(
    parent: TrackedRun, rows: List[dict], best_trial: Optional[str], best_value: Optional[float]
) -> SearchResult:
    """A FINISHED sweep's report, read from its parent run's artifacts (nothing is written)."""
    names = [a.path for a in parent.client.list_artifacts(parent.run_id)]
    figures = {
        name: artifact_path(parent.client, parent.run_id, name)
        for name in names
        if name.endswith(".png")
    }
    correct = recorded_correct(parent.client, parent.run_id) if CORRECT_ARTIFACT in names else {}
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
