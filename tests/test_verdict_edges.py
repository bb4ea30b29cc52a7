"""The verdict in the edge cases a user's own ablation reaches, each built from rows (no training):
a margin claim inside its margin, differences with no spread, two seeds, runs that did not train,
a NaN p-value, and a claim without a budget."""

import math

import pytest

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric
from lab.tasks.search.summary import ablation_markdown
from lab.verdicts.ablation import (
    BETTER,
    BEYOND,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_WITHIN,
    REPRODUCED,
    SAME,
    UNDECIDED,
    WITHIN,
    WORSE,
    verdicts,
)

STEP = 1 / 500  # the quick protocol's training error moves in steps of one image in 500


def runs(table, metric="train_error", examples=500, steps=320, **extra):
    """Trial rows from (variant, seed, value): what a sweep's trials.csv holds."""
    return [
        {
            "trial_id": f"{v}-{s}",
            "status": "COMPLETED",
            "variant": v,
            "seed": s,
            "best_objective": 0.5,
            metric: value,
            "train_examples": examples,
            "test_examples": 1000,
            "train_steps": steps,
            "not_trained": "",
            **extra,
        }
        for v, s, value in table
    ]


def claim(expect, margin=0.0, metric=Metric.train_error, baseline="a", candidate="b", **fields):
    return ComparisonConfig(baseline, candidate, metric, expect, margin=margin, **fields)


def judge(rows, *comparisons, **fields):
    return verdicts(rows, AblationConfig(pairs=list(comparisons), **fields), "max")


def test_not_worse_inside_its_margin_but_above_zero_is_reproduced():
    # ResNet-56 missing two training images more than ResNet-20 on every seed and three on one
    # (+0.0044, under half the margin): worse, but within the margin.
    rows = runs(
        [("a", s, 0.0) for s in range(5)] + [("b", s, STEP * (2 + (s == 4))) for s in range(5)]
    )
    [v] = judge(rows, claim(Expectation.not_worse, 0.01))
    assert v.difference.low > 0  # the interval is above 0 ...
    assert v.difference.high < 0.01  # ... and inside the margin
    assert (v.verdict, v.outcome) == (WITHIN, REPRODUCED)
    # The p printed is the test against the margin: one-sided t, doubled, t = (0.0044 - 0.01) /
    # (spread / sqrt 5), the spread (sd 0.0009) raised to one step of the metric, 0.002.
    from scipy import stats

    assert v.difference.floored
    assert v.p == pytest.approx(
        2 * stats.t.cdf((0.0044 - 0.01) / (STEP / math.sqrt(5)), 4), rel=1e-6
    )
    assert v.p < 0.01 and v.p_holm == pytest.approx(v.p)


def test_not_worse_is_contradicted_only_when_the_better_end_is_past_the_margin():
    past = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)]
        + [("b", s, 0.15 + 0.011 * s) for s in range(5)]
    )
    assert judge(past, claim(Expectation.not_worse, 0.01))[0].outcome == CONTRADICTED
    # Worse, significantly, but the interval reaches back inside the margin: not shown, not contradicted.
    straddle = runs(
        [("a", s, 0.1) for s in range(5)]
        + [("b", s, 0.1 + d) for s, d in enumerate([0.004, 0.012, 0.02, 0.008, 0.016])]
    )
    [v] = judge(straddle, claim(Expectation.not_worse, 0.01))
    assert v.difference.low < 0.01 < v.difference.high and v.difference.low > 0
    assert (v.verdict, v.outcome) == (NOT_WITHIN, INCONCLUSIVE)


def test_higher_is_better_metrics_flip_the_margin():
    rows = runs(
        [("a", s, 0.80 + 0.01 * s) for s in range(5)]
        + [("b", s, 0.798 + 0.01 * s + 0.001 * (s % 2)) for s in range(5)],
        metric="best_objective",
    )
    [v] = judge(rows, claim(Expectation.not_worse, 0.01, Metric.objective))
    # val_accuracy 0.2 points lower: within 1 point
    assert (v.verdict, v.outcome) == (WITHIN, REPRODUCED)


