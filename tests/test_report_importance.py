"""`lab.tasks.report.importance`: which axes mattered. Sweeps are built by hand as trials.csv text read
back with csv.DictReader (every value a string, as the report reads them), and the ANOVA's sums of
squares are checked against their closed forms for a balanced design with blocks."""

import csv
import io
import math

import numpy as np
import pytest
from scipy import stats

from lab.config import AblationConfig, AxisKind, AxisSpec, ComparisonConfig, Metric
from lab.tasks.report.importance import axis_importance, variant_factors
from lab.tasks.report.records import SweepRecord
from lab.tasks.search.summary import to_csv

VARIANTS = ["plain20", "resnet20", "plain56", "resnet56"]
DEEP = {"plain20": 0, "resnet20": 0, "plain56": 1, "resnet56": 1}
RESIDUAL = {"plain20": 0, "resnet20": 1, "plain56": 0, "resnet56": 1}
SEED = AxisSpec(name="seed", path="seed", values=[0, 1, 2, 3, 4])


def trial(trial_id, values, train_error, objective=None, status="COMPLETED", not_trained=""):
    return {
        "trial_id": trial_id,
        "status": status,
        **values,
        "params_total": 1000,
        "macs": 2000,
        "train_steps": 320,
        "best_epoch": 9,
        "best_objective": "" if objective is None else round(objective, 9),
        "train_loss": 0.5,
        "train_error": round(train_error, 9),
        "test_loss": 0.6,
        "test_error": round(train_error + 0.05, 9),
        "not_trained": not_trained,
        "wall_seconds": 3.5,
        "reason": "",
    }


def read_back(rows, axes):
    """Rows as the report sees them: trials.csv text, read back."""
    return list(csv.DictReader(io.StringIO(to_csv(rows, [axis.name for axis in axes]))))


def ablation_sweep(rows, axis, metrics=(Metric.train_error,), tuner="grid"):
    axes = [axis, SEED]
    pairs = [
        ComparisonConfig(baseline=str(axis.values[0]), candidate=str(axis.values[1]), metric=m)
        for m in metrics
    ]
    return SweepRecord(
        "exp",
        "ablation",
        "parent",
        tuner,
        "val_accuracy",
        "max",
        axes,
        read_back(rows, axes),
        ablation=AblationConfig(axis=axis.name, pair_by="seed", pairs=pairs),
    )


def factorial_rows(interaction, seeds=5, rng_seed=0, variants=VARIANTS):
    """train_error = depth + connectivity (+ plain-and-deep) effects + a seed effect + noise."""
    rng = np.random.default_rng(rng_seed)
    seed_effect = rng.normal(0, 0.02, seeds)
    rows = []
    for seed in range(seeds):
        for name in variants:
            value = (
                0.10
                + 0.05 * DEEP[name]
                - 0.03 * RESIDUAL[name]
                + interaction * DEEP[name] * (1 - RESIDUAL[name])
                + seed_effect[seed]
                + rng.normal(0, 0.02)
            )
            rows.append(
                trial(str(len(rows)), {"variant": name, "seed": seed}, value, objective=1 - value)
            )
    return rows


VARIANT = AxisSpec(name="variant", path="model", values=VARIANTS)


def only(results):
    assert len(results) == 1
    return results[0]


def closed_form_two_way(rows, seeds):
    """Balanced 2x2 with one run per cell and seed: each effect's sum of squares from means."""
    y = np.zeros((2, 2, seeds))  # depth, connectivity, seed
    for row in rows:
        y[DEEP[row["variant"]], RESIDUAL[row["variant"]], row["seed"]] = row["train_error"]
    m, a, b, cell, s = (
        y.mean(),
        y.mean(axis=(1, 2)),
        y.mean(axis=(0, 2)),
        y.mean(axis=2),
        y.mean(axis=(0, 1)),
    )
    ss = {
        "depth": 2 * seeds * ((a - m) ** 2).sum(),
        "connectivity": 2 * seeds * ((b - m) ** 2).sum(),
        "depth:connectivity": seeds * ((cell - a[:, None] - b[None, :] + m) ** 2).sum(),
    }
    total = ((y - m) ** 2).sum()
    residual = total - sum(ss.values()) - 4 * ((s - m) ** 2).sum()
    df = 3 * seeds - 3  # 4 seeds-1 total, less 3 effects and seeds-1 blocks
    return {
        k: (v / (residual / df), stats.f.sf(v / (residual / df), 1, df), v / total)
        for k, v in ss.items()
    }


