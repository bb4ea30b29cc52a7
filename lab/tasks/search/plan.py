"""What a command will run, before it runs: the settings quick mode leaves, the trials a sweep
plans (a grid's cells, or how many a sampler draws), and an estimate of the wall time from the
runs the store already holds for the same networks on the same data (`task=plan`). Sweeps use
the same count for their "trial k of N" line.

Light: MLflow's client only (no Keras, no keras-tuner), so the answer comes in seconds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from lab.config import AxisKind, AxisSpec, RunConfig, SearchConfig, Task, TunerName
from lab.config.command_line import command_line_keys
from lab.tracking.tags import PARENT, ROLE_TAG

# The settings a plan shows, as `key: value` (quick mode's changes are listed apart, all of them).
SHOWN = (
    "model.name",
    "data.name",
    "data.downsample",
    "data.limit",
    "data.test_limit",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "seed",
    "search.name",
    "search.tuner",
    "search.max_trials",
    "search.executions_per_trial",
    "search.objective",
    "tracking.uri",
    "tracking.experiment",
)
# A recorded run is the same work as a planned one when these params agree (and its model does).
SAME_WORK = ("data.name", "data.downsample", "data.limit", "train.batch_size")


def axis_values(axis: AxisSpec) -> Optional[List[Any]]:
    """Every value a grid tries on `axis`, as keras-tuner's Int and Float count them: from `min`
    by `step` while within `max` (floor division), a step that multiplies on a log scale; None
    where the axis has no finite list (a float without a step)."""
    if axis.kind is AxisKind.choice:
        return list(axis.values)
    if axis.kind is AxisKind.boolean:
        return [False, True]  # keras-tuner's Boolean tries its default, False, first
    if axis.step is None and axis.kind is AxisKind.float:
        return None
    step = axis.step or 1
    if axis.log and axis.kind is AxisKind.float:
        values, value = [], float(axis.min)
        while value <= axis.max * (1 + 1e-9):
            values.append(value)
            value *= step
        return values
    count = int((axis.max - axis.min) // step) + 1
    values = [axis.min + i * step for i in range(count)]
    return [int(v) for v in values] if axis.kind is AxisKind.int else values


def grid_cells(axes: Sequence[AxisSpec]) -> Optional[List[Dict[str, Any]]]:
    """Every combination of the axes' values, a conditional axis only where its condition holds."""
    cells: List[Dict[str, Any]] = [{}]
    for axis in axes:
        values = axis_values(axis)
        if values is None:
            return None
        grown = []
        for cell in cells:
            if axis.when:
                parent, allowed = next(iter(axis.when.items()))
                if cell.get(parent) not in allowed:
                    grown.append(cell)
                    continue
            grown.extend({**cell, axis.name: value} for value in values)
        cells = grown
    return cells


def planned_trials(search: SearchConfig) -> Optional[int]:
    """How many trials the sweep runs: a grid's cells (at most `max_trials`), `max_trials` for
    the samplers; None for Hyperband (its brackets decide) or a grid with a continuous axis."""
    if search.tuner is TunerName.hyperband:
        return None
    if search.tuner is TunerName.grid:
        cells = grid_cells(search.space)
        return None if cells is None else min(len(cells), search.max_trials)
    return search.max_trials


@dataclass
class Estimate:
    """A trial's estimated wall time, from the recorded runs of the same work."""

    seconds: Optional[
        float
    ]  # median recorded wall time of the same work, per trial; None: no record
    runs: int  # how many recorded runs it is the median of


def flat(cfg: RunConfig) -> Dict[str, str]:
    """The config as the params a run logs (strings, enums by name)."""
    from lab.config.overrides import flat_config

    return {key: str(value) for key, value in flat_config(cfg).items()}


def recorded_seconds(runs: Sequence, model: str, work: Dict[str, str], epochs: int) -> Estimate:
    """The median wall time of finished, recorded runs that trained `model` with the same data
    and batch size, scaled to `epochs` by the epochs each trained."""
    seconds = []
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        if params.get("model.name") != model or any(params.get(k) != v for k, v in work.items()):
            continue
        trained = metrics.get("epochs_trained") or number(params.get("train.epochs"))
        # a trial run spans all of them
        executions = number(params.get("search.executions_per_trial")) or 1
        if trained and run.info.end_time and run.info.start_time:
            seconds.append(
                (run.info.end_time - run.info.start_time) / 1000 / executions * epochs / trained
            )
    return Estimate(statistics.median(seconds) if seconds else None, len(seconds))


