"""TensorFlow's native start-up lines, filtered out of `run.py`'s stderr.

TensorFlow and XLA log from C++ before `TF_CPP_MIN_LOG_LEVEL` applies (absl's "All log messages
before absl::InitializeLog() is called are written to STDERR"), so every command on a CPU
machine used to begin with lines about missing CUDA drivers, oneDNN and CPU instructions. Here
the process's file descriptor 2 goes through a pipe whose reader drops those lines (`NOISE`) and
passes every other line on; Python's own `sys.stderr` (tracebacks, the lab's messages) bypasses
the pipe. `LAB_NATIVE_LOGS=1` leaves stderr alone.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Optional

NOISE = re.compile("|".join([
    r"cudart_stub\.cc.*Could not find cuda drivers",
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"cpu_feature_guard\.cc",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"rebuild TensorFlow with the appropriate compiler flags",
    r"failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation_placer\.cc.*already registered",
]))

_original_fd: Optional[int] = None


def filter_native_stderr() -> None:
    """Routes fd 2 through the filter for the rest of this process (once)."""
    global _original_fd
    if _original_fd is not None or os.environ.get("LAB_NATIVE_LOGS") == "1":
        return
    sys.stderr.flush()
    _original_fd = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = os.fdopen(os.dup(_original_fd), "w", buffering=1)
    threading.Thread(target=relay, args=(read, _original_fd), daemon=True, name="native-stderr-filter").start()


def relay(read: int, out: int) -> None:
    with os.fdopen(read, "rb") as pipe:
        for line in pipe:
            if not NOISE.search(line.decode(errors="replace")):
                os.write(out, line)


def restore_stderr() -> None:
    """fd 2 as it was: before `os.execv` (the filter's thread does not survive it)."""
    if _original_fd is not None:
        sys.stderr.flush()
        os.dup2(_original_fd, 2)
