"""What the benchmarks that compare two sweeps share (bench/pruner.py, bench/hyperband_resume.py):
each sweep is its own `python run.py` process pinned to one CPU core with one TensorFlow thread
(taskset), so that whatever else the machine runs weighs on both alike; its records are then read
back from its own SQLite store."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def start_pinned(overrides: List[str], core: int) -> Tuple[subprocess.Popen, float, List[str]]:
    """`python run.py OVERRIDES` on CPU `core`: (the process, when it started, its command)."""
    command = [sys.executable, "run.py", *overrides]
    process = subprocess.Popen(
        ["taskset", "-c", str(core), *command],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **ONE_THREAD},
    )
    return process, time.perf_counter(), command


def wait_all(started: Dict[str, Tuple[subprocess.Popen, float, List[str]]]) -> Dict[str, float]:
    """Waits for every sweep `start_pinned` started ({name: what it returned}); {name: its wall
    seconds, from its start to its own end}. (Waiting for one, then the other, would give the
    first to end the second's time.) SystemExit naming one that failed."""
    walls: Dict[str, float] = {}
    while len(walls) < len(started):
        for name, (process, began, _) in started.items():
            if name not in walls and process.poll() is not None:
                if process.returncode != 0:
                    raise SystemExit(f"the {name} sweep failed")
                walls[name] = time.perf_counter() - began
        time.sleep(0.2)
    return walls


def trial_seconds(trials: List[Run]) -> float:
    """The trials' time as MLflow recorded it: each trial run's start to end, summed."""
    return sum((trial.info.end_time - trial.info.start_time) / 1000 for trial in trials)


def sweep_records(store: str, experiment: str, name: str) -> Tuple[MlflowClient, Run, List[Run]]:
    """(client, parent run, trial runs) of the sweep `name` in experiment `experiment` of the SQLite
    file `store`."""
    client = MlflowClient(f"sqlite:///{store}")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    [parent] = client.search_runs([experiment_id], f"tags.`lab.search` = '{name}'")
    trials = client.search_runs([experiment_id], f"tags.`lab.parent` = '{parent.info.run_id}'")
    return client, parent, trials
