"""What a running sweep says about itself: the "trial k of N" line with the time left, and the
resident memory after each trial, which ends the process (`RestartSweep`) for a fresh one to
resume the sweep once it has grown by more than `search.restart_after_mib`."""

from __future__ import annotations

from typing import Dict, List, Optional

from lab import runtime
from lab.config import RunConfig
from lab.tasks.search.plan import format_seconds
from lab.tracking.runs import Suspended, TrackedRun


class RestartSweep(Suspended):
    """Between trials: this process should end and a fresh one resume the sweep (`run.py` does it)."""


def progress_line(
    number: int, planned: Optional[int], seconds: List[float], values: Dict[str, object]
) -> str:
    """The line a sweep prints as a trial begins, with an estimate of the time left: this
    process's mean trial time times the trials left, this one included.

    Args:
        number: the trial's number in the sweep (1 for the first).
        planned: how many trials the sweep plans (`plan.planned_trials`); None: not known.
        seconds: how long each trial this process ran took.
        values: the trial's hyperparameter values.

    Returns:
        `trial 3 of 20 (variant=plain20, seed=2); 2 took 1 min 10 s here, about 5 min 50 s left`.
    """
    of = f" of {planned}" if planned else ""
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    line = f"trial {number}{of} ({shown})"
    if seconds:
        line += f"; {len(seconds)} took {format_seconds(sum(seconds))} here"
        if planned:
            left = max(planned - number + 1, 0)
            line += f", about {format_seconds(left * sum(seconds) / len(seconds))} left"
    return line


class MemoryWatch:
    """A part of `lab.tasks.search.sweep.Sweep`, which holds the attributes below."""

    run_cfg: RunConfig
    parent: TrackedRun
    baseline_rss_mib: Optional[float]  # after this process's first trial

    def check_memory(self, trials: int, remaining: Optional[int], metric: str = "rss_mib") -> None:
        """Logs the resident memory after each trial (parent metric `rss_mib`, or `rss_mib/workerN`
        per distributed worker; step = trials so far) and stops the process with `RestartSweep`
        once it has grown `search.restart_after_mib` since this process's first trial (which sets
        the baseline: compilers, allocator pools).

        Raises:
            RestartSweep: the memory grew too much and trials (`remaining`: None if not known)
                are left.
        """
        rss = runtime.resident_mib()
        self.parent.log_metrics({metric: rss}, step=trials)
        if self.baseline_rss_mib is None:
            self.baseline_rss_mib = rss
            return
        limit, growth = self.run_cfg.search.restart_after_mib, rss - self.baseline_rss_mib
        if limit is not None and growth > limit and remaining != 0:
            raise RestartSweep(
                f"resident memory grew {growth:.0f} MiB since this process's first trial "
                f"(search.restart_after_mib={limit}): restarting to resume it in a fresh process"
            )
