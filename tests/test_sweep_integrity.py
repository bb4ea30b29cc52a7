"""A sweep's records cannot be corrupted by how it is run (issue 13): a sweep is defined once and
resumed only as that sweep, one process owns it, and a run that has ended is never modified.

One finished two-trial sweep (`kept_sweep`, shared with the other bad-input tests) is the record
every refusal here must leave exactly as it was; each test copies it first when it runs something
against it.
"""

import json
import shutil
import subprocess
import sys
import time

import keras_tuner as kt
import pytest
from conftest import KEPT_SWEEP, USES_KEPT_SWEEP, file_hashes, recorded_runs
from conftest import kept_at as overrides_at
from mlflow.tracking import MlflowClient

from lab.compat.keras_tuner import complete_recorded_trials, retry_queue
from lab.config import PROJECT_ROOT, run_config
from lab.config.overrides import run_params
from lab.errors import ConfigValueError
from lab.tasks.search.identity import SweepMismatchError, fingerprint
from lab.tasks.search.orchestration import search
from lab.tasks.search.ownership import SweepBusyError, sweep_owner

pytestmark = USES_KEPT_SWEEP

SWEEP = KEPT_SWEEP


@pytest.fixture
def earlier(kept_sweep):
    return kept_sweep


@pytest.fixture
def copy_of_earlier(earlier, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(earlier, root)
    return root


def ended_runs(root, store="mlflow.db"):
    return recorded_runs(root, store, ended_only=True)


def tuner_files(root, tuner="tuner"):
    return file_hashes(root / tuner)


def test_a_sweep_records_its_fingerprint_in_its_tuner_folder_and_on_its_parent(earlier):
    client = MlflowClient(f"sqlite:///{earlier}/mlflow.db")
    [parent] = [
        r
        for r in client.search_runs([client.get_experiment_by_name("kept").experiment_id])
        if r.data.tags.get("lab.role") == "parent"
    ]
    record = json.loads((earlier / "tuner" / "kept" / "sweep.json").read_text())
    assert record["parent_run_id"] == parent.info.run_id
    assert record["fingerprint"] == json.loads(
        open(client.download_artifacts(parent.info.run_id, "fingerprint.json")).read()
    )
    assert {"search.space.0.name", "train.epochs", "data.name", "search.objective", "seed"} <= set(
        record["fingerprint"]
    )
    assert not any(
        key.startswith(("tracking.", "search.distributed.")) for key in record["fingerprint"]
    )


@pytest.mark.parametrize(
    "change, named",
    [
        (
            "search.space=[{name: lr, path: train.lr, kind: float, min: 0.01, max: 0.1}]",
            "search.space.0.name: connectivity -> lr",
        ),
        ("train.epochs=2", "train.epochs: 1 -> 2"),
        ("data.train_size=256", "data.train_size: 64 -> 256"),
        ("search.objective=test_loss", "search.objective: val_accuracy -> test_loss"),
    ],
)
def test_the_same_name_with_another_definition_stops_before_any_work(
    copy_of_earlier, change, named
):
    before = ended_runs(copy_of_earlier), tuner_files(copy_of_earlier)
    with pytest.raises(SweepMismatchError, match="was started with another definition") as error:
        search(run_config([*SWEEP, *overrides_at(copy_of_earlier), change]))
    assert named in str(error.value) and "search.name=kept_2" in str(error.value)
    assert (ended_runs(copy_of_earlier), tuner_files(copy_of_earlier)) == before


def test_a_record_from_an_older_lab_resumes_where_its_new_keys_are_at_their_defaults(
    copy_of_earlier,
):
    """A lab that did not yet have a key behaved as its default: a record lacking it is the same
    sweep unless the command sets the key otherwise, or the key changes what a sweep's trials are
    (search.hyperband_resume in a Hyperband sweep)."""
    from lab.tasks.search.identity import without_keys_added_since

    path = copy_of_earlier / "tuner" / "kept" / "sweep.json"
    record = json.loads(path.read_text())
    newer = ("search.pruner", "search.max_macs", "train.schedule_epochs", "search.hyperband_resume")
    record["fingerprint"] = {k: v for k, v in record["fingerprint"].items() if k not in newer}
    path.write_text(json.dumps(record))
    before = ended_runs(copy_of_earlier)
    # reported, not refused
    assert len(search(run_config([*SWEEP, *overrides_at(copy_of_earlier)])).rows) == 2
    with pytest.raises(SweepMismatchError, match=r"search.max_macs: \(unset\) -> 5"):
        search(run_config([*SWEEP, *overrides_at(copy_of_earlier), "search.max_macs=5"]))
    assert ended_runs(copy_of_earlier) == before
    hyperband = run_config([*SWEEP, "search.tuner=hyperband"])
    compared = without_keys_added_since(record["fingerprint"], fingerprint(hyperband), hyperband)
    assert "search.hyperband_resume" in compared and not {"search.pruner", "search.max_macs"} & set(
        compared
    )


def test_a_record_that_still_holds_how_it_ran_resumes_and_its_parent_takes_todays_fingerprint(
    copy_of_earlier,
):
    """A lab whose fingerprint covered `data.root` and `train.jit_compile` wrote them into the
    tuner folder's record and into the parent's digest. Resumed, the sweep is the same sweep, and
    the parent's digest becomes the one a worker of today's lab computes."""
    from lab.tasks.search.identity import digest

    path = copy_of_earlier / "tuner" / "kept" / "sweep.json"
    record = json.loads(path.read_text())
    record["fingerprint"].update({"data.root": "/elsewhere", "train.jit_compile": "True"})
    path.write_text(json.dumps(record))
    cfg = run_config([*SWEEP, *overrides_at(copy_of_earlier)])
    client = MlflowClient(cfg.tracking.uri)
    parent = client.get_run(record["parent_run_id"])
    client.set_tag(parent.info.run_id, "lab.fingerprint", "from-an-older-lab")
    client.set_terminated(parent.info.run_id, "KILLED")  # interrupted: resumed, not reported
    assert len(search(cfg).rows) == 2
    resumed = client.get_run(parent.info.run_id)
    assert resumed.data.tags["lab.fingerprint"] == digest(fingerprint(cfg))
    assert resumed.info.status == "FINISHED"


def test_what_only_says_where_or_how_many_is_not_part_of_the_definition():
    base = run_config(SWEEP)
    for change in (
        ["search.max_trials=9"],
        ["tracking.uri=sqlite:///elsewhere.db"],
        ["search.restart_after_mib=5"],
        ["search.distributed.address=127.0.0.1:9999"],
        ["train.verbose=1"],
    ):
        assert fingerprint(run_config([*SWEEP, *change])) == fingerprint(base), change


def test_the_old_store_with_a_new_tuner_folder_is_refused_and_its_runs_untouched(
    earlier, copy_of_earlier
):
    """Trial ids would restart at 0 over the recorded sweep's runs (they were reopened and failed)."""
    before = ended_runs(copy_of_earlier)
    with pytest.raises(SweepMismatchError, match="holds no keras-tuner state for it") as error:
        search(run_config([*SWEEP, *overrides_at(copy_of_earlier, tuner="new-tuner")]))
    # as its parent records
    assert f"Use search.directory={earlier}/tuner (where it ran)" in str(error.value)
    assert ended_runs(copy_of_earlier) == before
    assert not (copy_of_earlier / "new-tuner" / "kept" / "oracle.json").exists()


def test_the_old_tuner_folder_with_a_new_store_is_refused(copy_of_earlier):
    before = tuner_files(copy_of_earlier)
    with pytest.raises(SweepMismatchError, match="has no run of it"):
        search(run_config([*SWEEP, *overrides_at(copy_of_earlier, store="other.db")]))
    assert tuner_files(copy_of_earlier) == before


def test_a_finished_sweep_run_again_is_reported_from_its_records_without_a_write(copy_of_earlier):
    before = ended_runs(copy_of_earlier)
    result = search(run_config([*SWEEP, *overrides_at(copy_of_earlier)]))
    # The same best trial as the sweep reported (none when, as here on 64 synthetic images, no
    # network beat chance: an untrained network is never the best).
    [parent_tags] = [
        tags for _, _, _, tags, _ in before.values() if tags.get("lab.role") == "parent"
    ]
    assert len(result.rows) == 2 and result.best_trial == parent_tags.get("lab.best_trial")
    assert ended_runs(copy_of_earlier) == before  # a FINISHED run is never modified
    with pytest.raises(Exception, match="has FINISHED with 2 trials and its runs are final"):
        search(run_config([*SWEEP, *overrides_at(copy_of_earlier), "search.max_trials=3"]))
    assert ended_runs(copy_of_earlier) == before


def test_a_second_process_on_a_running_sweep_is_refused_naming_the_holder(copy_of_earlier):
    before = ended_runs(copy_of_earlier), tuner_files(copy_of_earlier)
    with sweep_owner(copy_of_earlier / "tuner" / "kept", "kept"):
        with pytest.raises(
            SweepBusyError, match=r"search.name=kept is already running: pid \d+ on .+ since "
        ):
            search(run_config([*SWEEP, *overrides_at(copy_of_earlier)]))
    assert (ended_runs(copy_of_earlier), tuner_files(copy_of_earlier)) == before


def test_two_identical_commands_started_together_make_one_sweep(tmp_path):
    """The issue's case: the same sweep command twice at once on a new store. Both used to open a
    parent and train every trial; now the second is refused, naming the first."""
    command = [
        sys.executable,
        "run.py",
        *SWEEP,
        "train.epochs=3",
        "data.train_size=512",
        *overrides_at(tmp_path),
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    first = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lock = tmp_path / "tuner" / "kept" / "owner.lock"
    try:
        deadline = time.monotonic() + 300
        # the first owns the sweep
        while not (lock.exists() and f'"pid": {first.pid}' in lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
        second = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
        )
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and second.stderr.strip().splitlines() == [
        next(line for line in second.stderr.splitlines() if line.startswith("error: "))
    ]
    assert f"search.name=kept is already running: pid {first.pid} on " in second.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("kept").experiment_id])
    assert sorted(r.data.tags["lab.role"] for r in runs) == ["parent", "trial", "trial"]


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom lab.tasks.search.ownership import sweep_owner\n"
        "with sweep_owner(Path(sys.argv[1]), 'x'):\n    print('held', flush=True)\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepBusyError, match=f"pid {holder.pid} "):
            with sweep_owner(tmp_path, "x"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with sweep_owner(tmp_path, "x"):  # kill -9 released it
        pass


def test_processes_creating_one_new_sqlite_store_together_all_succeed(tmp_path):
    """MLflow builds a new store's tables on first open; two at once used to break the file."""
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    script = (
        "import sys\nfrom lab.tracking.store import prepare_store\nprepare_store(sys.argv[1])\n"
    )
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", script, uri],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [opener.communicate(timeout=300)[0] for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0, 0], outputs
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("Default") is not None


def test_plain_runs_on_one_sqlite_file_still_write_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    script = (
        "import sys\nfrom lab.config import TrackingConfig\nfrom lab.tracking import tracked_run\n"
        "from lab.tracking.store import prepare_store\nprepare_store(sys.argv[1])\n"
        "with tracked_run(TrackingConfig(uri=sys.argv[1], experiment='plain'), sys.argv[2]) as run:\n"
        "    for step in range(30):\n        run.log_metrics({'m': step}, step=step)\n"
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, uri, f"w{i}"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("plain").experiment_id])
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [
        ("w0", "FINISHED"),
        ("w1", "FINISHED"),
    ]
    for run in runs:
        assert [
            m.step
            for m in sorted(client.get_metric_history(run.info.run_id, "m"), key=lambda m: m.step)
        ] == list(range(30))


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", ".hidden", "it's", ""])
def test_a_sweep_name_is_one_safe_folder_and_mlflow_value(name):
    with pytest.raises(ConfigValueError, match="search.name must be 1-100 letters, digits"):
        run_config([*SWEEP, f'search.name="{name}"'])


