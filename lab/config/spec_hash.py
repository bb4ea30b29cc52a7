"""What a training run trained, as one hash (tag `lab.spec_hash`): runs with the same hash trained
the same network on the same data under the same protocol, whichever sweep, experiment or seed
ran them, so a report can pool their seeds.

Hashed: the resolved model spec (weights file included: it is the starting point); the data
(every `data.` key but where the files are, plus the input shape the network saw); the training
protocol (every `train.` key but how the run prints, caches and compiles); and, for a Hyperband
rung that continued another, the epoch it started from. Not hashed: the seed, `tracking.`,
`search.` and where things are written. Imports neither Keras nor MLflow.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Optional, Sequence

from lab.config.overrides import flat_config

# Keys of `data.` and `train.` that say where or how a run runs, not what it trains: the one list
# the spec hash and a sweep's fingerprint leave out. from_run=RUN_ID takes them from the recorded
# run (it runs again as that run ran), but for the compile cache, which is this machine's.
HOW_IT_RUNS = (
    "data.root",
    "train.verbose",
    "train.compile_cache",
    "train.reuse_compiled",
    "train.jit_compile",
)


def what_is_trained(cfg, input_shape: Sequence[int], initial_epoch: int = 0) -> Dict[str, Any]:
    """{dotted key: value} that `spec_hash` hashes, for `cfg` (a RunConfig) trained on inputs of
    `input_shape`, from `initial_epoch` (a continued Hyperband rung)."""
    flat = {
        key: value
        for key, value in flat_config(cfg).items()
        if key.startswith(("model.", "data.", "train.")) and not key.startswith(HOW_IT_RUNS)
    }
    flat["data.input_shape"] = list(input_shape)
    if initial_epoch:
        flat["train.initial_epoch"] = initial_epoch
    return flat


def spec_hash(cfg, input_shape: Sequence[int], initial_epoch: Optional[int] = 0) -> str:
    """16 hex digits naming what a run trained (`what_is_trained`)."""
    described = json.dumps(
        what_is_trained(cfg, input_shape, initial_epoch or 0), sort_keys=True, default=str
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]
