"""keras-tuner's distributed mode with a real `mlflow server`, and the faults it must survive.

Every process here is a real `python run.py` on loopback; each test is bounded in time.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import pytest
from conftest import FAST_TRAIN, TINY_RESNET, TINY_SPACE
from mlflow.tracking import MlflowClient

from lab.compat.keras_tuner import display_started, retry_queue
from lab.config import PROJECT_ROOT, DistributedConfig, run_config
from lab.tasks.search.address import AddressInUseError, check_address_free
from lab.tasks.search.distributed import start_server
from lab.tasks.search.launcher import plan_roles
from lab.tasks.search.sweep import make_oracle
from lab.tracking.server import free_port

STEPS = 50  # per writer in the concurrent-writers test
DEADLINE_S = 420  # any one sweep here; a hang fails the test instead of stalling CI
SMALL = [
    "task=search",
    "data=synthetic",
    "data.train_size=256",
    "data.test_size=64",
    *TINY_RESNET,
    TINY_SPACE,
    "train.epochs=2",
    *FAST_TRAIN,
]


def sweep_args(tmp_path, name, trials, port, *extra):
    """A sweep in its own MLflow experiment `dist-NAME` (the tests share one `mlflow server`)."""
    return [
        *SMALL,
        f"search.name={name}",
        f"search.max_trials={trials}",
        f"search.directory={tmp_path}/tuner",
        f"search.distributed.address=127.0.0.1:{port}",
        f"tracking.experiment=dist-{name}",
        *extra,
    ]


SPAWNED = []  # every role a test started: none may outlive it


@pytest.fixture(autouse=True)
def no_process_left_behind():
    yield
    while SPAWNED:
        process = SPAWNED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def start(args, log: Path, role: str, *extra) -> subprocess.Popen:
    role_args = [
        f"search.distributed.role={role}",
        *extra,
        f"hydra.run.dir={log.parent}/hydra-{log.stem}",
    ]
    process = subprocess.Popen(
        [sys.executable, "run.py", *args, *role_args],
        cwd=PROJECT_ROOT,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )
    SPAWNED.append(process)
    return process


def worker(args, log, index):
    return start(args, log, "worker", f"search.distributed.worker_index={index}")


def finish(process: subprocess.Popen, log: Path) -> int:
    try:
        return process.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{log.name} did not finish within {DEADLINE_S} s:\n{log.read_text()[-3000:]}")


def runs_of(uri, role, sweep):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(f"dist-{sweep}")
    if experiment is None:
        return client, []
    return client, [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("lab.role") == role
    ]


def assert_complete(uri, sweep, trials, epochs=2):
    """One parent, FINISHED; one FINISHED child (attempt) per trial id, each under it; any other
    attempt was KILLED. Returns the finished ones."""
    client, [parent] = runs_of(uri, "parent", sweep)
    _, attempts = runs_of(uri, "trial", sweep)
    assert parent.info.status == "FINISHED"
    children = [c for c in attempts if c.info.status == "FINISHED"]
    assert sorted(c.data.tags["lab.trial"] for c in children) == [str(t) for t in range(trials)]
    assert {c.info.status for c in attempts} <= {"FINISHED", "KILLED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in attempts} == {parent.info.run_id}
    csv = open(client.download_artifacts(parent.info.run_id, "trials.csv")).read().splitlines()
    assert len(csv) == trials + 1 and all(",COMPLETED," in line for line in csv[1:])
    return client, parent, children


def steps(client, run, metric="val_accuracy"):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))


def wait_for(condition, what, timeout=DEADLINE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_launcher_restarts_a_worker_killed_mid_trial(tmp_path):
    """The launcher serves the SQLite store through `mlflow server`; a worker SIGKILLed after its
    trial's first epoch is restarted, gets that trial back, and trains it again as its second
    attempt, in a new run; the killed attempt's run is closed KILLED with its history as it was."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # Six short epochs: the kill lands after the first with five left, a window a slow poll (on a
    # loaded machine, seconds per MLflow query) does not miss; the same images in all as 3 x 1536.
    args = sweep_args(
        tmp_path,
        "killed",
        2,
        free_port(),
        f"tracking.uri={uri}",
        "train.epochs=6",
        "data.train_size=768",
        "search.distributed.local_workers=2",
    )
    log = tmp_path / "launcher.log"
    launcher = start(args, log, "launcher")

    def running_child_after_one_epoch():
        client, children = runs_of(uri, "trial", "killed")
        if len(children) == 2 and all(c.info.status == "FINISHED" for c in children):
            pytest.fail("every trial finished before one could be killed: nothing was tested")
        return next((c for c in children if c.info.status == "RUNNING" and steps(client, c)), None)

    victim = wait_for(running_child_after_one_epoch, "a trial's first epoch")
    os.kill(int(victim.data.tags["lab.pid"]), signal.SIGKILL)
    at_kill = steps(MlflowClient(uri), victim)
    assert len(at_kill) < 6, "the trial ended before the kill: nothing was tested"
    assert finish(launcher, log) == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert "killed by signal 9: restart 1 of 3" in output
    client, parent, children = assert_complete(uri, "killed", 2, epochs=6)
    retried = next(c for c in children if c.data.tags["lab.trial"] == victim.data.tags["lab.trial"])
    assert (
        retried.data.tags["lab.attempt"] == "2"
        and retried.data.tags["lab.pid"] != victim.data.tags["lab.pid"]
    )
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED" and steps(client, killed) == at_kill  # left as it was
    for child in children:
        assert steps(client, child) == [
            1,
            2,
            3,
            4,
            5,
            6,
        ]  # one point per epoch: no trial's work lost or repeated


