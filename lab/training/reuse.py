"""One compiled model kept for the next run of the same network under the same protocol.

An ablation grid trains each network under several seeds, one after the other. Tracing a
training step is per model: about 13 s for ResNet-56 and 4.5 s for ResNet-20 on 2 CPU cores
(TensorFlow, no XLA), a third of a quick-mode run. A run whose network and protocol match the
previous run's trains that compiled model instead of its own, after giving it its own initial
state: every variable of its freshly built (seeded) model, including the standardisation
statistics and the random-seed states, and the optimizer's state from before its first step.
What the run computes is what the fresh model would have computed (`tests/test_train.py`
checks the histories match); only the tracing is skipped.

The backend's caches hold the kept model's compiled step, so they stay while it is kept: seeding
and `free_memory` between runs leave TensorFlow's kernel cache (`lab.compat.tensorflow`) and JAX's
compiled functions alone, and both are emptied when another network replaces the kept one.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager, List, Optional

import keras
import numpy as np

from lab.compat import tensorflow as tensorflow_compat


@dataclass
class Compiled:
    key: str
    model: keras.Model
    optimizer_start: List[np.ndarray]  # the optimizer's variables before its first step
    runs: int = 1  # how many runs have trained this model


_last: Optional[Compiled] = None  # the previous run's, in this process


def reuse_key(*parts: object) -> str:
    """Everything the traced step depends on (the spec, the input, the protocol, the backend and
    dtype policy), as one string."""
    return repr((keras.backend.backend(), keras.config.dtype_policy().name, *parts))


def model_to_fit(fresh: keras.Model, key: str) -> keras.Model:
    """The previous run's compiled model holding `fresh`'s initial state when their keys and
    variables match; otherwise `fresh` itself (compiled, not yet trained), kept for the next run."""
    global _last
    if (
        _last is not None
        and _last.key == key
        and same_shapes(_last.model.variables, fresh.variables)
    ):
        for kept, new in zip(_last.model.variables, fresh.variables):
            kept.assign(new)
        for variable, start in zip(_last.model.optimizer.variables, _last.optimizer_start):
            variable.assign(start)
        _last.runs += 1
        return _last.model
    if _last is not None:
        _last = None  # the kept model goes, and the compiled steps only it would run
        empty_backend_caches()
    fresh.optimizer.build(fresh.trainable_variables)
    _last = Compiled(key, fresh, [keras.ops.convert_to_numpy(v) for v in fresh.optimizer.variables])
    return fresh


def same_shapes(kept: list, new: list) -> bool:
    return len(kept) == len(new) and all(
        tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype for a, b in zip(kept, new)
    )


def seed(value: int) -> None:
    """`keras.utils.set_random_seed(value)`, leaving the kept model's compiled step cached (where
    none is kept, exactly Keras' call)."""
    with compiled_step_kept():
        keras.utils.set_random_seed(value)


def free_memory() -> None:
    """Frees what the last run left (Keras' graph state, collected), and the backend's compiled
    functions unless a compiled model is kept for the next run."""
    with compiled_step_kept():
        keras.backend.clear_session()
    if _last is None:
        empty_backend_caches()


def compiled_step_kept() -> ContextManager[None]:
    """A block in which Keras' seeding and clearing keep TensorFlow's kernel cache, while a
    compiled model is kept; otherwise a block that changes nothing."""
    return tensorflow_compat.kernel_cache_kept() if _last is not None else nullcontext()


def empty_backend_caches() -> None:
    """Drops every compiled function: TensorFlow's kernel cache, JAX's compilation caches."""
    tensorflow_compat.empty_kernel_cache()
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()


def forget() -> None:
    """Drops the kept model (its memory goes with the next collection)."""
    global _last
    _last = None
