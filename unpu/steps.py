"""The model steps of the pipeline, each a cached function of its inputs.

float model (Keras) -> quantized .tflite (+ calibration and fidelity report). The cache key of the
quantized model is computed from the config and code alone, so a repeated run finds it without
building the float model or importing TensorFlow. DVC stages call these same functions.
"""

from __future__ import annotations

import logging
import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unpu.artifacts import QuantizedModel
from unpu.cache import Cache, Entry, file_digest, source_digest
from unpu.graph import inspect_tflite
from unpu.models import ZOO, build_model
from unpu.models.loader import load_model_file
from unpu.models.prepare import prepare_untrained
from unpu.quantize import quantize

log = logging.getLogger(__name__)

ZOO_CODE = ("unpu.models", "unpu.datasets")
QUANT_CODE = ("unpu.quantize", "unpu.models.prepare")


class ModelInputError(ValueError):
    """The model the user named cannot be used (missing, corrupt, wrong kind)."""


def model_id(cfg: DictConfig) -> str:
    """The model's name in tags and run names: the zoo name, or the file's stem."""
    if cfg.model.source == "file":
        return Path(str(cfg.model.path)).stem
    return str(cfg.model.name)


def _conf(node: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def _float_parts(cfg: DictConfig) -> dict[str, Any]:
    parts: dict[str, Any] = {"model": _conf(cfg.model), "keras": version("keras"), "code": source_digest(*ZOO_CODE)}
    if cfg.model.source == "file":
        parts["file_digest"] = file_digest(cfg.model.path)
    return parts


def float_model(cfg: DictConfig, cache: Cache) -> Entry:
    """Build (zoo) or load (file) the float Keras model; cached as model.keras."""
    return cache.get_or_make("float_model", _float_parts(cfg), lambda out: _make_float(cfg, out))


def _make_float(cfg: DictConfig, out: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    if cfg.model.source == "file":
        kind, model = load_model_file(str(cfg.model.path))
        if kind != "keras":
            raise ModelInputError(f"{cfg.model.path} is not a Keras model")
    else:
        model = build_model(str(cfg.model.name), seed=int(cfg.model.seed))
    model.save(out / "model.keras")
    log.info("built float model %s in %.1f s", model_id(cfg), time.monotonic() - t0)
    return {"params": int(model.count_params()), "input_shape": list(model.input_shape[1:])}


def dataset(cfg: DictConfig):
    """The job's dataset (calibration, fidelity and benchmark inputs)."""
    return instantiate(cfg.dataset)


def input_spec(cfg: DictConfig, input_shape: tuple[int, ...]) -> Any:
    """What a dataset makes inputs for: the zoo model's spec, or a user model's input shape (no batch)."""
    if cfg.model.source == "zoo":
        return ZOO[str(cfg.model.name)]
    return tuple(int(d) for d in input_shape)


def samples(cfg: DictConfig, model_path: Path, split: str, count: int) -> list:
    """`count` float inputs of the dataset's `split` for the quantized model at `model_path`."""
    shape = inspect_tflite(model_path.read_bytes()).inputs[0].shape[1:]
    return dataset(cfg).samples(input_spec(cfg, shape), count, split)


def quantized_model(cfg: DictConfig, cache: Cache) -> QuantizedModel:
    """The quantized .tflite for cfg.model × cfg.quant (or the user's .tflite as it is)."""
    if cfg.model.source == "file" and str(cfg.model.path).endswith(".tflite"):
        return _user_tflite(cfg)
    float_parts = _float_parts(cfg)
    parts = {"float": float_parts, "quant": _conf(cfg.quant), "dataset": _conf(cfg.dataset),
             "tensorflow": version("tensorflow-cpu"), "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
             "code": source_digest(*QUANT_CODE)}
    entry = cache.get_or_make("quantized", parts, lambda out: _make_quantized(cfg, cache, out))
    path = entry.file("model.tflite")
    meta = entry.meta()
    return QuantizedModel(model_id(cfg), path, file_digest(path), params=int(meta["params"]),
                          params_source=meta["params_source"], fidelity=meta.get("fidelity") or {}, cache_hit=entry.hit)


def _make_quantized(cfg: DictConfig, cache: Cache, out: Path) -> dict[str, Any]:
    import keras

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    float_entry = float_model(cfg, cache)
    model = keras.models.load_model(float_entry.file("model.keras"), compile=False)
    data, spec = dataset(cfg), input_spec(cfg, model.input_shape[1:])
    calibration = data.samples(spec, int(cfg.quant.calibration_samples), "calibration")
    heldout = data.samples(spec, int(cfg.quant.heldout_samples), "heldout")
    if cfg.model.source == "zoo":  # zoo weights are untrained: make activations sane first
        model = prepare_untrained(model, calibration)
    t0 = time.monotonic()
    result = quantize(model, str(cfg.quant.name), calibration, heldout)
    seconds = time.monotonic() - t0
    (out / "model.tflite").write_bytes(result.tflite)
    (out / "quantize.log").write_text("\n".join(result.log) + "\n")
    log.info("converted %s to %s in %.1f s (TensorFlow)", model_id(cfg), cfg.quant.name, seconds)
    return {"params": float_entry.meta()["params"], "params_source": "keras", "fidelity": result.fidelity,
            "calibration_samples": result.calibration_samples, "convert_seconds": seconds,
            "float_digest": file_digest(float_entry.file("model.keras"))}


def _user_tflite(cfg: DictConfig) -> QuantizedModel:
    path = Path(str(cfg.model.path))
    info = inspect_tflite(path.read_bytes())
    if not info.quantized and cfg.quant.name != "float32":
        raise ModelInputError(
            f"{path} is a float .tflite; unpu cannot re-quantize it: give the Keras model, or run it as it is with quant=float32"
        )
    return QuantizedModel(model_id(cfg), path, file_digest(path), params=info.params, params_source="tflite graph")
