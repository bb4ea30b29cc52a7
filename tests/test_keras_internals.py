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
