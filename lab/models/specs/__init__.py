"""The Hydra schema of each family: its typed spec records, keyed by family name; imports no Keras."""

from typing import Dict

from lab.models.specs.chain import ChainSpec
from lab.models.specs.fractal import FractalSpec
from lab.models.specs.inception import InceptionSpec
from lab.models.specs.resnet import ResNetSpec

# Each family's builder is the module of the same name, `lab.models.<family>` (registry.load_families).
SPEC_TYPES: Dict[str, type] = {
    "chain": ChainSpec,
    "resnet": ResNetSpec,
    "inception": InceptionSpec,
    "fractal": FractalSpec,
}

__all__ = ["SPEC_TYPES"]
