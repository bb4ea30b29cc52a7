"""What the report says, section by section (rendered alike into report.md and report.html):
what was read, the pooled table, the two cost figures, each data set and protocol's Pareto front,
each ablation's verdicts, which axes mattered, and every run left out with why."""

from __future__ import annotations

from typing import Dict, List, Optional

from lab.stats.pareto import REFERENCE_MARGIN
from lab.tasks.report import tables
from lab.tasks.report.collect import Collected
from lab.tasks.report.pareto import FIGURE, ParetoGroup
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


PARETO = (
    "A protocol is every `data.` and `train.` key a run logged but where and how it ran: the "
    "networks on one front differ in their model alone. The front compares means over seeds: "
    "where members' seed spreads overlap, more seeds may reorder them."
)


def hypervolume_note(group: ParetoGroup, metric: str) -> str:
    """The hypervolume, its units and the reference point it is measured from, stated."""
    at_metric, at_macs = group.reference
    return (
        f"Hypervolume: {group.hypervolume:,.6g} ({metric} × MACs per example), the area "
        f"the front dominates up to the reference point ({metric} = {at_metric:.4g}, MACs = "
        f"{tables.count(round(at_macs))}): lab.stats.pareto.default_reference, each objective's "
        f"worst value among these {len(group.rows)} networks moved {REFERENCE_MARGIN:.0%} of its "
        "range further (by 1 where all are equal). The reference moves with the networks: compare "
        "hypervolumes of one group, not across groups or reports."
    )


def left_out_note(group: ParetoGroup, metric: str) -> str:
    if not group.left_out:
        return f"0 left out: every network here logged MACs and {metric}."
    names = ", ".join(row.variant for row in group.left_out)
    return f"{len(group.left_out)} left out (no MACs or no {metric} logged): {names}."


def pareto_section(group: ParetoGroup, metric: str, panel: Optional[int]) -> Section:
    """One data set and protocol's front: what it compares, the rows it left out, its members
    cheapest first and its hypervolume; `panel` is the group's panel of pareto_front.png (None
    for a group of fewer than two networks with both objectives, which has no panel)."""
    better = "lower" if metric_falls_as_better(metric) else "higher"
    drawn = f"{FIGURE}, panel {panel}. " if panel else ""
    paragraphs = [
        f"The networks no other network of this data set and protocol beats on both {metric} "
        f"(mean over seeds, {better} is better) and MACs per example (fewer is better), cheapest "
        f"first: {len(group.front)} of the {len(group.rows)} with both logged. {drawn}" + PARETO,
        left_out_note(group, metric),
    ]
    if group.compared:
        paragraphs.append(hypervolume_note(group, metric))
    else:
        paragraphs.append(
            "Fewer than two networks with both logged: nothing to compare, so no hypervolume "
            f"and no panel in {FIGURE}."
        )
    return Section(
        f"Pareto front: {group.label}",
        paragraphs,
        tables.pareto_columns(metric) if group.front else [],
        [tables.pareto_cells(row) for row in group.front],
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
