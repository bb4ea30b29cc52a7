"""The Keras-private attributes `lab/compat/keras.py` reads still exist and mean what it assumes."""

import keras

from lab.compat.keras import inbound_layers, producing_layer


def test_a_functional_graph_wiring_is_readable():
    images = keras.Input((8, 8, 3), name="images")
    left = keras.layers.Conv2D(4, 3, padding="same", name="left")(images)
    right = keras.layers.Conv2D(4, 1, name="right")(images)
    joined = keras.layers.Add(name="join")([left, right])
    model = keras.Model(images, keras.layers.GlobalAveragePooling2D(name="pool")(joined))
    join = model.get_layer("join")
    assert [layer.name for layer in inbound_layers(join)] == ["left", "right"]
    assert [layer.name for layer in inbound_layers(model.get_layer("left"))] == ["images"]
    assert producing_layer(model.output).name == "pool"


def test_a_model_built_for_fit_has_its_loss_metric_and_optimizer_state():
    import numpy as np

    from lab.compat.keras import build_for_fit

    images = keras.Input((4,), name="images")
    model = keras.Model(images, keras.layers.Dense(3, name="dense")(images))
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    before = len(model.metrics_variables)  # the loss tracker's total and count
    assert not model.optimizer.built
    build_for_fit(model, np.zeros((1, 4), "float32"), np.zeros((1, 3), "float32"))
    assert model.optimizer.built
    assert len(model.metrics_variables) == before + 2  # and accuracy's
