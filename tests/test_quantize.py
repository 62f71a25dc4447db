"""Keras -> .tflite in every mode, run in LiteRT (BUILTIN_REF) and in TFLite Micro (real TF)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from unpu.datasets import SyntheticDataset
from unpu.graph import inspect_tflite, weight_scales
from unpu.models import ZOO, build_model
from unpu.quantize import MODES, QuantizationError, QuantResult, quantize, snr_db

MODELS = ("dscnn", "ad_fc")  # conv + depthwise + softmax; dense + BN; both convert in ~2 s
IO_DTYPE = {"int8": "int8", "int8_per_tensor": "int8", "int16x8": "int16", "float32": "float32"}
# TFLM vs LiteRT reference kernels on the same input, in output LSBs (float32: absolute).
# int16 fully connected layers differ by a few LSB (of 65,536); int8 ones by at most 1.
TFLM_TOLERANCE = {"int8": 1, "int8_per_tensor": 1, "int16x8": 16, "float32": 1e-5}
MIN_SNR_DB = {"int8": 12.0, "int8_per_tensor": 12.0, "int16x8": 15.0, "float32": 80.0}


@pytest.fixture(scope="module")
def prepared():
    """name -> (prepared float model, calibration, heldout)."""
    from unpu.models.prepare import prepare_untrained

    data, out = SyntheticDataset(0), {}
    for name in MODELS:
        calibration = data.samples(ZOO[name], 32, "calibration")
        model = prepare_untrained(build_model(name), calibration)
        out[name] = (model, calibration, data.samples(ZOO[name], 10, "heldout"))
    return out


@pytest.fixture(scope="module")
def results(prepared) -> dict[tuple[str, str], QuantResult]:
    return {(name, mode): quantize(*prepared[name][:1], mode, *prepared[name][1:]) for name in MODELS for mode in MODES}


_TFLM = """
import json, sys
import numpy as np
from tflite_micro import runtime
from ai_edge_litert.interpreter import Interpreter, OpResolverType
model = open(sys.argv[1], "rb").read()
tflm = runtime.Interpreter.from_bytes(model, arena_size=1 << 21)
detail = tflm.get_input_details(0)
x = np.load(sys.argv[2]).astype(detail["dtype"]).reshape(detail["shape"])
tflm.set_input(x, 0)
tflm.invoke()
y = tflm.get_output(0)
ref = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
ref.allocate_tensors()
ref.set_tensor(ref.get_input_details()[0]["index"], x)
ref.invoke()
r = ref.get_tensor(ref.get_output_details()[0]["index"])
print(json.dumps({"dtype": str(y.dtype), "shape": list(y.shape), "diff": float(np.abs(y.astype(float) - r).max())}))
"""


def _quantized_input(result: QuantResult, x: np.ndarray) -> np.ndarray:
    t = inspect_tflite(result.tflite).inputs[0]
    if t.dtype == "float32":
        return x
    info = np.iinfo(t.dtype)
    return np.clip(np.round(x / t.scale) + t.zero_point, info.min, info.max)


def run_in_tflm(result: QuantResult, x: np.ndarray, tmp_path) -> dict:
    """Run the model in TFLite Micro in a child process (a bad model aborts the process)."""
    (tmp_path / "m.tflite").write_bytes(result.tflite)
    np.save(tmp_path / "x.npy", _quantized_input(result, x))
    proc = subprocess.run([sys.executable, "-c", _TFLM, str(tmp_path / "m.tflite"), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, f"TFLM failed (rc {proc.returncode}): {proc.stderr[-500:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_mode_converts_and_runs_everywhere(results, prepared, name, mode, tmp_path):
    result = results[(name, mode)]
    info = inspect_tflite(result.tflite)
    assert result.mode == mode
    assert result.calibration_samples == (0 if mode == "float32" else 32)
    assert [t.dtype for t in info.inputs + info.outputs] == [IO_DTYPE[mode]] * 2
    assert info.quantized == (mode != "float32")
    assert "SHAPE" not in info.op_counts and "DEQUANTIZE" not in info.op_counts  # static batch, full integer
    # fidelity: LiteRT BUILTIN_REF vs float Keras on held-out samples
    assert result.fidelity["quant/snr_db"] > MIN_SNR_DB[mode]
    assert ("quant/top1_agree" in result.fidelity) == (name == "dscnn")
    if name == "dscnn":
        assert result.fidelity["quant/top1_agree"] >= 0.6
    if mode.startswith("int8"):
        assert info.outputs[0].scale > 1e-4  # prepared: int8 scales are sane
    assert any(line.startswith("fidelity on 10 held-out samples") for line in result.log)
    # the same model runs in TFLite Micro and agrees with the LiteRT reference kernels
    out = run_in_tflm(result, prepared[name][2][0], tmp_path)
    assert out["dtype"] == IO_DTYPE[mode] and out["diff"] <= TFLM_TOLERANCE[mode]


@pytest.mark.slow
def test_per_tensor_really_per_tensor(results):
    for name in MODELS:
        per_tensor = weight_scales(results[(name, "int8_per_tensor")].tflite)
        per_channel = weight_scales(results[(name, "int8")].tflite)
        assert per_tensor and all(len(s) == 1 for s in per_tensor.values())
        assert all(len(s) > 1 for s in per_channel.values())  # TF default: per-channel everywhere
        assert per_tensor.keys() == per_channel.keys()


def test_unknown_mode_and_bad_samples(prepared):
    model, calibration, heldout = prepared["ad_fc"]
    with pytest.raises(ValueError, match="int8, int8_per_tensor, int16x8, float32"):
        quantize(model, "int4", calibration, heldout)
    with pytest.raises(ValueError, match=r"calibration samples have shape \(3, 64\)"):
        quantize(model, "int8", np.zeros((3, 64)), heldout)


def test_non_finite_samples_refused_before_converting(prepared):
    """A NaN once gave quant/snr_db = 200 and top-1 agreement 1; an infinity crashed the converter."""
    model, calibration, heldout = prepared["ad_fc"]
    for bad, what in ((np.nan, "nan"), (np.inf, "inf")):
        samples = calibration.copy()
        samples[5, 7] = bad
        with pytest.raises(QuantizationError, match=rf"calibration sample 5 is not finite: {what} at index \[5, 7\]"):
            quantize(model, "int8", samples, heldout)
    samples = heldout.copy()
    samples[2, 0] = np.nan
    with pytest.raises(QuantizationError, match="heldout sample 2 is not finite"):
        quantize(model, "int8", calibration, samples)


def test_unsupported_op_raises_one_line_error():
    import keras

    inputs = keras.Input((8,), batch_size=1, name="input")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: keras.ops.erf(t), name="erf")(inputs))
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(QuantizationError, match="'tf.Erf' op is neither a custom op nor a flex op") as err:
        quantize(model, "float32", x, x)
    assert "\n" not in str(err.value)


def test_degenerate_model_raises_instead_of_aborting():
    """Collapsed activations give ~1e-8 int8 scales; LiteRT aborts in prepare. quantize runs it in
    a child process and reports the cause."""
    import keras

    inputs = keras.Input((8,), batch_size=1, name="input")
    tiny = keras.initializers.Constant(1e-9)
    x = keras.layers.Dense(16, activation="relu", kernel_initializer=tiny, name="fc1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="fc2")(x))
    samples = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    with pytest.raises(QuantizationError, match="killed by SIGABRT.*degenerate"):
        quantize(model, "int8", samples, samples[:4])


def test_snr_db():
    ref = np.array([3.0, 4.0])
    assert snr_db(ref, ref) == 200.0
    assert snr_db(ref, ref + np.array([0.3, 0.4])) == pytest.approx(20.0)
