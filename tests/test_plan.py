"""Say what will run (issue 29): `task=plan` shows the settings after quick mode, the trials a
sweep plans and an estimate of its wall time from recorded runs; a sweep says "trial k of N"."""

import subprocess
import sys

import pytest
from conftest import KEPT_SWEEP, USES_KEPT_SWEEP, kept_at

from lab.config import PROJECT_ROOT, AxisKind, AxisSpec, TunerName, run_config
from lab.tasks.search.plan import (
    axis_values,
    finished_training_runs,
    grid_cells,
    plan_lines,
    planned_trials,
)
from lab.tasks.search.sweep import progress_line
from run import MAIN_JOB

EXPERIMENTS = sorted((PROJECT_ROOT / "experiments").glob("*.yaml"))


def test_a_grid_plans_its_cells_a_conditional_axis_only_where_it_applies():
    depth = AxisSpec(name="depth", path="model.depth", kind=AxisKind.int, min=2, max=6, step=2)
    block = AxisSpec(name="block", path="model.block", values=["basic", "bottleneck"])
    width = AxisSpec(
        name="width", path="model.width", values=[1, 2, 4], when={"block": ["bottleneck"]}
    )
    assert axis_values(depth) == [2, 4, 6]
    assert (
        axis_values(AxisSpec(name="lr", path="train.lr", kind=AxisKind.float, min=0.1, max=0.3))
        is None
    )
    cells = grid_cells([depth, block, width])
    assert len(cells) == 3 * (1 + 3)
    assert {"depth": 2, "block": "basic"} in cells and {
        "depth": 6,
        "block": "bottleneck",
        "width": 4,
    } in cells


def test_the_main_job_plans_twenty_trials_and_shows_what_quick_mode_changed():
    cfg = run_config([*MAIN_JOB, "task=plan"])
    assert planned_trials(cfg.search) == 20
    lines = plan_lines(cfg, dict(cfg.quick_settings), runs=[])
    text = "\n".join(lines)
    assert "quick mode sets: " in text and "data.downsample=2" in text and "train.epochs=10" in text
    assert "trials: 20 (grid, 20 grid cells)" in text
    assert "trial 20: variant=resnet56, seed=4" in text
    assert "no recorded run" in lines[-1]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_shipped_grid_ends_by_its_cells_so_a_rerun_is_reported_from_its_records(path):
    """A grid with more cells than `search.max_trials` would stop short and a second run would
    ask for the rest; each shipped experiment's grid (quick and full) fits its trial budget."""
    for quick in ("quick=false", "quick=true"):
        cfg = run_config([f"experiment={path.stem}", quick, "task=search"])
        if cfg.search.tuner is not TunerName.grid:
            continue
        cells = grid_cells(cfg.search.space)
        assert cells is not None and 0 < len(cells) <= cfg.search.max_trials, (
            quick,
            len(cells or []),
        )
        assert planned_trials(cfg.search) == len(cells)


def test_hyperband_and_samplers_plan_what_they_can_know():
    assert (
        planned_trials(
            run_config(["task=search", "search.tuner=random", "search.max_trials=7"]).search
        )
        == 7
    )
    assert planned_trials(run_config(["task=search", "search.tuner=hyperband"]).search) is None


def test_progress_says_trial_k_of_n_and_an_eta_from_the_trials_so_far():
    assert (
        progress_line(1, 20, [], {"variant": "plain20", "seed": 0})
        == "trial 1 of 20 (variant=plain20, seed=0)"
    )
    line = progress_line(3, 20, [30.0, 40.0], {"seed": 2})
    # 18 left x 35 s
    assert line == "trial 3 of 20 (seed=2); 2 took 1 min 10 s here, about 10 min 30 s left"
    assert progress_line(4, None, [10.0], {}) == "trial 4 (); 1 took 10 s here"


@USES_KEPT_SWEEP
def test_a_plan_estimates_from_the_recorded_runs_of_the_same_work(kept_sweep):
    """The kept sweep trained ResNet-20 twice on this data: a plan of the same sweep under a new
    name estimates each of its trials from those two runs, and says so."""
    cfg = run_config([*KEPT_SWEEP, *kept_at(kept_sweep), "search.name=again", "task=plan"])
    runs = finished_training_runs(cfg.tracking.uri)
    assert len(runs) == 2
    lines = plan_lines(cfg, {}, runs)
    assert (
        lines[-1].startswith("estimated wall time: ")
        and "recorded runs of 2 of the 2 trials' networks" in lines[-1]
    )


def test_task_plan_runs_in_seconds_without_a_framework(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "run.py"),
            *MAIN_JOB,
            "task=plan",
            f"tracking.uri=sqlite:///{tmp_path}/none.db",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trials: 20 (grid, 20 grid cells)" in done.stdout
    # nothing written
    assert "tensorflow" not in done.stderr.lower() and not (tmp_path / "none.db").exists()


def test_float_axes_count_as_keras_tuner_counts_them():
    """Floor division from min by step, and a step that multiplies on a log scale (keras-tuner's Float)."""

    def values(**axis):
        return axis_values(AxisSpec(name="x", path="train.lr", kind=AxisKind.float, **axis))

    # (0.3 - 0) // 0.1 == 2
    assert values(min=0.0, max=0.3, step=0.1) == pytest.approx([0.0, 0.1, 0.2])
    assert values(min=0.1, max=0.7, step=0.2) == pytest.approx([0.1, 0.3, 0.5])
    assert values(min=0.001, max=0.1, step=10, log=True) == pytest.approx([0.001, 0.01, 0.1])
    assert axis_values(AxisSpec(name="b", path="model.x", kind=AxisKind.boolean)) == [False, True]
