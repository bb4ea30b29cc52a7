"""What a sweep's parent run holds at the end: `trials.csv` (one row per trial), `summary.md`
and, for an ablation, the verdicts on the paper's claim (also printed on the terminal), made of
the sections in `ablation_sections.py`; for a sweep with several objectives, its Pareto set
(`pareto_set.py`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional

from mlflow.entities import Run

from lab.config import OBJECTIVES, AblationConfig, AxisSpec, RunConfig
from lab.tasks.search.ablation_sections import (
    WHAT_IS_MEASURED,
    budget_lines,
    claim_lines,
    comparison_table,
    left_out_lines,
    look_lines,
    robustness_lines,
    value_table,
)
from lab.tasks.search.ranking import best_first, trial_order
from lab.tracking.tags import ERROR_TAG, NOT_TRAINED_TAG, PRUNED_REASON_TAG
from lab.training.trained import PRUNED
from lab.verdicts.looks import judged

if TYPE_CHECKING:  # the section only reads it: pareto_set.py loads the sweep's records
    from lab.tasks.search.pareto_set import ParetoSet

COLUMNS_BEFORE_AXES = ["trial_id", "status"]
COLUMNS_AFTER_AXES = [
    "params_total",
    "macs",
    "train_steps",
    "best_epoch",
    "best_objective",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "train_examples",
    "test_examples",
    "improving",
    "not_trained",
    "wall_seconds",
    "reason",
]


def final_figures(metrics: Dict[str, float], params: Dict[str, str]) -> Dict[str, object]:
    """A trial run's final figures: `loss`/`accuracy` hold the last epoch's training values; the
    split sizes are its `data.*_examples` params."""

    def rounded(key, transform=lambda v: v):
        return round(transform(metrics[key]), 6) if key in metrics else ""

    def count(key):
        return int(params[key]) if key in params else ""

    return {
        "train_loss": rounded("loss"),
        "train_error": rounded("accuracy", lambda a: 1 - a),
        "test_loss": rounded("test_loss"),
        "test_error": rounded("test_accuracy", lambda a: 1 - a),
        "train_examples": count("data.train_examples"),
        "test_examples": count("data.test_examples"),
        "improving": rounded("train_error_drop_last_quarter"),
    }


def declared(axis: AxisSpec, value):
    """The axis value as the space declares it: keras-tuner keeps a boolean choice as 0/1."""
    return (
        next((v for v in axis.values if v == value and type(v) is not type(value)), value)
        if axis.values
        else value
    )


def trial_rows(oracle, axes: List[AxisSpec], children: Dict[str, Run]) -> List[Dict[str, object]]:
    """One row per keras-tuner trial: its status and values, with its MLflow child's figures."""
    rows = []
    for trial_id in sorted(oracle.trials, key=trial_order):
        trial = oracle.trials[trial_id]
        child = children.get(trial_id)
        metrics = child.data.metrics if child else {}
        tags = child.data.tags if child else {}
        wall = (
            (child.info.end_time - child.info.start_time) / 1000
            if child and child.info.end_time
            else None
        )
        values = trial.hyperparameters.values
        rows.append(
            {
                "trial_id": trial_id,
                "status": PRUNED if trial.status == "STOPPED" else trial.status,
                **{
                    axis.name: declared(axis, values.get(axis.name, ""))
                    if trial.hyperparameters.is_active(axis.name)
                    else ""
                    for axis in axes
                },
                "params_total": int(metrics["params_total"]) if "params_total" in metrics else "",
                "macs": int(metrics["macs"]) if "macs" in metrics else "",
                "train_steps": int(metrics["train_steps"]) if "train_steps" in metrics else "",
                "best_epoch": int(metrics["best_epoch"]) if "best_epoch" in metrics else "",
                "best_objective": trial.score if trial.score is not None else "",
                **final_figures(metrics, child.data.params if child else {}),
                "not_trained": tags.get(NOT_TRAINED_TAG, ""),
                "wall_seconds": round(wall, 2) if wall is not None else "",
                "reason": failure_reason(trial, tags),
            }
        )
    return rows


