"""What every family's spec shares: `BaseSpec`, the connectivity axis, auxiliary heads and their
check against the family's taps. No Keras: the builders in `lab.models` read these records."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, List, Optional

from omegaconf import MISSING

from lab.errors import SpecError, require


class Connectivity(Enum):
    """The connectivity axis, shared by the families that have it: shortcuts or none. Each family
    says where its identity shortcuts go (ResNet: around every block; chain: around every conv
    that keeps its input's shape)."""

    plain = "plain"
    residual = "residual"


@dataclass
class AuxHeadSpec:
    """A classifier on the tap named `tap` (a stage or module name such as `conv3`).

    The default is a global-average-pool linear probe. GoogLeNet's heads (Szegedy et al. 2014,
    section 5) are `pool_size: 5, pool_stride: 3, conv_width: 128, hidden: 1024, dropout: 0.7`:
    an average pool, a 1x1 conv + ReLU, flatten, a dense + ReLU layer, dropout, softmax.
    """

    tap: str = MISSING
    loss_weight: float = 0.3
    pool_size: int = 0  # 0: global average pool
    pool_stride: int = 1
    conv_width: int = 0  # 0: no 1x1 conv
    hidden: int = 0  # 0: no hidden dense layer
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.loss_weight >= 0, "aux_heads.loss_weight", self.loss_weight, ">= 0")
        require(
            self.pool_size >= 0 and self.pool_stride > 0,
            "aux_heads.pool_size/pool_stride",
            (self.pool_size, self.pool_stride),
            "pool_size >= 0 and pool_stride > 0",
        )
        require(self.conv_width >= 0, "aux_heads.conv_width", self.conv_width, ">= 0 (0: no conv)")
        require(self.hidden >= 0, "aux_heads.hidden", self.hidden, ">= 0 (0: no hidden layer)")
        require(0 <= self.dropout < 1, "aux_heads.dropout", self.dropout, "in [0, 1)")


def check_aux_heads(heads: Iterable[AuxHeadSpec], taps: List[str]) -> None:
    """Raises SpecError unless every head sits on one of `taps`, and no two on the same one."""
    seen = set()
    for head in heads:
        if head.tap not in taps:
            raise SpecError(
                f"Auxiliary head tap not found. Received: tap={head.tap!r}; taps: {sorted(taps)}"
            )
        if head.tap in seen:
            raise SpecError(f"Two auxiliary heads on one tap. Received: tap={head.tap!r}")
        seen.add(head.tap)


@dataclass
class BaseSpec:
    """What every family's spec has: its family and variant name, the input and class count it
    was published for (`task=list`, tests and `task=analyze` use them; training takes the
    data's), and auxiliary heads on named taps.

    Each family's `__post_init__` calls this one first; every field, the family's own included,
    is set by then, so `taps()` can read them and a head on an unknown tap fails when the spec
    is made (at Hydra's conversion of the config), before any model is built.
    """

    family: str = MISSING
    name: str = MISSING
    input_shape: List[int] = field(default_factory=lambda: [32, 32, 3])
    classes: int = 10
    aux_heads: List[AuxHeadSpec] = field(default_factory=list)
    # A weights file loaded into the built network (lab/models/weights.py): keras.applications'
    # `.h5` by layer name, or a Keras 3 `.weights.h5`. null: initialised.
    weights: Optional[str] = None

    def taps(self) -> List[str]:
        """The names of the feature maps the family's builder exposes to auxiliary heads, in
        build order (each family's builder checks that it builds exactly these)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not say which taps its builder exposes"
        )

    def __post_init__(self) -> None:
        require(
            len(self.input_shape) == 3 and min(self.input_shape) > 0,
            "model.input_shape",
            self.input_shape,
            "[height, width, channels], all > 0",
        )
        require(self.classes > 1, "model.classes", self.classes, "> 1")
        check_aux_heads(self.aux_heads, self.taps())
