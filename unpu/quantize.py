"""Keras model -> .tflite in one of four modes, with a fidelity check (docs/tool-facts.md).

Fidelity compares the float Keras model with the converted model run by LiteRT's reference
kernels (OpResolverType.BUILTIN_REF, bit-exact with TFLM for conv nets) on held-out samples.
TensorFlow is imported only when `quantize` runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from unpu.datasets import first_non_finite
from unpu.graph import (
    GraphInfo,
    TensorInfo,
    activation_scales,
    inspect_tflite,
    reference_interpreter,
    weight_scales,
)
from unpu.models import quiet_tensorflow

quiet_tensorflow()  # before anyone imports TensorFlow; sets environment defaults only

if TYPE_CHECKING:
    import keras

MODES = ("int8", "int8_per_tensor", "int16x8", "float32")
_DESCRIPTION = {
    "int8": "int8: full-integer (TFLITE_BUILTINS_INT8), per-channel weights, int8 input/output",
    "int8_per_tensor": "int8_per_tensor: full-integer (TFLITE_BUILTINS_INT8), per-tensor weights, int8 input/output",
    "int16x8": "int16x8: int16 activations, int8 weights "
    "(EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8), int16 input/output",
    "float32": "float32: no quantization",
}
# the input tensor type a model of each mode has (a .tflite of another type contradicts quant=)
INPUT_TYPES = {"int8": ("int8", "uint8"), "int8_per_tensor": ("int8", "uint8"), "int16x8": ("int16",),
               "float32": ("float32",)}
MAX_SNR_DB = 200.0  # reported when the outputs match exactly (avoids an infinite metric)
MIN_SANE_SCALE = 1e-4  # below this an int8 output scale means collapsed activations
CHILD_TIMEOUT_S = 900


class QuantizationError(Exception):
    """The converter rejected the model (unsupported op, bad calibration data, ...)."""


@dataclass
class QuantResult:
    tflite: bytes
    mode: str
    fidelity: dict[str, float]
    calibration_samples: int
    log: list[str] = field(default_factory=list)


def quantize(
    model: "keras.Model",
    mode: str,
    calibration: np.ndarray,
    heldout: np.ndarray,
    *,
    class_output: bool | None = None,
) -> QuantResult:
    """Convert `model` in `mode` (one of MODES), calibrating on `calibration`.

    `class_output` says whether the output is a class vector (enables quant/top1_agree);
    by default: a rank-2 output of ≥ 2 values whose shape differs from the input's.
    """
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; expected one of {', '.join(MODES)}")
    calibration = _check_samples(model, calibration, "calibration")
    heldout = _check_samples(model, heldout, "heldout")
    n_cal = 0 if mode == "float32" else len(calibration)
    log = [_DESCRIPTION[mode]]
    if n_cal:
        log.append(f"calibrated on {n_cal} samples (representative dataset, one sample per step)")

    start = time.perf_counter()
    tflite = _convert(model, mode, calibration)
    info = inspect_tflite(tflite)
    log.append(f"converted in {time.perf_counter() - start:.1f} s: {len(tflite)} bytes, {_op_summary(info)}")
    log.extend(_check_weights(tflite, mode))
    log.extend(_io_lines(info, mode))

    if class_output is None:
        class_output = _is_class_vector(model)
    start = time.perf_counter()
    fidelity = _fidelity(model, tflite, heldout, class_output)
    log.append(_fidelity_line(fidelity, len(heldout)) + f" [{time.perf_counter() - start:.1f} s]")
    return QuantResult(tflite, mode, fidelity, n_cal, log)


def _check_samples(model: "keras.Model", samples: np.ndarray, what: str) -> np.ndarray:
    if len(model.inputs) != 1:
        raise ValueError(f"quantize supports single-input models, this one has {len(model.inputs)}")
    x = np.asarray(samples, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"{what} samples have shape {x.shape}, model expects (n, {', '.join(map(str, expected))})")
    if what == "calibration" and len(x) == 0:
        raise ValueError("no calibration samples")
    _require_finite(x, f"{what} sample")
    return x


def _require_finite(x: np.ndarray, what: str) -> None:
    """NaN or infinity in samples or outputs would make the converter crash or every metric a lie."""
    bad = first_non_finite(x)
    if bad is not None:
        raise QuantizationError(f"{what} {bad[0]} is not finite: {x[bad]} at index {list(bad)}")


def _convert(model: "keras.Model", mode: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="unpu-savedmodel-") as saved:
        # A static batch-1 signature: the default export signature has a dynamic batch, which
        # leaves SHAPE/STRIDED_SLICE/PACK ops in front of every RESHAPE.
        spec = tf.TensorSpec(model.inputs[0].shape, tf.float32, name=_op_name(model.inputs[0].name))
        try:
            model.export(saved, verbose=False, input_signature=[spec])
        except Exception as exc:
            raise QuantizationError(f"SavedModel export failed: {_error_line(exc, [])}") from exc
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        _configure(converter, mode, calibration, tf)
        return _run_converter(converter, mode)


def _op_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./-]", "_", name) or "input"


def _configure(converter: Any, mode: str, calibration: np.ndarray, tf: Any) -> None:
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
        if mode == "int16x8":
            ops, io_type = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8], tf.int16
        else:
            ops, io_type = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], tf.int8
        converter.target_spec.supported_ops = ops
        converter.inference_input_type = converter.inference_output_type = io_type
        if mode == "int8_per_tensor":
            converter._experimental_disable_per_channel = True


def _run_converter(converter: Any, mode: str) -> bytes:
    with _captured_stderr() as captured, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        try:
            return bytes(converter.convert())
        except Exception as exc:
            raise QuantizationError(f"TFLite conversion ({mode}) failed: {_error_line(exc, captured)}") from exc


@contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Route fd 2 to a temp file: the converter's C++ code prints progress there. The text is
    handed back (as the only list element) so errors can quote it."""
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _error_line(exc: Exception, captured: list[str]) -> str:
    """The first MLIR "error:" of the converter's message (without its loc(...) prefix), else
    the first line; plus the "TF Select ops: ..." list when the converter gives one."""
    lines = [ln.strip() for ln in (str(exc) + "\n" + "".join(captured)).splitlines() if ln.strip()]
    errors = [m.group(1) for ln in lines if (m := re.search(r"error: (?:loc\(.*\)\):\s*)?(.*)$", ln))]
    line = (errors or lines or [type(exc).__name__])[0]
    select = [ln for ln in lines if ln.startswith("TF Select ops:")]
    if select:
        line += f" ({select[0]})"
    return line if len(line) <= 300 else line[:297] + "..."