def test_chief_killed_and_restarted_continues_the_sweep(mlflow_server, tmp_path):
    server = mlflow_server.uri
    port = free_port()
    args = sweep_args(tmp_path, "chief", 5, port, f"tracking.uri={server}")
    logs = [
        tmp_path / name for name in ("chief.log", "worker0.log", "worker1.log", "chief-again.log")
    ]
    chief = start(args, logs[0], "chief")
    workers = [worker(args, logs[1], 0), worker(args, logs[2], 1)]

    def finished_children():
        _, children = runs_of(server, "trial", "chief")
        return len([c for c in children if c.info.status == "FINISHED"]) >= 2

    wait_for(finished_children, "two finished trials")
    chief.send_signal(signal.SIGKILL)
    chief.wait()
    chief = start(args, logs[3], "chief")
    if finish(chief, logs[3]) != 0:  # its workers would wait for it
        for process in workers:
            process.kill()
        pytest.fail(f"the restarted chief failed:\n{logs[3].read_text()[-3000:]}")
    codes = [finish(p, log) for p, log in zip(workers, logs[1:3])]
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    client, parent, children = assert_complete(server, "chief", 5)
    for child in children:
        assert steps(client, child) == [1, 2]  # none re-run after the chief came back


def server_clean(server) -> None:
    """No request failed and nothing crashed in the server's own log."""
    text = server.log.read_text()
    assert "database is locked" not in text and '" 500' not in text and "Traceback" not in text, (
        text[-3000:]
    )


def server_processes(uri: str) -> list:
    """The command lines of every process in the process group of the `mlflow server` at `uri`."""
    port = uri.rsplit(":", 1)[1]
    commands = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            commands[int(entry.name)] = (
                int(fields[2]),
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(),
            )
        except (OSError, ValueError, IndexError):
            continue
    [leader] = [
        pid
        for pid, (_, command) in commands.items()
        if " server " in command and f"--port {port}" in command
    ]
    return [command for group, command in commands.values() if group == leader]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc (Linux)")
def test_a_lab_started_server_runs_no_mlflow_job_consumers(mlflow_server):
    """MLflow 3's job execution (Huey consumers for its GenAI jobs) is off where the lab starts a
    server: six processes importing MLflow on every start, for jobs the lab never runs."""
    from lab.tracking.server import JOB_EXECUTION, server_environment

    commands = server_processes(mlflow_server.uri)
    assert commands and not [c for c in commands if "huey" in c], commands
    assert server_environment({})[JOB_EXECUTION] == "false"
    # a user who wants them
    assert server_environment({JOB_EXECUTION: "true"})[JOB_EXECUTION] == "true"


