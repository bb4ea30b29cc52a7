"""Learning-rate schedules at the steps where their shape is known by hand."""

import keras
import pytest

from lab.training.schedules import WarmupDecay

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)


def lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_constant():
    s = WarmupDecay(0.1, "constant", total_steps=100)
    assert [lr(s, t) for t in (0, 50, 99)] == pytest.approx([0.1, 0.1, 0.1])


def test_step_multiplies_by_gamma_at_each_milestone():
    s = WarmupDecay(0.1, "step", total_steps=100, milestones=[0.5, 0.75], gamma=0.1)
    assert [lr(s, t) for t in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )


def test_cosine_with_linear_warmup():
    s = WarmupDecay(0.2, "cosine", total_steps=110, warmup_steps=10)
    assert lr(s, 0) == pytest.approx(0.02)  # (0 + 1) / 10 of the peak
    assert lr(s, 9) == pytest.approx(0.2)
    assert lr(s, 10) == pytest.approx(0.2)
    assert lr(s, 60) == pytest.approx(0.1)  # halfway through the decay: cos = 0
    assert lr(s, 110) == pytest.approx(0.0, abs=1e-9)


def test_one_cycle_rises_from_a_25th_then_falls_linearly_to_zero():
    s = WarmupDecay(0.4, "one_cycle", total_steps=100)  # 30% rising by default
    assert s.warmup_steps == 30
    assert lr(s, 0) == pytest.approx(0.4 * (1 / 25 + (24 / 25) / 30))
    assert lr(s, 29) == pytest.approx(0.4)
    assert lr(s, 65) == pytest.approx(0.2)
    assert lr(s, 100) == pytest.approx(0.0, abs=1e-9)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="kind='linear'"):
        WarmupDecay(0.1, "linear", total_steps=10)
