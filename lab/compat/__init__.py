"""Every use of a framework's private API, each held by a contract test: keras-tuner
(`keras_tuner`, tests/test_kt_compat.py) and Keras' graph wiring (`keras`, tests/test_keras_internals.py).
An upgrade that breaks one fails those tests, not a sweep."""
