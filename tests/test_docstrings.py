"""The examples in the docstrings of the models, the analysis and the statistics run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "lab.models.registry",
    "lab.models.resnet",
    "lab.models.chain",
    "lab.models.inception",
    "lab.models.fractal",
    "lab.models.analysis",
    "lab.stats.holm",
    "lab.stats.paired",
    "lab.stats.seeds",
    "lab.stats.testset",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0, (
        f"{name}: {result.failed} of {result.attempted} failed"
    )
