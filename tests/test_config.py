"""Configs are structured: typos, wrong types and out-of-range values fail before any work."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from lab.config import PROJECT_ROOT, RunConfig, compose, run_config
from lab.errors import ConfigValueError
from lab.models.resnet import ResNetSpec


def test_default_config_composes_to_typed_records():
    cfg = run_config()
    assert isinstance(cfg, RunConfig)
    assert isinstance(cfg.model, ResNetSpec)
    assert (cfg.model.name, cfg.data.name, cfg.tracking.uri) == (
        "resnet20",
        "fashion_mnist",
        "sqlite:///mlflow.db",
    )
    assert [s.width for s in cfg.model.stages] == [16, 32, 64]


def test_overrides_reach_nested_stage_records():
    cfg = run_config(["model.stages.0.width=24", "train.precision=mixed_bfloat16"])
    assert cfg.model.stages[0].width == 24
    assert cfg.train.precision.value == "mixed_bfloat16"


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.epoch=3", "train.epoch"),
        ("model.stages.0.widht=3", "model.stages[0].widht"),
        ("data.limt=10", "data.limt"),
    ],
)
def test_misspelt_key_fails_naming_it(override, key):
    with pytest.raises(ConfigCompositionException) as error:
        compose([override])
    assert isinstance(error.value.__cause__, (ConfigKeyError, ConfigAttributeError))
    assert f"full_key: {key}" in str(error.value.__cause__)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.epochs=three", "train.epochs"),
        ("model.block=basik", "model.block"),
        ("train.optimizer=adam", "train.optimizer"),
        ("model.stages.1.width=wide", "model.stages[1].width"),
    ],
)
def test_wrong_type_fails_naming_the_key(override, key):
    with pytest.raises(ConfigCompositionException) as error:
        compose([override])
    assert isinstance(error.value.__cause__, ValidationError)
    assert f"full_key: {key}" in str(error.value.__cause__)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.epochs=-1", "train.epochs"),
        ("data.val_fraction=1.5", "data.val_fraction"),
        ("model.stages.0.blocks=0", "stages.blocks"),
        ("model.kernel_size=4", "model.kernel_size"),
    ],
)
def test_out_of_range_value_fails_naming_the_key(override, key):
    with pytest.raises(ConfigValueError) as error:
        run_config([override])
    assert key in str(error.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("+train.epoch=3", "train.epoch"),
        ("+model.stages.0.widht=3", "model.stages[0].widht"),
        ("+search.space.0.steps=3", "search.space[0].steps"),
        ("+search.distributed.hosts=2", "search.distributed.hosts"),
    ],
)
def test_appended_unknown_key_fails_naming_it(override, key):
    """Hydra's `+key=value` bypasses the closed records; the typed conversion catches it."""
    with pytest.raises(ConfigValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        run_config([override])


def test_run_py_rejects_a_typo_before_loading_anything(tmp_path):
    """Exit status non-zero, the full key named, and no MLflow store created."""
    result = subprocess.run(
        [sys.executable, "run.py", "train.epoch=3", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "train.epoch" in result.stderr
    assert not (tmp_path / "m.db").exists()


def test_run_py_reports_a_range_error_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "run.py", "train.epochs=-2", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: train.epochs must be > 0. Received: train.epochs=-2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.db").exists()


def test_every_experiment_composes():
    from lab.config import PROJECT_ROOT as root

    names = sorted(p.stem for p in (root / "experiments").glob("*.yaml"))
    assert names, "experiments/ is empty"
    for name in names:
        cfg = run_config([f"experiment={name}"])
        assert cfg.train.epochs > 0
