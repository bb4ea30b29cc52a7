"""One owner per sweep: a lock file in the sweep's tuner folder, held while a process runs it.

Two processes running one sweep would each open a parent run, train every trial and overwrite
each other's oracle files. The lock is an advisory `flock` on `owner.lock`: the kernel releases it
when its process ends however it ends (kill -9 included), so a stale lock from a dead process is
simply taken over; a restart by `os.execv` closes it and takes it again. The file says who holds
it (pid, host, since when) for the refusal message. A chief holds it for its distributed sweep;
its workers do not. `flock` is local to one machine: on a network filesystem shared by several
hosts, give each chief its own `search.directory`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab.errors import LabError

LOCK_FILE = "owner.lock"


class SweepBusyError(LabError):
    """Another live process runs this sweep."""


def holder_line(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since}"


def open_lock(path: Path):
    """The lock file, opened for writing without following a symbolic link (one planted there
    would have the lock record written into the file it points at) and only if it is a regular file."""
    try:
        descriptor = os.open(
            path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644
        )
    except OSError as error:
        raise LabError(
            f"{path} cannot be the sweep's lock file ({error.strerror}: a symbolic link or "
            f"unwritable); remove it and run again"
        ) from None
    status = os.fstat(descriptor)
    # a hard link would have another file truncated
    if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:
        os.close(descriptor)
        raise LabError(
            f"{path} is not a regular file of its own (a device, a pipe or a hard link to another "
            f"file); remove it and run again"
        )
    return os.fdopen(descriptor, "r+")


@contextmanager
def sweep_owner(folder: Path, name: str) -> Iterator[None]:
    """Holds the sweep's lock while the block runs; refuses at once if a live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = open_lock(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SweepBusyError(
            f"search.name={name} is already running: {holder_line(path)} holds {path}. "
            f"Wait for it, stop it, or run another search.name"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        )
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
