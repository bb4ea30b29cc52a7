"""lab.stats against the maintained libraries it stands beside (scipy, statsmodels) and against
simulation: the sign-flip test, the test-set variance, seed planning and Holm."""

import math

import numpy as np
import pytest
from scipy import stats

from lab.stats.holm import holm
from lab.stats.paired import exact_beyond, p_beyond, sign_flip_p, summarise
from lab.stats.seeds import look_levels, seeds_needed
from lab.stats.testset import decode_correct, difference_variance, encode_correct, error_se


@pytest.mark.parametrize(
    "values", [[0.1, 0.2, 0.3], [0.02, -0.01, 0.03, 0.05, 0.0], [1.0, -2.0, 0.5, 0.25, -0.1, 3.0]]
)
@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_sign_flip_p_is_scipys_exact_permutation_test(values, alternative):
    expected = stats.permutation_test(
        (np.array(values),),
        np.mean,
        permutation_type="samples",
        alternative=alternative,
        n_resamples=np.inf,
    ).pvalue
    assert sign_flip_p(values, alternative) == pytest.approx(expected)


def test_summarise_matches_scipys_paired_t_and_floors_a_spread_below_the_resolution():
    diffs = [0.012, 0.018, 0.004, 0.022, 0.009]
    s, t = summarise(diffs), stats.ttest_1samp(diffs, 0.0)
    interval = t.confidence_interval(0.95)
    assert (s.low, s.high, s.p) == (
        pytest.approx(interval.low),
        pytest.approx(interval.high),
        pytest.approx(t.pvalue),
    )
    assert s.effect == pytest.approx(np.mean(diffs) / np.std(diffs, ddof=1)) and (
        s.above,
        s.below,
        s.ties,
    ) == (5, 0, 0)
    flat = summarise([0.002] * 5, resolution=1 / 500)
    assert flat.floored and flat.sd == 0 and flat.se == pytest.approx((1 / 500) / math.sqrt(5))
    assert flat.p_exact == pytest.approx(2 / 32) and flat.p_exact_min == pytest.approx(2 / 32)
    assert math.isnan(summarise([0.1, 0.1]).p)  # no spread, no resolution: nothing to test


def test_one_sided_p_values_against_a_bound():
    s = summarise([0.001, 0.003, 0.002, 0.004, 0.0])
    expected = stats.ttest_1samp(
        [d - 0.01 for d in [0.001, 0.003, 0.002, 0.004, 0.0]], 0.0, alternative="less"
    ).pvalue
    assert p_beyond(s, 0.01, "below") == pytest.approx(expected)
    assert p_beyond(s, 0.01, "above") == pytest.approx(1 - expected)
    # every difference below the bound
    assert exact_beyond(s, 0.01, "below") == pytest.approx(1 / 32)


def test_holm_ignores_nan_and_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, 0.04, 0.03, 0.005]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    assert holm([0.01, math.nan, 0.02]) == pytest.approx([0.03, 1.0, 0.04])


def test_correct_flags_round_trip_compactly():
    flags = np.random.default_rng(0).random(1000) < 0.8
    record = encode_correct(flags)
    assert len(record["bits"]) <= 4 * math.ceil(125 / 3) and (decode_correct(record) == flags).all()


def test_the_test_set_variance_matches_a_two_level_bootstrap():
    """Two networks, 5 seeds each, on the same 1,000 images: the analytic test-set variance of the
    mean difference is what resampling the images (seeds held) gives."""
    rng = np.random.default_rng(1)
    hardness = rng.random(1000)  # some images are hard for both networks: the runs are correlated
    base = [rng.random(1000) > 0.9 * hardness for _ in range(5)]
    cand = [rng.random(1000) > 0.9 * hardness - 0.05 for _ in range(5)]
    analytic = difference_variance(base, cand)
    wrong = (~np.stack(cand)).astype(float) - (~np.stack(base)).astype(float)
    boot = [wrong[:, rng.integers(0, 1000, 1000)].mean() for _ in range(4000)]
    assert analytic == pytest.approx(np.var(boot), rel=0.1)
    assert error_se(0.25, 1000) == pytest.approx(math.sqrt(0.25 * 0.75 / 1000))


def test_seed_planning_matches_statsmodels_power():
    from statsmodels.stats.power import TTestPower

    n = seeds_needed(0.02, 0.02, comparisons=4)
    power = TTestPower().power
    assert (
        power(effect_size=1.0, nobs=n, alpha=0.05 / 4)
        >= 0.8
        > power(effect_size=1.0, nobs=n - 1, alpha=0.05 / 4)
    )
    assert seeds_needed(0.0, 0.01) is None and seeds_needed(0.5, 0.0) == 2
    assert (
        sum(look_levels([3, 5, 8])) == pytest.approx(0.05) and len(look_levels([2, 4, 6, 8])) == 4
    )
