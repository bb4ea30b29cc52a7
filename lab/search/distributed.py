"""keras-tuner's distributed mode, set up from `search.distributed`.

One chief holds the oracle and answers keras-tuner's own gRPC service (`OracleServicer`); each
worker runs keras-tuner's `OracleClient` and trains the trials it is given. keras-tuner reads a
process's role from its environment (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`); `set_role_environment` writes it from the config.

What the lab adds around keras-tuner's pieces: the chief refuses a port another process holds
(gRPC would share it silently through SO_REUSEPORT), says which workers it is waiting for, and
stops as soon as the last worker is done; a worker gives up with a clear error when no chief
answers, and paces itself while the oracle is busy (grid, Hyperband) instead of spinning.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent import futures
from typing import Callable

import grpc
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine.oracle import LOCKS

from lab.config import DistributedConfig, Role
from lab.errors import LabError

ENVIRONMENT = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
IDLE_PAUSE_S = 1.0  # a worker's wait before asking again when the oracle has no trial ready
WAITING_REPORT_S = 60.0  # how often the chief says which workers it still waits for


class ChiefUnreachableError(LabError):
    """A worker found no chief at `search.distributed.address`."""


class AddressInUseError(LabError):
    """The chief cannot listen at `search.distributed.address`."""


def tuner_id(dist: DistributedConfig) -> str:
    """keras-tuner's id for this process: `chief` or `worker<N>` (a restarted worker keeps its id,
    so the chief hands it the trial it was running)."""
    return "chief" if dist.role is Role.chief else f"worker{dist.worker}"


def set_role_environment(dist: DistributedConfig) -> None:
    """keras-tuner's environment for this role; a plain sweep clears it, so a stray variable
    cannot turn it into a worker."""
    if dist.role in (Role.chief, Role.worker):
        os.environ.update({"KERASTUNER_TUNER_ID": tuner_id(dist), "KERASTUNER_ORACLE_IP": dist.host,
                           "KERASTUNER_ORACLE_PORT": str(dist.port)})
    else:
        for name in ENVIRONMENT:
            os.environ.pop(name, None)


def wait_for_chief(dist: DistributedConfig) -> None:
    """Blocks until the chief's gRPC server accepts connections, at most `connect_timeout_s`."""
    with grpc.insecure_channel(dist.address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=dist.connect_timeout_s)
        except grpc.FutureTimeoutError:
            raise ChiefUnreachableError(
                f"no keras-tuner chief answered at search.distributed.address={dist.address} within "
                f"{dist.connect_timeout_s:g} s: start it first (search.distributed.role=chief) or fix the address"
            ) from None


def address_in_use(dist: DistributedConfig, reason: str) -> AddressInUseError:
    return AddressInUseError(f"the chief cannot listen at search.distributed.address={dist.address} ({reason}): "
                             "another chief may be running there; choose another port")


def check_address_free(dist: DistributedConfig) -> None:
    """Before a chief touches the sweep's runs or state: nobody else listens at its address."""
    with socket.socket() as probe:
        # As servers do (gRPC too): the closing connections of a chief that just died own no port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((dist.host, dist.port))
        except OSError as error:
            raise address_in_use(dist, error.strerror) from None


def start_server(oracle, dist: DistributedConfig):
    """keras-tuner's `OracleServicer` for `oracle`, listening at `dist.address` (port not shared)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)])
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(dist.address)
    except RuntimeError as error:
        bound, reason = 0, str(error)
    else:
        reason = "the port is taken"
    if not bound:
        raise address_in_use(dist, reason)
    server.start()
    return server, servicer


def serve(oracle, dist: DistributedConfig, say: Callable[[str], None] = print) -> None:
    """Answers workers until every trial is handed out and every worker that asked has been told to
    stop (keras-tuner's own end condition), then returns."""
    server, servicer = start_server(oracle, dist)
    say(f"keras-tuner chief serving at {dist.address}; start workers with search.distributed.role=worker")
    last_report = time.monotonic()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(0.5)
            if time.monotonic() - last_report > WAITING_REPORT_S:
                say(f"chief waiting for: {waiting_for(oracle)}")
                last_report = time.monotonic()
    finally:
        server.stop(grace=1.0)


def waiting_for(oracle) -> str:
    with LOCKS[oracle]:  # the oracle's own lock: the gRPC thread changes these
        running = {tuner: trial.trial_id for tuner, trial in oracle.ongoing_trials.items()}
        idle = sorted(set(oracle.tuner_ids) - set(running))
    parts = [f"{tuner} (trial {trial})" for tuner, trial in sorted(running.items())] + [f"{t} (idle)" for t in idle]
    return ", ".join(parts) or "a worker to ask for a trial"


class PacedOracleClient(oracle_client.OracleClient):
    """keras-tuner's client, with two changes. It pauses before asking again when the oracle has
    no trial ready (keras-tuner's loop re-asks at once, flooding the chief while a grid or a
    Hyperband bracket waits for running trials). And it retries a call the chief dropped by
    dying (UNAVAILABLE) for up to `patience_s`: keras-tuner's `wait_for_ready` covers only calls
    not yet sent, so a worker would otherwise die with a chief restart."""

    def __init__(self, oracle, patience_s: float):
        super().__init__(oracle)
        self.stub = RetryingStub(self.stub, patience_s)

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