def _op_summary(info: GraphInfo) -> str:
    counts = ", ".join(f"{op}×{n}" for op, n in info.op_counts.items())
    return f"{len(info.ops)} ops ({counts})"


def _check_weights(tflite: bytes, mode: str) -> list[str]:
    if mode not in ("int8", "int8_per_tensor"):
        return []
    scales = weight_scales(tflite)
    per_channel = [i for i, s in scales.items() if len(s) > 1]
    if mode == "int8_per_tensor" and per_channel:
        raise QuantizationError(f"per-tensor mode left per-channel weight scales on ops {per_channel}")
    return [f"weight scales: {len(per_channel)} of {len(scales)} weighted ops per-channel"]


def _io_lines(info: GraphInfo, mode: str) -> list[str]:
    lines = []
    for kind, tensors in (("input", info.inputs), ("output", info.outputs)):
        for t in tensors:
            q = f", scale {t.scale:.6g}, zero point {t.zero_point}" if t.scale else ""
            lines.append(f"{kind} {t.name}: {t.dtype} {list(t.shape)}{q}")
            if kind == "output" and _degenerate(t):
                lines.append(f"WARNING: output scale {t.scale:.3g} is degenerate (untrained model not prepared?)")
    return lines


def _degenerate(t: TensorInfo) -> bool:
    """An integer tensor whose whole range is below 127·MIN_SANE_SCALE (what an int8 scale of
    MIN_SANE_SCALE covers); int16 scales are naturally 256× smaller."""
    if t.scale is None or t.dtype not in ("int8", "int16", "uint8"):
        return False
    return t.scale * np.iinfo(t.dtype).max < 127 * MIN_SANE_SCALE


def _is_class_vector(model: "keras.Model") -> bool:
    out = tuple(model.outputs[0].shape[1:])
    return len(out) == 1 and out[0] >= 2 and out != tuple(model.inputs[0].shape[1:])


def _keras_outputs(model: "keras.Model", x: np.ndarray, batch: int = 64) -> np.ndarray:
    parts = [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float64)


