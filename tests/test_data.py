"""Loaders read the real file formats, find data where documented and fail in one clear line."""

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest
from conftest import needs_fashion_mnist

from lab.config import DataConfig, SyntheticDataConfig
from lab.data import load_splits
from lab.data.dataset import ImageDataset, split
from lab.data.idx import read_idx
from lab.data.sources import IDX_STEMS, load_cifar, load_fashion_mnist, load_mnist
from lab.errors import ConfigValueError, DataFormatError, DataNotFoundError


@needs_fashion_mnist
def test_fashion_mnist_from_the_debian_package():
    data = load_fashion_mnist(None)
    assert data.source == "/usr/share/datasets/fashion-mnist"
    assert data.x_train.shape == (60_000, 28, 28) and data.x_test.shape == (10_000, 28, 28)
    assert data.x_train.dtype == np.uint8
    assert sorted(np.unique(data.y_train)) == list(range(10)) and data.classes == 10
    assert np.bincount(data.y_train).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert np.bincount(data.y_test).tolist() == [1000] * 10


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_idx_set(directory, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)),
        "y_train": rng.integers(0, 10, n_train),
        "x_test": rng.integers(0, 256, (n_test, 28, 28)),
        "y_test": rng.integers(0, 10, n_test),
    }
    for key, stem in IDX_STEMS.items():
        write_idx(directory / f"{stem}.gz", arrays[key])
    return arrays


def test_data_root_comes_first(tmp_path):
    arrays = write_idx_set(tmp_path)
    data = load_fashion_mnist(str(tmp_path))
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.source == str(tmp_path)


def test_search_order_takes_the_first_place_that_has_the_files(tmp_path):
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir(), full.mkdir()
    write_idx_set(full, n_train=7)
    data = load_fashion_mnist(None, places=[empty, full], download=pytest.fail)
    assert len(data.x_train) == 7 and data.source == str(full)


def test_missing_dataset_without_network_is_one_line_naming_every_place(tmp_path):
    def offline():
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    places = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(DataNotFoundError) as error:
        load_fashion_mnist(None, places=places, download=offline)
    message = str(error.value)
    assert "\n" not in message
    assert all(str(p) in message for p in places)
    assert "apt-get install dataset-fashion-mnist" in message and "data.root=" in message
    assert "name resolution" in message


def test_data_root_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="data.root does not exist.*nowhere"):
        load_fashion_mnist(str(tmp_path / "nowhere"))


def test_data_root_without_the_files_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(DataNotFoundError, match="holds no fashion_mnist IDX files"):
        load_fashion_mnist(str(tmp_path))


def test_corrupted_idx_file_is_named(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(str(tmp_path))


def test_truncated_idx_file_is_named(tmp_path):
    path = tmp_path / "t.gz"
    header = bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(100))
    with pytest.raises(DataFormatError, match="declares shape"):
        read_idx(path)


def test_mnist_reads_a_keras_style_npz_root(tmp_path):
    x = np.full((3, 28, 28), 7, np.uint8)
    np.savez(
        tmp_path / "mnist.npz", x_train=x, y_train=np.arange(3), x_test=x[:1], y_test=np.arange(1)
    )
    data = load_mnist(str(tmp_path))
    assert data.x_train.shape == (3, 28, 28) and data.y_train.tolist() == [0, 1, 2]


def cifar_batch(n, label_key, offset):
    rng = np.random.default_rng(offset)
    return {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), label_key: list(range(n))}


