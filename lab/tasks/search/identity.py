"""What makes a sweep the same sweep, and the record that ties its tuner state to its MLflow runs.

A sweep is resumed by name: its keras-tuner state (`search.directory/search.name/`) and its
parent run in `tracking.uri`. Resuming is only right when both belong to one sweep and the
command defines the same sweep. Its fingerprint is the config that decides what its trials are
and how they train (`FINGERPRINT`); it goes into the tuner folder (`sweep.json`, with the parent
run's id) and onto the parent run (tag `lab.fingerprint`, artifact `fingerprint.json`). Before any
data is loaded or run touched, `check_resumable` refuses:
- a store that has the sweep with a tuner folder that has not (trial ids would restart at 0 over
  its recorded runs), or another sweep's state, or the reverse;
- a command whose fingerprint differs, naming the keys that differ.
Where a run is recorded and how processes meet (`tracking.*`, `search.distributed.*`), how many
trials to run and how the process restarts are not part of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional

from mlflow.entities import Run

from lab.config import RunConfig
from lab.config.overrides import flat_config
from lab.config.spec_hash import HOW_IT_RUNS
from lab.errors import LabError
from lab.tracking.tags import FINGERPRINT_TAG

RECORD_FILE = "sweep.json"
STATE_FILE = "oracle.json"  # keras-tuner's oracle state, written once a sweep has begun
FINGERPRINT = (
    "seed",
    "model",
    "data",
    "train",
    "search.space",
    "search.tuner",
    "search.objective",
    "search.direction",
    "search.executions_per_trial",
    "search.max_epochs",
    "search.factor",
    "search.hyperband_resume",
    "search.max_params",
    "search.max_macs",
    "search.max_activation_bytes",
    "search.pruner",
    "search.pruner_warmup",
    "search.pruner_min_trials",
)


class SweepMismatchError(LabError):
    """The command, the tuner state and the store do not describe one sweep."""


def covered(key: str, prefixes) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in prefixes)


def fingerprint(cfg: RunConfig) -> Dict[str, str]:
    """{dotted key: value} of everything that defines the sweep (`FINGERPRINT`)."""
    return {
        key: str(value)
        for key, value in flat_config(cfg).items()
        if covered(key, FINGERPRINT) and not covered(key, HOW_IT_RUNS)
    }


def digest(prints: Dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:16]


def differences(recorded: Dict[str, str], now: Dict[str, str]) -> str:
    keys = sorted(set(recorded) | set(now), key=lambda k: (k not in recorded, k))
    changed = [
        f"{key}: {recorded.get(key, '(unset)')} -> {now.get(key, '(unset)')}"
        for key in keys
        if recorded.get(key) != now.get(key)
    ]
    return "; ".join(changed[:8]) + (f"; and {len(changed) - 8} more" if len(changed) > 8 else "")


def read_record(folder: Path) -> Optional[dict]:
    path = folder / RECORD_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise SweepMismatchError(
            f"{path} is not the JSON record the lab writes: restore it, or run the sweep "
            "under a new search.name"
        ) from None


def write_record(folder: Path, parent_run_id: str, prints: Dict[str, str]) -> None:
    """Written whole or not at all (a temporary file renamed over it)."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{RECORD_FILE}.tmp"
    temporary.write_text(
        json.dumps({"parent_run_id": parent_run_id, "fingerprint": prints}, indent=1)
    )
    os.replace(temporary, folder / RECORD_FILE)


@functools.cache  # composing the defaults takes 0.2-0.6 s; conf/ does not change under a running process
def default_fingerprint() -> Dict[str, str]:
    """The fingerprint of `task=search` with nothing else set."""
    from lab.config import run_config

    return fingerprint(run_config(["task=search"]))


def without_keys_added_since(
    recorded: Dict[str, str], now: Dict[str, str], cfg: RunConfig
) -> Dict[str, str]:
    """`now` less the keys a record written by an older lab lacks and that are at their default:
    that lab behaved as the default (no budget, no pruner, ...), so they change nothing. Not
    `search.hyperband_resume` in a Hyperband sweep: that lab trained each rung from scratch on
    the rung's own schedule, which no setting of today's reproduces."""
    from lab.config import TunerName

    defaults = default_fingerprint()
    changes_hyperband = cfg.search.tuner is TunerName.hyperband
    return {
        key: value
        for key, value in now.items()
        if key in recorded
        or value != defaults.get(key)
        or (key == "search.hyperband_resume" and changes_hyperband)
    }


def check_resumable(cfg: RunConfig, folder: Path, parent: Optional[Run]) -> None:
    """Raises `SweepMismatchError` unless the tuner folder and the store's parent run (either or
    both absent for a new sweep) are one sweep, defined as this command defines it."""
    name, uri = cfg.search.name, cfg.tracking.uri
    has_state, record = (folder / STATE_FILE).exists(), read_record(folder)
    fresh = f"start it afresh under a new search.name (search.name={name}_2)"
    if parent is None:
        if has_state:
            raise SweepMismatchError(
                f"{folder} holds the keras-tuner state of a sweep {name}, but tracking.uri={uri} has no run of it: "
                f"use the tracking.uri it ran with, or {fresh}"
            )
        return
    where = f"tracking.uri={uri} has sweep {name} (parent run {parent.info.run_id}, {parent.info.status})"
    if not has_state and record is not None and record["parent_run_id"] == parent.info.run_id:
        return  # stopped after its parent was opened and before keras-tuner saved a first trial
    if not has_state:
        recorded_dir = parent.data.params.get("search.directory", "?")
        raise SweepMismatchError(
            f"{where} but {folder} holds no keras-tuner state for it: its trial ids would restart at 0 over the "
            f"recorded runs. Use search.directory={recorded_dir} (where it ran), or {fresh}"
        )
    if record is not None and record["parent_run_id"] != parent.info.run_id:
        raise SweepMismatchError(
            f"{where} but {folder} belongs to another sweep (parent run "
            f"{record['parent_run_id']}): {fresh}"
        )
    if record is None:
        return  # a sweep from before fingerprints: nothing to compare with
    recorded = {k: v for k, v in record["fingerprint"].items() if not covered(k, HOW_IT_RUNS)}
    now = fingerprint(cfg)  # a record written before a key joined HOW_IT_RUNS still holds it
    if recorded != now:
        now = without_keys_added_since(recorded, now, cfg)
    if recorded != now:
        raise SweepMismatchError(
            f"search.name={name} was started with another definition ({differences(recorded, now)}): "
            f"resuming it would mix two sweeps. Run it as it was defined, or {fresh}"
        )


def check_same_as_chief(cfg: RunConfig, parent: Run) -> None:
    """A distributed worker trains the chief's sweep as the chief defined it."""
    recorded, own = parent.data.tags.get(FINGERPRINT_TAG), digest(fingerprint(cfg))
    if recorded is not None and recorded != own:
        raise SweepMismatchError(
            f"this worker's config defines search.name={cfg.search.name} differently from "
            f"its chief's (fingerprint {own}, chief's {recorded}: see "
            f"fingerprint.json on parent run {parent.info.run_id}): give every role the same overrides"
        )
