"""Shared fixtures. Tests never download: real data come from Debian's dataset-fashion-mnist."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def share_cores_between_workers() -> None:
    """Under pytest-xdist each worker (and every process a test starts, which inherits this)
    gives TensorFlow its share of the cores (at least one thread), not all of them: workers on two
    cores each running two-thread kernels thrash (the suite ran about 8% faster with one thread
    each, measured on 2 cores with two workers). TensorFlow reads these at start-up."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", share)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", share)


share_cores_between_workers()

import gc  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from lab.config import PROJECT_ROOT, register_configs  # noqa: E402
from lab.data.sources import DEBIAN_FASHION_MNIST, idx_files  # noqa: E402
from lab.tracking.server import local_server  # noqa: E402

register_configs()

FASHION_MNIST_PRESENT = idx_files(DEBIAN_FASHION_MNIST) is not None
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_PRESENT,
    reason=f"real Fashion-MNIST absent from {DEBIAN_FASHION_MNIST}: apt-get install dataset-fashion-mnist",
)

# Small, fast training settings. On TensorFlow, no XLA compile (30-40 s per model on 2 CPU cores);
# on JAX, jit (un-jitted JAX runs op by op: 3 epochs of ResNet-20 on the synthetic set took
# 39 s without, 15 s with, measured here).
JIT = "true" if keras.backend.backend() == "jax" else "false"
# No model logged: the tests of kept models (test_models_kept.py) log theirs; elsewhere it is time.
FAST_TRAIN = [
    f"train.jit_compile={JIT}",
    "train.verbose=0",
    "train.batch_size=32",
    "train.checkpoint=none",
]
# ResNet-8 (one basic block per stage): the ResNet code paths, a third of ResNet-20's layers to
# build, trace and compile, for tests about the lab around a network rather than the network.
TINY_RESNET = [
    "model=resnet20",
    "model.stages.0.blocks=1",
    "model.stages.1.blocks=1",
    "model.stages.2.blocks=1",
]
# A sweep space over TINY_RESNET's connectivity and learning rate, for sweeps whose tests are about
# the sweep rather than its axes: the default space's `blocks_per_stage` (1-3) would train
# ResNet-8 to ResNet-20 whatever TINY_RESNET says.
TINY_SPACE = (
    "search.space=[{name: connectivity, path: model.connectivity, kind: choice, values: [plain, residual]},"
    " {name: lr, path: train.lr, kind: float, min: 0.01, max: 0.3, log: true}]"
)


@pytest.fixture(autouse=True)
def seeded_float32():
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.backend.clear_session()  # its full collection walks only what is not frozen
    freeze_survivors()


FULL_COLLECTION_EVERY = 25  # tests
TEARDOWNS = itertools.count(1)  # this process's, for FULL_COLLECTION_EVERY


def freeze_survivors() -> None:
    """What a test left alive (modules imported on first use, such as matplotlib or statsmodels,
    module- and session-scoped fixtures, caches) is frozen in turn (see `pytest_collection_finish`):
    without it every later test's collection walked it again, and teardowns grew from nothing to
    0.2-0.9 s a test over a worker's run. Every FULL_COLLECTION_EVERY tests one collection walks
    everything, frozen objects included, so what was frozen and has since died is freed."""
    if next(TEARDOWNS) % FULL_COLLECTION_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An SQLite store as MLflow creates it, before any run: creating one (its tables and their
    migrations) takes 2-4 s on 2 cores, copying it a few milliseconds."""
    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking(tmp_path: Path, empty_store: Path):
    """Overrides that send MLflow runs to a fresh SQLite store (a copy of `empty_store`); `.uri`
    is that store."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
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
    from lab.tracking.postgres import installed_bin_dir, local_postgres

    if installed_bin_dir() is None:
        require_or_skip(
            "LAB_REQUIRE_POSTGRES", "PostgreSQL is not installed (apt-get install postgresql)"
        )
    with local_postgres() as uri:
        yield uri


@pytest.fixture(scope="session")
def mlflow_server_on_postgres(postgres_uri, tmp_path_factory) -> Server:
    """A real `mlflow server` over that PostgreSQL database (MLflow's multi-writer backend), with
    two server processes (several writers at once; MLflow's default of four would start two more
    processes importing MLflow's server on two cores)."""
    root = tmp_path_factory.mktemp("mlflow-postgres")
    log = root / "mlflow-server.log"
    with local_server(postgres_uri, log, artifacts=root / "artifacts", workers=2) as uri:
        yield Server(uri, log)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Server:
    """One real `mlflow server` over a SQLite store for the whole test run (each test that logs
    to it uses its own MLflow experiment)."""
    store = tmp_path_factory.mktemp("mlflow-server")
    log = store / "mlflow-server.log"
    with local_server(f"sqlite:///{store / 'mlflow.db'}", log) as uri:
        yield Server(uri, log)


