"""bench/verdict_calibration.py at a small size: the lab's own verdict code on simulated ablations
with known truth keeps its false-verdict rates within 5% (plus three standard errors of the
simulation), and still finds a large effect."""

import importlib.util
import math
import sys

import pytest

from lab.config import PROJECT_ROOT

# The tests share one simulation (`measured`, 15-17 s): on one xdist worker it runs once.
pytestmark = pytest.mark.xdist_group("verdict-calibration")

SIMS = 1500
SLACK = 3 * math.sqrt(0.05 * 0.95 / SIMS)  # three binomial standard errors at 5%


def calibration_module():
    spec = importlib.util.spec_from_file_location(
        "verdict_calibration", PROJECT_ROOT / "bench" / "verdict_calibration.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured():
    vc = calibration_module()
    chosen = [
        vc.Scenario("worse, no effect, normal", "worse", 0.0, 5),
        vc.Scenario("worse, no effect, heavy", "worse", 0.0, 3, "heavy"),
        vc.Scenario(
            "worse, no effect, errors at 0", "worse", 0.0, 8, "quantised", level=0.001, spread=0.002
        ),
        vc.Scenario("not_worse, at the margin", "not_worse", vc.MARGIN, 5, margin=vc.MARGIN),
        vc.Scenario(
            "not_worse, fails on one seed", "not_worse", 0.0, 5, failures=1, margin=vc.MARGIN
        ),
        vc.Scenario("worse, large effect", "worse", 3 * vc.SPREAD, 8),
    ]
    return {r.scenario["name"]: r for r in (vc.run_fixed(s, SIMS, i) for i, s in enumerate(chosen))}


def test_false_verdicts_stay_within_five_percent(measured):
    for name, rates in measured.items():
        assert rates.false_reproduced <= 0.05 + SLACK, name
        assert rates.false_contradicted <= 0.05 + SLACK, name


def test_a_margin_claim_at_its_margin_is_reproduced_at_most_half_the_level(measured):
    assert measured["not_worse, at the margin"].false_reproduced <= 0.025 + SLACK
    # a failure it saw never passes
    assert measured["not_worse, fails on one seed"].reproduced == 0.0


def test_the_verdicts_still_find_a_large_effect(measured):
    assert measured["worse, large effect"].power > 0.9


def test_the_sequential_plan_saves_seeds_on_a_clear_effect():
    vc = calibration_module()
    rates = vc.run_sequential(
        vc.Scenario("worse, large effect", "worse", 3 * vc.SPREAD, 8), 300, 7, (3, 5, 8)
    )
    assert rates.power > 0.9 and rates.mean_seeds < 6
