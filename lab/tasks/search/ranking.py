"""How a sweep's trials rank: by objective, best first, a tie going to the earlier trial.

One rule for every place that picks trials by score (the kept models, the best trial that the
parent names and `search.register_as` registers), so that they can not pick different trials of
equal score. Light: no Keras, no MLflow, no keras-tuner."""

from __future__ import annotations

from typing import Dict, List, Tuple


def trial_order(trial_id: str) -> Tuple[int, str]:
    """keras-tuner's trial ids in the order they were created: "2" before "10"."""
    return len(trial_id), trial_id


def best_first(scores: Dict[str, float], direction: str) -> List[str]:
    """The trial ids of `scores` ({trial id: objective}), best first for `direction` ("max" or
    "min"); among equal scores the earlier trial first, as keras-tuner's own best trial."""
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    earlier_first = sorted(scores, key=trial_order)
    # stable: ties stay in order
    return sorted(earlier_first, key=lambda trial: scores[trial], reverse=direction == "max")