def test_identical_differences_never_give_p_zero_or_a_point_interval():
    # Two seeds, the same difference on both: a user saw [-0.1922, -0.1922], p 0, reproduced. The
    # spread used is one step of the metric (1/500): a real interval and a p above 0.
    two = runs([("a", 0, 0.5), ("a", 1, 0.6), ("b", 0, 0.5 - 0.1922), ("b", 1, 0.6 - 0.1922)])
    [v] = judge(two, claim(Expectation.better))
    half = 12.706 * STEP / math.sqrt(2)  # t(0.975, 1) x resolution / sqrt 2
    assert v.difference.sd == pytest.approx(0, abs=1e-12) and v.difference.floored
    assert (v.difference.low, v.difference.high) == (
        pytest.approx(-0.1922 - half, abs=1e-4),
        pytest.approx(-0.1922 + half, abs=1e-4),
    )
    assert 0.001 < v.p < 0.01 and v.p_exact == 0.5  # the exact test: 2 / 2^2
    assert any("identical differences on every seed" in note for note in v.notes)


def test_one_image_either_way_is_no_evidence_until_seven_seeds():
    """The worst case of the resolution floor: every seed's difference is exactly one image, which
    chance makes all the same sign with probability 2 / 2^n."""
    for seeds, outcome in (
        (3, INCONCLUSIVE),
        (4, INCONCLUSIVE),
        (5, INCONCLUSIVE),
        (6, INCONCLUSIVE),
        (7, REPRODUCED),
    ):
        rows = runs([("a", s, 0.0) for s in range(seeds)] + [("b", s, STEP) for s in range(seeds)])
        assert judge(rows, claim(Expectation.worse))[0].outcome == outcome, seeds


def test_errors_stuck_at_zero_on_every_seed():
    zeros = runs([("a", s, 0.0) for s in range(5)] + [("b", s, 0.0) for s in range(5)])
    [worse, within] = judge(zeros, claim(Expectation.worse), claim(Expectation.not_worse, 0.01))
    assert (worse.p, worse.verdict, worse.outcome) == (1.0, SAME, INCONCLUSIVE)
    # Both networks fit the training set on every seed: within a margin of 5 images, shown.
    assert (within.verdict, within.outcome) == (WITHIN, REPRODUCED) and 0 < within.p < 0.001
    # without normality 5 seeds cannot show it: said beside
    assert within.p_exact == pytest.approx(2 / 32)


def test_two_pairs_with_a_spread_get_a_real_interval():
    rows = runs(
        [("a", s, 0.5 + 0.1 * s) for s in range(2)]
        + [("b", s, 0.4 + 0.1 * s + 0.001 * s) for s in range(2)],
        metric="train_loss",
    )
    [v] = judge(rows, claim(Expectation.better, metric=Metric.train_loss))
    # t(0.975, 1) = 12.7
    assert v.difference.n == 2 and 0 < v.p and v.difference.high - v.difference.low > 0.01


def test_a_candidate_that_fails_on_some_seeds_cannot_pass_a_not_worse_claim():
    table = runs(
        [("a", s, 0.10 + 0.01 * s) for s in range(5)]
        + [("b", s, 0.10 + 0.01 * s + 0.001 * (s % 2)) for s in range(5)]
    )
    assert judge(table, claim(Expectation.not_worse, 0.01))[0].outcome == REPRODUCED
    failed = [
        dict(r, not_trained="final training loss 2.4 above chance")
        if r["variant"] == "b" and r["seed"] in (3, 4)
        else r
        for r in table
    ]
    [v] = judge(failed, claim(Expectation.not_worse, 0.01))
    assert v.difference.n == 3 and v.verdict == WITHIN and v.outcome == INCONCLUSIVE
    assert "candidate did not count on seed 3, 4" in v.notes[0]
    # A baseline that fails only makes the candidate look worse: the claim may still stand.
    base_failed = [
        dict(r, status="FAILED") if r["variant"] == "a" and r["seed"] == 4 else r for r in table
    ]
    assert judge(base_failed, claim(Expectation.not_worse, 0.01))[0].outcome == REPRODUCED
    # For a `worse` claim the baseline's failures are the ones that flatter it.
    clear = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)] + [("b", s, 0.3 + 0.012 * s) for s in range(5)]
    )
    assert judge(clear, claim(Expectation.worse))[0].outcome == REPRODUCED
    flattered = [
        dict(r, not_trained="non-finite loss") if r["variant"] == "a" and r["seed"] == 0 else r
        for r in clear
    ]
    assert judge(flattered, claim(Expectation.worse))[0].outcome == INCONCLUSIVE


