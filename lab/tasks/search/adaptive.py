"""Seeds added as they are needed (`search.ablation.looks`): a keras-tuner oracle for an ablation
grid that hands out the cells (value x seed) of the first look, then, once they have all ended,
those of the next look for the comparisons still undecided only, and stops when every claim is
decided or the last look is done. Which cell comes next is `lab.verdicts.ablation.plan_looks` on
the sweep's trial rows, the function the report reads its verdicts from.

It uses keras-tuner's public extension point for a custom search (`Oracle.populate_space`), so
distributed chiefs and workers, resume after a kill and the sweep's MLflow records work as for
the grid."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import keras_tuner as kt

from lab.compat.keras_tuner import KeepsTrialOwners, StopsAtDeadline
from lab.config import AxisSpec, SearchConfig
from lab.verdicts.looks import LookPlan, plan_looks


class AdaptiveSeedOracle(StopsAtDeadline, KeepsTrialOwners, kt.Oracle):
    """keras-tuner's oracle for `search.ablation.looks`. `rows_source` (set by the sweep) gives
    the sweep's trial rows with their recorded figures (`lab.tasks.search.summary.trial_rows`)."""

    def __init__(self, search: SearchConfig, **common):
        axes = {axis.name: axis for axis in search.space}
        self.search = search
        self.axis: AxisSpec = axes[search.ablation.axis]
        self.pairing: AxisSpec = axes[search.ablation.pair_by]
        self.rows_source: Optional[Callable[[], List[dict]]] = None
        super().__init__(max_trials=len(self.axis.values) * search.ablation.looks[-1], **common)

    def plan(self) -> LookPlan:
        rows = self.rows_source() if self.rows_source is not None else []
        return plan_looks(rows, self.search.ablation, self.search.direction, self.pairing.values)

    def populate_space(self, trial_id: str) -> Dict[str, object]:
        plan = self.plan()
        if plan.missing:
            value, seed = plan.missing[0]
            return {
                "status": "RUNNING",
                "values": {
                    self.axis.name: declared(self.axis, value),
                    self.pairing.name: declared(self.pairing, seed),
                },
            }
        return {"status": "IDLE" if plan.waiting else "STOPPED"}

    def remaining_trials(self) -> int:
        """0 once the plan needs no more cells (a restarted chief then reports instead of waiting)."""
        return len(self.plan().missing)


def declared(axis: AxisSpec, text: str):
    """The axis value, as the space declares it, whose string form is `text`."""
    return next(value for value in axis.values if str(value) == text)
