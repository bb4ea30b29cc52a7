"""The sweep's side of `search.pruner`: the median pruner each new trial gets, against the epoch
curves of the trials completed by then (each read from MLflow once), and how a pruned trial's run
is recorded. The pruner itself is `lab.training.pruning.MedianPruner`."""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from lab.config import Pruner, RunConfig
from lab.data import Splits
from lab.tasks.search.records import PRUNED_OBJECTIVE, scored
from lab.tracking.runs import TrackedRun
from lab.tracking.tags import PRUNED_REASON_TAG
from lab.training.checkpoint import epoch_objective
from lab.training.pruning import MedianPruner


class TrialPruning:
    """A part of `lab.tasks.search.sweep.Sweep`, which holds the attributes below and the
    records' `children()`."""

    run_cfg: RunConfig
    splits: Optional[Splits]
    parent: TrackedRun
    pruned: Set[str]  # trial ids this process ended PRUNED (keras-tuner STOPPED)
    curves: Dict[str, Dict[int, float]]  # completed trials' epoch objective

    def epoch_metric(self) -> Tuple[str, str]:
        """(metric, "max"|"min") a trial's epochs are ranked and pruned by: the sweep's objective where
        every epoch logs it, else val_accuracy, else the training loss (no validation split)."""
        search, has_validation = (
            self.run_cfg.search,
            self.splits is not None and len(self.splits.x_val) > 0,
        )
        return epoch_objective(search.objective, search.direction, has_validation) or (
            "loss",
            "min",
        )

    def pruning_reference(self, metric: str) -> Dict[int, List[float]]:
        """{epoch: [the completed trials' `metric` at that epoch]}: every trial whose latest attempt
        FINISHED with a score (not pruned), its curve read from MLflow once and kept."""
        client = self.parent.client
        for trial, run in self.children().items():
            if trial not in self.curves and scored(run):
                self.curves[trial] = {
                    m.step: m.value for m in client.get_metric_history(run.info.run_id, metric)
                }
        reference: Dict[int, List[float]] = {}
        for curve in self.curves.values():
            for epoch, value in curve.items():
                reference.setdefault(epoch, []).append(value)
        return reference

    def new_pruner(self) -> Optional[MedianPruner]:
        """`search.pruner` for the next trial, against the trials completed by now; None: off."""
        search = self.run_cfg.search
        if search.pruner is Pruner.none:
            return None
        metric, mode = self.epoch_metric()
        return MedianPruner(
            metric,
            mode,
            self.pruning_reference(metric),
            search.pruner_warmup,
            search.pruner_min_trials,
        )

    def record_pruned(
        self, trial_id: str, child: TrackedRun, pruner: MedianPruner, score: float
    ) -> None:
        """A pruned trial's run: why it stopped (tag), where it stood (metric `pruned_objective`); the
        trial ends STOPPED in keras-tuner (`LabTuner.on_trial_end`)."""
        self.pruned.add(trial_id)
        child.log_metrics({PRUNED_OBJECTIVE: score})
        child.set_tags(
            {
                PRUNED_REASON_TAG: f"pruned at epoch {pruner.pruned_at}: best {pruner.metric} {pruner.best:.4f}, "
                f"worse than the median {pruner.median:.4f} of "
                f"{len(pruner.reference[pruner.pruned_at])} completed trials at that epoch"
            }
        )
