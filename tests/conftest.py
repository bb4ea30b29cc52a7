"""Shared fixtures. Tests never download: real data come from Debian's dataset-fashion-mnist."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

from lab.config import register_configs  # noqa: E402
from lab.data.sources import DEBIAN_FASHION_MNIST, idx_files  # noqa: E402

register_configs()

FASHION_MNIST_PRESENT = idx_files(DEBIAN_FASHION_MNIST) is not None
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_PRESENT,
    reason=f"real Fashion-MNIST absent from {DEBIAN_FASHION_MNIST}: apt-get install dataset-fashion-mnist")

# Small, fast training settings: no XLA compile (30-40 s per model on 2 CPU cores).
FAST_TRAIN = ["train.jit_compile=false", "train.verbose=0", "train.batch_size=32"]


@pytest.fixture(autouse=True)
def seeded_float32():
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.backend.clear_session()


@pytest.fixture
def tracking(tmp_path: Path):
    """Overrides that send MLflow runs to a fresh SQLite store; `.uri` is that store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    class Tracking(list):
        pass

    overrides = Tracking([f"tracking.uri={uri}", "tracking.experiment=test"])
    overrides.uri = uri
    return overrides
