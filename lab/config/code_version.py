"""Which code a run ran: the project's git HEAD. Light (no Keras), for tasks that load no framework."""

from __future__ import annotations

import subprocess

from lab.config import PROJECT_ROOT


def git_commit() -> str:
    """HEAD of the project's repository, with "-dirty" when tracked files have changed."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