def test_chief_and_two_workers_on_postgresql_run_each_trial_once_under_one_parent(
    mlflow_server_on_postgres, tmp_path
):
    """MLflow's multi-writer backend: a chief and two workers write through `mlflow server` over
    PostgreSQL; each trial is trained once, by a worker, and logged once. (A worker killed
    mid-trial and restarted with its index: the launcher test, which restarts it the same way.)"""
    server = mlflow_server_on_postgres.uri
    args = sweep_args(tmp_path, "pg", 3, free_port(), f"tracking.uri={server}")
    logs = [tmp_path / name for name in ("chief.log", "worker0.log", "worker1.log")]
    processes = [start(args, logs[0], "chief"), worker(args, logs[1], 0), worker(args, logs[2], 1)]
    codes = [finish(p, log) for p, log in zip(processes, logs)]
    assert codes == [0, 0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    client, parent, children = assert_complete(server, "pg", 3)
    for child in children:
        assert steps(client, child) == [1, 2]  # logged exactly once
    assert {c.data.tags["lab.tuner"] for c in children} <= {
        "worker0",
        "worker1",
    }  # the chief trains none
    assert "sweep pg: 3 trials" in logs[0].read_text()
    server_clean(mlflow_server_on_postgres)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_processes_writing_at_once_lose_no_metric(backend, request):
    """Four writers, 50 steps of five metrics and a tag each: 400 writes at once through the server."""
    served = request.getfixturevalue(
        "mlflow_server" if backend == "sqlite" else "mlflow_server_on_postgres"
    )
    server = served.uri
    script = (
        "import sys\n"
        "from lab.config import TrackingConfig\n"
        f"STEPS = {STEPS}\n"
        "from lab.tracking import tracked_run\n"
        "with tracked_run(TrackingConfig(uri=sys.argv[1], experiment='writers'), sys.argv[2]) as run:\n"
        "    for step in range(STEPS):\n"
        "        run.log_metrics({f'm{k}': step * k for k in range(5)}, step=step)\n"
        "        run.set_tags({'lab.step': step})\n"
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, server, f"writer{i}"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [w.communicate(timeout=DEADLINE_S)[0] for w in writers]
    assert [w.returncode for w in writers] == [0] * 4, outputs
    client = MlflowClient(server)
    runs = client.search_runs([client.get_experiment_by_name("writers").experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"writer{i}" for i in range(4)]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["lab.step"] == str(STEPS - 1)
        for k in range(5):
            history = client.get_metric_history(run.info.run_id, f"m{k}")
            assert sorted((m.step, m.value) for m in history) == [
                (s, float(s * k)) for s in range(STEPS)
            ]
    server_clean(served)


@pytest.mark.parametrize("task", ["train", "search"])
def test_unreachable_tracking_server_is_one_line_naming_it_before_any_training(task, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            f"task={task}",
            "data=synthetic",
            f"tracking.uri={uri}",
            f"hydra.run.dir={tmp_path}/hydra",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    [error] = [
        line for line in result.stderr.splitlines() if line.startswith("error:")
    ]  # the rest: TF's start-up log
    assert error.startswith(
        f"error: the MLflow tracking server at tracking.uri={uri} is unreachable"
    )
    assert result.stderr.strip().endswith(error) and "Traceback" not in result.stderr
    assert result.stdout == ""  # stopped before any data, model or run


def test_worker_without_a_chief_gives_up_naming_the_address(tmp_path):
    port = free_port()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = sweep_args(
        tmp_path, "alone", 2, port, f"tracking.uri={uri}", "search.distributed.connect_timeout_s=2"
    )
    process = worker(args, tmp_path / "worker.log", 0)
    assert finish(process, tmp_path / "worker.log") == 2
    output = (tmp_path / "worker.log").read_text()
    assert (
        f"error: no keras-tuner chief answered at search.distributed.address=127.0.0.1:{port} within 2 s"
        in output
    )


def test_a_second_chief_on_a_taken_port_is_refused():
    """gRPC servers share a port by default (SO_REUSEPORT): a second chief would answer half
    the workers with a different oracle."""
    dist = DistributedConfig(address=f"127.0.0.1:{free_port()}")
    first, _ = start_server(kt.oracles.RandomSearchOracle(max_trials=1), dist)
    try:
        with pytest.raises(AddressInUseError, match=f"search.distributed.address={dist.address}"):
            start_server(kt.oracles.RandomSearchOracle(max_trials=1), dist)
        with pytest.raises(AddressInUseError, match=f"search.distributed.address={dist.address}"):
            check_address_free(dist)  # what a chief checks before it touches the sweep
    finally:
        first.stop(grace=None)


def owners_oracle(tmp_path, role, *extra):
    cfg = run_config(
        ["task=search", f"search.distributed.role={role}", "search.max_trials=5", *extra]
    )
    oracle = make_oracle(cfg)
    oracle._set_project_dir(str(tmp_path), "owners")
    return oracle


@pytest.mark.core
def test_restarted_chief_leaves_running_trials_with_their_workers(tmp_path):
    """Saved states written at the moments keras-tuner saves too early (a trial just begun, one
    just ended) reload into the right owners, and ending a trial twice is harmless."""
    first = owners_oracle(tmp_path, "chief")
    running = {tuner: first.create_trial(tuner).trial_id for tuner in ("worker0", "worker1")}
    first.save()

    chief = owners_oracle(tmp_path, "chief")
    chief.reload()
    assert {tuner: trial.trial_id for tuner, trial in chief.ongoing_trials.items()} == running
    # it can end them (keras-tuner: KeyError)
    assert set(running.values()) <= set(display_started(chief))
    assert retry_queue(chief) == [] and chief.tuner_ids == {"worker0", "worker1"}
    # a restarted worker gets its own back
    assert chief.create_trial("worker0").trial_id == running["worker0"]
    # a new worker gets a new one
    assert chief.create_trial("worker2").trial_id not in running.values()
    trial = chief.ongoing_trials["worker1"]
    trial.status = "COMPLETED"
    chief.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    chief.end_trial(trial)
    assert "worker1" not in chief.ongoing_trials and trial.trial_id not in retry_queue(chief)
    chief.end_trial(trial)  # a worker retrying the call: nothing changes
    assert chief.end_order.count(trial.trial_id) == 1

    still_running = sorted([running["worker0"], chief.ongoing_trials["worker2"].trial_id])
    alone = owners_oracle(tmp_path, "none")  # a single process re-queues them, as keras-tuner does
    alone.reload()
    assert alone.ongoing_trials == {} and sorted(retry_queue(alone)) == still_running
    # the launcher's first start
    afresh = owners_oracle(tmp_path, "chief", "search.distributed.requeue_running=true")
    afresh.reload()
    assert afresh.ongoing_trials == {} and sorted(retry_queue(afresh)) == still_running


@pytest.mark.core
def test_launcher_pins_each_worker_to_a_device_and_the_chief_to_none(tmp_path):
    cfg = run_config(
        [
            "task=search",
            "search.distributed.role=launcher",
            "search.distributed.devices=[0,1]",
            "search.distributed.local_workers=3",
        ]
    )
    roles = plan_roles(
        cfg, ["experiment=deep_vs_wide"], "http://127.0.0.1:5000", tmp_path, {"PATH": "/bin"}
    )
    assert [r.name for r in roles] == ["chief", "worker0", "worker1", "worker2"]
    assert [r.env["CUDA_VISIBLE_DEVICES"] for r in roles] == ["", "0", "1", "0"]
    assert {r.env.get("XLA_PYTHON_CLIENT_MEM_FRACTION") for r in roles[1:]} == {
        "0.45"
    }  # two share GPU 0
    assert roles[0].argv[-2:-1] == ["search.distributed.role=chief"]
    assert roles[0].first_start_only == [
        "search.distributed.requeue_running=true"
    ]  # its workers all start anew
    assert {r.env["CUDA_DEVICE_ORDER"] for r in roles[1:]} == {
        "PCI_BUS_ID"
    }  # CUDA numbers GPUs as nvidia-smi
    users = plan_roles(
        run_config(["task=search"]), [], "u", tmp_path, {"CUDA_VISIBLE_DEVICES": "2,3"}
    )
    assert [r.env["CUDA_VISIBLE_DEVICES"] for r in users] == [
        "",
        "2",
        "3",
    ]  # only the GPUs the user gave
    assert "CUDA_DEVICE_ORDER" not in users[1].env  # numbered as the user numbered them
    assert roles[3].argv[:2] == ["experiment=deep_vs_wide", "tracking.uri=http://127.0.0.1:5000"]
    assert "search.distributed.worker_index=2" in roles[3].argv and roles[3].env["PATH"] == "/bin"
    alone = plan_roles(
        run_config(["task=search", "search.distributed.devices=[]"]), [], "u", tmp_path, {}
    )
    assert [r.name for r in alone] == ["chief", "worker0"] and "CUDA_VISIBLE_DEVICES" not in alone[
        1
    ].env
