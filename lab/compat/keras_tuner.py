"""Every use of keras-tuner's private API, in one place (nothing else in `lab/` imports
`keras_tuner.src`). Each piece names the keras-tuner behaviour it works around;
`tests/test_kt_compat.py` checks that every private name used here exists with the shape used,
so an upgrade of keras-tuner fails that one test instead of a distributed sweep.

Written against keras-tuner 1.4.8 (`SUPPORTED`); importing this module under another version
fails with a message saying so.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Dict, List, Optional, Tuple

import grpc
import keras_tuner as kt
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine.oracle import LOCKS
from keras_tuner.src.tuners.gridsearch import LinkedList

# written against; any later 1.4 patch is let through, tests/test_kt_compat.py decides
SUPPORTED = "1.4.8"
IDLE_PAUSE_S = 1.0  # a worker's wait before asking again when the oracle has no trial ready


def release(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version.split("+")[0].split(".")[:3] if part.isdigit())


def check_version(version: str = kt.__version__) -> None:
    """keras-tuner 1.4.8 or a later 1.4 patch: a patch release keeps the private API far more often
    than not, and the contract tests (tests/test_kt_compat.py) fail where it did not."""
    if not release(SUPPORTED) <= release(version) < release(SUPPORTED)[:2] + (999,):
        raise ImportError(
            f"the lab works around keras-tuner {SUPPORTED}'s internals (lab/compat/keras_tuner.py) and "
            f"found keras-tuner {version}: pip install 'keras-tuner>={SUPPORTED},<1.5', or update "
            "lab/compat/keras_tuner.py and run tests/test_kt_compat.py"
        )


check_version()


def write_json_whole(path: str, state: dict) -> None:
    """`state` as JSON at `path`, through a temporary file renamed over it."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        json.dump(state, file)
    os.replace(temporary, path)


