"""User model files for `model=file model.path=PATH`: a .tflite or a Keras .keras/.h5 file."""

from __future__ import annotations

import os

from unpu.graph import GraphError, inspect_tflite

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class ModelFileError(Exception):
    """A model file is missing, of an unsupported kind, or unreadable."""


def load_model_file(path: str) -> tuple[str, object]:
    """("tflite", bytes) for a validated .tflite, ("keras", keras.Model) for a Keras file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".tflite":
        return "tflite", _load_tflite(path)
    if suffix in KERAS_SUFFIXES:
        return "keras", _load_keras(path)
    raise ModelFileError(f"unsupported model file {path}: expected .tflite, {', '.join(KERAS_SUFFIXES)}")


def _load_tflite(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    try:
        inspect_tflite(data)
    except GraphError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return data


def _load_keras(path: str) -> object:
    from unpu.models import quiet_tensorflow

    quiet_tensorflow()
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras/h5py raise many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: cannot load Keras model: {first}") from None
