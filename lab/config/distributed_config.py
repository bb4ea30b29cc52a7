"""The schema of keras-tuner's distributed mode (`search.distributed`): a sweep process's role and
where the chief listens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import List, Optional

from lab.errors import require


class Role(Enum):
    """A sweep's process: `none` runs it alone; keras-tuner's distributed mode has one `chief` (the
    oracle, serving gRPC) and `worker`s (each trains trials); `launcher` starts a chief plus
    local workers, one per GPU."""

    none = "none"
    chief = "chief"
    worker = "worker"
    launcher = "launcher"


@dataclass
class DistributedConfig:
    """keras-tuner's distributed mode (`search.distributed.*`). The gRPC channel has no
    authentication: keep `address` on loopback or a private network (docs/sweeps.md, "Scaling out")."""

    role: Role = Role.none
    address: str = "127.0.0.1:8000"  # HOST:PORT the chief binds to and workers connect to
    # This worker's index: its keras-tuner id is `worker<N>`; a restarted worker resumes its trial.
    worker_index: int = 0
    connect_timeout_s: float = 300.0  # how long a worker waits for the chief before giving up
    local_workers: Optional[int] = None  # launcher: workers it starts here (null: one per device)
    # launcher: GPUs to pin workers to, numbered as nvidia-smi does (null: those CUDA_VISIBLE_DEVICES
    # names, else every GPU nvidia-smi lists)
    devices: Optional[List[int]] = None
    # launcher: restarts of a process killed by a signal (it resumes its trial)
    max_restarts: int = 3
    # chief: trials its saved state lists as running go back in the queue instead of waiting for
    # their workers (the launcher sets it when it starts every process afresh)
    requeue_running: bool = False

    def __post_init__(self) -> None:
        host, _, port = self.address.rpartition(":")
        require(
            bool(host) and port.isdigit() and 0 < int(port) < 65536,
            "search.distributed.address",
            self.address,
            "HOST:PORT",
        )
        require(
            self.worker_index >= 0, "search.distributed.worker_index", self.worker_index, ">= 0"
        )
        require(
            self.connect_timeout_s > 0,
            "search.distributed.connect_timeout_s",
            self.connect_timeout_s,
            "> 0",
        )
        require(
            self.local_workers is None or self.local_workers > 0,
            "search.distributed.local_workers",
            self.local_workers,
            "null or > 0",
        )
        require(
            self.max_restarts >= 0, "search.distributed.max_restarts", self.max_restarts, ">= 0"
        )

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])
