"""The report's tables as text: the pooled rows as report.csv (full precision, one row per spec
hash) and cells for report.md and report.html (`Section` rows), and the sections as Markdown."""

from __future__ import annotations

import csv
import io
import math
from typing import Collection, List, Optional

from lab.tasks.report.records import AxisImportance, PooledRow, RunRecord, Section, SweepRecord

ROW_COLUMNS = [
    "variant",
    "family",
    "data",
    "params",
    "MACs",
    "activations/example",
    "n seeds",
    "METRIC mean ± std",
    "95% interval",
    "best epoch",
    "wall/run",
    "wall/epoch",
    "device",
    "spec hash",
]
CSV_COLUMNS = [
    "spec_hash",
    "variant",
    "family",
    "data",
    "params",
    "macs",
    "activation_bytes",
    "n",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
    "best_epoch_median",
    "wall_seconds_per_run",
    "wall_seconds_per_epoch",
    "devices",
    "experiments",
    "run_ids",
    "on_pareto_front",
]


def count(value: Optional[int]) -> str:
    """12,345 / 1.2M / 3.4G: counts at a glance."""
    if value is None:
        return "—"
    for size, suffix in ((1e9, "G"), (1e6, "M")):
        if value >= size:
            return f"{value / size:.2f}{suffix}"
    return f"{value:,}"


def mib(value: Optional[int]) -> str:
    return "—" if value is None else f"{value / 2**20:.2f} MiB"


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "—"
    return f"{value / 60:.1f} min" if value >= 600 else f"{value:.1f} s"


def spread(row: PooledRow) -> str:
    return f"{row.mean:.4f}" + ("" if math.isnan(row.std) else f" ± {row.std:.4f}")


def interval(row: PooledRow) -> str:
    return f"[{row.low:.4f}, {row.high:.4f}]" if row.has_interval else "— (one seed)"


def row_cells(row: PooledRow) -> List[str]:
    return [
        row.variant,
        row.family,
        row.data,
        count(row.params),
        count(row.macs),
        mib(row.activation_bytes),
        str(row.n),
        spread(row),
        interval(row),
        "—" if row.best_epoch is None else f"{row.best_epoch:g}",
        seconds(row.wall_per_run),
        seconds(row.wall_per_epoch),
        ", ".join(row.devices),
        row.spec_hash[:8],
    ]


def row_columns(metric: str) -> List[str]:
    return [column.replace("METRIC", metric) for column in ROW_COLUMNS]


def left_out_cells(run: RunRecord) -> List[str]:
    return [
        run.variant,
        run.experiment,
        run.sweep or "task=train",
        str(run.seed),
        run.run_id,
        run.left_out or "",
    ]


LEFT_OUT_COLUMNS = ["variant", "experiment", "sweep", "seed", "run", "why it is not pooled"]


def verdict_cells(sweep: SweepRecord) -> List[List[str]]:
    """One row per comparison of an ablation: its claim, difference, interval, Holm p and verdict."""
    rows = []
    for found in sweep.verdicts:
        d, c = found.difference, found.comparison
        span = "—" if math.isnan(d.low) else f"[{d.low:+.4f}, {d.high:+.4f}]"
        exact = "—" if math.isnan(found.p_exact) else f"{found.p_exact:.3g}"
        wins = "—" if not d.n else f"{found.wins:g} of {d.n}"
        rows.append(
            [
                c.claim or f"{c.candidate} vs {c.baseline}",
                f"{c.candidate} − {c.baseline}",
                c.metric.value,
                str(d.n),
                "—" if math.isnan(d.mean) else f"{d.mean:+.4f}",
                span,
                f"{found.p_holm:.3g}",
                exact,
                wins,
                found.verdict,
                found.outcome or "—",
            ]
        )
    return rows


VERDICT_COLUMNS = [
    "claim",
    "difference",
    "metric",
    "pairs",
    "mean",
    "95% interval",
    "p (Holm)",
    "exact p",
    "candidate wins",
    "verdict",
    "paper's claim",
]


def importance_columns(found: AxisImportance) -> List[str]:
    """F (or t, for a per-seed contrast) and its p for an analysis of variance; the held-out
    permutation importance, what noise reaches and its permutation p for a forest."""
    if found.is_anova:
        return ["axis", "F (t: per-seed contrast)", "p", "share of the variance"]
    return [
        "axis",
        "held-out importance (drop in R²)",
        "noise reaches (95%)",
        "p (permutation null)",
        "share of the importance",
    ]


def importance_cells(found: AxisImportance) -> List[List[str]]:
    if found.is_anova:
        return [
            [
                row.axis,
                f"{row.statistic:.4g}",
                f"{row.p:.3g}",
                "—" if row.share is None else f"{row.share:.1%}",
            ]
            for row in found.rows
        ]
    return [
        [row.axis, f"{row.statistic:.4g}", f"{row.noise:.4g}", f"{row.p:.3g}", f"{row.share:.1%}"]
        for row in found.rows
    ]


PARETO_COLUMNS = ["variant", "METRIC mean ± std", "n seeds", "MACs", "params"]


def pareto_columns(metric: str) -> List[str]:
    return [column.replace("METRIC", metric) for column in PARETO_COLUMNS]


def pareto_cells(row: PooledRow) -> List[str]:
    """A front member: its variant, the metric as the pooled table shows it, seeds, MACs, params."""
    return [row.variant, spread(row), str(row.n), count(row.macs), count(row.params)]


def pooled_csv(rows: List[PooledRow], on_front: Collection[str] = ()) -> str:
    """One line per row at full precision; `on_pareto_front` is true for the spec hashes in
    `on_front` (each row's front is its data set and protocol's, `lab.tasks.report.pareto`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.spec_hash,
                row.variant,
                row.family,
                row.data,
                row.params,
                row.macs,
                row.activation_bytes,
                row.n,
                *(repr(float(value)) for value in (row.mean, row.std, row.low, row.high)),
                row.best_epoch,
                row.wall_per_run,
                row.wall_per_epoch,
                ";".join(row.devices),
                ";".join(row.experiments),
                ";".join(row.run_ids),
                "true" if row.spec_hash in on_front else "false",
            ]
        )
    return out.getvalue()


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(title: str, sections: List[Section]) -> str:
    """The report as Markdown: each section's heading, paragraphs, table and figure links."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.heading}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.columns:
            lines.append("| " + " | ".join(map(markdown_cell, section.columns)) + " |")
            lines.append("|" + "---|" * len(section.columns))
            lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in section.rows]
            lines.append("")
        lines += [f"![{name}]({name})\n" for name in section.figures]
    return "\n".join(lines)
