"""`search.distributed.role=launcher`: a chief plus local workers on one machine, one per GPU.

Each role is `python run.py` with the user's own overrides plus its role, so what runs is
exactly what a user would start by hand on several machines. Workers are pinned to one GPU each
(`CUDA_VISIBLE_DEVICES`, read by TensorFlow and JAX alike); the chief gets none. A process killed
by a signal (SIGKILL, the OOM killer) is started again with the same role and index, up to
`max_restarts` times: a worker gets its interrupted trial back from the chief, a chief resumes
from its saved state. When the tracking URI is a SQLite file, the launcher serves it with
`mlflow server` on loopback for the run, so every process writes through one server (where
only mlflow-skinny is installed, as on the GPU machines here, they write the file directly).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from lab.config import PROJECT_ROOT, RunConfig, command_line
from lab.errors import LabError
from lab.tracking.runs import is_server, sigterm_raises, sqlite_file
from lab.tracking.server import local_server, server_installed

RUN_PY = PROJECT_ROOT / "run.py"
OWN_KEYS = (
    "search.distributed.role",
    "search.distributed.worker_index",
    "search.distributed.requeue_running",
    "tracking.uri",
)  # set per role
POLL_S = 0.5
CHIEF_GRACE_S = 300.0  # after the last worker exits, for the chief's report
KILL_AFTER_S = 30.0  # after SIGTERM, before SIGKILL


class LaunchFailed(LabError):
    """A role exited with an error (or was killed more often than `max_restarts`)."""


@dataclass
class RoleProcess:
    """One `run.py` process of the sweep, restarted when a signal kills it."""

    name: str
    argv: List[str]
    env: Dict[str, str]
    log_path: Path
    process: Optional[subprocess.Popen] = None
    first_start_only: List[str] = field(default_factory=list)  # overrides for its first start
    restarts: int = 0
    exit_code: Optional[int] = None
    threads: List[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        argv = [*self.argv, *(self.first_start_only if self.restarts == 0 else [])]
        self.process = subprocess.Popen(
            [sys.executable, str(RUN_PY), *argv],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        thread = threading.Thread(
            target=relay, args=(self.process.stdout, self.name, self.log_path), daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def poll(self) -> Optional[int]:
        return self.process.poll() if self.exit_code is None else self.exit_code


def relay(stream, name: str, log_path: Path) -> None:
    """Copies a role's output to ours, each line prefixed with the role, and to its log file."""
    with open(log_path, "a") as log:
        for line in stream:
            print(f"[{name}] {line}", end="", flush=True)
            log.write(line)
            log.flush()


def users_gpus(env: Dict[str, str]) -> List[str]:
    """The GPUs `CUDA_VISIBLE_DEVICES` names ([] when it is unset or empty)."""
    return [
        device.strip()
        for device in env.get("CUDA_VISIBLE_DEVICES", "").split(",")
        if device.strip()
    ]


def smi_gpus() -> List[str]:
    """Every GPU `nvidia-smi -L` lists, by index ([] without NVIDIA GPUs)."""
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True, check=False
    ).stdout
    return [
        str(index)
        for index, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))
    ]


def user_overrides() -> List[str]:
    """The command line's overrides, less the keys each role sets for itself."""
    if not command_line.in_hydra_run():
        raise LabError(
            "the launcher starts `python run.py` processes: run it as "
            "`python run.py task=search search.distributed.role=launcher ...`"
        )
    return [o for o in command_line.overrides() if command_line.override_key(o) not in OWN_KEYS]