# A finished two-trial sweep, `kept`, that the bad-input and integrity tests run commands against:
# each asserts that its refusal leaves these records exactly as they were. Trained once per test
# process; the modules that use it share one xdist group, so one process trains it.
KEPT_SWEEP = [
    "task=search",
    "data=synthetic",
    "data.train_size=64",
    "data.test_size=16",
    "model=resnet20",
    "train.epochs=1",
    *FAST_TRAIN,
    "search.max_trials=2",
    "search.name=kept",
    "tracking.experiment=kept",
]
USES_KEPT_SWEEP = pytest.mark.xdist_group("kept-sweep")


def kept_at(root: Path, tuner: str = "tuner", store: str = "mlflow.db") -> list:
    """Where a sweep under `root` records: its SQLite store and its tuner folder."""
    return [f"tracking.uri=sqlite:///{root}/{store}", f"search.directory={root}/{tuner}"]


@pytest.fixture(scope="session")
def kept_sweep(tmp_path_factory) -> Path:
    """The folder of the finished sweep `kept`: `mlflow.db`, `mlruns/` and `tuner/`."""
    from lab.config import run_config
    from lab.tasks.search.orchestration import search

    root = tmp_path_factory.mktemp("kept")
    search(run_config([*KEPT_SWEEP, *kept_at(root)]))
    return root


def recorded_runs(
    root: Path, store: str = "mlflow.db", ended_only: bool = False, histories: bool = True
) -> dict:
    """Every run of the store under `root` as MLflow returns it: status, end time, params, tags and
    metric histories (only the ended ones with `ended_only`; the latest values without `histories`,
    one query in all instead of one per metric)."""
    client = MlflowClient(f"sqlite:///{root}/{store}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {
        run.info.run_id: (
            run.info.status,
            run.info.end_time,
            run.data.params,
            run.data.tags,
            {
                key: sorted(
                    (m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)
                )
                for key in run.data.metrics
            }
            if histories
            else run.data.metrics,
        )
        for run in runs
        if not (ended_only and run.info.status == "RUNNING")
    }


# who last took the sweep or created the store: not its state
NOT_STATE = ("owner.lock", "mlflow.db.lock")


def file_hashes(folder: Path, skip: tuple = ()) -> dict:
    """A hash of every file under `folder` (but locks and the top-level folders in `skip`)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name not in NOT_STATE
        and path.relative_to(folder).parts[0] not in skip
    }


def write_keras_applications_h5(model: keras.Model, path: Path) -> None:
    """The HDF5 layout keras.applications publishes its weights in (Keras 2's `save_weights`): the
    root lists `layer_names`; each layer's group lists its `weight_names` and holds them."""
    import h5py

    layers = [layer for layer in model.layers if layer.weights]
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            group = file.create_group(layer.name)
            names = [f"{layer.name}/{variable.name}:0" for variable in layer.weights]
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, variable in zip(names, layer.weights):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))


def pytest_collection_finish(session):
    """Every module the tests import is loaded by now (TensorFlow, JAX, MLflow, keras-tuner: about
    half a million objects): move them out of the garbage collector's sight (`gc.freeze`), so the
    full collection `keras.backend.clear_session()` runs after every test, and Python's own, walk
    only what the tests made (half a second per test on 2 cores before, measured here)."""
    gc.collect()
    gc.freeze()


SUITE_CLOCK = {}  # the controlling process's start and the day's speed


def controls_the_session(config) -> bool:
    """The process that runs the session (not one of pytest-xdist's workers)."""
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session):
    """The day's speed, before the tests load the machine (issue 33: every wall time beside it)."""
    if controls_the_session(session.config):
        from lab.runtime import reference_loop_seconds

        SUITE_CLOCK.update(
            start=time.perf_counter(), reference_loop_seconds=reference_loop_seconds(5_000_000)
        )


def pytest_sessionfinish(session, exitstatus):
    """A suite-time record: test-artifacts/suite_time/<time>.json (or under $LAB_TEST_ARTIFACTS),
    with the wall time, the tests run, the backend, the marker expression, the workers and the
    reference loop, so that suite times from different days and machines compare."""
    if not controls_the_session(session.config) or "start" not in SUITE_CLOCK:
        return
    import json

    from lab.runtime import git_commit

    folder = (
        Path(os.environ.get("LAB_TEST_ARTIFACTS", PROJECT_ROOT / "test-artifacts")) / "suite_time"
    )
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "wall_seconds": round(time.perf_counter() - SUITE_CLOCK["start"], 1),
        "reference_loop_seconds": SUITE_CLOCK["reference_loop_seconds"],
        "tests": session.testscollected,
        "failed": session.testsfailed,
        "exit_status": int(exitstatus),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "markers": session.config.option.markexpr,
        "workers": getattr(session.config.option, "numprocesses", None),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{record['time'].replace(':', '-')}_{record['backend']}.json").write_text(
            json.dumps(record, indent=1)
        )
    except OSError:
        pass  # a read-only checkout: the record is a convenience, not a result
