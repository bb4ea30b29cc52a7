"""Reader for the IDX files of MNIST and Fashion-MNIST (LeCun et al.), gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lab.errors import DataFormatError

# Magic numbers: 0x0000 0x08 (unsigned byte) 0x0N (number of dimensions).
IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Reads one IDX file into a uint8 array of the shape its header declares."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise DataFormatError(f"Cannot read IDX file {path}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != IDX_UBYTE:
        raise DataFormatError(f"Not an unsigned-byte IDX file (bad magic number): {path}")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DataFormatError(
            f"IDX file {path} holds {len(data) - header} bytes of data; "
            f"its header declares shape {shape}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)
