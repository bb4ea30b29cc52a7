"""`lab.spec_hash`: one hash per thing trained, so that a report pools seeds across sweeps."""

import functools

import pytest

from lab.config import run_config
from lab.config.spec_hash import spec_hash, what_is_trained
from lab.tracking.tags import SPEC_HASH_TAG

BASE = ["data=synthetic", "model=resnet20", "train.epochs=2", "train.lr=0.05"]
SHAPE = (16, 16, 3)


@functools.lru_cache(maxsize=None)  # composing a config takes a third of a second: the base once
def hash_of(*overrides, shape=SHAPE, initial_epoch=0):
    return spec_hash(run_config([*BASE, *overrides]), shape, initial_epoch)


@pytest.mark.parametrize(
    "change",
    [
        "seed=7",
        "tracking.uri=sqlite:///elsewhere.db",
        "tracking.experiment=other",
        "train.verbose=0",
        "train.jit_compile=true",
        "train.reuse_compiled=true",
        "search.name=another_sweep",
        "search.max_trials=3",
        "data.root=/somewhere/else",
    ],
)
def test_what_says_where_how_or_which_seed_does_not_change_it(change):
    assert hash_of(change) == hash_of()


@pytest.mark.parametrize(
    "change",
    [
        "train.lr=0.1",
        "train.epochs=3",
        "train.batch_size=64",
        "train.optimizer=adamw",
        "train.schedule=step",
        "train.augment.flip=true",
        "train.precision=mixed_bfloat16",
        "train.checkpoint=last",
        "model.width_multiplier=2.0",
        "model.connectivity=plain",
        "model=resnet32",
        "data.train_size=256",
        "data.limit=100",
    ],
)
def test_what_changes_the_training_changes_it(change):
    assert hash_of(change) != hash_of()


def test_the_input_shape_and_a_continued_rung_change_it():
    assert hash_of(shape=(32, 32, 3)) != hash_of()
    assert hash_of(initial_epoch=1) != hash_of() == hash_of(initial_epoch=0)
    assert what_is_trained(run_config(BASE), SHAPE)["data.input_shape"] == [16, 16, 3]
    assert not any(
        key.startswith(("seed", "tracking.", "search."))
        for key in what_is_trained(run_config(BASE), SHAPE)
    )
    assert SPEC_HASH_TAG == "lab.spec_hash" and len(hash_of()) == 16


HOW_CHANGES = {
    "data.root": "data.root=/somewhere/else",
    "train.verbose": "train.verbose=0",
    "train.compile_cache": "train.compile_cache=/tmp/cache",
    "train.reuse_compiled": "train.reuse_compiled=true",
    "train.jit_compile": "train.jit_compile=true",
}


def test_how_it_runs_is_one_list_that_neither_the_hash_nor_a_sweeps_fingerprint_reads():
    from lab.config.spec_hash import HOW_IT_RUNS
    from lab.tasks.search.identity import fingerprint

    assert set(HOW_IT_RUNS) == set(HOW_CHANGES)
    base = run_config(["task=search", *BASE])
    for key, change in HOW_CHANGES.items():
        changed = run_config(["task=search", *BASE, change])
        assert spec_hash(changed, SHAPE) == spec_hash(base, SHAPE), key
        assert fingerprint(changed) == fingerprint(base), key
