"""Facts about where a run executes (backend, device, code version), and process-wide settings."""

from __future__ import annotations

import importlib
import subprocess

import keras

from lab.config import PROJECT_ROOT


def backend() -> str:
    return keras.backend.backend()


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
    except Exception as error:  # noqa: BLE001  (a description must never stop a run)
        return f"unknown ({type(error).__name__})"
    return "unknown"


def git_commit() -> str:
    """HEAD of the project's repository, with "-dirty" when tracked files have changed."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def set_precision(policy: str) -> None:
    """Sets Keras' global dtype policy: float32, mixed_bfloat16 or mixed_float16."""
    keras.config.set_dtype_policy(policy)
