"""Where each dataset's files are found and how they are read.

`data.root`, when given, must hold the dataset: a wrong path is an error, never a silent
fallback to other data. Without it, each loader looks in the places its docstring names and
finally asks `keras.datasets` (which reads its cache or downloads).
"""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lab.data.dataset import ImageDataset
from lab.data.idx import read_idx
from lab.errors import DataFormatError, DataNotFoundError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
Arrays = Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def keras_cache(subdir: str) -> Path:
    """The folder where `keras.datasets` caches its downloads (`$KERAS_HOME` or ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets" / subdir


def existing_root(root: Optional[str]) -> Optional[Path]:
    if root is None:
        return None
    path = Path(root).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"data.root does not exist. Received: data.root={root!r}")
    return path


def idx_files(directory: Path) -> Optional[Dict[str, Path]]:
    """The four IDX files in `directory` (gzipped or not), or None if any is missing."""
    found = {}
    for key, stem in IDX_STEMS.items():
        candidates = [directory / f"{stem}.gz", directory / stem]
        found[key] = next((c for c in candidates if c.is_file()), None)
    return found if all(found.values()) else None


def read_idx_dataset(name: str, files: Dict[str, Path], classes: int) -> ImageDataset:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for part in ("train", "test"):
        if len(arrays[f"x_{part}"]) != len(arrays[f"y_{part}"]):
            raise DataFormatError(
                f"{name}: {len(arrays[f'x_{part}'])} {part} images but "
                f"{len(arrays[f'y_{part}'])} labels in {files[f'x_{part}'].parent}"
            )
    return ImageDataset(name=name, classes=classes, source=str(files["x_train"].parent), **arrays)


def keras_download(dataset: str, **options) -> Callable[[], Arrays]:
    """`keras.datasets.<dataset>.load_data(**options)`, importing Keras only when it is called."""

    def load_data() -> Arrays:
        import keras

        return getattr(keras.datasets, dataset).load_data(**options)

    return load_data


def from_keras(
    name: str, load_data: Callable[[], Arrays], classes: int, looked: Sequence[str], how_to_get: str
) -> ImageDataset:
    """Asks keras.datasets (cache, then download); a failure becomes one line naming every place tried."""
    try:
        (x_train, y_train), (x_test, y_test) = load_data()
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataNotFoundError(
            f"{name} not found. Looked in: {', '.join(looked)}; the keras.datasets "
            f"download failed ({reason}). {how_to_get}"
        ) from error
    return ImageDataset(
        name,
        x_train,
        y_train.reshape(-1),
        x_test,
        y_test.reshape(-1),
        classes,
        source="keras.datasets",
    )


def load_idx_family(
    name: str,
    root: Optional[str],
    places: Sequence[Path],
    download: Callable[[], Arrays],
    how_to_get: str,
) -> ImageDataset:
    """MNIST-format data: data.root, then each of `places`, then keras.datasets."""
    path = existing_root(root)
    if path is not None:
        files = idx_files(path)
        if files is None:
            raise DataNotFoundError(
                f"data.root holds no {name} IDX files ({', '.join(IDX_STEMS.values())}"
                f"[.gz]). Received: data.root={root!r}"
            )
        return read_idx_dataset(name, files, 10)
    for place in places:
        files = idx_files(place)
        if files is not None:
            return read_idx_dataset(name, files, 10)
    return from_keras(name, download, 10, [str(p) for p in places], how_to_get)


def load_fashion_mnist(
    root: Optional[str], places: Sequence[Path] = None, download: Callable[[], Arrays] = None
) -> ImageDataset:
    """Fashion-MNIST from data.root, /usr/share/datasets/fashion-mnist (Debian's
    dataset-fashion-mnist), the Keras cache, then the keras.datasets download."""
    places = places if places is not None else [DEBIAN_FASHION_MNIST, keras_cache("fashion-mnist")]
    return load_idx_family(
        "fashion_mnist",
        root,
        places,
        download or keras_download("fashion_mnist"),
        "Install it with `apt-get install dataset-fashion-mnist`, or set data.root=DIR holding "
        "train-images-idx3-ubyte.gz and the other three IDX files.",
    )


def load_mnist(root: Optional[str]) -> ImageDataset:
    """MNIST from data.root (mnist.npz, or the four IDX files), else keras.datasets.mnist."""
    path = existing_root(root)
    npz = None if path is None else (path if path.is_file() else path / "mnist.npz")
    if npz is not None and npz.is_file():
        with np.load(npz) as f:
            return ImageDataset(
                "mnist", f["x_train"], f["y_train"], f["x_test"], f["y_test"], 10, str(npz)
            )
    return load_idx_family(
        "mnist",
        root,
        [],
        keras_download("mnist"),
        "Set data.root=DIR holding mnist.npz or the four MNIST IDX files.",
    )


def unpickle(data: bytes, where: str) -> dict:
    try:
        return pickle.loads(data, encoding="bytes")
    except Exception as error:
        raise DataFormatError(f"Cannot read CIFAR batch {where}: {error}") from error


def cifar_arrays(batches: List[dict], label_key: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """CIFAR python batches store rows of 3072 bytes, channel-major: reshape to NHWC."""
    x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = np.concatenate([np.asarray(b[label_key]) for b in batches])
    return np.ascontiguousarray(x), y


def read_cifar_members(path: Path, folder: str, members: Sequence[str]) -> List[dict]:
    """Reads batch files from an extracted folder or straight out of the .tar.gz archive."""
    if path.is_file():
        with tarfile.open(path, "r:gz") as archive:
            return [
                unpickle(archive.extractfile(f"{folder}/{m}").read(), f"{path}:{folder}/{m}")
                for m in members
            ]
    directory = path / folder if (path / folder).is_dir() else path
    return [unpickle((directory / m).read_bytes(), str(directory / m)) for m in members]


def cifar_location(path: Path, folder: str, archive: str) -> Optional[Path]:
    for candidate in (path, path / archive):
        if candidate.is_file() and candidate.name.endswith(".tar.gz"):
            return candidate
    if (path / folder).is_dir() or (path.name == folder and path.is_dir()):
        return path
    return None


def load_cifar(name: str, root: Optional[str], classes: int) -> ImageDataset:
    """CIFAR-10/100 from data.root (the python .tar.gz or its extracted folder), else keras.datasets."""
    folder, archive, train, test, label_key, load_data = {
        "cifar10": (
            "cifar-10-batches-py",
            "cifar-10-python.tar.gz",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            b"labels",
            keras_download("cifar10"),
        ),
        "cifar100": (
            "cifar-100-python",
            "cifar-100-python.tar.gz",
            ["train"],
            ["test"],
            b"fine_labels",
            keras_download("cifar100", label_mode="fine"),
        ),
    }[name]
    path = existing_root(root)
    if path is None:
        return from_keras(
            name,
            load_data,
            classes,
            [str(keras_cache(""))],
            f"Set data.root=DIR holding {archive} or its extracted {folder}/.",
        )
    location = cifar_location(path, folder, archive)
    if location is None:
        raise DataNotFoundError(
            f"data.root holds neither {archive} nor {folder}/. Received: data.root={root!r}"
        )
    x_train, y_train = cifar_arrays(read_cifar_members(location, folder, train), label_key)
    x_test, y_test = cifar_arrays(read_cifar_members(location, folder, test), label_key)
    return ImageDataset(name, x_train, y_train, x_test, y_test, classes, str(location))
