"""`task=search`: keras-tuner sweeps over the axes of `search.space`, tracked in MLflow.

run.py (`search(cfg)`: a sweep from start to report), sweep.py (the tuner, the parent and child
runs, resume), space.py (YAML axes as keras-tuner hyperparameters), ablation.py and report.py
(verdicts, trials.csv, summary.md), plots.py, distributed.py and launcher.py (keras-tuner's
chief and workers), kt_compat.py (every use of keras-tuner's private API). Importing the package
loads none of them.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from lab.config import Role, RunConfig


def restart_process() -> None:
    """Replaces this process with a fresh one running the same command (which resumes the sweep)."""
    from lab.tasks.native_logs import restore_stderr

    sys.stdout.flush()
    restore_stderr()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def run(cfg: RunConfig) -> Optional[float]:
    from lab.tasks.search.orchestration import search
    from lab.tasks.search.sweep import RestartSweep
    from lab.tracking.runs import ui_hint

    role = cfg.search.distributed.role
    if role is Role.launcher:
        from lab.tasks.search.launcher import launch

        return launch(cfg)
    try:
        result = search(cfg)
    except RestartSweep as restart:
        print(restart, flush=True)
        restart_process()
    if role is Role.worker:
        print(
            f"worker {cfg.search.distributed.worker_index} ran trials {', '.join(result.trial_seconds) or 'none'} "
            f"of sweep {cfg.search.name}; the chief reports the sweep"
        )
        return None
    if result.best_trial is None:
        print(
            f"sweep {cfg.search.name}: {len(result.rows)} trials; none trained, so none is best "
            f"(each run's lab.trained=false tag says why)"
        )
    else:
        print(
            f"sweep {cfg.search.name}: {len(result.rows)} trials; best trial {result.best_trial} "
            f"{cfg.search.objective}={result.best_value:.4f}"
        )
    search_cfg = cfg.search
    if search_cfg.ablation is not None:
        from lab.tasks.search.summary import sweep_ablation_markdown

        print_markdown(sweep_ablation_markdown(result.rows, cfg, result.correct))
    for name, path in result.figures.items():
        if name == "error_curves.png":
            print(f"error curves (training and validation error per epoch): {path}")
    if result.summary:
        print(f"summary: {result.summary}")
    print(
        ui_hint(cfg.tracking.uri, result.experiment_id, result.parent_run_id, sweep=cfg.search.name)
    )
    return result.best_value


def print_markdown(text: str) -> None:
    """Markdown rendered (tables drawn, emphasis shown) on a terminal; as it is, the text of
    summary.md, when the output goes to a file or a pipe."""
    if not sys.stdout.isatty():
        print(text)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))