def _isolated_litert_outputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """`litert_outputs` in a child process: LiteRT aborts the process (SIGABRT in
    allocate_tensors) on models with degenerate scales, e.g. an unprepared untrained model."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="unpu-litert-") as tmp:
        with open(os.path.join(tmp, "model.tflite"), "wb") as f:
            f.write(tflite)
        np.save(os.path.join(tmp, "x.npy"), x)
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, root, tmp], capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT_S)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise QuantizationError(f"LiteRT reference run took over {CHILD_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            raise QuantizationError(_child_failure(proc, tflite))
        return np.load(os.path.join(tmp, "y.npy"))


_CHILD = (
    "import sys, os, numpy as np; sys.path.insert(0, sys.argv[1]); from unpu.quantize import litert_outputs; "
    "d = sys.argv[2]; model = open(os.path.join(d, 'model.tflite'), 'rb').read(); "
    "np.save(os.path.join(d, 'y.npy'), litert_outputs(model, np.load(os.path.join(d, 'x.npy'))))"
)


def _child_failure(proc: subprocess.CompletedProcess, tflite: bytes) -> str:
    if proc.returncode < 0:
        what = f"was killed by {signal.Signals(-proc.returncode).name}"
    else:
        what = f"failed: {(proc.stderr.strip().splitlines() or ['exit status %d' % proc.returncode])[-1]}"
    smallest = _smallest_activation_scale(tflite)
    hint = f"; smallest activation scale {smallest:.3g}" if smallest is not None else ""
    if smallest is not None and smallest < MIN_SANE_SCALE:
        hint += " (degenerate: untrained model not prepared? see unpu.models.prepare)"
    return f"LiteRT reference interpreter {what} on the converted model{hint}"


def _smallest_activation_scale(tflite: bytes) -> float | None:
    scales = activation_scales(tflite)
    return min(scales) if scales else None


def litert_outputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Run `tflite` with LiteRT's reference kernels on float samples `x` (quantizing the input
    as the model's input tensor says); returns the dequantized first output, float64.
    In-process: a model with degenerate scales aborts the process (see quantize's isolation)."""
    interpreter, _ = reference_interpreter(tflite)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for sample in x:
        interpreter.set_tensor(inp["index"], _to_tensor(sample[None], inp))
        interpreter.invoke()
        results.append(_from_tensor(interpreter.get_tensor(out["index"]), out)[0])
    return np.asarray(results, dtype=np.float64)


def _to_tensor(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(dtype, np.integer) or not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _from_tensor(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(y.dtype, np.integer) or not scale:
        return y.astype(np.float64)
    return (y.astype(np.float64) - zero_point) * scale


def _fidelity(model: "keras.Model", tflite: bytes, heldout: np.ndarray, class_output: bool) -> dict[str, float]:
    if len(heldout) == 0 or len(model.outputs) != 1:
        return {}
    ref = _keras_outputs(model, heldout)
    _require_finite(ref, "float model's output on held-out sample")
    got = _isolated_litert_outputs(tflite, heldout).reshape(ref.shape)
    _require_finite(got, "converted model's output on held-out sample")
    fidelity = {"quant/snr_db": snr_db(ref, got)}
    if class_output:
        agree = np.argmax(ref.reshape(len(ref), -1), axis=1) == np.argmax(got.reshape(len(got), -1), axis=1)
        fidelity["quant/top1_agree"] = float(agree.mean())
    return fidelity


def snr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """10·log10(Σ ref² / Σ (ref − approx)²), capped at MAX_SNR_DB."""
    power = float(np.sum(np.square(ref, dtype=np.float64)))
    noise = float(np.sum(np.square(np.asarray(ref, np.float64) - approx)))
    if noise == 0.0:
        return MAX_SNR_DB
    if power == 0.0:
        return -MAX_SNR_DB
    return float(min(MAX_SNR_DB, 10.0 * np.log10(power / noise)))


def _fidelity_line(fidelity: dict[str, float], n: int) -> str:
    if not fidelity:
        return "fidelity: not measured (no held-out samples or several outputs)"
    parts = [f"SNR {fidelity['quant/snr_db']:.1f} dB"]
    if "quant/top1_agree" in fidelity:
        parts.append(f"top-1 agreement {fidelity['quant/top1_agree']:.3f}")
    return f"fidelity on {n} held-out samples (LiteRT BUILTIN_REF vs float Keras): {', '.join(parts)}"
