"""Shared fixtures. Tests never download: real data come from Debian's dataset-fashion-mnist."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

from lab.config import register_configs  # noqa: E402
from lab.data.sources import DEBIAN_FASHION_MNIST, idx_files  # noqa: E402
from lab.tracking.server import local_server  # noqa: E402

register_configs()

FASHION_MNIST_PRESENT = idx_files(DEBIAN_FASHION_MNIST) is not None
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_PRESENT,
    reason=f"real Fashion-MNIST absent from {DEBIAN_FASHION_MNIST}: apt-get install dataset-fashion-mnist")

# Small, fast training settings. On TensorFlow, no XLA compile (30-40 s per model on 2 CPU cores);
# on JAX, jit (un-jitted JAX runs op by op: 3 epochs of ResNet-20 on the synthetic set took
# 39 s without, 15 s with, measured here).
JIT = "true" if keras.backend.backend() == "jax" else "false"
FAST_TRAIN = [f"train.jit_compile={JIT}", "train.verbose=0", "train.batch_size=32"]


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


@dataclass
class Server:
    uri: str  # http://127.0.0.1:PORT
    log: Path  # the server's own log


def require_or_skip(variable: str, reason: str):
    """Fails where `variable=1` says the thing must be here (CI), else skips."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """A PostgreSQL cluster of its own (`lab.tracking.postgres`) for the whole test run: the URI of
    its empty `mlflow` database. `LAB_REQUIRE_POSTGRES=1` (CI) fails instead of skipping."""
    from lab.tracking.postgres import installed_bin_dir, local_postgres  # noqa: PLC0415

    if installed_bin_dir() is None:
        require_or_skip("LAB_REQUIRE_POSTGRES", "PostgreSQL is not installed (apt-get install postgresql)")
    with local_postgres() as uri:
        yield uri


@pytest.fixture(scope="session")
def mlflow_server_on_postgres(postgres_uri, tmp_path_factory) -> Server:
    """A real `mlflow server` over that PostgreSQL database (MLflow's multi-writer backend)."""
    root = tmp_path_factory.mktemp("mlflow-postgres")
    log = root / "mlflow-server.log"
    with local_server(postgres_uri, log, artifacts=root / "artifacts") as uri:
        yield Server(uri, log)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Server:
    """One real `mlflow server` over a SQLite store for the whole test run (each test that logs
    to it uses its own MLflow experiment)."""
    store = tmp_path_factory.mktemp("mlflow-server")
    log = store / "mlflow-server.log"
    with local_server(f"sqlite:///{store / 'mlflow.db'}", log) as uri:
        yield Server(uri, log)
