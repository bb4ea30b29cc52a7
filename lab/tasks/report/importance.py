"""Which axes mattered, per sweep: an estimate from a sweep's trials.csv rows alone, made by
well-kept libraries (statsmodels, scikit-learn) rather than hand-written statistics.

- A grid ablation (`search.ablation`) gets an analysis of variance for each metric its
  comparisons use (this module), blocked by `pair_by` (the seed), so that seed-to-seed luck is
  not counted as an effect. Where the compared values are whole variants (an axis with
  `path: model`), their composed configs are decomposed into factors
  (`lab.tasks.report.variant_factors`: plain20, resnet20, plain56, resnet56 -> depth x
  connectivity); two factors in a full, balanced factorial get a two-way ANOVA, whose
  interaction is what the degradation problem claims. Anything else gets a one-way ANOVA of the
  compared axis and says why no interaction was estimated.
  The ANOVA pools one residual variance over every cell; where the cells' spreads differ (one
  network's seeds spread 0.12, another's 0), its p-values are too precise, so a 2 x 2 design
  also gets the interaction as a per-seed contrast (one number per seed, a one-sample t test)
  which assumes no equal variances.
- Any other sweep (random, bayesian, hyperband) gets a random forest's held-out permutation
  importance against a permutation null (`lab.tasks.report.permutation_importance`).

Only the rows `lab.verdicts.rows.usable` keeps are analysed. statsmodels is imported inside the
function that fits, so that loading this module does not pay its 0.7 s (on 2 busy cores).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from hydra.errors import HydraException

from lab.config import AblationConfig
from lab.tasks.report.permutation_importance import forest_importance
from lab.tasks.report.records import AxisImportance, Importance, SweepRecord
from lab.tasks.report.variant_factors import variant_factors
from lab.verdicts.rows import COLUMNS, fewest_steps, usable

MIN_PER_CELL = 2  # an ANOVA's residual needs replicates in every cell
# cells whose standard deviations differ more than this break the ANOVA's pooled variance
UNEQUAL_SPREAD = 3.0

ANOVA_SOURCE = "statsmodels OLS, type II sums of squares"


def axis_importance(sweep: SweepRecord) -> List[AxisImportance]:
    """Which axes mattered in `sweep`.

    Args:
        sweep: a sweep as the report read it (its rows, axes and ablation, if any).

    Returns:
        For an ablation, one ANOVA per metric its comparisons use; for any other sweep, one
        random-forest estimate on `best_objective`. Each says why, where it was skipped.
    """
    if sweep.ablation is not None:
        return [ablation_importance(sweep, column) for column in ablation_responses(sweep.ablation)]
    return [forest_importance(sweep)]


def ablation_responses(cfg: AblationConfig) -> List[str]:
    """The distinct trials.csv columns the comparisons measure, in their order."""
    return list(dict.fromkeys(COLUMNS[pair.metric] for pair in cfg.pairs)) or ["best_objective"]


@dataclass
class Design:
    """The factors an ablation's rows are analysed by: names, and per factor {axis value: level}."""

    factors: List[str]
    levels: List[Dict[str, str]]
    why_one_way: str = ""


def ablation_design(sweep: SweepRecord, rows: List[Dict[str, str]]) -> Design:
    """Two factors where the compared variants form a full, balanced 2-factor factorial, else the
    compared axis alone, with the reason."""
    cfg = sweep.ablation
    values = list(dict.fromkeys(str(row[cfg.axis]) for row in rows))
    one_way = Design([cfg.axis], [{value: value for value in values}])
    spec = next((axis for axis in sweep.axes if axis.name == cfg.axis), None)
    if spec is None or spec.path != "model":
        one_way.why_one_way = f"one axis ({cfg.axis}) is compared, not a factorial of variants"
        return one_way
    try:
        factors = variant_factors(values)
    except HydraException:  # a report may read runs of a variant since removed
        one_way.why_one_way = (
            "a compared variant is no longer registered, so it cannot be decomposed into factors"
        )
        return one_way
    one_way.why_one_way = two_way_obstacle(factors, rows, cfg)
    return one_way if one_way.why_one_way else Design(list(factors), list(factors.values()))