def test_variants_decompose_into_depth_and_connectivity():
    factors = variant_factors(VARIANTS)
    assert list(factors) == ["depth", "connectivity"]
    assert factors["depth"] == {
        "plain20": "9 blocks",
        "resnet20": "9 blocks",
        "plain56": "27 blocks",
        "resnet56": "27 blocks",
    }
    assert (
        factors["connectivity"]["plain56"] == "plain"
        and factors["connectivity"]["resnet20"] == "residual"
    )


def test_factorial_ablation_finds_the_interaction_with_exact_sums_of_squares():
    rows = factorial_rows(interaction=0.30)
    result = only(axis_importance(ablation_sweep(rows, VARIANT)))
    assert result.skipped is None and result.response == "train_error"
    assert result.method.startswith(
        "two-way ANOVA blocked by seed (statsmodels OLS, type II sums of squares)"
    )
    expected = closed_form_two_way(rows, seeds=5)
    assert [r.axis for r in result.rows] == [
        "depth",
        "connectivity",
        "depth:connectivity",
        "depth:connectivity (per-seed contrast, 5 seeds)",
    ]
    for row in result.rows[:3]:
        f, p, share = expected[row.axis]
        assert row.statistic == pytest.approx(f, rel=1e-9) and row.p == pytest.approx(
            p, rel=1e-9, abs=1e-15
        )
        assert row.share == pytest.approx(share, rel=1e-9)
    assert result.rows[2].p < 0.01 and result.rows[2].share > 0.2
    # The per-seed contrast: (plain56 - plain20) - (resnet56 - resnet20) on each seed, one-sample t.
    by = {(r["variant"], r["seed"]): r["train_error"] for r in rows}
    contrasts = [
        (by["resnet56", s] - by["resnet20", s]) - (by["plain56", s] - by["plain20", s])
        for s in range(5)
    ]
    test = stats.ttest_1samp(contrasts, 0.0)
    assert abs(result.rows[3].statistic) == pytest.approx(abs(test.statistic)) and result.rows[
        3
    ].p == pytest.approx(test.pvalue)
    assert "5 seeds per cell" in result.limits and "320 SGD steps" in result.limits


def test_without_an_interaction_its_p_is_large():
    result = only(axis_importance(ablation_sweep(factorial_rows(interaction=0.0), VARIANT)))
    by_axis = {row.axis: row for row in result.rows}
    assert by_axis["depth:connectivity"].p > 0.05
    assert by_axis["depth"].p < 0.01  # the main effects are still there


def test_each_metric_of_the_comparisons_is_analysed_once():
    sweep = ablation_sweep(
        factorial_rows(interaction=0.30),
        VARIANT,
        metrics=(Metric.train_error, Metric.test_error, Metric.train_error),
    )
    assert [r.response for r in axis_importance(sweep)] == ["train_error", "test_error"]


