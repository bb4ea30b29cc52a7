"""The TensorFlow-private attributes `lab/compat/tensorflow.py` touches still exist and mean what
it assumes. The kernel cache is observed through a stateful random kernel: while cached it goes on
with its stream, and once the cache is emptied it starts again from its seeds."""

import inspect

import keras
import pytest

from lab.compat import tensorflow as tensorflow_compat

tf = pytest.importorskip("tensorflow")
from tensorflow.python.eager import context as eager  # noqa: E402

pytestmark = pytest.mark.core


def draw() -> float:
    """A stateful random kernel's next value (its op seed is set, so the kernel is cached)."""
    return float(tf.random.uniform([], seed=1))


def test_the_eager_context_seeds_as_the_compat_module_mirrors():
    source = inspect.getsource(eager.Context._set_global_seed)
    assert "self._seed = seed" in source
    assert "self._rng = random.Random(seed)" in source
    assert "TFE_ContextClearCaches" in source
    assert callable(eager.Context.clear_kernel_cache)
    assert tensorflow_compat.eager_context() is eager.context()


def test_seeding_restarts_the_kernels_and_inside_the_block_keeps_them():
    tf.random.set_seed(5)
    operation_seed = eager.context()._internal_operation_seed()  # what seed 5 derives first
    keras.utils.set_random_seed(5)
    first, second = draw(), draw()
    assert first != second
    keras.utils.set_random_seed(5)
    assert draw() == first  # flushed: the kernel starts again
    with tensorflow_compat.kernel_cache_kept():
        keras.utils.set_random_seed(5)
        assert draw() == second  # kept: the same kernel goes on
        context = eager.context()
        assert context._seed == 5
        assert context._internal_operation_seed() == operation_seed
    keras.utils.set_random_seed(5)
    assert draw() == first  # the methods are back once the block ends


def test_clear_session_inside_the_block_keeps_the_kernels_and_empty_kernel_cache_empties_them():
    keras.utils.set_random_seed(5)
    first, second = draw(), draw()
    keras.utils.set_random_seed(5)
    draw()
    with tensorflow_compat.kernel_cache_kept():
        keras.backend.clear_session()
    assert draw() == second
    tensorflow_compat.empty_kernel_cache()
    assert draw() == first


def test_reuse_keeps_the_cache_only_while_a_compiled_model_is_kept():
    """lab.training.reuse seeds and frees with Keras' own calls until it keeps a compiled model,
    then without the flush, until the model is let go."""
    from lab.training import reuse

    reuse.forget()
    keras.utils.set_random_seed(5)
    first, second, third = draw(), draw(), draw()
    reuse.seed(5)
    assert draw() == first  # nothing kept: flushed, as Keras does
    images = keras.Input((4,))
    model = keras.Model(images, keras.layers.Dense(3)(images))
    model.compile("sgd", "mse")
    reuse.model_to_fit(model, "a key")  # kept now
    reuse.seed(5)
    assert draw() == second  # the kernel went on: not flushed
    reuse.free_memory()
    assert draw() == third  # nor here
    reuse.forget()
    reuse.free_memory()
    keras.utils.set_random_seed(5)
    assert draw() == first  # let go: flushed again
