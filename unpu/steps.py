"""The model steps of the pipeline, each a cached function of its inputs.

float model (Keras) -> quantized .tflite (+ calibration and fidelity report). The cache key of the
quantized model is computed from the config, the digests of the files it reads (model file,
dataset) and the code alone, so a repeated run finds it without building the float model or
importing TensorFlow. `check_inputs` is the pre-flight of these steps, also without TensorFlow.
DVC stages call these same functions.
"""

from __future__ import annotations

import logging
import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unpu.artifacts import QuantizedModel
from unpu.cache import Cache, Entry, file_digest, source_digest
from unpu.datasets import DatasetError, content_key
from unpu.graph import GraphInfo, describe, inspect_tflite
from unpu.models import ZOO, build_model
from unpu.models.loader import keras_input_shape, load_model_file
from unpu.models.prepare import prepare_untrained
from unpu.quantize import INPUT_TYPES, quantize

log = logging.getLogger(__name__)

ZOO_CODE = ("unpu.models", "unpu.datasets")
QUANT_CODE = ("unpu.quantize", "unpu.models.prepare")
# model settings that name the model but do not change the float model: adding one keeps the caches
NOT_IN_FLOAT_KEY = ("mlperf_id",)


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
    model = {k: v for k, v in _conf(cfg.model).items() if k not in NOT_IN_FLOAT_KEY}
    parts: dict[str, Any] = {"model": model, "keras": version("keras"), "code": source_digest(*ZOO_CODE)}
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
    """The job's dataset (calibration, fidelity and benchmark inputs); DatasetError if it cannot be made."""
    if OmegaConf.is_missing(cfg.dataset, "path"):
        raise DatasetError("dataset.path is not set: give the samples' file, dataset.path=FILE.npy")
    try:
        return instantiate(cfg.dataset)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise DatasetError(" ".join(str(cause).split()) or type(cause).__name__) from None


# -- pre-flight: the model file and the data, before TensorFlow ----------------------------------------

def check_inputs(cfg: DictConfig) -> None:
    """Everything the model steps will read, checked without TensorFlow: a .tflite agrees with
    quant=, and the dataset holds enough finite samples of the model's input shape for every split
    the job draws. ModelInputError or DatasetError, one line."""
    tflite = _user_tflite_given(cfg)
    if tflite:
        info = check_tflite_mode(Path(str(cfg.model.path)), str(cfg.quant.name))
        shape: Any = info.inputs[0].shape[1:]
    elif cfg.model.source == "file":
        shape = keras_input_shape(str(cfg.model.path))   # None: the converter checks it later
    else:
        shape = ZOO[str(cfg.model.name)].input_shape
    draws = [] if tflite else [("calibration", _count(cfg.quant.calibration_samples), "quant.calibration_samples"),
                               ("heldout", _count(cfg.quant.heldout_samples), "quant.heldout_samples")]
    validation = _count(cfg.bench.validation_inputs)
    draws.append(("validation", None if validation is None else validation + 1, "bench.validation_inputs + 1"))
    needs = [need for need in draws if need[1] is not None]
    data = dataset(cfg)
    if hasattr(data, "check"):  # a dataset class of the user's own may not check itself
        data.check(None if shape is None else tuple(int(d) for d in shape), needs)


def _count(value: Any) -> int | None:
    """A sample count from the config, or None when it is not one (the pre-flight of the setting says so)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def check_tflite_mode(path: Path, mode: str) -> GraphInfo:
    """The graph of a user's .tflite, or ModelInputError when its input type contradicts quant=."""
    info = inspect_tflite(path.read_bytes())
    dtype = info.inputs[0].dtype if info.inputs else "no"
    if dtype in INPUT_TYPES[mode] and (info.quantized or mode == "float32"):
        return info
    if not info.quantized and mode != "float32":
        advice = "unpu cannot re-quantize a .tflite: give the Keras model, or run it as it is with quant=float32"
    else:
        matching = [m for m, types in INPUT_TYPES.items() if dtype in types and m != "float32"]
        advice = f"run it as it is with quant={' or quant='.join(matching)}" if matching else "unpu cannot run it"
    raise ModelInputError(f"{path} is {describe(info)}; quant={mode} expects {INPUT_TYPES[mode][0]} input: {advice}")


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
    if _user_tflite_given(cfg):
        return _user_tflite(cfg)
    entry = cache.get_or_make("quantized", quantized_parts(cfg), lambda out: _make_quantized(cfg, cache, out))
    path = entry.file("model.tflite")
    meta = entry.meta()
    return QuantizedModel(model_id(cfg), path, file_digest(path), params=int(meta["params"]),
                          params_source=meta["params_source"], fidelity=meta.get("fidelity") or {}, cache_hit=entry.hit)


def quantized_parts(cfg: DictConfig) -> dict[str, Any]:
    """What the quantized model is a function of: its cache key's parts (the dataset by content)."""
    return {"float": _float_parts(cfg), "quant": _conf(cfg.quant), "dataset": content_key(_conf(cfg.dataset)),
            "tensorflow": version("tensorflow-cpu"), "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "code": source_digest(*QUANT_CODE)}


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


def _user_tflite_given(cfg: DictConfig) -> bool:
    return cfg.model.source == "file" and str(cfg.model.path).lower().endswith(".tflite")


def _user_tflite(cfg: DictConfig) -> QuantizedModel:
    path = Path(str(cfg.model.path))
    info = check_tflite_mode(path, str(cfg.quant.name))
    return QuantizedModel(model_id(cfg), path, file_digest(path), params=info.params, params_source="tflite graph")