def test_one_factor_ablation_is_a_one_way_anova_blocked_by_seed():
    axis = AxisSpec(name="connectivity", path="model.connectivity", values=["plain", "residual"])
    rng = np.random.default_rng(1)
    # connectivity x seed, as written
    y = np.round(np.array([[0.20, 0.12]]).T + rng.normal(0, 0.02, (2, 4)), 9)
    rows = [
        trial(
            str(i * 4 + s),
            {"connectivity": axis.values[i], "seed": s},
            y[i, s],
            objective=1 - y[i, s],
        )
        for i in range(2)
        for s in range(4)
    ]
    result = only(axis_importance(ablation_sweep(rows, axis)))
    assert result.method.startswith("one-way ANOVA of connectivity blocked by seed")
    assert [r.axis for r in result.rows] == ["connectivity"]
    m = y.mean()
    ss_axis, ss_seed = 4 * ((y.mean(axis=1) - m) ** 2).sum(), 2 * ((y.mean(axis=0) - m) ** 2).sum()
    residual = ((y - m) ** 2).sum() - ss_axis - ss_seed
    # df (2-1)(4-1)
    assert result.rows[0].statistic == pytest.approx(ss_axis / (residual / 3), rel=1e-9)
    assert "No interaction is estimated: one axis (connectivity) is compared" in result.limits


def test_variants_that_are_not_a_full_factorial_fall_back_to_one_way():
    rows = factorial_rows(interaction=0.30, seeds=3, variants=["plain20", "resnet20", "plain56"])
    result = only(axis_importance(ablation_sweep(rows, VARIANT)))
    assert [r.axis for r in result.rows] == ["variant"] and result.rows[0].p < 0.01
    assert "do not cover every combination of depth and connectivity" in result.limits


def test_an_unbalanced_factorial_keeps_its_interaction():
    """A lost run (a failed plain20 seed) leaves cells of 4 and 5 seeds: type II sums of squares
    need no balance, so the interaction is still estimated, and the limits say the counts."""
    rows = factorial_rows(interaction=0.30)[1:]
    result = only(axis_importance(ablation_sweep(rows, VARIANT)))
    assert [r.axis for r in result.rows][:3] == ["depth", "connectivity", "depth:connectivity"]
    assert result.rows[2].p < 0.01 and "4 to 5 seeds per cell" in result.limits


def test_cells_with_unequal_spreads_are_named_and_the_contrast_does_not_pool_them():
    """One cell spreads 0.12 (plain-56's seeds), the others sit at 0: the pooled ANOVA's
    interaction p is far too precise; the per-seed contrast is not."""
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(5):
        for name in VARIANTS:
            value = 0.6 + rng.normal(0, 0.12) if name == "plain56" else 0.02 * (name == "plain20")
            rows.append(
                trial(str(len(rows)), {"variant": name, "seed": seed}, value, objective=1 - value)
            )
    result = only(axis_importance(ablation_sweep(rows, VARIANT)))
    anova, contrast = result.rows[2], result.rows[3]
    assert (
        "The cells' spreads differ" in result.limits
        and "Trust the per-seed contrast" in result.limits
    )
    assert contrast.p > 10 * anova.p


def test_one_seed_per_cell_is_skipped():
    result = only(
        axis_importance(ablation_sweep(factorial_rows(interaction=0.30, seeds=1), VARIANT))
    )
    assert result.rows == [] and "fewer than 2 trained seeds in a cell" in result.skipped


def test_a_variant_confounded_with_its_seeds_is_skipped():
    rows = [
        r
        for r in factorial_rows(interaction=0.30, seeds=4, variants=["plain20", "plain56"])
        if (r["variant"] == "plain20") == (r["seed"] < 2)
    ]
    result = only(axis_importance(ablation_sweep(rows, VARIANT)))
    assert result.rows == [] and "confounded with seed" in result.skipped


def test_failed_pruned_and_untrained_runs_leave_the_ablation_unchanged():
    rows = factorial_rows(interaction=0.30)
    absurd = {"variant": "plain20", "seed": 0}
    extra = [
        trial("90", absurd, 9.9, status="FAILED"),
        trial("91", absurd, 9.9, objective=-9, status="PRUNED"),
        trial("92", absurd, 9.9, objective=-9, not_trained="loss was nan at epoch 1"),
    ]
    clean = only(axis_importance(ablation_sweep(rows, VARIANT)))
    assert only(axis_importance(ablation_sweep(rows + extra, VARIANT))).rows == clean.rows


