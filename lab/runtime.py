"""Facts about where a run executes (backend, device, code version), and process-wide settings."""

from __future__ import annotations

import importlib
import os
import platform
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional

import keras

from lab.config.code_version import git_commit
from lab.tracking.tags import BACKEND_TAG, DEVICE_TAG, GIT_COMMIT_TAG

if TYPE_CHECKING:
    from lab.config import TrainConfig


def backend() -> str:
    return keras.backend.backend()


def backend_version() -> str:
    return getattr(importlib.import_module(backend()), "__version__", "?")


def provenance() -> Dict[str, str]:
    """Where and with what a result was measured: for the files results are kept in."""
    import importlib.metadata as metadata

    versions = {name: metadata.version(name) for name in ("keras", "keras-tuner", "mlflow")}
    return {
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPU cores)",
        "device": device_description(),
        "backend": f"{backend()} {backend_version()}",
        "python": platform.python_version(),
        **versions,
        "git commit": git_commit(),
        "command": " ".join(["python", *sys.argv])
        if sys.argv and sys.argv[0]
        else "(library call)",
    }


def reference_loop_seconds(additions: int = 20_000_000) -> float:
    """The day's speed: seconds for a pure-Python loop of 20M additions (1.3 s to 5.3 s on this
    project's machines from day to day). Written beside every wall time, so that figures from
    different days compare: a run on a day of 3.8 s is expected to take about twice one of 1.9 s.
    With fewer `additions`, the time of that loop scaled to 20M (the loop is linear in its length):
    a sweep measures a quarter of it, to spend under a second of a slow day on it."""
    import time

    loop = compile(f"s = 0\nfor i in range({additions}):\n    s += i\n", "<reference loop>", "exec")
    started = time.perf_counter()
    exec(loop, {})  # at module level, as `python -c` runs it: globals, not a function's fast locals
    return round((time.perf_counter() - started) * 20_000_000 / additions, 2)


def write_measurement(record: Dict[str, object], path: Path) -> Path:
    """A benchmark's record (which carries `provenance()`) as JSON at `path`, its folder created."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return path


def provenance_tags() -> Dict[str, str]:
    """The MLflow tags every run of the lab carries: backend, device and code version."""
    return {
        BACKEND_TAG: backend(),
        DEVICE_TAG: device_description(),
        GIT_COMMIT_TAG: git_commit(),
    }


def device_description() -> str:
    """The accelerator the backend will use, e.g. "gpu:NVIDIA H200" or "cpu"; isolated here so that
    no model or training code imports a backend directly."""
    name = backend()
    try:
        if name == "jax":
            device = importlib.import_module("jax").devices()[0]
            return f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":")
        if name == "tensorflow":
            tf = importlib.import_module("tensorflow")
            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return f"gpu:{details.get('device_name', gpus[0].name)}" if gpus else "cpu"
        if name == "torch":
            torch = importlib.import_module("torch")
            return f"gpu:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    except Exception as error:
        return f"unknown ({type(error).__name__})"
    return "unknown"


def resident_mib() -> float:
    """This process's resident set size in MiB (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def set_precision(policy: str) -> None:
    """Sets Keras' global dtype policy: float32, mixed_bfloat16 or mixed_float16."""
    keras.config.set_dtype_policy(policy)


def configure(train: "TrainConfig") -> None:
    """The process-wide settings of a training config: dtype policy and compilation cache."""
    set_precision(train.precision.value)
    enable_compile_cache(train.compile_cache)


def enable_compile_cache(directory: Optional[str]) -> Optional[Path]:
    """Points XLA's persistent compilation cache at `directory/<backend>`, so a model compiled
    once (an ablation's first seed) loads from disk in every later process and trial.

    JAX: `jax_compilation_cache_dir`. TensorFlow: `--tf_xla_persistent_cache_directory` in
    TF_XLA_FLAGS, read when XLA first compiles. Torch has none."""
    if directory is None or backend() == "torch":
        return None
    path = Path(directory).expanduser().resolve() / backend()
    path.mkdir(parents=True, exist_ok=True)
    if backend() == "jax":
        jax = importlib.import_module("jax")
        jax.config.update("jax_compilation_cache_dir", str(path))
        # models, not single ops
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    elif backend() == "tensorflow":
        flags = re.sub(
            r"--tf_xla_persistent_cache_directory=\S*", "", os.environ.get("TF_XLA_FLAGS", "")
        )
        os.environ["TF_XLA_FLAGS"] = (
            f"{flags.strip()} --tf_xla_persistent_cache_directory={path}".strip()
        )
    return path
