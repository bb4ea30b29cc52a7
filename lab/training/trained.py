"""Did a run train? A comparison only counts networks that did: a run with a non-finite loss, or
whose final training loss is above chance (ln of the class count: what predicting the uniform
distribution scores, with or without label smoothing), is flagged and left out of ablations."""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

from lab.tracking.tags import NOT_TRAINED_TAG, TRAINED_TAG

# A trial `search.pruner` stopped: its run ends FINISHED with these tags (lab.training.pruning).
PRUNED = "PRUNED"  # the trial's status in trials.csv and summary.md


def not_trained_reason(
    history: Dict[str, List[float]], classes: int, test_loss: Optional[float]
) -> Optional[str]:
    """Why the run does not count as trained, or None when it does."""
    losses = history.get("loss", [])
    if not losses:
        return "no training epoch finished"
    final, chance = losses[-1], math.log(classes)
    if not math.isfinite(final):
        return f"non-finite training loss ({final}) at epoch {len(losses)}"
    if final > chance:
        return f"final training loss {final:.3f} above chance ln({classes}) = {chance:.3f}"
    if test_loss is not None and not math.isfinite(test_loss):
        return f"non-finite test loss ({test_loss})"
    return None


def trained(tags: Mapping[str, str]) -> bool:
    """Whether a run's tags say its network trained (a run recorded before the tag existed counts)."""
    return tags.get(TRAINED_TAG) != "false"


def trained_tags(reason: Optional[str]) -> Dict[str, str]:
    return (
        {TRAINED_TAG: "true"} if reason is None else {TRAINED_TAG: "false", NOT_TRAINED_TAG: reason}
    )


def improvement_last_quarter(history: Dict[str, List[float]]) -> Optional[float]:
    """How much the training error fell over the last quarter of the epochs (at least one epoch
    back): a run still falling when its budget ended may be ranked by the budget, not the design.
    None with fewer than two epochs of training accuracy."""
    accuracy = history.get("accuracy", [])
    if len(accuracy) < 2:
        return None
    back = max(1, len(accuracy) // 4)
    return float(accuracy[-1] - accuracy[-1 - back])  # error before - error after