def test_a_nan_p_value_does_not_poison_the_others():
    clear = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)] + [("b", s, 0.3 + 0.012 * s) for s in range(5)]
    )
    single = runs([("c", 0, 0.2), ("d", 0, 0.4)])  # one pair: no test
    found = judge(
        clear + single,
        claim(Expectation.worse),
        claim(Expectation.worse, baseline="c", candidate="d"),
    )
    assert math.isnan(found[1].p) and found[1].p_holm == 1.0 and found[1].verdict == UNDECIDED
    assert found[0].p_holm == pytest.approx(2 * found[0].p) and found[0].outcome == REPRODUCED


def test_equivalence_is_two_one_sided_tests():
    same = runs(
        [("a", s, 0.2 + 0.01 * s) for s in range(6)]
        + [("b", s, 0.2 + 0.01 * s + 0.001 * (-1) ** s) for s in range(6)]
    )
    [v] = judge(same, claim(Expectation.same, 0.01))
    assert (v.verdict, v.outcome) == (WITHIN, REPRODUCED)
    apart = runs(
        [("a", s, 0.2 + 0.01 * s) for s in range(6)]
        + [("b", s, 0.25 + 0.01 * s + 0.001 * (-1) ** s) for s in range(6)]
    )
    assert judge(apart, claim(Expectation.same, 0.01))[0].verdict == BEYOND


def test_labels_say_what_was_shown():
    clear = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)] + [("b", s, 0.3 + 0.012 * s) for s in range(5)]
    )
    assert (
        judge(clear, claim(None))[0].verdict == WORSE
        and judge(clear, claim(None, baseline="b", candidate="a"))[0].verdict == BETTER
    )
    noisy = runs(
        [("a", 0, 0.1), ("a", 1, 0.3), ("a", 2, 0.2), ("b", 0, 0.2), ("b", 1, 0.2), ("b", 2, 0.25)]
    )
    assert judge(noisy, claim(None))[0].verdict == SAME


def test_a_budget_belongs_to_a_claim_not_to_the_experiment():
    clear = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)]
        + [("b", s, 0.3 + 0.012 * s) for s in range(5)],
        steps=40,
    )
    # A comparison without a claim is judged on what it measured, whatever min_steps says.
    [measured, claimed, own_budget] = judge(
        clear,
        claim(None),
        claim(Expectation.worse),
        claim(Expectation.worse, min_steps=10),
        min_steps=12000,
    )
    assert measured.verdict == WORSE and measured.outcome is None
    assert claimed.verdict == UNDECIDED and own_budget.outcome == REPRODUCED


def test_the_report_names_the_exact_tests_limit_wins_and_planning():
    rows = runs(
        [("a", s, 0.1 + 0.01 * s) for s in range(5)]
        + [("b", s, 0.3 + 0.012 * s) for s in range(5)]
        + [("c", s, 0.1 + 0.02 * (s % 2)) for s in range(5)]
    )
    cfg = AblationConfig(
        pairs=[claim(Expectation.worse), claim(Expectation.worse, baseline="a", candidate="c")]
    )
    text = ablation_markdown(rows, cfg, "val_accuracy", "max")
    assert "the exact test's smallest p is 0.0625: it cannot reach 0.05" in text
    assert "| 0 of 5 |" in text  # the candidate won on no seed of the first comparison
    assert (
        "Undecided comparisons, planned from their measured spread" in text
        and "for 80% power" in text
    )


def test_intervals_of_rates_stay_in_zero_to_one():
    from lab.tasks.report.pool import mean_interval

    mean, _, low, high = mean_interval([0.5149 + 0.3, 0.95, 1.0], (0.0, 1.0))
    assert 0.0 <= low <= mean <= high == 1.0
    assert mean_interval([0.1, 0.9])[2] < 0  # unbounded by default: a loss may take any value
    wide = runs([("a", 0, 0.0), ("a", 1, 0.0), ("b", 0, 0.0), ("b", 1, 0.95)])
    [v] = judge(wide, claim(Expectation.worse))
    assert -1.0 <= v.difference.low and v.difference.high <= 1.0


def test_runs_still_improving_are_flagged_unless_they_reached_zero():
    rows = runs(
        [("a", s, 0.0) for s in range(3)] + [("b", s, 0.3 + 0.01 * s) for s in range(3)],
        improving=0.05,
    )
    [v] = judge(rows, claim(Expectation.worse))
    assert "still improving: budget may decide this comparison" in v.notes
    done = [
        dict(r, improving=0.0) if r["variant"] == "b" else r for r in rows
    ]  # a at 0: nothing left to fall
    assert (
        "still improving: budget may decide this comparison"
        not in judge(done, claim(Expectation.worse))[0].notes
    )
