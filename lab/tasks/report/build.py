"""`python run.py task=report`: reads the store, pools, draws, writes report.md, report.csv,
report.html and the figures into `report.out`, whole or not at all (everything is written into
a temporary folder beside it, renamed at the end), then logs the folder as the artifacts of one
run (`lab.task=report`) in the MLflow experiment `reports`. It trains nothing and loads no Keras."""

from __future__ import annotations

import collections
import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from lab.config import ReportTaskConfig, RunConfig
from lab.errors import LabError
from lab.tasks.report import sections as say
from lab.tasks.report.collect import REPORTS_EXPERIMENT, Collected, ReportInputError, read_store
from lab.tasks.report.pareto import FIGURE, on_a_front, pareto_groups
from lab.tasks.report.pool import pooled_rows
from lab.tasks.report.records import PooledRow, Section
from lab.tasks.report.tables import markdown, pooled_csv
from lab.tracking.runs import sigterm_raises
from lab.tracking.tags import GIT_COMMIT_TAG, TASK_TAG

TITLE = "What the lab has trained"


@dataclass
class ReportResult:
    folder: Path
    rows: List[PooledRow]
    collected: Collected
    run_id: Optional[str]
    experiment_id: Optional[str]
    seconds: float


def out_folder(report: ReportTaskConfig) -> Path:
    return (
        Path(report.out)
        if report.out
        else Path("reports") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    )


def check_reportable(collected: Collected, report: ReportTaskConfig) -> None:
    """An empty store, a data filter that leaves nothing, a metric no run logged: one line each."""
    where = f"{collected.uri} ({', '.join(collected.experiments) or 'no experiments'})"
    if not collected.runs:
        data = f" on data {report.data}" if report.data else ""
        raise ReportInputError(
            f"no training runs{data} in {where}: nothing to report (train or sweep first)"
        )
    if not any(run.status == "FINISHED" for run in collected.runs):
        statuses = collections.Counter(run.status for run in collected.runs)
        counts = ", ".join(f"{status} {count}" for status, count in statuses.most_common())
        raise ReportInputError(
            f"none of the {len(collected.runs)} training runs in {where} finished ({counts}): "
            f"nothing to report; each run's lab.error tag says why it ended"
        )
    if report.metric not in collected.metrics_seen:
        finals = sorted(
            m for m in collected.metrics_seen if m.startswith(("test_", "best_", "val_"))
        )
        raise ReportInputError(
            f"report.metric={report.metric}: no run in {where} logged it; "
            f"the runs logged: {', '.join(finals) or 'no test metric'}"
        )


def ablation_sections(collected: Collected, folder: Path) -> List[Section]:
    from lab.tasks.report.figures import forest_figure

    found = []
    for index, sweep in enumerate(
        s for s in collected.sweeps if s.ablation is not None and s.verdicts
    ):
        name = f"forest_{index + 1}_{sweep.name}.png"
        forest_figure(sweep, folder / name)
        found.append(say.ablation_section(sweep, name))
    return found


def importance_sections(collected: Collected) -> List[Section]:
    from lab.tasks.report.importance import axis_importance

    return [
        say.importance_section(found)
        for sweep in collected.sweeps
        for found in axis_importance(sweep)
    ]


def cost_figures(rows: List[PooledRow], report: ReportTaskConfig, folder: Path) -> Dict[str, str]:
    from lab.tasks.report.figures import cost_figure, wall_time_figure

    cost_figure(rows, report.metric, report.size.value, folder / "metric_vs_macs.png")
    wall_time_figure(rows, report.metric, folder / "metric_vs_wall_time.png")
    return {"cost": "metric_vs_macs.png", "wall": "metric_vs_wall_time.png"}


