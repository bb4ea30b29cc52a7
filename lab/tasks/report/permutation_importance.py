"""Which axes mattered in a sweep that is not an ablation (random, bayesian, hyperband): a random
forest fitted to its axes -> `best_objective`, and each axis' permutation importance measured on
held-out trials (3-fold cross-validation), beside what noise reaches: the same procedure on the
objective shuffled across trials, 19 times (a permutation null). An in-sample importance always
finds a "top axis": on pure noise (12 trials, 3 axes) it took a median 74% share.

scikit-learn is imported inside the function that fits (about 0.5 s on 2 busy cores)."""

from __future__ import annotations

from typing import List

import numpy as np

from lab.config import AxisKind, AxisSpec
from lab.tasks.report.records import AxisImportance, Importance, SweepRecord
from lab.verdicts.rows import usable

MIN_FOREST_TRIALS = 8  # below this a forest's importances are noise
FOREST_TREES = 30
FOREST_REPEATS = 5
FOREST_FOLDS = 3
NULL_FITS = 19  # shuffled objectives: the smallest permutation p is 1 / 20
RANDOM_STATE = 0  # fixed, so a report read twice says the same
BLOCK_AXES = ("seed",)  # replicates, not design choices: never a forest's feature
FOREST_METHOD = (
    f"random-forest permutation importance on held-out trials (scikit-learn RandomForestRegressor, "
    f"{FOREST_TREES} trees, {FOREST_FOLDS}-fold cross-validation; mean drop in held-out R^2 over "
    f"{FOREST_REPEATS} shuffles of each axis), against a permutation null ({NULL_FITS} refits on the "
    "objective shuffled across trials): `noise reaches` is the 95th percentile of the largest null "
    "importance, p the share of null importances at least as large"
)


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