@pytest.mark.parametrize(
    "name, folder, members, label_key",
    [
        (
            "cifar10",
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
            b"labels",
        ),
        ("cifar100", "cifar-100-python", ["train", "test"], b"fine_labels"),
    ],
)
def test_cifar_reads_the_python_archive_and_its_extracted_folder(
    tmp_path, name, folder, members, label_key
):
    batches = {m: cifar_batch(4, label_key, i) for i, m in enumerate(members)}
    archive = (
        tmp_path
        / {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}[name]
    )
    with tarfile.open(archive, "w:gz") as tar:
        for member, batch in batches.items():
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"{folder}/{member}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    from_archive = load_cifar(name, str(tmp_path), 10 if name == "cifar10" else 100)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    from_folder = load_cifar(name, str(tmp_path / "extracted"), 10 if name == "cifar10" else 100)
    n_train = 4 * (len(members) - 1)
    for data in (from_archive, from_folder):
        assert data.x_train.shape == (n_train, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
        # Rows are channel-major: the first 1024 bytes are the red plane.
        first = batches[members[0]][b"data"][0]
        np.testing.assert_array_equal(data.x_train[0, :, :, 0].ravel(), first[:1024])
        np.testing.assert_array_equal(data.x_train[0, :, :, 2].ravel(), first[2048:])


def tiny_dataset(n=100):
    x = np.arange(n, dtype=np.uint8).reshape(n, 1, 1) * np.ones((1, 4, 4), np.uint8)
    return ImageDataset("tiny", x, np.arange(n) % 10, x[:10], np.arange(10), 10, "test")


def test_split_is_seeded_disjoint_and_respects_the_limit():
    a = split(tiny_dataset(), limit=50, val_fraction=0.2, seed=3)
    b = split(tiny_dataset(), limit=50, val_fraction=0.2, seed=3)
    c = split(tiny_dataset(), limit=50, val_fraction=0.2, seed=4)
    train_ids, val_ids = a.x_train[:, 0, 0, 0].tolist(), a.x_val[:, 0, 0, 0].tolist()
    assert (len(train_ids), len(val_ids)) == (40, 10)
    assert set(train_ids) | set(val_ids) == set(range(50)) and not set(train_ids) & set(val_ids)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert a.x_val[:, 0, 0, 0].tolist() != c.x_val[:, 0, 0, 0].tolist()
    assert a.x_train.shape[1:] == (4, 4, 1)  # channel axis added
    assert len(a.x_test) == 10  # `limit` never limits the test set


def test_test_limit_keeps_the_first_test_examples_whatever_the_seed():
    a = split(tiny_dataset(), limit=None, val_fraction=0.2, seed=3, test_limit=4)
    b = split(tiny_dataset(), limit=None, val_fraction=0.2, seed=4, test_limit=4)
    full = split(tiny_dataset(), limit=None, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(a.x_test, full.x_test[:4])
    np.testing.assert_array_equal(a.y_test, b.y_test)
    with pytest.raises(ConfigValueError, match="data.test_limit=500"):
        load_splits(SyntheticDataConfig(test_limit=500), seed=0)


def test_training_statistics_come_from_the_training_split_only():
    s = split(tiny_dataset(), limit=None, val_fraction=0.5, seed=0)
    assert s.mean[0] == pytest.approx(s.x_train.mean())
    assert s.std[0] == pytest.approx(s.x_train.std())


def test_limit_larger_than_the_dataset_is_named():
    with pytest.raises(ConfigValueError, match="data.limit=5000"):
        load_splits(SyntheticDataConfig(limit=5000), seed=0)


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ConfigValueError, match="data.name='imagenet'.*fashion_mnist"):
        load_splits(DataConfig(name="imagenet"), seed=0)


def test_synthetic_data_are_fixed_and_shaped_by_config():
    cfg = SyntheticDataConfig(train_size=64, test_size=16, image_size=12, channels=2, classes=4)
    a, b = load_splits(cfg, seed=0), load_splits(cfg, seed=0)
    assert a.x_train.shape[1:] == (12, 12, 2) and a.classes == 4
    assert len(a.x_train) + len(a.x_val) == 64 and len(a.x_test) == 16
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_downsample_averages_pixel_blocks_of_train_and_test_images_alike():
    from lab.data import input_spec
    from lab.data.dataset import downsampled

    block = np.array(
        [[0, 2, 10, 10], [4, 6, 10, 11], [255, 255, 1, 2], [255, 254, 3, 3]], np.uint8
    )[None, :, :, None]
    # 10.25 -> 10, 254.75 -> 255, 2.25 -> 2
    np.testing.assert_array_equal(downsampled(block, 2)[0, :, :, 0], [[3, 10], [255, 2]])
    assert downsampled(block, 1) is block
    cfg = SyntheticDataConfig(train_size=64, test_size=16, image_size=12, channels=2, downsample=3)
    s = load_splits(cfg, seed=0)
    assert (
        s.x_train.shape[1:] == s.x_test.shape[1:] == (4, 4, 2) == input_spec(cfg)[0]
        and s.x_train.dtype == np.uint8
    )
    full = load_splits(
        SyntheticDataConfig(train_size=64, test_size=16, image_size=12, channels=2), seed=0
    )
    np.testing.assert_array_equal(s.x_test, downsampled(full.x_test, 3))
    with pytest.raises(ConfigValueError, match="data.downsample=5"):
        load_splits(SyntheticDataConfig(image_size=12, downsample=5), seed=0)
    with pytest.raises(ConfigValueError, match="data.downsample=5"):
        input_spec(SyntheticDataConfig(image_size=12, downsample=5))


def test_every_dataset_states_its_shape_and_an_unknown_name_fails_listing_the_known_ones():
    from lab.config import DataConfig
    from lab.data import DATASETS, SHAPES, input_spec, load_dataset

    assert set(SHAPES) | {"synthetic"} == set(DATASETS)  # `task=analyze data=NAME` needs no file
    for name in SHAPES:
        assert input_spec(DataConfig(name=name)) == SHAPES[name]
    for call in (input_spec, load_dataset):
        with pytest.raises(
            ConfigValueError,
            match=r"Unknown dataset. Received: data.name='svhn'; known: \['cifar10'",
        ):
            call(DataConfig(name="svhn"))