def two_way_obstacle(
    factors: Dict[str, Dict[str, str]], rows: List[Dict[str, str]], cfg: AblationConfig
) -> str:
    """Why the variants do not support a two-way ANOVA ("" when they do)."""
    if not factors:
        return "the variants' composed configs do not differ"
    if len(factors) == 1:
        return "every difference between the variants splits them the same way (one factor)"
    if len(factors) > 2:
        return f"the variants differ in {len(factors)} factors ({', '.join(factors)}), not 2"
    (first, by_first), (second, by_second) = factors.items()
    cells = Counter((by_first[str(row[cfg.axis])], by_second[str(row[cfg.axis])]) for row in rows)
    if len(cells) < len(set(by_first.values())) * len(set(by_second.values())):
        return f"the trained variants do not cover every combination of {first} and {second}"
    return ""  # unequal cells (a run that failed) are fine: type II sums of squares do not need balance


def design_frame(rows: List[Dict[str, str]], response: str, cfg: AblationConfig, design: Design):
    import pandas as pd

    data = {
        "y": [float(row[response]) for row in rows],
        "block": [str(row.get(cfg.pair_by, "")) for row in rows],
    }
    for i, levels in enumerate(design.levels):
        data[f"f{i}"] = [levels[str(row[cfg.axis])] for row in rows]
    return pd.DataFrame(data)


def ablation_importance(sweep: SweepRecord, response: str) -> AxisImportance:
    """One ANOVA of `response` over the ablation's usable rows, or why there is none."""
    cfg = sweep.ablation
    rows = [row for row in usable(sweep.rows) if row.get(response, "") != ""]
    result = AxisImportance(sweep.name, sweep.experiment, response, f"ANOVA ({ANOVA_SOURCE})")
    if len({str(row.get(cfg.axis, "")) for row in rows}) < 2:
        result.skipped = f"fewer than 2 values of {cfg.axis} trained"
        return result
    design = ablation_design(sweep, rows)
    frame = design_frame(rows, response, cfg, design)
    factors = [f"f{i}" for i in range(len(design.factors))]
    per_cell = frame.groupby(factors).size()
    if per_cell.min() < MIN_PER_CELL:
        result.skipped = (
            f"fewer than {MIN_PER_CELL} trained {cfg.pair_by}s in a cell (fewest: {per_cell.min()})"
        )
        return result
    blocked = frame["block"].nunique() > 1
    result.method = anova_method(design, cfg, blocked)
    table, result.skipped = fitted_anova(frame, factors, blocked, cfg)
    if table is not None:
        names = term_names(design)
        total = float(((frame["y"] - frame["y"].mean()) ** 2).sum())
        result.rows = [
            Importance(
                names[term],
                float(table.loc[term, "F"]),
                float(table.loc[term, "PR(>F)"]),
                float(table.loc[term, "sum_sq"]) / total,
            )
            for term in names
            if term in table.index
        ]
        contrast = seed_contrast(frame, design)
        if contrast is not None:
            result.rows.append(contrast)
        result.limits = anova_limits(design, cfg, per_cell, rows) + spread_warning(
            frame, factors, design
        )
    return result


