"""Bad input at every entry point (train, search, a distributed worker, the launcher): a clear
error naming the value, a non-zero exit, and the earlier results left exactly as they were."""

import hashlib
import socket
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from conftest import FAST_TRAIN
from lab.config import PROJECT_ROOT, run_config
from lab.search.run import search
from test_data import write_idx_set

ENTRIES = {"train": ["task=train"], "search": ["task=search"],
           "worker": ["task=search", "search.distributed.role=worker", "search.distributed.connect_timeout_s=1"],
           "launcher": ["task=search", "search.distributed.role=launcher"],
           "chief": ["task=search", "search.distributed.role=chief"]}
MALFORMED_SPACE = "search.space=[{name: depth, path: model.no_such_key, kind: int, min: 1, max: 3}]"


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A finished two-trial sweep: its MLflow store and keras-tuner state are the results to keep."""
    root = tmp_path_factory.mktemp("earlier")
    overrides = [f"tracking.uri=sqlite:///{root}/mlflow.db", "tracking.experiment=kept", "search.name=kept",
                 f"search.directory={root}/tuner"]
    search(run_config(["task=search", "data=synthetic", "model=resnet20", "train.epochs=1", *FAST_TRAIN,
                    "search.max_trials=2", *overrides]))
    corrupt = root / "corrupt"
    corrupt.mkdir()
    write_idx_set(corrupt)
    (corrupt / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    return root, overrides


def snapshot(root):
    """Everything recorded so far: every run's status, params, tags and metric histories, and a
    hash of every keras-tuner state file."""
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    recorded = {run.info.run_id: (run.info.status, run.data.params, run.data.tags,
                                  {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                                   for key in run.data.metrics}) for run in runs}
    files = {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted((root / "tuner").rglob("*"))
             if path.is_file() and path.name != "owner.lock"}  # who last took the sweep: not its state
    return recorded, files


CASES = [  # entry, bad override, what the error must name
    ("train", "model=no_such_model", "no_such_model"),
    ("search", "data=no_such_data", "no_such_data"),
    ("search", MALFORMED_SPACE, "model.no_such_key"),
    ("train", "train.epochs=-1", "train.epochs=-1"),
    ("worker", "train.epochs=-1", "train.epochs=-1"),
    ("launcher", "train.epochs=-1", "train.epochs=-1"),
    ("train", "data.root=/no/such/folder", "/no/such/folder"),
    ("search", "data.root=/no/such/folder", "/no/such/folder"),
    ("train", "data.root={root}/corrupt", "train-labels-idx1-ubyte.gz"),
    ("search", "search.distributed.address=no-port", "search.distributed.address='no-port'"),
    ("chief", "search.distributed.address=127.0.0.1:{taken}", "cannot listen at"),  # another chief's port
]


@pytest.mark.xdist_group("earlier-sweep")  # one worker trains the earlier sweep once
@pytest.mark.parametrize("entry, bad, named", CASES, ids=[f"{e}-{b.split('=')[0]}" for e, b, _ in CASES])
def test_bad_input_is_named_exits_non_zero_and_keeps_earlier_results(earlier, entry, bad, named):
    root, overrides = earlier
    before = snapshot(root)
    data = [] if bad.startswith("data=") else ["data=fashion_mnist" if "data.root" in bad else "data=synthetic"]
    command = [sys.executable, "run.py", *ENTRIES[entry], *data, "model=resnet20", *FAST_TRAIN, *overrides,
               bad.replace("{root}", str(root)), f"hydra.run.dir={root}/hydra"]
    with socket.socket() as taken:  # a port another process listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        command = [part.replace("{taken}", str(taken.getsockname()[1])) for part in command]
        result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout[-2000:]
    assert named in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert snapshot(root) == before
