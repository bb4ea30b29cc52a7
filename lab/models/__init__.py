"""Model builders, one module per family; their typed specs (the Hydra schema) are in
`lab.models.specs` and import no Keras.

Importing this package loads no builder, so `lab.models.specs` stays light. The first use of
`FAMILIES` or `build_model` imports Keras and every family's builder, which registers itself.
"""


def __getattr__(name: str):
    # PEP 562: `from lab.models import build_model` lands here; an unknown name must raise
    # AttributeError, which is how `from lab.models import chain` falls back to the submodule.
    if name == "FAMILIES":
        from lab.models.registry import load_families

        return load_families()
    if name == "build_model":
        from lab.models.registry import build_model

        return build_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAMILIES", "build_model"]