def pareto_sections(
    rows: List[PooledRow], metric: str, folder: Path
) -> Tuple[List[Section], Set[str]]:
    """A section per data set and protocol and the spec hashes on a front; pareto_front.png, a
    panel per group of two networks or more, goes with the first such group's section."""
    from lab.tasks.report.pareto_figure import pareto_figure

    groups = pareto_groups(rows, metric)
    drawn = [group for group in groups if group.compared]
    panels = {group.label: index + 1 for index, group in enumerate(drawn)}
    found = [say.pareto_section(group, metric, panels.get(group.label)) for group in groups]
    if drawn:
        pareto_figure(drawn, metric, folder / FIGURE)
        found[groups.index(drawn[0])].figures.append(FIGURE)
    return found, on_a_front(groups)


def write_report(
    collected: Collected, rows: List[PooledRow], report: ReportTaskConfig, folder: Path
) -> None:
    from lab.tasks.report.page import write_html

    fronts, on_front = pareto_sections(rows, report.metric, folder)
    sections = [
        say.read_section(collected, rows, report.metric),
        say.table_section(rows, report.metric),
        say.figure_section(cost_figures(rows, report, folder), report.metric),
        *fronts,
        *ablation_sections(collected, folder),
        *importance_sections(collected),
        say.left_out_section(collected),
    ]
    (folder / "report.md").write_text(markdown(TITLE, sections))
    (folder / "report.csv").write_text(pooled_csv(rows, on_front))
    write_html(TITLE, sections, folder)


def written_whole(out: Path, write) -> Path:
    """Calls write(folder) on a temporary folder beside `out`, then renames it to `out`: an error
    on the way, SIGTERM or Ctrl-C leave no half report and no staging folder. A folder that
    cannot be made there (read-only, under a file, already taken) is named in one line."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise LabError(
            f"report.out={out} cannot be written: {error.strerror or error} ({error.filename or out.parent})"
        ) from None
    try:
        write(staging)
        staging.rename(out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise LabError(f"report.out={out} cannot be written: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def log_report(cfg: RunConfig, folder: Path, collected: Collected, rows: List[PooledRow]):
    """The report as the artifacts of one run in the experiment `reports`."""
    from lab.config.code_version import git_commit
    from lab.config.overrides import flat_config
    from lab.tracking import tracked_run

    tracking = dataclasses.replace(cfg.tracking, experiment=REPORTS_EXPERIMENT)
    with tracked_run(
        tracking, f"report-{folder.name}", {TASK_TAG: "report", GIT_COMMIT_TAG: git_commit()}
    ) as run:
        run.log_params({f"report.{key}": value for key, value in flat_config(cfg.report).items()})
        run.log_params({"report.folder": str(folder.resolve())})
        run.log_metrics(
            {
                "runs_read": len(collected.runs),
                "networks": len(rows),
                "sweeps": len(collected.sweeps),
            }
        )
        run.client.log_artifacts(run.run_id, str(folder))
        return run.run_id, run.experiment_id


def build_report(cfg: RunConfig) -> ReportResult:
    """Everything trained in `tracking.uri`, pooled by what was trained, on one page.

    Args:
        cfg: the config; `report.*` chooses the experiments, data, metric and output folder.

    Returns:
        The `ReportResult`: what was collected, the pooled rows, the folder written (whole, or
        not at all) and the MLflow run it was logged to.

    Raises:
        LabError: a store that cannot be read, or nothing to report.
        Terminated: SIGTERM, which stops it as Ctrl-C does, leaving no staging folder.
    """
    with sigterm_raises():
        return built_report(cfg)


def built_report(cfg: RunConfig) -> ReportResult:
    start = time.perf_counter()
    report = cfg.report
    collected = read_store(cfg.tracking.uri, report.experiments, report.data, report.metric)
    check_reportable(collected, report)
    rows = pooled_rows(collected.runs, report.metric)
    folder = written_whole(
        out_folder(report), lambda staging: write_report(collected, rows, report, staging)
    )
    run_id, experiment_id = log_report(cfg, folder, collected, rows)
    return ReportResult(folder, rows, collected, run_id, experiment_id, time.perf_counter() - start)
