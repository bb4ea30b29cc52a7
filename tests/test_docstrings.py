"""The examples in the lab's docstrings run and print what they say. The modules are found, not
listed: every module of lab/ with a `>>>` example, and each family's builder must have one."""

import doctest
import importlib

import pytest

from lab.config import PROJECT_ROOT
from lab.models.registry import builder_module
from lab.models.specs import SPEC_TYPES


def module_name(path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(
    module_name(path) for path in (PROJECT_ROOT / "lab").rglob("*.py") if ">>> " in path.read_text()
)


def test_every_family_builder_shows_an_example():
    assert {builder_module(family) for family in SPEC_TYPES} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that trains writes its store and outputs here
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0, (
        f"{name}: {result.failed} of {result.attempted} failed"
    )
