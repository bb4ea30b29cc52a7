"""Property: whatever overrides a user types, the lab either runs or stops with one line naming
what was wrong, and an earlier sweep's records stay byte for byte as they were.

Hypothesis generates override sets that mix valid and invalid keys, values and types across
train, search, data, model and tracking, with the failure kinds issue 13 found (paths as sweep
names, unknown objectives, loss objectives maximised, log axes from 0, empty spaces, misspelt
experiments, file stores, files that are not databases). Every set is applied on top of the
command of one finished sweep (`kept`), so a valid set either reports that sweep from its records
or is refused as another definition of it: nothing trains here. The entry is the one `run.py`
uses (`run_task` on the composed config), in process, so hundreds of cases cost about a minute;
`test_run_py_turns_each_kind_into_exit_2_and_one_line` runs a few through the real `run.py`.
"""

import subprocess
import sys

import pytest
from conftest import KEPT_SWEEP, USES_KEPT_SWEEP, file_hashes, kept_at, recorded_runs
from hydra.errors import HydraException
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from lab.config import PROJECT_ROOT, compose
from lab.errors import LabError
from lab.tasks import run_task
from run import with_named_entries

pytestmark = USES_KEPT_SWEEP

BASE = KEPT_SWEEP
# what run.py reports in one line, exit 2
BAD_INPUT = (LabError, HydraException, OmegaConfBaseException)

KEYS = {  # key: (valid values, invalid values)
    "train.epochs": (["1", "2"], ["-1", "0", "three", "1.5", "[1]"]),
    "train.lr": (["0.1", "1e-3"], ["-0.1", "fast", "{}"]),
    "train.batch_size": (["32", "16"], ["0", "-8", "big"]),
    "train.schedule": (["cosine", "step"], ["linear", "7"]),
    "train.optimizer": (["sgd", "adamw"], ["adam", "null"]),
    "train.precision": (["float32"], ["float64", "half"]),
    "train.label_smoothing": (["0.1"], ["1.5", "-1"]),
    "data.limit": (["32", "null"], ["1", "-5", "all"]),
    "data.val_fraction": (["0.1", "0"], ["1", "-0.1", "tenth"]),
    "data.root": (["null"], ["/no/such/folder", "''"]),
    "data.downsample": (["1"], ["0", "two"]),
    "model.stages.0.width": (["16", "8"], ["0", "-16", "wide"]),
    "model.connectivity": (["plain", "residual"], ["dense", "1"]),
    "model.block": (["basic"], ["triangle"]),
    "model.aux_heads": (["[]"], ["[{tap: nowhere}]", "[{tap: conv2, loss_weight: -1}]"]),
    "search.objective": (["val_accuracy", "test_loss"], ["val_acc", "accuracy_val", "f1"]),
    "search.direction": (["max", "min"], ["up", "maximise"]),
    "search.tuner": (["random", "grid"], ["genetic", "1"]),
    "search.max_trials": (["2", "3"], ["0", "-1", "many"]),
    "search.name": (["kept"], ["../../escaped", "/tmp/absolute", "a/b", ".hidden", "it's"]),
    "search.space": (
        [],
        [
            "[]",
            "[{name: ls, path: train.label_smoothing, kind: float, min: 0, max: 0.5, log: true}]",
            "[{name: x, path: model.no_such_key, kind: int, min: 1, max: 3}]",
            "[{name: x, path: train.lr, kind: float, min: 2, max: 1}]",
            "[{name: x, path: train.lr, kind: choice, values: []}]",
            "[{name: w, path: model.stages.0.width, kind: choice, values: [16, wide]}]",
        ],
    ),
    "search.distributed.address": (["127.0.0.1:8123"], ["no-port", "host:99999"]),
    "search.restart_after_mib": (["null", "512"], ["0", "-1"]),
    "seed": (["0", "1"], ["-1.5", "seed", "-1", "4294967296"]),
    "evaluate.model_uri": (
        ["null"],
        ["s3://bucket/model", "runs:/0123456789abcdef/model", "models:/nobody@best"],
    ),
    "tracking.uri": (
        [],
        [
            "file:///tmp/mlruns",
            "mlruns",
            "sqlite:///{root}/not-a-database.db",
            "sqlite:////proc/no/such/dir/mlflow.db",
            "ftp://127.0.0.1:1/store",
            "s3://bucket/store",
        ],
    ),
}
GROUP_CHOICES = (
    ["model=resnet20", "model=plain20"],
    [
        "model=resnet21",
        "data=cifar11",
        "experiment=plain_vs_residal",
        "train=fast",
        "task=serve",
        "task=evaluate",
    ],
)
APPENDED = [
    "train.epoch=3",
    "+train.epoch=3",
    "search.spcae=[]",
    "+model.stages.0.widht=3",
    "trian.lr=0.1",
    "train.epochs",
    "=3",
    "train.epochs=[",
    "search.space.0.kind=float",
    # named list entries, as experiment files write them (run.py rewrites them to positions)
    "search.space.connectivity.values=[plain]",
    "search.space.nosuch.values=[1]",
    "search.space.lr.kind=int",
]


