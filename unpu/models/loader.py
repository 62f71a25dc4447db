"""User model files for `model=file model.path=PATH`: a .tflite or a Keras .keras/.h5 file."""

from __future__ import annotations

import json
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


def keras_input_shape(path: str) -> tuple[int, ...] | None:
    """The input shape (without batch) a Keras file declares, read from its config without Keras;
    None when it does not say one plainly (several inputs, an unknown dimension, no config)."""
    config = _keras_config(os.fspath(path))
    if not isinstance(config, dict):
        return None
    layers = (config.get("config") or {}).get("layers") or []
    shapes = [layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
              for layer in layers if layer.get("class_name") == "InputLayer"
              for layer_config in [layer.get("config") or {}]]
    if not shapes:
        shapes = [(config.get("build_config") or {}).get("input_shape")]
    if len(shapes) != 1 or not shapes[0] or any(d is None for d in shapes[0][1:]):
        return None
    return tuple(int(d) for d in shapes[0][1:])


def _keras_config(path: str) -> object:
    try:
        if path.lower().endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py  # a Keras dependency, not Keras: reads the HDF5 file's attributes only

        with h5py.File(path, "r") as f:
            text = f.attrs.get("model_config")
        return json.loads(text) if text is not None else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


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
