"""What a `tracking.uri` names, read from its text alone (no MLflow, no config)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def is_server(uri: str) -> bool:
    """Whether `uri` names a tracking server (as opposed to a store this process opens itself)."""
    return uri.startswith(("http://", "https://"))


def sqlite_file(uri: str) -> Optional[Path]:
    """The database file of a `sqlite:///PATH` store; None for any other URI."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]).expanduser() if uri.startswith(prefix) else None