def override(key, values):
    return st.sampled_from([f"{key}={value}" for value in values])


def one_override():
    valid = [override(k, v) for k, (v, _) in KEYS.items() if v] + [
        st.sampled_from(GROUP_CHOICES[0])
    ]
    invalid = [override(k, bad) for k, (_, bad) in KEYS.items()] + [
        st.sampled_from(GROUP_CHOICES[1]),
        st.sampled_from(APPENDED),
    ]
    return st.one_of(*valid, *invalid)


@pytest.fixture(scope="module")
def earlier(kept_sweep, tmp_path_factory):
    """The finished sweep `kept` every case runs against, and a file that is not a database."""
    elsewhere = tmp_path_factory.mktemp("property")
    (elsewhere / "not-a-database.db").write_text("these are not the tables you are looking for\n")
    return kept_sweep, kept_at(kept_sweep), elsewhere


def recorded(root):
    """The earlier sweep's store and every file under its folder (the subprocess cases' own
    `hydra/` output aside): every run as MLflow returns it, every file's hash (the SQLite file's
    among them: any committed write changes it)."""
    return recorded_runs(root, histories=False), file_hashes(root, skip=("hydra",))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(st.lists(one_override(), min_size=1, max_size=4))
def test_any_override_set_runs_or_stops_with_bad_input_and_changes_no_record(
    earlier, capsys, overrides
):
    root, where, elsewhere = earlier
    before = recorded(root)
    overrides = [o.replace("{root}", str(elsewhere)) for o in overrides]
    try:
        run_task(compose(with_named_entries([*BASE, *where, *overrides])))
        event("ran (reported the finished sweep from its records)")
    except BAD_INPUT as error:
        event(f"bad input: {type(error).__name__}")  # `--hypothesis-show-statistics` counts them
    except SystemExit as stop:  # nothing in the lab exits on its own
        pytest.fail(f"{overrides}: SystemExit({stop.code})")
    except Exception as error:
        pytest.fail(f"{overrides}: {type(error).__name__}: {error} (not reported as bad input)")
    assert recorded(root) == before, overrides
    capsys.readouterr()


@pytest.mark.parametrize(
    "bad",
    [
        "experiment=plain_vs_residal",
        "train.epochs=three",
        "search.name=../../escaped",
        "search.objective=val_acc",
        "tracking.uri=file:///tmp/mlruns",
        "tracking.uri=sqlite:///{root}/not-a-database.db",
        "model.aux_heads=[{tap: nowhere}]",
        "seed=-1",
        "tracking.uri=ftp://127.0.0.1:1/store",
        "search.space.nosuch.values=[1]",
        "search.objectives=[{name: val_accuracy}, {name: flops}]",
        "search.objectives=[{name: val_accuracy}, {name: macs, direction: up}]",
    ],
)
def test_run_py_turns_each_kind_into_exit_2_and_one_line(earlier, bad):
    root, where, elsewhere = earlier
    before = recorded(root)
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            *BASE,
            *where,
            bad.replace("{root}", str(elsewhere)),
            f"hydra.run.dir={root}/hydra",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert recorded(root) == before
