"""Ablations: statistics by hand, quick settings, and the main job's quick mode for real."""

import math
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from conftest import needs_fashion_mnist
from lab.config import AblationConfig, PROJECT_ROOT, compose, to_run_config
from lab.search.ablation import paired_difference, value_stats
from lab.tasks import with_quick_settings


def rows(table):
    return [{"status": "COMPLETED", "variant": v, "seed": s, "best_objective": o} for v, s, o in table]


TABLE = rows([("a", 0, 0.50), ("a", 1, 0.60), ("a", 2, 0.70),
              ("b", 0, 0.60), ("b", 1, 0.80), ("b", 2, 1.00)])


def test_mean_and_sample_std_per_value():
    stats = {s.value: s for s in value_stats(TABLE, "variant")}
    assert (stats["a"].n, stats["a"].mean, stats["a"].std) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert stats["b"].std == pytest.approx(0.2)


def test_paired_difference_with_a_t_interval():
    # Differences by seed: 0.1, 0.2, 0.3 -> mean 0.2, sd 0.1; t(0.975, 2) = 4.3027.
    d = paired_difference(TABLE, AblationConfig(pairs=[["a", "b"]]), "a", "b")
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (d.n, d.mean) == (3, pytest.approx(0.2))
    assert (d.low, d.high) == (pytest.approx(0.2 - half, abs=1e-5), pytest.approx(0.2 + half, abs=1e-5))


def test_failed_cells_and_unpaired_seeds_are_left_out():
    table = TABLE + [{"status": "FAILED", "variant": "b", "seed": 3, "best_objective": ""}]
    table += rows([("a", 4, 0.9)])  # no partner for seed 4
    d = paired_difference(table, AblationConfig(), "a", "b")
    assert d.n == 3 and d.mean == pytest.approx(0.2)
    single = paired_difference(rows([("a", 0, 0.5), ("b", 0, 0.7)]), AblationConfig(), "a", "b")
    assert single.n == 1 and single.mean == pytest.approx(0.2) and math.isnan(single.low)


def test_quick_mode_applies_the_experiments_quick_settings():
    cfg = with_quick_settings(compose(["experiment=plain_vs_residual", "quick=true"]))
    run_cfg = to_run_config(cfg)
    assert (run_cfg.data.limit, run_cfg.train.epochs, run_cfg.search.name) == (3000, 2, "plain_vs_residual_quick")
    assert run_cfg.search.space[1].values == [0, 1]
    full = to_run_config(with_quick_settings(compose(["experiment=plain_vs_residual"])))
    assert (full.data.limit, full.train.epochs, full.search.space[1].values) == (None, 30, [0, 1, 2])


@needs_fashion_mnist
def test_plain_vs_residual_quick_mode_runs_end_to_end(tmp_path):
    """The main job's configuration, for real, on Fashion-MNIST (a few minutes on 2 cores)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, "run.py", "experiment=plain_vs_residual", "quick=true",
                             f"tracking.uri={uri}", f"search.directory={tmp_path}/tuner", "train.verbose=0"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Paired differences" in result.stdout and "| plain56 | resnet56 | 2 |" in result.stdout
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("plain_vs_residual").experiment_id])
    children = [r for r in runs if r.data.tags.get("lab.role") == "trial"]
    [parent] = [r for r in runs if r.data.tags.get("lab.role") == "parent"]
    assert len(children) == 8 and {c.info.status for c in children} == {"FINISHED"}
    cells = sorted((c.data.params["model.name"], c.data.params["seed"]) for c in children)
    assert cells == sorted((v, s) for v in ("plain20", "plain56", "resnet20", "resnet56") for s in ("0", "1"))
    summary = open(client.download_artifacts(parent.info.run_id, "summary.md")).read()
    assert "(quick mode)" in summary and "| resnet20 | 2 |" in summary
