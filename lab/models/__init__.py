"""Model builders. Importing this package registers every family."""

from lab.models import resnet  # noqa: F401  (registers the family)
from lab.models.registry import FAMILIES, build_model

__all__ = ["FAMILIES", "build_model"]