LR = AxisSpec(name="lr", path="train.lr", kind=AxisKind.float, min=0.001, max=0.3, log=True)
CONNECTIVITY = AxisSpec(
    name="connectivity", path="model.connectivity", values=["plain", "residual"]
)
SHORTCUT = AxisSpec(
    name="shortcut", path="model.shortcut", values=["A", "B"], when={"connectivity": ["residual"]}
)
RANDOM_AXES = [CONNECTIVITY, LR, SHORTCUT, SEED]


def random_rows(n, rng_seed=0):
    """best_objective rises with log(lr) and ignores connectivity and shortcut."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for i in range(n):
        lr, connectivity = 10 ** rng.uniform(-3, -0.5), rng.choice(["plain", "residual"])
        values = {
            "connectivity": connectivity,
            "lr": round(lr, 6),
            "seed": int(rng.integers(5)),
            "shortcut": rng.choice(["A", "B"]) if connectivity == "residual" else "",
        }
        objective = 0.9 + 0.1 * math.log10(lr) + rng.normal(0, 0.005)
        rows.append(trial(str(i), values, 1 - objective, objective=objective))
    return rows


def random_sweep(rows, tuner="random"):
    return SweepRecord(
        "exp",
        "resnet_axes",
        "parent",
        tuner,
        "val_accuracy",
        "max",
        RANDOM_AXES,
        read_back(rows, RANDOM_AXES),
    )


def test_random_sweep_ranks_the_axis_the_objective_depends_on():
    result = only(axis_importance(random_sweep(random_rows(20))))
    assert (
        result.skipped is None
        and result.response == "best_objective"
        and result.method.startswith("random-forest")
    )
    by_axis = {row.axis: row for row in result.rows}
    assert set(by_axis) == {
        "connectivity",
        "lr",
        "shortcut",
    }  # the seed is a replicate, not a design axis
    assert by_axis["lr"].statistic > by_axis["connectivity"].statistic and by_axis["lr"].share > 0.5
    assert sum(row.share for row in result.rows) == pytest.approx(1.0)
    assert by_axis["lr"].statistic > by_axis["lr"].noise and by_axis["lr"].p == pytest.approx(
        1 / 20
    )  # above every null
    assert (
        "Held out, on 20 usable trials" in result.limits
        and "Correlated axes share" in result.limits
    )


def test_on_pure_noise_no_axis_clears_what_noise_reaches():
    """12 trials, 3 axes, an objective that depends on none: in-sample importance gave the top
    axis a median 74% share; held out and against its null, no axis is shown to matter."""
    rng = np.random.default_rng(7)
    rows = [
        dict(r, best_objective=round(0.8 + rng.normal(0, 0.01), 9))
        for r in random_rows(12, rng_seed=5)
    ]
    result = only(axis_importance(random_sweep(rows)))
    assert all(row.statistic < row.noise for row in result.rows), [
        (r.axis, r.statistic, r.noise) for r in result.rows
    ]


def test_pruned_trials_leave_the_forest_unchanged_and_hyperband_says_budgets_mix():
    rows = random_rows(20)
    pruned = [
        dict(
            trial(
                "99",
                {"connectivity": "plain", "lr": 0.001, "seed": 0, "shortcut": ""},
                0.0,
                objective=99.0,
                status="PRUNED",
            )
        )
    ]
    clean = only(axis_importance(random_sweep(rows, tuner="hyperband")))
    assert only(axis_importance(random_sweep(rows + pruned, tuner="hyperband"))).rows == clean.rows
    assert "different epoch budgets" in clean.limits


def test_fewer_than_8_trials_are_skipped():
    result = only(axis_importance(random_sweep(random_rows(7))))
    assert result.rows == [] and result.skipped.startswith("7 usable trials")
