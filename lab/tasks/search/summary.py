"""What a sweep's parent run holds at the end: `trials.csv` (one row per trial), `summary.md`
and, for an ablation, the verdicts on the paper's claim (also printed on the terminal)."""

from __future__ import annotations

import csv
import io
import math
from typing import Dict, List, Optional

from mlflow.entities import Run

from lab.config import AblationConfig, AxisSpec, Expectation, Metric, RunConfig
from lab.stats.testset import error_se
from lab.tasks.search.ranking import trial_order
from lab.training.trained import NOT_TRAINED_TAG, PRUNED
from lab.verdicts.ablation import (
    ALPHA,
    COLUMNS,
    Verdict,
    fewest_steps,
    left_out,
    needed_steps,
    resolution_of,
    seeds_for,
    too_short,
    value_stats,
)
from lab.verdicts.looks import LookPlan, judged

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
        return tags.get("lab.pruned_reason", "pruned")
    if trial.status not in ("FAILED", "INVALID"):
        return ""
    message = (tags.get("lab.error") or trial.message or "").strip()
    return message.splitlines()[-1][:300] if message else ""


def to_csv(rows: List[Dict[str, object]], axes: List[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS_BEFORE_AXES + axes + COLUMNS_AFTER_AXES)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def number(value: float, signed: bool = False) -> str:
    return (
        "n/a"
        if value is None or math.isnan(value)
        else (f"{value:+.4f}" if signed else f"{value:.4f}")
    )


def p_text(value: float) -> str:
    return (
        "n/a"
        if value is None or math.isnan(value)
        else f"{value:.4f}"
        if value >= 1e-4
        else f"{value:.1e}"
    )


def value_table(rows: List[Dict[str, object]], cfg: AblationConfig, objective: str) -> List[str]:
    columns = ["train_error", "train_loss", "test_error", "best_objective"]
    total: Dict[str, int] = {}
    for row in rows:
        total[str(row[cfg.axis])] = total.get(str(row[cfg.axis]), 0) + 1
    resolution = resolution_of(rows, Metric.test_error)
    tested_on = round(1 / resolution) if resolution else 0  # test images each run saw
    lines = [
        f"### Per {cfg.axis} (mean +- std over {cfg.pair_by}; trained runs only)",
        "",
        f"Test error's standard error: binomial, on the {tested_on:,} test images each run saw "
        "(what another test set of that size could move it by)."
        if tested_on
        else "Test error's standard error: not known (the runs did not log how many test images they saw).",
        "",
        f"| {cfg.axis} | trained | train error | train loss | test error | test error SE | {objective} |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in value_stats(rows, cfg.axis, columns):
        cells = [f"{number(s.mean[c])} +- {number(s.std[c])}" for c in columns]
        se = error_se(s.mean["test_error"], tested_on) if tested_on else math.nan
        cells.insert(3, number(se))
        lines.append(
            f"| {s.value} | {s.n} of {total.get(s.value, s.n)} | " + " | ".join(cells) + " |"
        )
    return lines


def label(c) -> str:
    """A comparison's name in the report: its claim, else candidate vs baseline."""
    return c.claim or f"{c.candidate} vs {c.baseline}"


def tested_against(c) -> str:
    if c.expect is Expectation.not_worse:
        return f"margin {c.margin:g}"
    if c.expect is Expectation.same:
        return f"+-{c.margin:g}"
    return "0"


def comparison_table(found: List[Verdict], cfg: AblationConfig) -> List[str]:
    lines = [
        f"### Comparisons (candidate - baseline, paired by {cfg.pair_by})",
        "",
        f"Intervals: 95% paired Student t over {cfg.pair_by}s, plus the test set's sampling noise for test "
        f"errors where the runs logged it. p: the claim's test (against 0; a `not_worse` claim against its "
        f"margin, an equivalence against both ends); verdicts at {1 - ALPHA:.0%} after Holm's adjustment for "
        f"the {len(cfg.pairs)} comparison{'s' if len(cfg.pairs) != 1 else ''} of this experiment"
        f"{' (each look at its share of the level: above)' if cfg.looks else ''}. Exact p: the "
        f"claim's test put to the sign-flip permutation test, which needs no normality (not adjusted). "
        f"Wins: {cfg.pair_by}s on which the "
        "candidate is better (a tie counts half). d_z: the mean difference over its spread.",
        "",
        "| claim | baseline | candidate | metric | n | difference | 95% interval | tested against | p | "
        "p (Holm) | verdict | paper | outcome | exact p | wins | d_z |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in found:
        c, d = v.comparison, v.difference
        expect = (
            ""
            if c.expect is None
            else c.expect.value + (f" (margin {c.margin:g})" if c.margin else "")
        )
        wins = "n/a" if not d.n else f"{v.wins:g} of {d.n}"
        lines.append(
            f"| {label(c)} | {c.baseline} | {c.candidate} | {COLUMNS[c.metric]} | {d.n} | "
            f"{number(d.mean, True)} | [{number(d.low, True)}, {number(d.high, True)}] | {tested_against(c)} | "
            f"{p_text(v.p)} | {p_text(v.p_holm)} | {v.verdict} | {expect} | {v.outcome or ''} | "
            f"{p_text(v.p_exact)} | {wins} | {'n/a' if math.isnan(d.effect) else f'{d.effect:+.2f}'} |"
        )
    return lines


def robustness_lines(found: List[Verdict], cfg: AblationConfig) -> List[str]:
    """What the verdicts rest on, and each comparison's notes."""
    lines = []
    n = max([v.difference.n for v in found] or [0])
    if n:
        smallest = max(found, key=lambda v: v.difference.n).difference.p_exact_min
        if smallest >= ALPHA / max(len(found), 1):
            lines.append(
                f"With {n} {cfg.pair_by}s the exact test's smallest p is {smallest:.4f}: it cannot reach "
                f"{ALPHA:g} after Holm over {len(found)}, so these verdicts rest on the t test's assumption "
                "that the differences are roughly normal; the exact p shows how far the data go without it."
            )
        else:
            lines.append(
                f"With {n} {cfg.pair_by}s the exact test can reach {smallest:.4f}; a verdict whose exact p "
                "is far above its t p rests on normality."
            )
    notes = [f"- {label(v.comparison)}: {'; '.join(v.notes)}" for v in found if v.notes]
    if notes:
        lines += ["", "Notes:", ""] + notes
    return lines + [""] + planning_lines(found, cfg)


def planning_lines(found: List[Verdict], cfg: AblationConfig) -> List[str]:
    """How many seeds each undecided comparison would need, from its own measured spread."""
    lines = []
    for v in found:
        if v.decided or not v.difference.testable:
            continue
        needed, target = seeds_for(v, len(found))
        lines.append(
            f"- {label(v.comparison)}: "
            + (
                f"about {needed} {cfg.pair_by}s for 80% power to resolve {target}"
                if needed
                else f"no {cfg.pair_by} count up to 1,000 resolves {target}"
            )
        )
    if not lines:
        return []
    return [
        f"Undecided comparisons, planned from their measured spread (paired t, Holm over {len(found)}):",
        "",
    ] + lines


def look_lines(
    plan: LookPlan, cfg: AblationConfig, rows: List[Dict[str, object]], values: int
) -> List[str]:
    """How a sequential ablation went: the looks, where each comparison was decided, what it saved."""
    levels = ", ".join(f"{n} {cfg.pair_by}s at {a:.3g}" for n, a in zip(plan.looks, plan.levels))
    decided = "; ".join(
        f"{label(v.comparison)}: "
        + (
            f"decided at {n}"
            if n is not None and v.decided
            else f"undecided at {n}"
            if n is not None
            else f"open at {plan.look}"
        )
        for v, n in zip(plan.verdicts, plan.decided_at)
    )
    why = (
        "every comparison was decided"
        if plan.done and all(v.decided for v in plan.verdicts)
        else "the last look was reached"
        if plan.done
        else "the sweep ended before its plan did"
    )
    trained = sum(1 for r in rows if r["status"] != "RUNNING")
    return [
        f"Seeds as needed (`search.ablation.looks`): tested at {levels} (the level split over the looks, "
        f"so stopping early keeps the error rate). Stopped at {plan.look} {cfg.pair_by}s: {why}. {decided}. "
        f"Runs: {trained}, against {values * plan.looks[-1]} for all {plan.looks[-1]} {cfg.pair_by}s.",
        "",
    ]


def ablation_markdown(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    objective: str,
    direction: str,
    quick: bool = False,
    correct: Optional[Dict[str, object]] = None,
    seeds: Optional[List[object]] = None,
    values: int = 0,
) -> str:
    """The claim, what the lab measured, and whether it reproduced the claim. With
    `search.ablation.looks`, `seeds` are the pair_by axis' declared values and `values` the
    number of compared values."""
    found, plan = judged(rows, cfg, direction, seeds, correct)
    claimed = cfg.source or cfg.claim or any(c.expect is not None for c in cfg.pairs)
    lines = (
        [
            "## Claim",
            "",
            f"Source: {cfg.source or 'not stated'}",
            "",
            f"> {cfg.claim or 'not stated'}",
            "",
            f"**{outcome_line(found)}**",
            "",
        ]
        + ([QUICK_CAVEAT, ""] if quick else [])
        if claimed
        else [
            "## Comparisons",
            "",
            "**No paper's claim: each comparison is judged on what it measured.**",
            "",
        ]
    )
    lines += budget_lines(rows, cfg)
    lines += look_lines(plan, cfg, rows, values) if plan else []
    lines += [
        "Training error and loss: the final epoch's (Keras' running mean over its batches). Test error: "
        "on the test set after the last epoch. A run that did not train (a non-finite loss, or a final "
        "training loss above chance, ln of the class count) is left out and listed below.",
        "",
    ]
    lines += value_table(rows, cfg, objective) + [""]
    lines += comparison_table(found, cfg) + [""]
    lines += robustness_lines(found, cfg) + [""]
    lines += left_out_lines(rows, cfg)
    return "\n".join(lines) + "\n"


def left_out_lines(rows: List[Dict[str, object]], cfg: AblationConfig) -> List[str]:
    out = left_out(rows)
    if not out:
        return ["Every run trained and completed; none is left out."]
    lines = ["### Left out of the comparisons", ""]
    for row in out:
        reason = row.get("not_trained") or f"trial {row['status']}"
        lines.append(
            f"- trial {row['trial_id']} ({cfg.axis} {row[cfg.axis]}, {cfg.pair_by} {row[cfg.pair_by]}): "
            f"{reason}"
        )
    return lines


def outcome_line(found: List[Verdict]) -> str:
    outcomes = [v.outcome for v in found if v.outcome is not None]
    if not outcomes:
        return "The experiment states no claim to test."
    counts = ", ".join(
        f"{outcomes.count(o)} {o}"
        for o in ("reproduced", "contradicted", "inconclusive")
        if outcomes.count(o)
    )
    return f"Claims tested: {len(outcomes)}; {counts}."


QUICK_CAVEAT = (
    "Quick mode: a budget far below the paper's protocol. Each outcome says what this budget shows; "
    "a claim about fully trained networks is tested by the full protocol (without quick=true)."
)


def budget_lines(rows: List[Dict[str, object]], cfg: AblationConfig) -> List[str]:
    """What the runs' training budget allows this experiment to say."""
    steps = fewest_steps(rows)
    trained = (
        "no run logged its steps"
        if steps is None
        else f"the shortest-trained network took {steps:,} SGD steps"
    )
    needs = max([needed_steps(c, cfg) for c in cfg.pairs] or [0])
    if too_short(rows, cfg):
        return [
            f"Budget: {trained}; a claim here is about networks trained at least {needs:,} steps "
            "(`search.ablation.min_steps`), so it gets no verdict: `inconclusive at this budget`, its "
            "difference shown as measured.",
            "",
        ]
    return [
        f"Budget: {trained}"
        + (f" (the claims need {needs:,}: `search.ablation.min_steps`)." if needs else "."),
        "",
    ]


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
        cfg.quick,
        correct,
        pairing.values if pairing else None,
        len(compared.values) if compared and compared.values else 0,
    )


def summary_markdown(
    rows: List[Dict[str, object]],
    cfg: RunConfig,
    header: str = "",
    correct: Optional[Dict[str, object]] = None,
) -> str:
    search = cfg.search
    done = [r for r in rows if r["status"] == "COMPLETED" and r["best_objective"] != ""]
    better = max if search.direction == "max" else min
    lines = [f"# Sweep `{search.name}`" + (" (quick mode)" if cfg.quick else ""), ""]
    if header:
        lines += [header, ""]
    lines += [
        f"{search.tuner.value} search over {len(search.space)} axes, objective {search.objective} "
        f"({search.direction}), data {cfg.data.name}; {len(done)} of {len(rows)} trials completed.",
        "",
    ]
    if done:
        best = better(done, key=lambda r: r["best_objective"])
        lines += [
            f"Best: trial {best['trial_id']}, {search.objective} = {best['best_objective']:.4f}",
            "",
        ]
    if search.ablation is not None:
        lines += [sweep_ablation_markdown(rows, cfg, correct)]
    header_row = list(rows[0]) if rows else []
    lines += ["## Trials", "", "| " + " | ".join(header_row) + " |", "|" + "---|" * len(header_row)]
    lines += ["| " + " | ".join(str(r[k]) for k in header_row) + " |" for r in rows]
    return "\n".join(lines) + "\n"
