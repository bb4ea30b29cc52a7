"""The TensorFlow-private state the lab touches, in one place: the eager context's kernel cache.

That cache holds every traced function's instantiation: its graph as Grappler optimised it and the
oneDNN primitives of its kernels. Two public calls empty it: `keras.utils.set_random_seed` (through
`tf.random.set_seed`, to restart stateful random kernels) and `keras.backend.clear_session`. A
compiled model reused for the next seed (`lab.training.reuse`) then instantiates its step again on
its first call: 4-6 s for the main job's ResNet-56, a fifth of its run (results/cpu/seed_flush.md).
Nothing a run trains draws from a stateful random kernel (Keras draws with stateless ops and
seed variables, tf.data's shuffle seeds its own generator), so while a compiled model is kept the
lab seeds and clears without that flush, and empties the cache itself when it lets the model go.

TensorFlow is never imported here: where it is not loaded (JAX, the GPU machine) there is no cache.
`tests/test_tensorflow_internals.py` checks the two private attributes, so a TensorFlow upgrade
that moves them fails there.
"""

from __future__ import annotations

import random
import sys
from contextlib import contextmanager
from typing import Iterator, Optional


def eager_context() -> Optional[object]:
    """TensorFlow's eager context where TensorFlow is loaded, else None."""
    module = sys.modules.get("tensorflow.python.eager.context")
    return module.context() if module is not None else None


@contextmanager
def kernel_cache_kept() -> Iterator[None]:
    """Within the block, seeding (`keras.utils.set_random_seed`) and `keras.backend.clear_session`
    leave TensorFlow's kernel cache as it is; everything else they do is unchanged."""
    context = eager_context()
    if context is None:
        yield
        return
    context._set_global_seed = lambda seed: seed_without_flush(context, seed)
    context.clear_kernel_cache = lambda: None
    try:
        yield
    finally:
        del context._set_global_seed  # the instance attributes go, the methods show again
        del context.clear_kernel_cache


def seed_without_flush(context, seed: int) -> None:
    """What `Context._set_global_seed` does, up to its flush: the global seed, and the generator
    of the operation seeds derived from it."""
    context._seed = seed
    context._rng = random.Random(int(seed))


def empty_kernel_cache() -> None:
    """Empties TensorFlow's kernel cache (what `clear_session` does to it), where it is loaded."""
    context = eager_context()
    if context is not None:
        context.clear_kernel_cache()
