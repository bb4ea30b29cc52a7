"""The model budgets of a sweep (`search.max_params`, `max_macs`, `max_activation_bytes`): a
model over one fails before it trains, naming the budget and the count."""

from __future__ import annotations

from typing import Dict, Optional

from lab.errors import ModelTooBigError

# What each budget limits, as the analysis (`lab.models.analysis`) counts it.
BUDGETED = {
    "max_params": ("params_total", "parameters"),
    "max_macs": ("macs", "MACs per example"),
    "max_activation_bytes": ("activation_bytes", "bytes of forward activations per example"),
}

# The totals the budgets limit (what a constrained sampler is told about every trial).
BUDGETED_COSTS = tuple(total for total, _ in BUDGETED.values())


def check_budgets(name: str, totals: Dict[str, int], budgets: Dict[str, Optional[int]]) -> None:
    """Refuses a model over one of `budgets`.

    Args:
        name: the model's name, for the message.
        totals: the analysis totals (`params_total`, `macs`, `activation_bytes`, ...).
        budgets: budget key (a `BUDGETED` key) -> its limit, None for no limit.

    Raises:
        ModelTooBigError: naming the first budget the model is over.
    """
    for key, limit in budgets.items():
        total, what = BUDGETED[key]
        if limit is not None and totals[total] > limit:
            raise ModelTooBigError(
                f"{name} has {totals[total]:,} {what}, over the budget search.{key}={limit:,}"
            )
