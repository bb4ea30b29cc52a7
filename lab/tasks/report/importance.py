"""Which axes mattered, per sweep: an estimate from a sweep's trials.csv rows alone, made by
well-kept libraries (statsmodels, scikit-learn) rather than hand-written statistics.

- A grid ablation (`search.ablation`) gets an analysis of variance for each metric its
  comparisons use, blocked by `pair_by` (the seed), so that seed-to-seed luck is not counted as
  an effect. Where the compared values are whole variants (an axis with `path: model`), their
  composed configs are decomposed into factors (plain20, resnet20, plain56, resnet56 -> depth x
  connectivity); two factors in a full, balanced factorial get a two-way ANOVA, whose interaction
  is what the degradation problem claims. Anything else gets a one-way ANOVA of the compared axis
  and says why no interaction was estimated.
  The ANOVA pools one residual variance over every cell; where the cells' spreads differ (one
  network's seeds spread 0.12, another's 0), its p-values are too precise, so a 2 x 2 design
  also gets the interaction as a per-seed contrast (one number per seed, a one-sample t test)
  which assumes no equal variances.
- Any other sweep (random, bayesian, hyperband) gets a random forest fitted to its axes ->
  `best_objective`, and each axis' permutation importance measured on held-out trials (3-fold
  cross-validation), beside what noise reaches: the same procedure on the objective shuffled
  across trials, 19 times (a permutation null). An in-sample importance always finds a "top
  axis": on pure noise (12 trials, 3 axes) it took a median 74% share.

Only the rows `lab.verdicts.ablation.usable` keeps are analysed. statsmodels and scikit-learn are
imported inside the functions that fit: they add about 0.7 s and 0.5 s (measured on 2 busy
cores) to this module's 1.5 s, nearly all of which is `lab.verdicts.ablation` (scipy, Hydra), which
the report loads anyway for its verdicts.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from hydra.errors import HydraException
from omegaconf import OmegaConf

from lab.config import AblationConfig, AxisKind, AxisSpec, variant_node
from lab.config.overrides import flatten
from lab.tasks.report.records import AxisImportance, Importance, SweepRecord
from lab.verdicts.ablation import COLUMNS, fewest_steps, usable

MIN_PER_CELL = 2  # an ANOVA's residual needs replicates in every cell
MIN_FOREST_TRIALS = 8  # below this a forest's importances are noise
FOREST_TREES = 30
FOREST_REPEATS = 5
FOREST_FOLDS = 3
NULL_FITS = 19  # shuffled objectives: the smallest permutation p is 1 / 20
UNEQUAL_SPREAD = (
    3.0  # cells whose standard deviations differ more than this break the ANOVA's pooled variance
)
RANDOM_STATE = 0  # fixed, so a report read twice says the same
BLOCK_AXES = ("seed",)  # replicates, not design choices: never a forest's feature
STAGE_KEY = re.compile(r"stages\.\d+\.(blocks|width)")
STAGE_FACTOR = {"blocks": "depth", "width": "width"}

ANOVA_SOURCE = "statsmodels OLS, type II sums of squares"
FOREST_METHOD = (
    f"random-forest permutation importance on held-out trials (scikit-learn RandomForestRegressor, "
    f"{FOREST_TREES} trees, {FOREST_FOLDS}-fold cross-validation; mean drop in held-out R^2 over "
    f"{FOREST_REPEATS} shuffles of each axis), against a permutation null ({NULL_FITS} refits on the "
    "objective shuffled across trials): `noise reaches` is the 95th percentile of the largest null "
    "importance, p the share of null importances at least as large"
)


def axis_importance(sweep: SweepRecord) -> List[AxisImportance]:
    """Which axes mattered in `sweep`: for an ablation, one ANOVA per metric its comparisons use;
    for any other sweep, one random-forest estimate on `best_objective`."""
    if sweep.ablation is not None:
        return [ablation_importance(sweep, column) for column in ablation_responses(sweep.ablation)]
    return [forest_importance(sweep)]


def ablation_responses(cfg: AblationConfig) -> List[str]:
    """The distinct trials.csv columns the comparisons measure, in their order."""
    return list(dict.fromkeys(COLUMNS[pair.metric] for pair in cfg.pairs)) or ["best_objective"]


# --- variants as factors ------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def variant_settings(name: str) -> Dict[str, Any]:
    """A registered variant's composed `model` node, flat (`stages.0.blocks`). Cached: Hydra takes
    about 0.3 s a composition, and the report asks for the same variants once per metric."""
    return flatten(OmegaConf.to_container(variant_node(name), resolve=True, enum_to_str=True))


def partition(values: Sequence[Any]) -> Tuple[int, ...]:
    """How values split their owners: equal values, equal labels ([9, 3, 9] -> (0, 1, 0))."""
    labels = [repr(v) for v in values]
    return tuple(labels.index(label) for label in labels)


def variant_factors(names: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """The factors in which registered variants differ: factor -> {variant: level}. Keys whose
    values split the variants the same way are one factor: resnet20 -> resnet56 changes the three
    stages' block counts together, which is one change (depth), not three."""
    settings = {name: variant_settings(name) for name in names}
    keys = [
        key for key in dict.fromkeys(k for flat in settings.values() for k in flat) if key != "name"
    ]
    groups: Dict[Tuple[int, ...], List[str]] = {}
    for key in keys:
        split = partition([settings[name].get(key) for name in names])
        if len(set(split)) > 1:
            groups.setdefault(split, []).append(key)
    return dict(named_factor(group, settings) for group in groups.values())


