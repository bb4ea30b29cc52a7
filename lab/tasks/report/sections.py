"""What the report says, section by section (rendered alike into report.md and report.html):
what was read, the pooled table, the two cost figures, each ablation's verdicts, which axes
mattered, and every run left out with why."""

from __future__ import annotations

from typing import Dict, List

from lab.tasks.report import tables
from lab.tasks.report.collect import Collected
from lab.tasks.report.pool import CONFIDENCE, left_out_runs, metric_falls_as_better
from lab.tasks.report.records import AxisImportance, PooledRow, Section, SweepRecord

POOLING = (
    "Runs are pooled by `lab.spec_hash`, a hash of the model spec, the data and the training protocol (not the "
    "seed, not the sweep): the same network trained the same way under two experiments is one row, with one "
    "run per seed (the latest, where a seed ran twice). Only runs that finished and trained count; "
    "failed, killed, pruned and untrained runs are listed at the end with why. "
    f"Mean ± sample standard deviation over seeds; the {CONFIDENCE:.0%} interval is Student's t on the mean "
    "(n − 1 degrees of freedom), absent for one seed."
)


def read_section(collected: Collected, rows: List[PooledRow], metric: str) -> Section:
    pooled = sum(row.n for row in rows)
    direction = "lower" if metric_falls_as_better(metric) else "higher"
    paragraphs = [
        f"Store {collected.uri}; experiments: {', '.join(collected.experiments) or 'none'}.",
        f"{len(collected.runs)} training runs read: {pooled} pooled into {len(rows)} networks, "
        f"{len(collected.runs) - pooled} left out. {collected.other_runs} other runs (evaluations, "
        "benchmarks, trial runs above their executions, runs recorded before spec hashes) are not training "
        f"results. Sweeps read: {len(collected.sweeps)}.",
        f"Compared on {metric} ({direction} is better). " + POOLING,
    ]
    return Section("What was read", paragraphs + collected.sweep_notes)


def table_section(rows: List[PooledRow], metric: str) -> Section:
    return Section(
        "Every network trained",
        [
            "Best first. Wall times are medians over the pooled runs; per epoch is the "
            "median epoch (building, testing and logging excluded)."
        ],
        tables.row_columns(metric),
        [tables.row_cells(row) for row in rows],
    )


def figure_section(figures: Dict[str, str], metric: str) -> Section:
    return Section(
        "What each network costs for what it gives",
        [
            f"First: {metric} against operations, as Canziani et al. 2016 draw published ImageNet models' "
            "accuracy, for the lab's own runs. Second: against training wall time (a continued Hyperband rung "
            'with the rungs before it), the deep-vs-wide question ("width is more computationally efficient '
            'than depth", Zagoruyko & Komodakis 2016). Error bars: 95% intervals.'
        ],
        figures=[name for name in figures.values()],
    )


def ablation_section(sweep: SweepRecord, figure: str) -> Section:
    ablation = sweep.ablation
    paragraphs = [
        f"Experiment {sweep.experiment}, sweep {sweep.name} (run {sweep.parent_run_id}), {len(sweep.rows)} trials.",
        f"Claim: {ablation.claim or '—'} Source: {ablation.source or '—'}.",
        "Paired by seed, 95% t interval (with the test set's sampling noise for test errors where the runs "
        "logged it), p for the claim's test (against 0, or a margin) adjusted for the sweep's comparisons "
        "(Holm), recomputed from its trials.csv exactly as the sweep printed them. Exact p: the same test "
        "without normality (sign flips), not adjusted. A comparison counts only runs that trained; a budget "
        "shorter than a claim needs (min_steps) is `inconclusive at this budget`.",
    ]
    return Section(
        f"Ablation: {sweep.name}",
        paragraphs,
        tables.VERDICT_COLUMNS,
        tables.verdict_cells(sweep),
        [figure],
    )


def importance_section(found: AxisImportance) -> Section:
    heading = f"Which axes mattered: {found.sweep} ({found.response})"
    if found.skipped:
        return Section(heading, [f"Method: {found.method}. No estimate: {found.skipped}"])
    return Section(
        heading,
        [f"Method: {found.method}.", f"Limits: {found.limits}"],
        tables.importance_columns(found),
        tables.importance_cells(found),
    )


def left_out_section(collected: Collected) -> Section:
    runs = left_out_runs(collected.runs)
    note = "None." if not runs else "Not averaged into any row above."
    return Section(
        "Runs left out",
        [note],
        tables.LEFT_OUT_COLUMNS if runs else [],
        [tables.left_out_cells(run) for run in runs],
    )
