"""`task=report`: every network the lab has trained, read back from MLflow and compared on one
page. Runs pool by what they trained (`lab.spec_hash`), not by the sweep that ran
them; each ablation sweep found gets its verdicts again, as a forest plot, and each sweep an
estimate of which axes mattered.

- `records`: the report's data (one record per run, one pooled row per spec hash, one per sweep);
- `collect`: reading them from a tracking store, one query per experiment;
- `pool`: runs -> rows (mean, std, 95% t interval over seeds);
- `importance`: which axes mattered (statsmodels, scikit-learn);
- `pareto`: per data set and protocol, the networks no other beats on metric and MACs, and the
  volume they dominate (`pareto_figure`: pareto_front.png);
- `figures`: the PNGs; `tables`: report.md and report.csv; `page`: the self-contained report.html;
- `build`: the task itself, written whole or not at all, and logged to the experiment `reports`.
"""

from __future__ import annotations

from lab.config import RunConfig


def run(cfg: RunConfig) -> None:
    """Everything trained in `tracking.uri`, pooled by what was trained, on one page."""
    from lab.tasks.report.build import build_report
    from lab.tracking.runs import ui_hint

    result = build_report(cfg)
    print(
        f"{len(result.collected.runs)} training runs, {len(result.rows)} networks, "
        f"{len(result.collected.sweeps)} sweeps: {result.seconds:.1f} s"
    )
    for name in ("report.html", "report.md", "report.csv"):
        print(f"wrote {result.folder / name}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