def number(text: Optional[str]) -> float:
    """A recorded param as a number; 0 where it is absent or not one (a run of another program)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def finished_training_runs(uri: str) -> List:
    """Every FINISHED run in the store that trained (train or a sweep's trial or execution)."""
    from mlflow.tracking import MlflowClient

    from lab.tracking.runs import every_run

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    return [
        run
        for run in every_run(client, experiments, "attributes.status = 'FINISHED'")
        if "model.name" in run.data.params and run.data.tags.get(ROLE_TAG) != PARENT
    ]


def trial_model(cfg: RunConfig, cell: Dict[str, Any]) -> str:
    """The variant a trial trains: the cell's value for an axis on `model`, else the config's."""
    for axis in cfg.search.space:
        if axis.path == "model" and axis.name in cell:
            return str(cell[axis.name])
    return cfg.model.name


def format_seconds(seconds: float) -> str:
    """`1 min 05 s`, or `42 s` under a minute."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def planned_task(command_line: Sequence[str]) -> Task:
    """What `task=plan` plans: a sweep where the command names an experiment or a `search.` key,
    else one training."""
    sweep = any(key == "experiment" or key.startswith("search.") for key in command_line)
    return Task.search if sweep else Task.train


def plan_lines(
    cfg: RunConfig, quick_changes: Dict[str, Any], runs: Sequence, task: Task = Task.search
) -> List[str]:
    """The plan of `task` (a sweep, or one training) as printed lines.

    Args:
        cfg: the composed config.
        quick_changes: {key: value} that quick mode set ({} without quick mode).
        runs: the store's FINISHED training runs (`finished_training_runs`) to estimate from.
        task: `Task.search` for a sweep, anything else for one training.

    Returns:
        The task, its settings, the trials a sweep plans (each grid cell, up to 40) and the
        estimated wall time.
    """
    values = flat(cfg)
    lines = settings_lines(cfg, quick_changes, values, task)
    work = {key: values.get(key, "None") for key in SAME_WORK}
    if task is not Task.search:
        estimate = recorded_seconds(runs, cfg.model.name, work, cfg.train.epochs)
        return lines + [f"one training of {cfg.model.name}: {estimate_text(estimate)}"]
    return lines + sweep_lines(cfg, runs, work)


def settings_lines(
    cfg: RunConfig, quick_changes: Dict[str, Any], values: Dict[str, str], task: Task
) -> List[str]:
    """The task, what quick mode set, and the `SHOWN` settings (a sweep's `search.` keys only for
    a sweep); `values` is the flat config (`flat`)."""
    lines = [f"task={task.value}" + (" (quick mode)" if cfg.quick else "")]
    if quick_changes:
        lines.append("quick mode sets: " + ", ".join(f"{k}={v}" for k, v in quick_changes.items()))
    lines.append(
        "settings: "
        + ", ".join(
            f"{k}={values[k]}"
            for k in SHOWN
            if k in values and (task is Task.search or not k.startswith("search."))
        )
    )
    return lines


def sweep_lines(cfg: RunConfig, runs: Sequence, work: Dict[str, str]) -> List[str]:
    """A sweep's trials: how many, each grid cell (up to 40) with its estimate, and the wall time
    estimated from the `runs` that did the same `work` (`SAME_WORK` params)."""
    search = cfg.search
    cells = grid_cells(search.space) if search.tuner is TunerName.grid else None
    count = planned_trials(search)
    lines = [trials_line(search, cells, count)]
    if search.ablation is not None and search.ablation.looks:
        lines.append(
            "seeds are added in looks (search.ablation.looks): the count above is the most it runs"
        )
    shown = cells[:count] if cells is not None and count is not None else [{}] * (count or 0)
    estimates = [
        recorded_seconds(runs, trial_model(cfg, cell), work, cfg.train.epochs) for cell in shown
    ]
    if cells is not None:
        for index, (cell, estimate) in enumerate(zip(shown[:40], estimates)):
            described = ", ".join(f"{k}={v}" for k, v in cell.items())
            lines.append(f"  trial {index + 1}: {described}  ({estimate_text(estimate)})")
        if len(shown) > 40:
            lines.append(f"  ... and {len(shown) - 40} more")
    return lines + [wall_time_line(estimates, search.executions_per_trial)]


def trials_line(
    search: SearchConfig, cells: Optional[List[Dict[str, Any]]], count: Optional[int]
) -> str:
    """How many trials the sweep plans (`count`; None: decided as it runs), of how many grid
    `cells` (None: not a grid), with the trainings each."""
    if count is None:
        return (
            f"trials: decided as it runs ({search.tuner.value}; at most "
            f"search.max_trials={search.max_trials})"
        )
    executions = search.executions_per_trial
    return (
        f"trials: {count} ({search.tuner.value}"
        + (f", {len(cells)} grid cells" if cells is not None else "")
        + (f", {executions} trainings each" if executions > 1 else "")
        + ")"
    )


def wall_time_line(estimates: List[Estimate], executions: int) -> str:
    """The sweep's estimated wall time: the trials with a recorded estimate, scaled up to all."""
    known = [estimate.seconds for estimate in estimates if estimate.seconds is not None]
    if not known:
        return "estimated wall time: no recorded run of these networks on the same data to estimate from"
    total = 0.0
    for seconds in known:
        total += seconds * executions
    scaled = total * len(estimates) / len(known)
    return (
        f"estimated wall time: {format_seconds(scaled)} (from recorded runs of {len(known)} of the "
        f"{len(estimates)} trials' networks on the same data; one process, this machine's records)"
    )


def estimate_text(estimate: Estimate) -> str:
    """An estimate as the plan prints it."""
    if estimate.seconds is None:
        return "no recorded run to estimate from"
    return f"about {format_seconds(estimate.seconds)}, median of {estimate.runs} recorded runs"


def run(cfg: RunConfig) -> None:
    """`python run.py task=plan ...`: prints what the command would run without `task=plan`: a
    sweep (an experiment, or `search.` keys on the command line) or one training; nothing is
    trained or written.

    Args:
        cfg: the composed config.
    """
    from lab.tracking.runs import sqlite_file

    database = sqlite_file(cfg.tracking.uri)
    runs = (
        finished_training_runs(cfg.tracking.uri) if database is None or database.is_file() else []
    )
    quick = dict(cfg.quick_settings) if cfg.quick else {}
    for line in plan_lines(cfg, quick, runs, planned_task(command_line_keys())):
        print(line)