def readable(key: str) -> str:
    """`stages.0.blocks` -> depth, `stages.2.width` -> width, `aux_heads.0.weight` -> aux_heads.*.weight."""
    match = STAGE_KEY.fullmatch(key)
    return STAGE_FACTOR[match.group(1)] if match else re.sub(r"(?<=\.)\d+(?=\.|$)", "*", key)


def level_of(part: str, values: List[Any], flat: Dict[str, Any]) -> str:
    """A variant's level of one part of a factor: depth and width read all its stages, since a
    stage both variants share still counts in the depth."""
    stages = {
        field: [v for k, v in flat.items() if (m := STAGE_KEY.fullmatch(k)) and m.group(1) == field]
        for field in STAGE_FACTOR
    }
    if part == "depth":
        return f"{sum(stages['blocks'])} blocks"
    return "/".join(str(v) for v in (stages["width"] if part == "width" else values))


def named_factor(
    keys: List[str], settings: Dict[str, Dict[str, Any]]
) -> Tuple[str, Dict[str, str]]:
    """A factor's readable name (`depth`, `connectivity`, `depth+width`) and each variant's level."""
    parts: Dict[str, List[str]] = {}
    for key in keys:
        parts.setdefault(readable(key), []).append(key)
    raw = {variant: [flat.get(key) for key in keys] for variant, flat in settings.items()}
    levels = {
        variant: ", ".join(
            level_of(part, [flat.get(k) for k in members], flat) for part, members in parts.items()
        )
        for variant, flat in settings.items()
    }
    if partition(list(levels.values())) != partition(
        list(raw.values())
    ):  # two block lists, one total
        levels = {variant: "/".join(map(str, values)) for variant, values in raw.items()}
    return "+".join(parts), levels


# --- ablations: analysis of variance -------------------------------------------------------------


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
    if (
        np.linalg.matrix_rank(model.exog) < model.exog.shape[1]
    ):  # OLS would quietly use a pseudo-inverse
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


# --- other sweeps: random-forest permutation importance ------------------------------------------


def is_block_axis(axis: AxisSpec) -> bool:
    return axis.name in BLOCK_AXES or axis.path in BLOCK_AXES


def numeric_cells(axis: AxisSpec, present: List[str]) -> bool:
    try:
        return (
            all(float(cell) == float(cell) for cell in present)
            and axis.kind is not AxisKind.boolean
        )
    except ValueError:
        return False


def encoded(axis: AxisSpec, cells: List[str]) -> List[float]:
    """Numbers stay numbers; categories become ordinal codes (one column an axis, so permuting the
    column permutes the axis). An inactive conditional axis (empty cell) gets a value below every
    real one, which a tree can split off."""
    present = sorted({cell for cell in cells if cell != ""})
    numeric = numeric_cells(axis, present)
    codes = {cell: float(cell) if numeric else float(i) for i, cell in enumerate(present)}
    low, high = min(codes.values()), max(codes.values())
    return [codes.get(cell, low - 1 - (high - low)) for cell in cells]