def failure_reason(trial, tags: Dict[str, str]) -> str:
    """Why a trial failed or was pruned, in one line: its run's `lab.error` or `lab.pruned_reason`,
    else the last line of keras-tuner's message."""
    if trial.status == "STOPPED":
        return tags.get(PRUNED_REASON_TAG, "pruned")
    if trial.status not in ("FAILED", "INVALID"):
        return ""
    message = (tags.get(ERROR_TAG) or trial.message or "").strip()
    return message.splitlines()[-1][:300] if message else ""


def to_csv(rows: List[Dict[str, object]], axes: List[str]) -> str:
    """trials.csv's text.

    Args:
        rows: the trials' rows (`trial_rows`).
        axes: the names of the sweep's axes, the columns between `status` and the figures.

    Returns:
        The CSV, with its header row.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS_BEFORE_AXES + axes + COLUMNS_AFTER_AXES)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@dataclass(frozen=True)
class SweepContext:
    """What a sweep adds to its ablation's report."""

    quick: bool = False  # quick mode: the report says what a budget this small can show
    correct: Optional[Dict[str, object]] = None  # trial id -> which test images its run got right
    # With `search.ablation.looks`: the pair_by axis' declared values, and how many values compare.
    seeds: Optional[List[object]] = None
    values: int = 0


def ablation_markdown(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    objective: str,
    direction: str,
    sweep: Optional[SweepContext] = None,
) -> str:
    """The claim, what the lab measured, and whether it reproduced the claim.

    Args:
        rows: the sweep's trial rows (`trial_rows`).
        cfg: the ablation (`search.ablation`).
        objective: the sweep's objective, a column of the per-value table.
        direction: "max" or "min", the objective's better direction.
        sweep: what the sweep adds: quick mode, the test-set records, the looks' seeds (None:
            none of them).

    Returns:
        The ablation's markdown, as summary.md holds it and the terminal prints it.
    """
    sweep = SweepContext() if sweep is None else sweep
    found, plan = judged(rows, cfg, direction, sweep.seeds, sweep.correct)
    lines = claim_lines(found, cfg, sweep.quick)
    lines += budget_lines(rows, cfg)
    lines += look_lines(plan, cfg, rows, sweep.values) if plan else []
    lines += [WHAT_IS_MEASURED, ""]
    lines += value_table(rows, cfg, objective) + [""]
    lines += comparison_table(found, cfg) + [""]
    lines += robustness_lines(found, cfg) + [""]
    lines += left_out_lines(rows, cfg)
    return "\n".join(lines) + "\n"


def sweep_ablation_markdown(
    rows: List[Dict[str, object]], cfg: RunConfig, correct: Optional[Dict[str, object]] = None
) -> str:
    """`ablation_markdown` for a sweep's config: what summary.md and the terminal both print."""
    search = cfg.search
    axes = {axis.name: axis for axis in search.space}
    pairing, compared = axes.get(search.ablation.pair_by), axes.get(search.ablation.axis)
    return ablation_markdown(
        rows,
        search.ablation,
        search.objective,
        search.direction,
        SweepContext(
            cfg.quick,
            correct,
            pairing.values if pairing else None,
            len(compared.values) if compared and compared.values else 0,
        ),
    )


def summary_markdown(
    rows: List[Dict[str, object]],
    cfg: RunConfig,
    header: str = "",
    correct: Optional[Dict[str, object]] = None,
    pareto: Optional[ParetoSet] = None,
) -> str:
    """summary.md's text.

    Args:
        rows: the trials' rows (`trial_rows`).
        cfg: the sweep's config.
        header: the facts listed under the title (markdown); "" for none.
        correct: trial id -> which test images its run got right (the ablation's test-set noise).
        pareto: the Pareto set of a sweep with several objectives (`pareto_set.pareto_set`).

    Returns:
        The title, facts, counts, best trial, the Pareto set and the ablation's report where
        there is one, and the table of every trial.
    """
    search = cfg.search
    done = [r for r in rows if r["status"] == "COMPLETED" and r["best_objective"] != ""]
    lines = [f"# Sweep `{search.name}`" + (" (quick mode)" if cfg.quick else ""), ""]
    if header:
        lines += [header, ""]
    lines += [
        f"{search.tuner.value} search over {len(search.space)} axes, objective {search.objective} "
        f"({search.direction}), data {cfg.data.name}; {len(done)} of {len(rows)} trials completed.",
        "",
    ]
    best = best_row(done, search.direction)
    if best is not None:
        lines += [
            f"Best: trial {best['trial_id']}, {search.objective} = {best['best_objective']:.4f}",
            "",
        ]
    if pareto is not None:
        lines += pareto_lines(pareto)
    if search.ablation is not None:
        lines += [sweep_ablation_markdown(rows, cfg, correct)]
    return "\n".join(lines + trials_table(rows)) + "\n"


