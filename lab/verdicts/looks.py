"""Seeds added as they are needed (`search.ablation.looks`): the sequential plan replayed on a
sweep's rows. At each look (a number of seeds, at its share of the level, `lab.stats.seeds`)
the comparisons not yet decided are tested on the first seeds; the oracle
(`lab.tasks.search.adaptive`) asks which cells to train next, the report asks for the verdicts, and
both read them from `plan_looks`, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lab.config import AblationConfig
from lab.stats.seeds import look_levels
from lab.verdicts.ablation import INCONCLUSIVE, Verdict, verdicts

WAITING_STATUSES = ("RUNNING", "IDLE")


@dataclass
class LookPlan:
    """Where a sequential ablation stands. `verdicts`: each comparison's verdict at the look that
    decided it (or the last); a comparison still open has its verdict at the current look on the
    runs so far, with outcome `inconclusive`. `missing`: the (value, seed) cells the current look
    still needs, seeds first; `waiting`: needed cells still training."""

    looks: List[int]
    levels: List[float]
    look: int  # the seed count being tested now (or last tested)
    verdicts: List[Verdict]
    decided_at: List[Optional[int]]  # per comparison: the seeds at which it was decided
    missing: List[tuple]
    waiting: bool

    @property
    def done(self) -> bool:
        return all(n is not None for n in self.decided_at)


def needed_cells(cfg: AblationConfig, pending: Sequence[int], keys: Sequence[str]) -> List[tuple]:
    values = list(
        dict.fromkeys(v for i in pending for v in (cfg.pairs[i].baseline, cfg.pairs[i].candidate))
    )
    return [(value, key) for key in keys for value in values]


def plan_looks(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    direction: str,
    seeds: Sequence[object],
    correct: Optional[Mapping[str, np.ndarray]] = None,
) -> LookPlan:
    """Replays the sequential plan on the rows so far: at each look (`cfg.looks`, seed counts, at
    its share of the level) the comparisons not yet decided are tested on the first seeds; a
    look whose cells are not all run stops the replay there. The sweep's oracle asks it which
    trial comes next; the report asks it for the verdicts, so the two cannot disagree."""
    looks, keys_all = list(cfg.looks), [str(s) for s in seeds]
    levels = look_levels(looks)
    present = {(str(r[cfg.axis]), str(r[cfg.pair_by])): str(r["status"]) for r in rows}
    final: List[Optional[Verdict]] = [None] * len(cfg.pairs)
    decided_at: List[Optional[int]] = [None] * len(cfg.pairs)
    for k, (look, level) in enumerate(zip(looks, levels)):
        pending = [i for i, v in enumerate(final) if v is None]
        keys = keys_all[:look]
        needed = needed_cells(cfg, pending, keys)
        missing = [cell for cell in needed if cell not in present]
        waiting = any(present.get(cell) in WAITING_STATUSES for cell in needed)
        found = verdicts(rows, cfg, direction, correct, alpha=level, keys=keys)
        if missing or waiting:
            for i in pending:
                final[i] = replace(
                    found[i],
                    outcome=INCONCLUSIVE if found[i].outcome else None,
                    notes=found[i].notes
                    + [f"open: look {look} of {'/'.join(map(str, looks))} not complete"],
                )
            return LookPlan(looks, levels, look, final, decided_at, missing, waiting)
        for i in pending:
            if found[i].decided or k == len(looks) - 1:
                final[i], decided_at[i] = found[i], look
        if all(n is not None for n in decided_at):
            return LookPlan(looks, levels, look, final, decided_at, [], False)
    raise AssertionError("the last look decides every comparison")


def judged(
    rows: List[Dict[str, object]],
    cfg: AblationConfig,
    direction: str,
    seeds: Optional[Sequence[object]] = None,
    correct: Optional[Mapping[str, np.ndarray]] = None,
) -> Tuple[List[Verdict], Optional[LookPlan]]:
    """A sweep's verdicts as its reports give them: the sequential plan's where the ablation has
    `looks` (`seeds`: the pair_by axis' declared values), else every comparison on every seed;
    with the plan, or None."""
    if cfg.looks and seeds:
        plan = plan_looks(rows, cfg, direction, seeds, correct)
        return plan.verdicts, plan
    return verdicts(rows, cfg, direction, correct), None
