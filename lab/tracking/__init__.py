"""MLflow tracking: runs with honest statuses, and the Keras callback that logs each epoch."""

from lab.tracking.runs import TrackedRun, tracked_run
from lab.tracking.tags import ERROR_TAG

__all__ = ["ERROR_TAG", "TrackedRun", "tracked_run"]
