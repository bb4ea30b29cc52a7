"""`task=search`: keras-tuner sweeps over the axes of `search.space`, tracked in MLflow.

orchestration.py (`search(cfg)`: a sweep from start to report), sweep.py (`Sweep`, the oracle and
keras-tuner's tuner), records.py (the sweep's parent and child runs), trials.py (one trial's
training), pruning.py and progress.py (`search.pruner`; the "trial k of N" line and the memory
watch), space.py (YAML axes as keras-tuner hyperparameters), continuation.py (Hyperband rungs
continued), identity.py and ownership.py (what may resume a sweep; its lock), summary.py and
ablation_sections.py (trials.csv, summary.md, the ablation's verdicts), sweep_report.py,
figures.py, plots.py and model_registry.py (the parent run's report, figures and registered
model), ranking.py (how trials rank), adaptive.py (seeds as needed), distributed.py, address.py
and launcher.py (keras-tuner's chief and workers), plan.py (`task=plan`). keras-tuner's private
API is reached through `lab.compat.keras_tuner` only. Importing the package loads none of them.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Optional

from lab.config import Role, RunConfig

if TYPE_CHECKING:
    from lab.tasks.search.sweep_report import SearchResult


def restart_process() -> None:
    """Replaces this process with a fresh one running the same command (which resumes the sweep)."""
    from lab.tasks.native_logs import restore_stderr

    sys.stdout.flush()
    restore_stderr()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def run(cfg: RunConfig) -> Optional[float]:
    """`python run.py task=search`: runs the sweep (or, as `search.distributed.role=launcher`, a
    chief and its local workers), prints its outcome and, for an ablation, its verdicts. A process
    whose memory grew too much is replaced by a fresh one that resumes the sweep.

    Args:
        cfg: the composed config.

    Returns:
        The best trial's objective; None for a launcher or a worker, or when no trial trained.
    """
    from lab.tasks.search.orchestration import search
    from lab.tasks.search.progress import RestartSweep

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
    print_outcome(cfg, result)
    return result.best_value


def print_outcome(cfg: RunConfig, result: SearchResult) -> None:
    """The sweep's best trial, the ablation's verdicts, where its error curves and summary are,
    and where to see it in MLflow's UI."""
    from lab.tracking.runs import ui_hint

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
    if cfg.search.ablation is not None:
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


def print_markdown(text: str) -> None:
    """Markdown rendered (tables drawn, emphasis shown) on a terminal; as it is, the text of
    summary.md, when the output goes to a file or a pipe."""
    if not sys.stdout.isatty():
        print(text)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))