def forest_importance(sweep: SweepRecord) -> AxisImportance:
    """Each design axis' held-out permutation importance in a random forest of axes ->
    best_objective, with the level noise reaches and a permutation p."""
    rows = usable(sweep.rows)
    axes = [
        axis
        for axis in sweep.axes
        if not is_block_axis(axis) and len({row.get(axis.name, "") for row in rows}) > 1
    ]
    result = AxisImportance(sweep.name, sweep.experiment, "best_objective", FOREST_METHOD)
    y = [float(row["best_objective"]) for row in rows]
    if len(rows) < MIN_FOREST_TRIALS:
        result.skipped = (
            f"{len(rows)} usable trials; a forest's importances need at least {MIN_FOREST_TRIALS}"
        )
    elif not axes:
        result.skipped = "no design axis varies across the usable trials"
    elif len(set(y)) < 2:
        result.skipped = "the objective is the same in every usable trial"
    else:
        features = np.array(
            [encoded(axis, [row.get(axis.name, "") for row in rows]) for axis in axes]
        ).T
        scores, null = permutation_scores(features, np.array(y)), null_scores(features, np.array(y))
        noise = float(np.quantile(null.max(axis=1), 0.95))
        positive = sum(max(score, 0.0) for score in scores)
        result.rows = [
            Importance(
                axis.name,
                float(score),
                float((1 + (null[:, j] >= score).sum()) / (len(null) + 1)),
                max(score, 0.0) / positive if positive > 0 else 0.0,
                noise,
            )
            for j, (axis, score) in enumerate(zip(axes, scores))
        ]
        result.limits = forest_limits(sweep, len(rows))
    return result


def r_squared(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """R^2 of each row of `predicted` against y (0 where y does not vary)."""
    total = float(((y - y.mean()) ** 2).sum())
    return (
        1 - ((predicted - y) ** 2).sum(axis=-1) / total
        if total > 0
        else np.zeros(predicted.shape[:-1])
    )


def permutation_scores(features: np.ndarray, y: np.ndarray, seed: int = RANDOM_STATE) -> np.ndarray:
    """Per feature, the mean drop in R^2 on held-out trials when it is shuffled: each fold's
    forest is fitted on the other folds, and all shuffled copies are predicted in one call."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(seed)
    found = np.zeros(features.shape[1])
    for train, held in KFold(min(FOREST_FOLDS, len(y)), shuffle=True, random_state=seed).split(
        features
    ):
        forest = RandomForestRegressor(n_estimators=FOREST_TREES, random_state=seed).fit(
            features[train], y[train]
        )
        copies = [features[held]]
        for j in range(features.shape[1]):
            for _ in range(FOREST_REPEATS):
                shuffled = features[held].copy()
                shuffled[:, j] = rng.permutation(shuffled[:, j])
                copies.append(shuffled)
        predicted = forest.predict(np.vstack(copies)).reshape(len(copies), len(held))
        dropped = r_squared(y[held], predicted[0:1])[0] - r_squared(y[held], predicted[1:])
        found += (
            dropped.reshape(features.shape[1], FOREST_REPEATS).mean(axis=1) * len(held) / len(y)
        )
    return found


def null_scores(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`permutation_scores` on the objective shuffled across trials, NULL_FITS times (rows)."""
    rng = np.random.default_rng(RANDOM_STATE + 1)
    return np.array(
        [
            permutation_scores(features, rng.permutation(y), seed=RANDOM_STATE + 1 + k)
            for k in range(NULL_FITS)
        ]
    )


def forest_limits(sweep: SweepRecord, trials: int) -> str:
    # trials.csv holds no epoch budget per trial, so Hyperband's rungs cannot be separated here.
    mixed = (
        " Hyperband's trials trained different epoch budgets and are pooled here, so an axis that "
        "changes cost may look important through its budget."
        if sweep.tuner == "hyperband"
        else ""
    )
    return (
        f"Held out, on {trials} usable trials; an axis below `noise reaches` is not shown to matter. Correlated "
        f"axes share importance, and with this few trials the ranking is unstable.{mixed}"
    )
