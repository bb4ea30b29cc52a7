"""An HDF5 file from elsewhere (`model.weights`): readable, and holding its own values. h5py only
(Keras' own dependency), so run.py's preflight checks it before any framework loads."""

from __future__ import annotations

from typing import List

from lab.errors import WeightsMismatchError, first_line


def check_readable_hdf5(path: str) -> None:
    """Both layouts `model.weights` takes (keras.applications' `.h5`, Keras 3's `.weights.h5`)
    are HDF5: a file h5py cannot open (truncated, or not HDF5 at all) is named here, before Keras
    and the data load. Whether its layers fit the network is checked when it is built
    (`lab.models.weights`). A weights file is data from elsewhere: one that points outside itself
    (a dataset in external storage, a virtual dataset, an external link), which would read other
    files of this machine into the model, is refused (`outside_references`)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            found = outside_references(file)
    except OSError as error:
        raise WeightsMismatchError(
            f"model.weights={path} cannot be read as HDF5: {first_line(error)}"
        ) from None
    if found:
        raise WeightsMismatchError(
            f"model.weights={path} refers to data outside the file ({'; '.join(found[:3])}): "
            f"a weights file must hold its own values"
        )


def outside_references(file) -> List[str]:
    """Each dataset stored in another file or a virtual one, and each external link, in an open
    h5py file, walked by hard links, each object once (a group may link back to itself)."""
    import h5py

    found, pending, seen = [], [("", file)], set()
    while pending:
        prefix, group = pending.pop()
        for name in group:
            where = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{where}: external link to {link.filename}")
                continue
            if isinstance(link, h5py.SoftLink):
                continue  # inside the file: its target is walked where it lives
            item = group[name]
            address = h5py.h5o.get_info(item.id).addr
            # a hard link to an object already walked (a group linking back to itself)
            if address in seen:
                continue
            seen.add(address)
            if isinstance(item, h5py.Group):
                pending.append((where, item))
            elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                found.append(
                    f"{where}: {'external storage' if item.external else 'a virtual dataset'}"
                )
    return found
