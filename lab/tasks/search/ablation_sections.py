"""The sections of an ablation's report (summary.md, and the terminal): the claim and its outcome,
the training budget, the per-value table, the comparisons, what the verdicts rest on, the seeds an
undecided comparison would need, how the looks went, and the runs left out. Each function returns
its section's markdown lines."""

from __future__ import annotations

import math
from typing import Dict, List

from lab.config import AblationConfig, Expectation, Metric
from lab.stats.testset import error_se
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
from lab.verdicts.looks import LookPlan

WHAT_IS_MEASURED = (
    "Training error and loss: the final epoch's (Keras' running mean over its batches). Test error: "
    "on the test set after the last epoch. A run that did not train (a non-finite loss, or a final "
    "training loss above chance, ln of the class count) is left out and listed below."
)
QUICK_CAVEAT = (
    "Quick mode: a budget far below the paper's protocol. Each outcome says what this budget shows; "
    "a claim about fully trained networks is tested by the full protocol (without quick=true)."
)


def number(value: float, signed: bool = False) -> str:
    """A figure to 4 decimals (with its sign where `signed`); n/a for a missing or NaN one."""
    return (
        "n/a"
        if value is None or math.isnan(value)
        else (f"{value:+.4f}" if signed else f"{value:.4f}")
    )


def p_text(value: float) -> str:
    """A p-value to 4 decimals, in scientific notation below 1e-4; n/a for a missing or NaN one."""
    return (
        "n/a"
        if value is None or math.isnan(value)
        else f"{value:.4f}"
        if value >= 1e-4
        else f"{value:.1e}"
    )


def value_table(rows: List[Dict[str, object]], cfg: AblationConfig, objective: str) -> List[str]:
    """Per value of the ablation's axis: its trained runs' mean and spread of each figure, with
    the test error's standard error from the test set's size."""
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
    """What a comparison's difference is tested against: 0, a margin, or an equivalence band."""
    if c.expect is Expectation.not_worse:
        return f"margin {c.margin:g}"
    if c.expect is Expectation.same:
        return f"+-{c.margin:g}"
    return "0"


def comparison_table(found: List[Verdict], cfg: AblationConfig) -> List[str]:
    """One row per comparison: its difference, interval, tests, verdict and outcome."""
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


def claim_lines(found: List[Verdict], cfg: AblationConfig, quick: bool) -> List[str]:
    """The claim (its source and words) with the outcome of its tests, and quick mode's caveat;
    without a claim, a heading that says each comparison is judged on what it measured."""
    claimed = cfg.source or cfg.claim or any(c.expect is not None for c in cfg.pairs)
    if not claimed:
        return [
            "## Comparisons",
            "",
            "**No paper's claim: each comparison is judged on what it measured.**",
            "",
        ]
    return [
        "## Claim",
        "",
        f"Source: {cfg.source or 'not stated'}",
        "",
        f"> {cfg.claim or 'not stated'}",
        "",
        f"**{outcome_line(found)}**",
        "",
    ] + ([QUICK_CAVEAT, ""] if quick else [])


def left_out_lines(rows: List[Dict[str, object]], cfg: AblationConfig) -> List[str]:
    """The runs left out of the comparisons (untrained or not completed), each with why."""
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
    """How many claims were tested and how many of them each outcome got."""
    outcomes = [v.outcome for v in found if v.outcome is not None]
    if not outcomes:
        return "The experiment states no claim to test."
    counts = ", ".join(
        f"{outcomes.count(o)} {o}"
        for o in ("reproduced", "contradicted", "inconclusive")
        if outcomes.count(o)
    )
    return f"Claims tested: {len(outcomes)}; {counts}."


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
