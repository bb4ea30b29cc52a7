"""Whether a chief can listen at `search.distributed.address`: a socket check, no keras-tuner, so
that a taken port is reported before any framework loads (`lab.tasks.preflight`)."""

from __future__ import annotations

import socket

from lab.config import DistributedConfig
from lab.errors import LabError


class AddressInUseError(LabError):
    """The chief cannot listen at `search.distributed.address`."""


def address_in_use(dist: DistributedConfig, reason: str) -> AddressInUseError:
    return AddressInUseError(
        f"the chief cannot listen at search.distributed.address={dist.address} ({reason}): "
        "another chief may be running there; choose another port"
    )


def check_address_free(dist: DistributedConfig) -> None:
    """Before a chief touches the sweep's runs or state: nobody else listens at its address."""
    with socket.socket() as probe:
        # As servers do (gRPC too): the closing connections of a chief that just died own no port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((dist.host, dist.port))
        except OSError as error:
            raise address_in_use(dist, error.strerror) from None