class KeepsTrialOwners:
    """For keras-tuner's oracles, so that a chief can be restarted while its workers train.

    A reloaded keras-tuner oracle re-queues every trial that was running, for whichever tuner
    asks first: a second copy of a trial a worker is still training. With `keep_owners` (the
    chief), a trial stays with the worker that had it: the worker ends it normally, or,
    restarted with the same index, gets it back. Other owners (a single-process sweep's
    `tuner0`) are re-queued as before.

    keras-tuner also saves the oracle before its last bookkeeping: before it drops an ended
    trial from the running ones (a restarted chief would train it again) and before it notes a
    new trial's start (a restarted chief then fails to end that trial). Here the oracle is saved
    once more after both, a reload never re-queues an ended trial, and ending a trial twice (a
    worker retrying a call the dying chief had already answered) changes nothing."""

    keep_owners = False

    def save(self):
        """The oracle's state, written whole or not at all: a chief killed while keras-tuner
        wrote oracle.json in place left it empty, and the restarted chief could not load it."""
        write_json_whole(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        write_json_whole(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
        )

    def reload(self):
        super().reload()  # re-queues the running trials (their owners were read by set_state)
        for tuner_id, trial in getattr(self, "owners_at_reload", {}).items():
            if trial.trial_id not in self._retry_queue:
                continue
            if ended(trial):
                self._retry_queue.remove(trial.trial_id)
            elif self.keep_owners and tuner_id.startswith("worker"):
                self._retry_queue.remove(trial.trial_id)
                self.ongoing_trials[tuner_id] = trial
                self.tuner_ids.add(tuner_id)
                self._display.trial_start.setdefault(trial.trial_id, datetime.now())
                self._display.trial_number.setdefault(trial.trial_id, len(self.trials))

    def set_state(self, state):
        super().set_state(state)
        self.owners_at_reload = dict(self.ongoing_trials)

    @kt.synchronized
    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.status == kt.engine.trial.TrialStatus.RUNNING:
            self.save()  # now with the trial's start
        return trial

    @kt.synchronized
    def end_trial(self, trial):
        if trial.trial_id in self.end_order and ended(self.trials[trial.trial_id]):
            return  # already ended: a retried call
        while trial.trial_id in self._retry_queue:
            self._retry_queue.remove(trial.trial_id)
        super().end_trial(trial)
        self.save()  # now without the ended trial among the running ones


def ended(trial) -> bool:
    """COMPLETED, FAILED, or STOPPED (pruned: `search.pruner`)."""
    return trial.status in (
        kt.engine.trial.TrialStatus.COMPLETED,
        kt.engine.trial.TrialStatus.FAILED,
        kt.engine.trial.TrialStatus.STOPPED,
    )


class StopsAtDeadline:
    """For keras-tuner's oracles: `search.max_seconds`. keras-tuner has no wall budget (its issue
    #249). Past `deadline` (time.monotonic()), the oracle answers every tuner that asks for a new
    trial STOPPED, as it does when the trials run out, so a single process and every distributed
    worker end after the trial they are training, and a chief then ends with them.
    `deadline_passed` says whether it did."""

    deadline = None
    deadline_passed = False

    @kt.synchronized
    def create_trial(self, tuner_id):
        if (
            self.deadline is None
            or time.monotonic() < self.deadline
            or tuner_id in self.ongoing_trials
        ):
            return super().create_trial(tuner_id)
        self.deadline_passed = True
        self.tuner_ids.discard(tuner_id)  # keras-tuner's chief ends once no tuner is left
        return trial_module.Trial(
            self.hyperparameters.copy(), status=trial_module.TrialStatus.STOPPED
        )


class ResumableGridOracle(StopsAtDeadline, KeepsTrialOwners, kt.oracles.GridSearchOracle):
    """keras-tuner's grid oracle keeps its place in the grid (its value-ordered trial list and the
    queue of trials whose successor is still to try) only in memory, so a reloaded grid sweep
    stops after the trials it already had. This one saves both with the rest of its state."""

    def get_state(self):
        state = super().get_state()
        order, index = [], self._ordered_ids._next_index[None]
        while index is not None:
            order.append(self._ordered_ids._memory[index])
            index = self._ordered_ids._next_index[index]
        return {
            **state,
            "lab_grid_order": order,
            "lab_grid_populate_next": list(self._populate_next),
        }

    def set_state(self, state):
        super().set_state(state)
        self._ordered_ids = LinkedList()
        for trial_id in state.get("lab_grid_order", []):
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(state.get("lab_grid_populate_next", []))


class RandomOracle(StopsAtDeadline, KeepsTrialOwners, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(StopsAtDeadline, KeepsTrialOwners, kt.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian oracle fits its Gaussian process to every trial that is neither
    COMPLETED, FAILED nor INVALID with the score of the trial before it (`_vectorize_trials` keeps
    the loop's last `score`): a STOPPED (pruned) trial would enter the fit with another trial's
    score. Here the fit sees no STOPPED trial."""

    def _vectorize_trials(self):
        every = self.trials
        self.trials = {
            trial_id: trial
            for trial_id, trial in every.items()
            if trial.status != trial_module.TrialStatus.STOPPED
        }
        try:
            return super()._vectorize_trials()
        finally:
            self.trials = every


class HyperbandOracle(StopsAtDeadline, KeepsTrialOwners, kt.oracles.HyperbandOracle):
    pass


def complete_recorded_trials(
    oracle,
    scored: Dict[str, Dict[str, float]],
    pruned: Optional[Dict[str, Dict[str, float]]] = None,
) -> List[str]:
    """Ends COMPLETED, with its recorded metrics, each trial the (reloaded) oracle still has
    running or queued for retry although its run FINISHED, and STOPPED each one whose run was
    pruned: a process killed between the trial's end and the oracle's save would otherwise hand
    the trial out again. `scored`/`pruned`: {trial id: {metric: value}} as the oracle gets them
    from a trial. Returns their ids."""
    done = []
    ends = [
        (trial_id, metrics, kt.engine.trial.TrialStatus.COMPLETED)
        for trial_id, metrics in scored.items()
    ]
    ends += [
        (trial_id, metrics, kt.engine.trial.TrialStatus.STOPPED)
        for trial_id, metrics in (pruned or {}).items()
    ]
    for trial_id, metrics, status in sorted(ends, key=lambda end: end[0]):
        trial = oracle.trials.get(trial_id)
        if trial is None or ended(trial):
            continue
        # keras-tuner's display ends it
        oracle._display.trial_start.setdefault(trial_id, datetime.now())
        oracle._display.trial_number.setdefault(trial_id, len(oracle.trials))
        oracle.update_trial(trial_id, metrics)
        trial.status = status
        oracle.end_trial(trial)
        done.append(trial_id)
    return done


def nothing_left(oracle) -> bool:
    """Whether a (reloaded) oracle has no trial running, none queued for retry and none to create:
    keras-tuner has no public check, and its chief would wait for workers that never come."""
    return not oracle.ongoing_trials and not oracle._retry_queue and oracle.remaining_trials() == 0


def retry_queue(oracle) -> List[str]:
    """The trial ids keras-tuner will hand out again (failed trials to retry, re-queued ones)."""
    return list(oracle._retry_queue)


def display_started(oracle) -> Dict[str, datetime]:
    """Trial id -> when keras-tuner's display saw it start (ending a trial it never saw: KeyError)."""
    return dict(oracle._display.trial_start)


def quiet_trial_tracebacks() -> None:
    """keras-tuner prints a failed trial's traceback twice (its `config.DEBUG`, on by default, and
    the trial's summary); off, the summary prints the trial's message, which `LabTuner` keeps to
    one line for the lab's own errors."""
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = False


def is_worker(tuner) -> bool:
    """Whether keras-tuner runs this tuner as a distributed worker (its oracle is a gRPC client)."""
    return tuner._is_worker()


def oracle_behind_client(client):
    """The local oracle keras-tuner's `OracleClient` wraps (to wrap it again, paced)."""
    return client._oracle


def add_oracle_service(server, oracle):
    """keras-tuner's gRPC `OracleServicer` for `oracle`, added to `server` (keras-tuner starts its
    own server in `start_server` with SO_REUSEPORT on, which lets two chiefs share a port)."""
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def chief_may_exit(servicer, oracle) -> bool:
    """keras-tuner's own end condition for a chief: every worker that asked was told to stop and
    no trial is left."""
    return servicer.stop_triggered and oracle_chief.exit_chief(oracle)


def trials_by_tuner(oracle) -> Tuple[Dict[str, str], List[str]]:
    """({tuner id: its running trial id}, [idle tuner ids]), read under the oracle's own lock (the
    gRPC thread changes both)."""
    with LOCKS[oracle]:
        running = {tuner: trial.trial_id for tuner, trial in oracle.ongoing_trials.items()}
        idle = sorted(set(oracle.tuner_ids) - set(running))
    return running, idle


# gRPC backs off reconnecting to a server that went away: up to 120 s by default. A worker whose
# chief was restarted then kept failing for longer than the restarted chief needed to finish the
# sweep and exit, and waited for it forever.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class PacedOracleClient(oracle_client.OracleClient):
    """keras-tuner's client, with three changes. It pauses before asking again when the oracle has
    no trial ready (keras-tuner's loop re-asks at once, flooding the chief while a grid or a
    Hyperband bracket waits for running trials). It retries a call the chief dropped by dying
    (UNAVAILABLE) for up to `patience_s`: keras-tuner's `wait_for_ready` covers only calls not
    yet sent, so a worker would otherwise die with a chief restart. And its channel reconnects
    within a second of a restarted chief listening again (keras-tuner's channel keeps gRPC's
    default backoff, up to two minutes)."""

    def __init__(self, oracle, patience_s: float):
        super().__init__(oracle)
        address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
        channel = grpc.insecure_channel(address, options=RECONNECT_OPTIONS)
        self.stub = RetryingStub(protos.get_service_grpc().OracleStub(channel), patience_s)

    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.status == trial_module.TrialStatus.IDLE:
            time.sleep(IDLE_PAUSE_S)
        return trial


class RetryingStub:
    """A gRPC stub whose calls are retried while the server is UNAVAILABLE. Every call of
    keras-tuner's service can be repeated safely here: asking for a trial again returns the same
    one, and the chief ignores a second end of the same trial."""

    def __init__(self, stub, patience_s: float):
        self.stub, self.patience_s = stub, patience_s

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(*args, **kwargs):
            deadline = time.monotonic() + self.patience_s
            while True:
                try:
                    return method(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)

        return call
