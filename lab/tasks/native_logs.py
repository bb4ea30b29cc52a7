"""TensorFlow's native start-up lines, filtered out of `run.py`'s stderr.

TensorFlow and XLA log from C++ before `TF_CPP_MIN_LOG_LEVEL` applies (absl's "All log messages
before absl::InitializeLog() is called are written to STDERR"), so every command on a CPU
machine used to begin with lines about missing CUDA drivers, oneDNN and CPU instructions. Here
the process's file descriptor 2 goes through a pipe whose reader drops those lines (`NOISE`) and
passes every other line on; Python's own `sys.stderr` (tracebacks, the lab's messages) bypasses
the pipe. The filter stands only until the framework has started (`framework_started`): a native
crash message later goes straight to the terminal. `LAB_NATIVE_LOGS=1` leaves stderr alone.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Optional

NOISE = re.compile(
    "|".join(
        [
            r"cudart_stub\.cc.*Could not find cuda drivers",
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"oneDNN custom operations are on",
            r"cpu_feature_guard\.cc",
            r"This TensorFlow binary is optimized to use available CPU instructions",
            r"rebuild TensorFlow with the appropriate compiler flags",
            r"failed call to cuInit",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation_placer\.cc.*already registered",
        ]
    )
)

_original_fd: Optional[int] = None
_relay: Optional[threading.Thread] = None


def filter_native_stderr() -> None:
    """Routes fd 2 through the filter until `restore_stderr` (once)."""
    global _original_fd, _relay
    if _original_fd is not None or os.environ.get("LAB_NATIVE_LOGS") == "1":
        return
    sys.stderr.flush()
    _original_fd = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = os.fdopen(os.dup(_original_fd), "w", buffering=1)
    _relay = threading.Thread(
        target=relay, args=(read, _original_fd), daemon=True, name="native-stderr-filter"
    )
    _relay.start()


def relay(read: int, out: int) -> None:
    with os.fdopen(read, "rb") as pipe:
        for line in pipe:
            if not NOISE.search(line.decode(errors="replace")):
                os.write(out, line)


def framework_started() -> None:
    """Starts Keras' backend and its device (TensorFlow prints its second round of start-up lines
    at the first operation), then gives fd 2 back: from here on a native crash message goes to
    the terminal directly, not through a thread that an abort would kill first."""
    import keras

    keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
    restore_stderr()


def restore_stderr() -> None:
    """fd 2 as it was, after the filter has passed on every line written so far (also before
    `os.execv`, which the filter's thread would not survive)."""
    global _original_fd, _relay
    if _original_fd is None:
        return
    sys.stderr.flush()
    # closes the pipe's last write end: the relay reads to its end and stops
    os.dup2(_original_fd, 2)
    if _relay is not None:
        _relay.join(timeout=5)
    _original_fd, _relay = None, None
