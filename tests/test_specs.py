"""The specs, the Hydra schema of every family, import no Keras: a config error never waits for
TensorFlow. A head on a tap the builder does not expose fails when the spec is made, before any
model is built, and each builder builds exactly the taps its spec names."""

import subprocess
import sys

import pytest

from lab.config import PROJECT_ROOT, run_config
from lab.errors import SpecError
from lab.models import build_model
from lab.models.specs import SPEC_TYPES
from lab.models.specs.base import AuxHeadSpec
from lab.models.specs.resnet import ResNetSpec, StageSpec

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)

SPEC_MODULES = [
    "lab.models.specs",
    "lab.models.specs.base",
    *(f"lab.models.specs.{family}" for family in SPEC_TYPES),
]


def test_the_specs_import_neither_keras_nor_tensorflow():
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {SPEC_MODULES}]; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_family_registers_the_spec_type_of_its_name():
    from lab.models import FAMILIES

    assert {name: family.spec_type for name, family in FAMILIES.items()} == SPEC_TYPES


def test_a_head_on_an_unknown_tap_fails_when_the_config_is_converted():
    with pytest.raises(SpecError, match=r"tap='nope'; taps: \['conv2', 'conv3', 'conv4'\]"):
        run_config(["model=resnet20", "model.aux_heads=[{tap: nope}]"])


def test_a_spec_checks_its_heads_against_its_taps_when_made():
    stages = [StageSpec(1, 16), StageSpec(1, 32, 2)]
    assert ResNetSpec(stages=stages).taps() == ["conv2", "conv3"]
    with pytest.raises(SpecError, match=r"Auxiliary head tap not found. Received: tap='conv4'"):
        ResNetSpec(stages=stages, aux_heads=[AuxHeadSpec(tap="conv4")])
    with pytest.raises(SpecError, match=r"Two auxiliary heads on one tap. Received: tap='conv3'"):
        ResNetSpec(
            stages=stages,
            aux_heads=[AuxHeadSpec(tap="conv3"), AuxHeadSpec(tap="conv3", loss_weight=1.0)],
        )


class MisnamedTaps(ResNetSpec):
    """A spec whose taps() has drifted from its builder's stage names."""

    def taps(self):
        return [f"stage{i + 1}" for i in range(len(self.stages))]


def test_a_build_fails_when_the_builders_taps_are_not_the_specs():
    with pytest.raises(RuntimeError, match=r"taps=\['conv2'\]; spec.taps\(\)=\['stage1'\]"):
        build_model(MisnamedTaps(stages=[StageSpec(1, 16)]), (8, 8, 3), 2)


def test_a_family_with_a_spec_and_no_builder_module_is_named(monkeypatch):
    from lab.models import registry

    monkeypatch.setitem(registry.SPEC_TYPES, "densenet", ResNetSpec)
    with pytest.raises(
        SpecError, match="'densenet' has a spec but no builder module lab.models.densenet"
    ):
        registry.load_families()


def test_a_builder_module_that_registers_nothing_is_named(monkeypatch):
    import types

    from lab.models import registry

    monkeypatch.setitem(registry.SPEC_TYPES, "densenet", ResNetSpec)
    monkeypatch.setitem(sys.modules, "lab.models.densenet", types.ModuleType("lab.models.densenet"))
    with pytest.raises(
        SpecError, match=r"registers no builder for family 'densenet': .*@register_family"
    ):
        registry.load_families()