def test_where_a_run_is_recorded_is_never_a_param():
    """The launcher's server gets a new port each launch; a retried trial logging it as a param failed."""
    params = run_params(run_config([*SWEEP, "tracking.uri=http://127.0.0.1:5123"]))
    assert "train.epochs" in params and not any(
        k.startswith(("tracking.", "search.distributed.")) for k in params
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["search.objective=val_acc"], "search.objective must be a metric every trial logs"),
        (
            ["search.objective=test_loss", "search.direction=max"],
            "search.direction must be min for search.objective=test_loss",
        ),
        (
            ["search.objective=test_accuracy", "search.direction=min"],
            "search.direction must be max",
        ),
        (
            ["search.objective=val_loss", "data.val_fraction=0"],
            "data.val_fraction=0 leaves no validation split",
        ),
        (["search.space=[]"], "search.space must be at least one axis"),
        (
            [
                "search.space=[{name: ls, path: train.label_smoothing, kind: float, min: 0, max: 0.5, log: true}]"
            ],
            r"search.space\[ls\].min must be > 0 on a log scale",
        ),
    ],
)
def test_an_objective_or_space_that_cannot_work_fails_with_the_config(overrides, message, tmp_path):
    with pytest.raises(ConfigValueError, match=message):
        run_config([*SWEEP, *overrides_at(tmp_path), *overrides])
    assert not (tmp_path / "mlflow.db").exists()


