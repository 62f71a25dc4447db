"""User model files for `model=file model.path=PATH`: a .tflite or a Keras .keras/.h5 file."""

from __future__ import annotations

import os
import zipfile

from unpu.graph import GraphError, inspect_tflite
from unpu.models import quiet_tensorflow

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


def check_model_file(path: str) -> None:
    """Cheap checks before any work (no TensorFlow): exists, known kind, readable header/graph."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".tflite":
        _load_tflite(path)
    elif suffix == ".keras":
        if not zipfile.is_zipfile(path) or "config.json" not in zipfile.ZipFile(path).namelist():
            raise ModelFileError(f"{path} is not a Keras v3 file (a zip archive with config.json)")
    elif suffix in (".h5", ".hdf5"):
        with open(path, "rb") as f:
            if f.read(8) != HDF5_SIGNATURE:
                raise ModelFileError(f"{path} is not an HDF5 file")
    else:
        raise ModelFileError(f"unsupported model file {path}: expected .tflite, {', '.join(KERAS_SUFFIXES)}")


def _load_tflite(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    try:
        inspect_tflite(data)
    except GraphError as exc:
        raise ModelFileError(f"{path} is not a valid .tflite: {exc}") from None
    return data


def _load_keras(path: str) -> object:
    quiet_tensorflow()
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras/h5py raise many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: cannot load Keras model: {first}") from None
