"""`task=report`: every network the lab has trained, read back from MLflow and compared on one
page (issue 15). Runs pool by what they trained (`lab.spec_hash`), not by the sweep that ran
them; each ablation sweep found gets its verdicts again, as a forest plot, and each sweep an
estimate of which axes mattered.

- `records`: the report's data (one record per run, one pooled row per spec hash, one per sweep);
- `collect`: reading them from a tracking store, one query per experiment;
- `pool`: runs -> rows (mean, std, 95% t interval over seeds);
- `importance`: which axes mattered (statsmodels, scikit-learn);
- `figures`: the PNGs; `tables`: report.md and report.csv; `page`: the self-contained report.html;
- `build`: the task itself, written whole or not at all, and logged to the experiment `reports`.
"""