def best_row(done: List[Dict[str, object]], direction: str) -> Optional[Dict[str, object]]:
    """The best of the completed rows that trained, as the parent's `lab.best_trial` names it
    (`ranking.best_first`: ties to the earlier trial); None where none trained. A trial that did
    not train can score high by chance (a loss stuck at chance, an accuracy on a tiny split)."""
    trained_rows = {row["trial_id"]: row for row in done if not row["not_trained"]}
    scores = {trial: row["best_objective"] for trial, row in trained_rows.items()}
    ranked = best_first(scores, direction)
    return trained_rows[ranked[0]] if ranked else None


def trials_table(rows: List[Dict[str, object]]) -> List[str]:
    """summary.md's last section: every trial's row."""
    header_row = list(rows[0]) if rows else []
    lines = ["## Trials", "", "| " + " | ".join(header_row) + " |", "|" + "---|" * len(header_row)]
    return lines + ["| " + " | ".join(str(r[k]) for k in header_row) + " |" for r in rows]


# Counts, written whole; the trained metrics as summary.md's best trial; latency and throughput
# to four figures.
COUNTED = ("params_total", "macs", "activation_bytes")
DEFAULT_REFERENCE = "default: the worst scored value, a tenth of the range further"


def objective_text(name: str, value: float) -> str:
    """An objective's value as the Pareto section writes it."""
    if name in COUNTED:
        return f"{value:,.0f}"
    return f"{value:.4f}" if name in OBJECTIVES else f"{value:.4g}"


def pareto_lines(pareto: ParetoSet) -> List[str]:
    """summary.md's Pareto section: the objectives, the front (best first objective first), how
    many trials were scored and on it, and the final hypervolume with its reference point."""
    specs = pareto.objectives
    lines = [
        "## Pareto set",
        "",
        f"Objectives: {specs[0].name} ({specs[0].direction}, the ranking one), "
        + ", ".join(f"{s.name} ({s.direction})" for s in specs[1:])
        + ". A trial is on the front when no other scored trial is at least as good on every "
        "objective and better on one.",
        "",
    ]
    if not pareto.scored:
        return lines + ["No trial was scored on every objective: no front, hypervolume 0.", ""]
    lines += front_table(pareto) + [""]
    lines += [
        f"{len(pareto.front)} of {len(pareto.scored)} scored trials on the front "
        f"({pareto.trials} trials in all"
        + (
            f"; left out, scored without every objective.NAME metric: {', '.join(pareto.unscored)}"
            if pareto.unscored
            else ""
        )
        + ").",
        "",
        f"Hypervolume {pareto.hypervolume:.6g} after the last trial (the parent's metric "
        "`hypervolume`, one step per trial), from the reference point "
        + ", ".join(
            f"{spec.name} = {objective_text(spec.name, value)} "
            f"({'search.objectives' if spec.reference is not None else DEFAULT_REFERENCE})"
            for spec, value in zip(specs, pareto.reference)
        )
        + ".",
        "",
    ]
    return lines


def front_table(pareto: ParetoSet) -> List[str]:
    """The front's members: trial, each objective (± its std over executions where logged) and
    the trial's axis values."""
    names = [spec.name for spec in pareto.objectives]
    header = ["trial", *(f"{s.name} ({s.direction})" for s in pareto.objectives), *pareto.axes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for trial in pareto.front:
        cells = [
            objective_text(name, value)
            + (f" ± {objective_text(name, std)}" if std is not None else "")
            for name, value, std in zip(names, trial.values, trial.stds)
        ]
        axes = [str(trial.axis(axis)) for axis in pareto.axes]
        lines.append("| " + " | ".join([trial.trial_id, *cells, *axes]) + " |")
    return lines
