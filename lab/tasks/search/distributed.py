"""keras-tuner's distributed mode, set up from `search.distributed`.

One chief holds the oracle and answers keras-tuner's own gRPC service (`OracleServicer`); each
worker runs keras-tuner's `OracleClient` and trains the trials it is given. keras-tuner reads a
process's role from its environment (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`); `set_role_environment` writes it from the config.

What the lab adds around keras-tuner's pieces: the chief refuses a port another process holds
(gRPC would share it silently through SO_REUSEPORT), says which workers it is waiting for, and
stops as soon as the last worker is done; a worker gives up with a clear error when no chief
answers, and paces itself while the oracle is busy (grid, Hyperband) instead of spinning.
The keras-tuner internals all this touches live in `lab/compat/keras_tuner.py`.
"""

from __future__ import annotations

import os
import time
from concurrent import futures
from typing import Callable

import grpc

from lab.compat.keras_tuner import add_oracle_service, chief_may_exit, trials_by_tuner
from lab.config import DistributedConfig, Role
from lab.errors import LabError
from lab.tasks.search.address import address_in_use

ENVIRONMENT = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
WAITING_REPORT_S = 60.0  # how often the chief says which workers it still waits for


class ChiefUnreachableError(LabError):
    """A worker found no chief at `search.distributed.address`."""


def tuner_id(dist: DistributedConfig) -> str:
    """keras-tuner's id for this process: `chief` or `worker<N>` (a restarted worker keeps its id,
    so the chief hands it the trial it was running)."""
    return "chief" if dist.role is Role.chief else f"worker{dist.worker_index}"


def set_role_environment(dist: DistributedConfig) -> None:
    """keras-tuner's environment for this role; a plain sweep clears it, so a stray variable
    cannot turn it into a worker."""
    if dist.role in (Role.chief, Role.worker):
        os.environ.update(
            {
                "KERASTUNER_TUNER_ID": tuner_id(dist),
                "KERASTUNER_ORACLE_IP": dist.host,
                "KERASTUNER_ORACLE_PORT": str(dist.port),
            }
        )
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


def start_server(oracle, dist: DistributedConfig):
    """keras-tuner's `OracleServicer` for `oracle`, listening at `dist.address` (port not shared)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)]
    )
    servicer = add_oracle_service(server, oracle)
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
    say(
        f"keras-tuner chief serving at {dist.address}; start workers with search.distributed.role=worker"
    )
    last_report = time.monotonic()
    try:
        while not chief_may_exit(servicer, oracle):
            time.sleep(0.5)
            if time.monotonic() - last_report > WAITING_REPORT_S:
                say(f"chief waiting for: {waiting_for(oracle)}")
                last_report = time.monotonic()
    finally:
        server.stop(grace=1.0)


def waiting_for(oracle) -> str:
    running, idle = trials_by_tuner(oracle)
    parts = [f"{tuner} (trial {trial})" for tuner, trial in sorted(running.items())] + [
        f"{t} (idle)" for t in idle
    ]
    return ", ".join(parts) or "a worker to ask for a trial"
