"""Bad input at every entry point (train, search, a distributed worker, the launcher): a clear
error naming the value, a non-zero exit, and the earlier results left exactly as they were."""

import socket
import subprocess
import sys

import pytest
from conftest import (
    FAST_TRAIN,
    USES_KEPT_SWEEP,
    file_hashes,
    kept_at,
    recorded_runs,
    write_keras_applications_h5,
)
from test_data import write_idx_set

from lab.config import PROJECT_ROOT

ENTRIES = {
    "train": ["task=train"],
    "search": ["task=search"],
    "worker": [
        "task=search",
        "search.distributed.role=worker",
        "search.distributed.connect_timeout_s=1",
    ],
    "launcher": ["task=search", "search.distributed.role=launcher"],
    "chief": ["task=search", "search.distributed.role=chief"],
    "evaluate": ["task=evaluate"],
}
MALFORMED_SPACE = "search.space=[{name: depth, path: model.no_such_key, kind: int, min: 1, max: 3}]"


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    """Fashion-MNIST files, one of them truncated."""
    folder = tmp_path_factory.mktemp("corrupt")
    write_idx_set(folder)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    return folder


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Weights of another architecture (the lab's LeNet-5, in keras.applications' .h5 layout) and a
    truncated copy."""
    from lab.models import build_model
    from lab.models.variants import load_variant

    folder = tmp_path_factory.mktemp("weights")
    write_keras_applications_h5(
        build_model(load_variant("lenet5"), (16, 16, 3), 10), folder / "lenet5.h5"
    )
    (folder / "truncated.h5").write_bytes((folder / "lenet5.h5").read_bytes()[:2048])
    return folder


def snapshot(root):
    """Everything the sweep `kept` recorded: its runs, and its keras-tuner state files."""
    return recorded_runs(root), file_hashes(root / "tuner")


CASES = [  # entry, bad override, what the error must name
    ("train", "model=no_such_model", "no_such_model"),
    ("search", "data=no_such_data", "no_such_data"),
    ("search", MALFORMED_SPACE, "model.no_such_key"),
    ("train", "train.epochs=-1", "train.epochs=-1"),
    ("worker", "train.epochs=-1", "train.epochs=-1"),
    ("launcher", "train.epochs=-1", "train.epochs=-1"),
    ("train", "data.root=/no/such/folder", "/no/such/folder"),
    ("search", "data.root=/no/such/folder", "/no/such/folder"),
    ("train", "data.root={corrupt}", "train-labels-idx1-ubyte.gz"),
    ("search", "search.distributed.address=no-port", "search.distributed.address='no-port'"),
    # another chief's port
    ("chief", "search.distributed.address=127.0.0.1:{taken}", "cannot listen at"),
    ("train", "train.early_stopping.patience=-1", "train.early_stopping.patience=-1"),
    (
        "evaluate",
        "evaluate.model_uri=runs:/0123456789abcdef/model",
        "runs:/0123456789abcdef/model names no model",
    ),
    (
        "evaluate",
        "evaluate.model_uri=s3://bucket/model",
        "evaluate.model_uri must be runs:/RUN_ID/model",
    ),
    ("train", "from_run=0123456789abcdef", "from_run=0123456789abcdef names no run"),
    (
        "train",
        "model.weights={weights}/lenet5.h5",
        "lenet5.h5 has no layer 'conv1_conv' of resnet20",
    ),
    ("train", "model.weights={weights}/truncated.h5", "truncated.h5 cannot be read as HDF5"),
    ("train", "model.weights=/no/such/weights.h5", "model.weights='/no/such/weights.h5'"),
]


@USES_KEPT_SWEEP
@pytest.mark.parametrize(
    "entry, bad, named", CASES, ids=[f"{e}-{b.split('=')[0]}" for e, b, _ in CASES]
)
def test_bad_input_is_named_exits_non_zero_and_keeps_earlier_results(
    kept_sweep, corrupt, weight_files, entry, bad, named
):
    root = kept_sweep
    overrides = [*kept_at(root), "tracking.experiment=kept", "search.name=kept"]
    before = snapshot(root)
    data = (
        []
        if bad.startswith("data=")
        else ["data=fashion_mnist" if "data.root" in bad else "data=synthetic"]
    )
    command = [
        sys.executable,
        "run.py",
        *ENTRIES[entry],
        *data,
        "model=resnet20",
        *FAST_TRAIN,
        *overrides,
        bad.replace("{corrupt}", str(corrupt)).replace("{weights}", str(weight_files)),
        f"hydra.run.dir={root}/hydra",
    ]
    with socket.socket() as taken:  # a port another process listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        command = [part.replace("{taken}", str(taken.getsockname()[1])) for part in command]
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
        )
    assert result.returncode != 0, result.stdout[-2000:]
    assert named in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert snapshot(root) == before