def plan_roles(
    cfg: RunConfig, overrides: List[str], tracking_uri: str, log_dir: Path, env: Dict[str, str]
) -> List[RoleProcess]:
    """The chief (no GPU) and the workers, worker i pinned to device i mod len(devices)."""
    dist = cfg.search.distributed
    given = users_gpus(env) if dist.devices is None else []
    devices = (
        [str(device) for device in dist.devices]
        if dist.devices is not None
        else given or smi_gpus()
    )
    users_numbering = "CUDA_DEVICE_ORDER" in env or bool(given)
    # CUDA numbers GPUs as nvidia-smi does
    order = {} if users_numbering else {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    count = dist.local_workers or max(len(devices), 1)
    common = [*overrides, f"tracking.uri={tracking_uri}"]
    # Every worker starts now, so no trial the chief's saved state lists as running has a worker
    # left: those go back in the queue. A chief restarted later leaves them with their workers.
    roles = [
        RoleProcess(
            "chief",
            [*common, "search.distributed.role=chief", f"hydra.run.dir={log_dir / 'chief'}"],
            {**env, "CUDA_VISIBLE_DEVICES": ""},
            log_dir / "chief.log",
            first_start_only=["search.distributed.requeue_running=true"],
        )
    ]
    for index in range(count):
        pinned = {**order, **pin(devices, index, count)} if devices else {}
        roles.append(
            RoleProcess(
                f"worker{index}",
                [
                    *common,
                    "search.distributed.role=worker",
                    f"search.distributed.worker_index={index}",
                    f"hydra.run.dir={log_dir / f'worker{index}'}",
                ],
                {**env, **pinned},
                log_dir / f"worker{index}.log",
            )
        )
    return roles


def pin(devices: List[str], index: int, count: int) -> Dict[str, str]:
    """Worker `index`'s environment: its GPU, and where several workers share one, each its share
    of the memory (JAX and TensorFlow would otherwise each claim most of it at start)."""
    sharing = -(-count // len(devices))  # workers on the busiest device
    env = {"CUDA_VISIBLE_DEVICES": devices[index % len(devices)]}
    if sharing > 1:
        env.update(
            {
                "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / sharing:.2f}",
                "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            }
        )
    return env


@contextmanager
def tracking_for_roles(uri: str, log_dir: Path) -> Iterator[str]:
    """The URI every role logs to: the given server, or `mlflow server` over the given SQLite file."""
    if is_server(uri):
        yield uri
        return
    if sqlite_file(uri) is None:
        raise LabError(
            f"tracking.uri={uri}: the launcher needs a SQLite file or an http(s):// server"
        )
    if not server_installed():
        print(
            f"no `mlflow server` here (mlflow-skinny?): the roles write {uri} directly", flush=True
        )
        yield uri
        return
    with local_server(uri, log_dir / "mlflow-server.log") as served:
        print(f"serving {uri} at {served} for the sweep's processes", flush=True)
        yield served


def launch(cfg: RunConfig, env: Optional[Dict[str, str]] = None) -> None:
    """Runs a chief and the local workers of one sweep on this machine, to the sweep's end.

    Args:
        cfg: the sweep's config, with `search.distributed.role=launcher`; `local_workers`
            (default: one per device) and `max_restarts` say how many and how often.
        env: the environment the processes start from (default: this process's).

    Raises:
        LaunchFailed: a process failed past its restarts. The others are then terminated:
            their runs end KILLED, and the same command resumes the sweep.
    """
    overrides, log_dir = user_overrides(), command_line.output_dir() / "launcher"
    log_dir.mkdir(parents=True, exist_ok=True)
    max_restarts = cfg.search.distributed.max_restarts
    # SIGTERM cleans up too
    with sigterm_raises(), tracking_for_roles(cfg.tracking.uri, log_dir) as uri:
        roles = plan_roles(cfg, overrides, uri, log_dir, dict(env or os.environ))
        print(f"launching {', '.join(map(label, roles))}; logs in {log_dir}", flush=True)
        try:
            for role in roles:
                role.start()
            supervise(roles, max_restarts)
        except BaseException:
            stop_all(roles, grace_s=0)
            raise
        stop_all(roles, grace_s=60)


def label(role: RoleProcess) -> str:
    device = role.env.get("CUDA_VISIBLE_DEVICES")
    return f"{role.name} (GPU {device})" if role.name != "chief" and device else role.name


def supervise(
    roles: List[RoleProcess], max_restarts: int, chief_grace_s: float = CHIEF_GRACE_S
) -> None:
    """Until the chief exits: restarts roles killed by a signal, fails on an error exit. Workers
    exit once the chief has no trial left for them; the chief then writes its report. If it is
    still running `chief_grace_s` after the last worker left, it waits for a trial no worker
    here holds (a worker index from an earlier run of the sweep): that fails, naming its log."""
    chief, workers = roles[0], roles[1:]
    workers_done_at = None
    while True:
        for role in roles:
            code = role.poll()
            if code is None or role.exit_code is not None:
                continue
            if code < 0 and role.restarts < max_restarts:
                role.restarts += 1
                print(
                    f"{role.name} was killed by signal {-code}: restart {role.restarts} of {max_restarts}",
                    flush=True,
                )
                role.start()
                if role is chief:
                    workers_done_at = None  # its report starts again
                continue
            role.exit_code = code
            if code != 0:
                raise LaunchFailed(
                    f"{role.name} exited with {describe(code)} (log {role.log_path})"
                )
        if chief.exit_code == 0:
            return
        if workers_done_at is None and all(worker.exit_code is not None for worker in workers):
            workers_done_at = time.monotonic()
        if workers_done_at is not None and time.monotonic() - workers_done_at > chief_grace_s:
            raise LaunchFailed(
                f"every worker has finished but the chief still runs after {chief_grace_s:g} s: it "
                f"waits for a trial held by a worker index not started here (log {chief.log_path})"
            )
        time.sleep(POLL_S)


def describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"status {code}"


def stop_all(roles: List[RoleProcess], grace_s: float) -> None:
    """Waits up to `grace_s` for the roles to exit on their own (workers do once the chief has
    stopped them), then terminates what is left (SIGTERM: their runs end KILLED)."""
    deadline = time.monotonic() + grace_s
    for role in roles:
        if role.process is None:
            continue
        try:
            role.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            role.process.terminate()
            try:
                role.process.wait(KILL_AFTER_S)
            except subprocess.TimeoutExpired:  # stuck in native code (a compile): no clean end
                role.process.kill()
                role.process.wait()
        for thread in role.threads:
            thread.join(timeout=5)