def test_a_loss_objective_is_minimised_unless_said_otherwise():
    assert run_config([*SWEEP, "search.objective=test_loss"]).search.direction == "min"
    assert run_config([*SWEEP, "search.objective=val_loss"]).search.direction == "min"
    assert run_config(SWEEP).search.direction == "max"


def test_a_space_keras_tuner_rejects_fails_before_data_or_runs(tmp_path):
    mixed = (
        "search.space=[{name: width, path: model.stages.0.width, kind: choice, values: [16, wide]}]"
    )
    with pytest.raises(ConfigValueError, match="search.space"):
        search(run_config([*SWEEP, *overrides_at(tmp_path), mixed]))
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "tuner").exists()


def test_a_trial_whose_run_finished_is_completed_from_its_record_not_handed_out_again(tmp_path):
    """A chief killed between a trial's end and its oracle's save reloads that trial as running."""
    cfg = run_config([*SWEEP, "search.max_trials=3"])
    from lab.tasks.search.sweep import make_oracle

    first = make_oracle(cfg)
    first._set_project_dir(str(tmp_path), "reloaded")
    trial = first.create_trial("tuner0")
    first.save()  # ... and the process dies after the trial's run FINISHED
    oracle = make_oracle(cfg)
    oracle._set_project_dir(str(tmp_path), "reloaded")
    oracle.reload()
    assert trial.trial_id in retry_queue(oracle)  # keras-tuner would train it again
    assert complete_recorded_trials(oracle, {trial.trial_id: {"val_accuracy": 0.75}}) == [
        trial.trial_id
    ]
    assert oracle.trials[trial.trial_id].status == kt.engine.trial.TrialStatus.COMPLETED
    assert oracle.trials[trial.trial_id].score == 0.75
    assert oracle.create_trial("tuner0").trial_id != trial.trial_id
    # already ended
    assert complete_recorded_trials(oracle, {trial.trial_id: {"val_accuracy": 0.75}}) == []
