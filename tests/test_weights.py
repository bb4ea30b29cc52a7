"""`model.weights=PATH` (issue 14): keras.applications' weight files load into the lab's networks
of the same name, by layer name, with every shape checked. Offline: the files are written here
from keras.applications models with random weights; nothing downloads."""

import keras
import numpy as np
import pytest
from conftest import write_keras_applications_h5

from lab.models import build_model
from lab.models.variants import load_variant
from lab.models.weights import WeightsMismatchError, load_weights

# the published layers' shapes but the classifier's do not depend on the input
SHAPE, CLASSES = ((64, 64, 3), 10)


@pytest.fixture(scope="module")
def application(tmp_path_factory):
    """keras.applications' ResNet50 with random weights, saved in both formats, and a batch."""
    folder = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(1)
    app = keras.applications.ResNet50(weights=None, input_shape=SHAPE, classes=CLASSES)
    write_keras_applications_h5(app, folder / "resnet50.h5")
    app.save_weights(folder / "resnet50.weights.h5")
    batch = np.random.default_rng(0).uniform(-1, 1, (2, *SHAPE)).astype("float32")
    return folder, keras.ops.convert_to_numpy(app(batch, training=False)), batch


@pytest.mark.parametrize("file", ["resnet50.h5", "resnet50.weights.h5"])
def test_keras_applications_weights_load_into_the_lab_resnet50_and_give_the_same_outputs(
    application, file
):
    folder, expected, batch = application
    spec = load_variant("resnet50", [f"model.weights={folder / file}"])
    net = build_model(spec, SHAPE, CLASSES)
    assert np.allclose(keras.ops.convert_to_numpy(net(batch, training=False)), expected, atol=1e-5)


def test_a_file_for_another_architecture_or_a_truncated_one_fails_naming_what_and_changes_no_weight(
    application, tmp_path
):
    folder, _, _ = application
    resnet101 = build_model(load_variant("resnet101"), SHAPE, CLASSES)
    before = [keras.ops.convert_to_numpy(w) for w in resnet101.weights]
    with pytest.raises(
        WeightsMismatchError, match=r"resnet50\.h5 has no layer 'conv4_block7_1_conv' of resnet101"
    ):
        # its first 3 stages match: checked before any is set
        load_weights(resnet101, str(folder / "resnet50.h5"))
    assert all(
        np.array_equal(a, keras.ops.convert_to_numpy(w)) for a, w in zip(before, resnet101.weights)
    )
    with pytest.raises(
        WeightsMismatchError,
        match=r"conv1_conv/kernel has shape \(7, 7, 3, 64\) in the file, "
        r"\(7, 7, 1, 64\)",
    ):
        build_model(
            load_variant("resnet50", [f"model.weights={folder / 'resnet50.h5'}"]),
            (64, 64, 1),
            CLASSES,
        )
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((folder / "resnet50.h5").read_bytes()[:4096])
    with pytest.raises(WeightsMismatchError, match=r"truncated\.h5 cannot be read as HDF5"):
        build_model(load_variant("resnet50", [f"model.weights={truncated}"]), SHAPE, CLASSES)


def test_a_keras3_weights_file_for_another_network_is_one_whole_line_without_warnings(
    tmp_path, recwarn
):
    """Issue 32: the mismatch printed ten warnings and cut its error mid-sentence."""
    from lab.models import build_model

    lenet = build_model(load_variant("lenet5"), (16, 16, 3), 10)
    lenet.save_weights(tmp_path / "lenet5.weights.h5")
    resnet = build_model(load_variant("resnet20"), (16, 16, 3), 10)
    with pytest.raises(WeightsMismatchError) as raised:
        load_weights(resnet, str(tmp_path / "lenet5.weights.h5"))
    message = str(raised.value)
    assert (
        "\n" not in message
        and message.endswith("Expected: ['kernel']")
        and "could not be loaded" in message
    )
    assert not [w for w in recwarn if "Skipping" in str(w.message)]
