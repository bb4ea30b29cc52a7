"""What a sweep's parent run holds at the end: `trials.csv` (one row per trial) and `summary.md`."""

from __future__ import annotations

import csv
import io
from typing import Dict, List

from mlflow.entities import Run

from lab.config import AxisSpec, RunConfig
from lab.search.ablation import ablation_markdown

COLUMNS = ["trial_id", "status", "params_total", "macs", "best_epoch", "best_objective", "wall_seconds"]


def trial_rows(oracle, axes: List[AxisSpec], children: Dict[str, Run]) -> List[Dict[str, object]]:
    """One row per keras-tuner trial: its status and values, with its MLflow child's figures."""
    rows = []
    for trial_id in sorted(oracle.trials, key=lambda t: (len(t), t)):  # "2" before "10"
        trial = oracle.trials[trial_id]
        child = children.get(trial_id)
        metrics = child.data.metrics if child else {}
        wall = (child.info.end_time - child.info.start_time) / 1000 if child and child.info.end_time else None
        values = trial.hyperparameters.values
        rows.append({"trial_id": trial_id, "status": trial.status,
                     **{axis.name: values.get(axis.name, "") if trial.hyperparameters.is_active(axis.name) else ""
                        for axis in axes},
                     "params_total": int(metrics["params_total"]) if "params_total" in metrics else "",
                     "macs": int(metrics["macs"]) if "macs" in metrics else "",
                     "best_epoch": int(metrics["best_epoch"]) if "best_epoch" in metrics else "",
                     "best_objective": trial.score if trial.score is not None else "",
                     "wall_seconds": round(wall, 2) if wall is not None else ""})
    return rows


def to_csv(rows: List[Dict[str, object]], axes: List[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS[:2] + axes + COLUMNS[2:])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_markdown(rows: List[Dict[str, object]], cfg: RunConfig) -> str:
    search = cfg.search
    done = [r for r in rows if r["status"] == "COMPLETED" and r["best_objective"] != ""]
    better = max if search.direction == "max" else min
    lines = [f"# Sweep `{search.name}`" + (" (quick mode)" if cfg.quick else ""), "",
             f"{search.tuner.value} search over {len(search.space)} axes, objective {search.objective} "
             f"({search.direction}), data {cfg.data.name}; {len(done)} of {len(rows)} trials completed.", ""]
    if done:
        best = better(done, key=lambda r: r["best_objective"])
        lines += [f"Best: trial {best['trial_id']}, {search.objective} = {best['best_objective']:.4f}", ""]
    if search.ablation is not None:
        lines += [ablation_markdown(rows, search.ablation, search.objective)]
    header = list(rows[0]) if rows else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[k]) for k in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"
