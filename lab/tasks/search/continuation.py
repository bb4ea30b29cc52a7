"""Hyperband's rungs as one training each (`search.hyperband_resume`).

Hyperband promotes the best trials of a rung to the next one with a larger epoch budget: the
new trial has the same values plus `tuner/trial_id` (the trial it continues),
`tuner/initial_epoch` (that trial's budget) and `tuner/epochs` (its own). keras-tuner's own
Hyperband tuner loads the previous trial's weights and fits from `initial_epoch`; the lab does the
same with the whole training state (`lab.training.state`: weights and optimizer, step count
included), and gives every trial of the sweep a learning-rate schedule over `search.max_epochs`
(`train.schedule_epochs`), so a rung of k epochs is the first k epochs of one max_epochs training
and continuing it is training on.

Where the state lives: the artifact `continuation/state.npz` of the previous trial's run (tag
`lab.continuation_state`, metric `continuation_bytes`), so any worker of a distributed sweep can
read it. It is deleted once the trial that continues it has FINISHED (not when it starts: a retry
of a killed successor continues from it again), and every state left is deleted when the sweep
ends (tag `lab.continuation_deleted` says when and how many bytes). A trial of the last rung has no
successor and keeps nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lab.config import SearchConfig, TunerName
from lab.tracking.runs import TrackedRun, delete_artifact_folder
from lab.tracking.tags import CONTINUATION_DELETED_TAG, CONTINUATION_STATE_TAG, CONTINUED_FROM_TAG
from lab.training import state as training_state
from lab.training.state import TrainingState

STATE_DIR = "continuation"  # the artifact folder of a trial's run that holds its last epoch's state
STATE_FILE = "state.npz"
STATE_BYTES = "continuation_bytes"  # metric of a run that kept its state: the file's size
# keras-tuner's Hyperband values of a trial
PREVIOUS_TRIAL, INITIAL_EPOCH, EPOCHS = "tuner/trial_id", "tuner/initial_epoch", "tuner/epochs"


def rung_overrides(search: SearchConfig, values: Dict[str, Any]) -> Dict[str, Any]:
    """A Hyperband trial's budget, `tuner/epochs`, on a schedule over `search.max_epochs` (in both
    modes, so that their comparison is of the same trainings); {} for any other trial."""
    if EPOCHS not in values:
        return {}
    return {"train.epochs": int(values[EPOCHS]), "train.schedule_epochs": search.max_epochs}


def keeps_state(search: SearchConfig, values: Dict[str, Any]) -> bool:
    """Whether a trial keeps its last epoch's state for a successor: Hyperband with resume on, and
    a rung short of `search.max_epochs` (the last rung is never continued)."""
    return (
        search.tuner is TunerName.hyperband
        and search.hyperband_resume
        and EPOCHS in values
        and int(values[EPOCHS]) < search.max_epochs
    )


def store_state(run: TrackedRun, state: TrainingState) -> int:
    """Logs `state` as `run`'s artifact continuation/state.npz, tags and measures it; returns bytes."""
    folder = Path(tempfile.mkdtemp(prefix="lab-continuation-"))
    try:
        size = training_state.save(state, folder / STATE_FILE)
        run.client.log_artifact(run.run_id, str(folder / STATE_FILE), STATE_DIR)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    run.set_tags({CONTINUATION_STATE_TAG: f"{STATE_DIR}/{STATE_FILE}"})
    run.log_metrics({STATE_BYTES: size}, step=state.epoch)
    return size


def read_state(client: MlflowClient, run: Run) -> TrainingState:
    """The state `run` holds (downloaded to a temporary folder, read, the folder removed)."""
    folder = Path(tempfile.mkdtemp(prefix="lab-continuation-"))
    try:
        path = client.download_artifacts(
            run.info.run_id, run.data.tags[CONTINUATION_STATE_TAG], str(folder)
        )
        return training_state.load(Path(path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def state_to_continue(
    client: MlflowClient, search: SearchConfig, values: Dict[str, Any], previous: Optional[Run]
) -> Tuple[Optional[TrainingState], str]:
    """(the state a promoted trial continues, "") or (None, why it trains from scratch). `previous`:
    the FINISHED run of the trial it was promoted from (`tuner/trial_id`)."""
    trial = values[PREVIOUS_TRIAL]
    if not search.hyperband_resume:
        return None, "search.hyperband_resume=false: every rung trains from scratch"
    if previous is None:
        return None, f"trial {trial} has no FINISHED run"
    if CONTINUATION_STATE_TAG not in previous.data.tags:
        deleted = previous.data.tags.get(CONTINUATION_DELETED_TAG)
        return (
            None,
            f"trial {trial}'s training state was deleted ({deleted})"
            if deleted
            else f"trial {trial} kept no training state",
        )
    try:
        state = read_state(client, previous)
    except (OSError, MlflowException, KeyError, ValueError) as error:
        return (
            None,
            f"trial {trial}'s training state could not be read ({type(error).__name__}: {error})"[
                :500
            ],
        )
    if state.epoch != int(values[INITIAL_EPOCH]):
        return None, (
            f"trial {trial}'s training state is after epoch {state.epoch}, not tuner/initial_epoch="
            f"{values[INITIAL_EPOCH]} (it stopped early)"
        )
    return state, ""


def delete_state(client: MlflowClient, run: Run, why: str) -> int:
    """Deletes the state `run` holds (no-op without one; another process may have deleted it
    first); tags it `lab.continuation_deleted` with its size and `why`. Returns the bytes deleted."""
    if CONTINUATION_STATE_TAG not in run.data.tags:
        return 0
    size = int(run.data.metrics.get(STATE_BYTES, 0))
    client.set_tag(run.info.run_id, CONTINUATION_DELETED_TAG, f"{size:,} bytes, {why}")
    delete_artifact_folder(run.info.artifact_uri, STATE_DIR)
    try:
        client.delete_tag(run.info.run_id, CONTINUATION_STATE_TAG)
    except MlflowException:
        pass  # another process deleted it first
    return size


def delete_states(client: MlflowClient, runs: Iterable[Run], why: str) -> Tuple[int, int]:
    """Deletes every state among `runs`; returns (how many, bytes)."""
    sizes = [
        delete_state(client, run, why) for run in runs if CONTINUATION_STATE_TAG in run.data.tags
    ]
    return len(sizes), sum(sizes)


def summary_line(runs: Iterable[Run]) -> str:
    """What continuation did in a sweep (`runs`: every attempt of every trial), for its summary:
    trials that FINISHED continuing another, states kept (by any attempt) and states left."""
    runs = list(runs)
    continued = sum(
        CONTINUED_FROM_TAG in run.data.tags for run in runs if run.info.status == "FINISHED"
    )
    kept = [run.data.metrics[STATE_BYTES] for run in runs if STATE_BYTES in run.data.metrics]
    left = sum(CONTINUATION_STATE_TAG in run.data.tags for run in runs)
    return (
        f"{continued} trials continued their previous rung's training; {len(kept)} training states kept "
        f"({sum(kept) / 2**20:.1f} MiB in all), {left} left"
    )
