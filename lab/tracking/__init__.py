"""MLflow tracking: runs with honest statuses, and the Keras callback that logs each epoch."""

from lab.tracking.runs import ERROR_TAG, TrackedRun, tracked_run

__all__ = ["ERROR_TAG", "TrackedRun", "tracked_run"]