def seed_contrast(frame, design: Design) -> Optional[Importance]:
    """A 2 x 2 design's interaction as one number per seed, (y11 - y01) - (y10 - y00), tested
    against 0 with a one-sample t: no pooled variance, so no equal-variance assumption."""
    if len(design.factors) != 2 or any(len(set(levels.values())) != 2 for levels in design.levels):
        return None
    from scipy import stats

    firsts, seconds = (sorted(set(levels.values())) for levels in design.levels)
    cells = frame.pivot_table(
        index="block", columns=["f0", "f1"], values="y", aggfunc="mean"
    ).dropna()
    if len(cells) < MIN_PER_CELL or cells.shape[1] != 4:
        return None
    contrasts = (
        (cells[(firsts[1], seconds[1])] - cells[(firsts[0], seconds[1])])
        - (cells[(firsts[1], seconds[0])] - cells[(firsts[0], seconds[0])])
    ).to_numpy()
    if np.ptp(contrasts) == 0:
        return None
    test = stats.ttest_1samp(contrasts, 0.0)
    return Importance(
        f"{':'.join(design.factors)} (per-seed contrast, {len(contrasts)} seeds)",
        float(test.statistic),
        float(test.pvalue),
        None,
    )


def spread_warning(frame, factors: List[str], design: Design) -> str:
    """A sentence when the cells' spreads differ more than the pooled ANOVA can bear."""
    spreads = frame.groupby(factors)["y"].std(ddof=1)
    low, high = float(spreads.min()), float(spreads.max())
    if high <= 0 or (low > 0 and high / low <= UNEQUAL_SPREAD):
        return ""
    contrast = (
        " Trust the per-seed contrast for the interaction." if len(design.factors) == 2 else ""
    )
    return (
        f" The cells' spreads differ (standard deviation {low:.3g} to {high:.3g}): the ANOVA's pooled "
        f"variance makes its p-values too precise.{contrast}"
    )


def term_names(design: Design) -> Dict[str, str]:
    """statsmodels' term -> the report's name: `C(f0):C(f1)` -> `depth:connectivity`."""
    names = {f"C(f{i})": factor for i, factor in enumerate(design.factors)}
    if len(names) == 2:
        names[":".join(names)] = ":".join(design.factors)
    return names


def fitted_anova(frame, factors: List[str], blocked: bool, cfg: AblationConfig):
    """statsmodels' type II ANOVA table, or None and why the design cannot be fitted."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    formula = "y ~ " + " * ".join(f"C({f})" for f in factors) + (" + C(block)" if blocked else "")
    model = ols(formula, data=frame)
    # OLS would quietly use a pseudo-inverse
    if np.linalg.matrix_rank(model.exog) < model.exog.shape[1]:
        return None, f"{cfg.axis} is confounded with {cfg.pair_by}: the design cannot separate them"
    fit = model.fit()
    if fit.df_resid < 1:
        return None, "the fit leaves the residual no degrees of freedom"
    if fit.ssr <= 1e-12 * max(1.0, float((frame["y"] ** 2).sum())):
        return None, "the fit leaves no residual variation to test against (identical runs?)"
    return anova_lm(fit, typ=2), None


def anova_method(design: Design, cfg: AblationConfig, blocked: bool) -> str:
    block = f" blocked by {cfg.pair_by}" if blocked else ""
    if len(design.factors) == 1:
        return f"one-way ANOVA of {cfg.axis}{block} ({ANOVA_SOURCE})"
    levels = "; ".join(
        f"{name}: {' or '.join(dict.fromkeys(levels.values()))}"
        for name, levels in zip(design.factors, design.levels)
    )
    return f"two-way ANOVA{block} ({ANOVA_SOURCE}); factors from the variants' configs, {levels}"


def anova_limits(design: Design, cfg: AblationConfig, per_cell, rows: List[Dict[str, str]]) -> str:
    low, high = int(per_cell.min()), int(per_cell.max())
    replicates = f"{low}" if low == high else f"{low} to {high}"
    steps = fewest_steps(rows)
    budget = "" if steps is None else f" (the shortest-trained run took {steps:,} SGD steps)"
    why = f"No interaction is estimated: {design.why_one_way}. " if design.why_one_way else ""
    return (
        f"{why}Normality and equal variance assumed, with {replicates} {cfg.pair_by}s per cell, at this "
        f"sweep's budget{budget}; p-values are not adjusted across the report."
    )
