"""Model builders, one module per family. Importing this package registers every family."""

from lab.models import chain, fractal, inception, resnet  # noqa: F401  (registration)
from lab.models.registry import FAMILIES, build_model

__all__ = ["FAMILIES", "build_model"]
