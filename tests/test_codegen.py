"""unpu.codegen: TFLite -> static C, bit-exact with LiteRT BUILTIN_REF (issue 3).

Everything is real: models come from the TF converter (zoo via unpu.steps, small Keras models
built here), the generated C is compiled with the host gcc against firmware/kernels/ref and
compared with LiteRT's reference kernels; TFLM's arena is found by bisection (unpu.boards.host).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, compose

ZOO_MODELS = ["simplenet", "resnet", "nas", "autoencoder", "yolov1", "mobilenet", "dscnn", "resnet8", "ad_fc"]
QUANTS = ["int8", "int8_per_tensor"]
# The fast tier keeps one conv model and one dense model; `make test` runs every (model, quant).
FAST_ZOO = {("dscnn", "int8"), ("autoencoder", "int8")}
ZOO_CASES = [pytest.param(m, q, marks=() if (m, q) in FAST_ZOO else pytest.mark.slow)
             for m in ZOO_MODELS for q in QUANTS]
KERNELS = REPO / "firmware" / "kernels" / "ref"
needs_kernels = pytest.mark.skipif(not list(KERNELS.glob("*.c")), reason="firmware/kernels/ref/*.c not written yet")


# ---------------------------------------------------------------------------------------------
# TFLite arithmetic
# ---------------------------------------------------------------------------------------------

def test_quantize_multiplier_edge_cases():
    from unpu.tflite_math import quantize_multiplier

    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.75) == (3 << 29, 0)
    # rounds up to 2^31: TFLite halves it and increments the shift
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    assert quantize_multiplier(2.0 ** -31) == (1 << 30, -30)
    # shift < -31 would shift every bit out: TFLite returns 0, 0
    assert quantize_multiplier(2.0 ** -40) == (0, 0)
    # large multiplier -> positive (left) shift
    q, s = quantize_multiplier(1000.0)
    assert s == 10 and q == round(1000.0 / 1024 * 2 ** 31)
    # round half away from zero on the Q31 value (std::round), not banker's rounding
    m = (2 ** 30 + 0.5) / 2 ** 31  # q * 2^31 = 2^30 + 0.5 exactly
    assert quantize_multiplier(m) == (2 ** 30 + 1, 0)
    for m in np.random.default_rng(0).uniform(1e-6, 100, 200):
        q, s = quantize_multiplier(float(m))
        assert 1 << 30 <= q < 1 << 31
        assert abs(q * 2.0 ** (s - 31) - m) <= 2.0 ** (s - 32)


def test_padding_and_output_size():
    from unpu.tflite_math import compute_padding_height_width as pad

    assert pad("SAME", 1, 1, 1, 1, 32, 32, 3, 3) == (1, 1, 32, 32)
    assert pad("SAME", 2, 2, 1, 1, 32, 32, 3, 3) == (0, 0, 16, 16)  # (15*2+3-32)/2 = 0 (C division)
    assert pad("SAME", 2, 2, 1, 1, 33, 33, 3, 3) == (1, 1, 17, 17)
    assert pad("VALID", 1, 1, 1, 1, 5, 5, 3, 3) == (0, 0, 3, 3)
    assert pad("SAME", 1, 1, 1, 1, 8, 8, 4, 4) == (1, 1, 8, 8)  # even kernel: extra padding goes after
    assert pad("SAME", 1, 1, 2, 2, 8, 8, 3, 3) == (2, 2, 8, 8)  # dilation 2: effective kernel 5
    assert pad("SAME", 2, 1, 1, 1, 49, 10, 10, 4) == (4, 1, 25, 10)  # DS-CNN's first conv
    assert pad("VALID", 2, 2, 1, 1, 2, 2, 3, 3) == (0, 0, 0, 0)


def test_activation_range():
    from unpu.tflite_math import activation_range

    assert activation_range("NONE", 0.1, 3) == (-128, 127)
    assert activation_range("RELU", 0.1, -5) == (-5, 127)
    assert activation_range("RELU6", 6 / 255, -128) == (-128, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)
    assert activation_range("RELU_N1_TO_1", 1 / 64, 0) == (-64, 64)


def test_add_params_match_tflite_formula():
    from unpu.tflite_math import add_params, quantize_multiplier

    p = add_params(0.02, 0.05, 0.04)
    assert p["left_shift"] == 20
    assert (p["in2_multiplier"], p["in2_shift"]) == quantize_multiplier(0.5)  # larger input: 1/2
    assert p["in1_shift"] <= 0 and p["in2_shift"] <= 0 and p["output_shift"] <= 0


# ---------------------------------------------------------------------------------------------
# Models made by the TF converter
# ---------------------------------------------------------------------------------------------

def convert(model, io_type: str = "int8", seed: int = 0, n: int = 64) -> bytes:
    """Full-integer conversion of a Keras model (int8 or float32 model input/output)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    samples = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type == "int8":
        conv.inference_input_type = conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def _keras():
    import keras

    keras.utils.set_random_seed(1)
    return keras


@pytest.fixture(scope="module")
def transpose_conv_tflite(tmp_path_factory) -> Path:
    keras = _keras()
    x = keras.Input((8, 8, 4), batch_size=1)
    y = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same")(x)
    path = tmp_path_factory.mktemp("tc") / "tconv.tflite"
    path.write_bytes(convert(keras.Model(x, y)))
    return path


def test_unsupported_operator_is_named(transpose_conv_tflite):
    from unpu.codegen import CodegenError, read_model

    with pytest.raises(CodegenError) as err:
        read_model(transpose_conv_tflite.read_bytes())
    msg = str(err.value)
    assert "TRANSPOSE_CONV" in msg and "operator " in msg and "not supported" in msg
    assert "[1,16,16,8] int8" in msg and "int8" in msg and "supported: CONV_2D" in msg
    assert "\n" not in msg


def test_cli_unsupported_exits_2_with_one_line(transpose_conv_tflite, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "unpu.codegen", str(transpose_conv_tflite), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert "TRANSPOSE_CONV" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "model.c").exists()


def test_not_a_model_is_a_codegen_error():
    from unpu.codegen import CodegenError, read_model

    with pytest.raises(CodegenError, match="not a TFLite model"):
        read_model(b"hello world, not a model")


def _ops_models() -> dict:
    """Small Keras models that together use every supported operator."""
    keras = _keras()
    L = keras.layers
    models = {}

    x = keras.Input((12, 12, 3), batch_size=1)
    y = L.ZeroPadding2D(((1, 2), (2, 1)))(x)                                  # PAD
    y = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(y)      # CONV_2D (+RELU6)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(y)  # DEPTHWISE
    a = L.Conv2D(8, 1, padding="valid")(y)
    b = L.Conv2D(8, 3, padding="same", dilation_rate=2)(y)
    y = L.Concatenate()([a, b])                                               # CONCATENATION
    y = L.MaxPooling2D(2, padding="same")(y)                                  # MAX_POOL_2D
    y = L.AveragePooling2D(2, strides=1, padding="valid")(y)                  # AVERAGE_POOL_2D
    c = L.Conv2D(16, 1, activation="sigmoid")(y)                              # LOGISTIC
    y = L.Multiply()([y, c])                                                  # MUL
    d = L.Conv2D(16, 3, padding="same")(y)
    y = L.Add()([y, d])                                                       # ADD
    y = L.GlobalAveragePooling2D()(y)                                         # MEAN
    y = L.Dense(10)(y)                                                        # FULLY_CONNECTED
    y = L.Reshape((2, 5))(y)                                                  # RESHAPE
    y = L.Softmax()(y)                                                        # SOFTMAX (2 rows)
    models["every_op"] = keras.Model(x, y)

    x = keras.Input((20,), batch_size=1)
    y = L.Dense(32, activation="relu")(x)
    y = L.Dense(16, activation="sigmoid")(y)
    y = L.Dense(7)(y)
    models["mlp"] = keras.Model(x, y)

    x = keras.Input((9, 9, 2), batch_size=1)
    y = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(4, 2, strides=2, padding="same")(y)
    y = L.Add()([y, L.Conv2D(1, 1)(L.AveragePooling2D(2, padding="same")(x))])  # broadcast ADD over channels
    models["broadcast_add"] = keras.Model(x, y)

    x = keras.Input((6, 5, 3), batch_size=1)
    c = L.Conv2D(4, 3, padding="same")(x)
    k = L.Lambda(lambda t: keras.ops.mean(t, axis=(1, 2), keepdims=True))(c)  # MEAN keep_dims, in != out quant
    y = L.Concatenate(axis=2)([L.Concatenate(axis=1)([k, k, k])] * 2)           # k tiled: same range
    y = L.Lambda(lambda t: keras.ops.mean(t, axis=(1, 2), keepdims=True))(y)  # MEAN keep_dims, in == out quant
    models["mean_keepdims"] = keras.Model(x, L.Flatten()(y))

    x = keras.Input((6, 5, 3), batch_size=1)
    c = L.Conv2D(4, 3, padding="same")(x)
    y = L.Reshape((30, 2, 4))(L.Concatenate(axis=-1)([c, c]))
    y = L.Lambda(lambda t: keras.ops.mean(t, axis=2))(y)                      # MEAN axis 2, in == out quant
    models["mean_axes"] = keras.Model(x, L.Lambda(lambda t: keras.ops.mean(t, axis=-1))(y))  # last axis
    return models


@pytest.fixture(scope="module")
def ops_tflites(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ops_models")
    out = {}
    for name, model in _ops_models().items():
        for io in ("int8", "float32"):
            path = d / f"{name}_{io}.tflite"
            path.write_bytes(convert(model, io))
            out[f"{name}_{io}"] = path
    return out


def test_every_operator_is_covered(ops_tflites):
    from unpu.codegen.reader import SUPPORTED_OPS
    from unpu.graph import inspect_tflite

    seen = set()
    for path in ops_tflites.values():
        seen |= set(inspect_tflite(path.read_bytes()).op_counts)
    # PADV2 only appears when the converter chooses it; everything else must be exercised
    assert set(SUPPORTED_OPS) - {"PADV2"} <= seen, set(SUPPORTED_OPS) - seen
    assert seen <= set(SUPPORTED_OPS), seen - set(SUPPORTED_OPS)


@needs_kernels
@pytest.mark.parametrize("name", ["every_op_int8", "every_op_float32", "mlp_int8", "mlp_float32",
                                  "broadcast_add_int8", "broadcast_add_float32", "mean_keepdims_int8",
                                  "mean_keepdims_float32", "mean_axes_int8", "mean_axes_float32"])
def test_keras_models_bit_exact(ops_tflites, name):
    from unpu.codegen.verify import verify

    result = verify(ops_tflites[name].read_bytes(), n_inputs=20, seed=1)
    assert result.ok, result.summary()
    assert result.max_abs_diff == 0


# ---------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def zoo_tflite(shared_cache, tmp_path_factory):
    """(model, quant) -> quantized .tflite path, converted once per session."""
    from unpu.cache import Cache
    from unpu.steps import quantized_model

    tmp = tmp_path_factory.mktemp("codegen_cfg")
    made: dict[tuple[str, str], Path] = {}

    def get(model: str, quant: str) -> Path:
        if (model, quant) not in made:
            cfg = compose([f"model={model}", f"quant={quant}"], tmp)
            made[(model, quant)] = quantized_model(cfg, Cache(shared_cache)).path
        return made[(model, quant)]

    return get


def _check_plan(graph, plan):
    from unpu.codegen.planner import ALIGN

    assert plan.overlaps() == []
    acts = graph.activations()
    assert set(plan.offsets) == set(acts)
    assert plan.arena_size >= max(graph.tensors[i].nbytes for i in acts)
    assert plan.arena_size % ALIGN == 0
    for b in plan.buffers:
        assert b.offset % ALIGN == 0 and b.offset + b.size <= plan.arena_size
        for i in b.tensors:
            assert graph.tensors[i].nbytes <= b.size
    # every operator's inputs and outputs are disjoint in the arena
    for op in graph.ops:
        if op.call is None:
            continue
        ins = [i for i in op.inputs if i >= 0 and not graph.tensors[i].const]
        for o in op.outputs:
            for i in ins:
                a0, a1 = plan.offsets[o], plan.offsets[o] + graph.tensors[o].nbytes
                b0, b1 = plan.offsets[i], plan.offsets[i] + graph.tensors[i].nbytes
                assert a1 <= b0 or b1 <= a0, (op.index, o, i)


def test_mean_models_take_every_path(ops_tflites):
    """The MEAN models hold keep_dims over H,W with different and equal quantization and non-H,W axes
    with equal and different quantization; all of them generate (no CodegenError) and are checked
    bit-exact above."""
    from tests.kernels_harness import mean_ops
    from unpu.codegen import read_model

    keep = mean_ops(ops_tflites["mean_keepdims_int8"].read_bytes())
    axes = mean_ops(ops_tflites["mean_axes_int8"].read_bytes())
    assert ((1, 2), True, False) in keep and ((1, 2), True, True) in keep, keep
    assert ((2,), False, True) in axes and ((2,), False, False) in axes, axes
    for name in ("mean_keepdims_int8", "mean_axes_int8"):
        graph = read_model(ops_tflites[name].read_bytes())
        assert {op.call.kernel for op in graph.ops if op.name == "MEAN"} == {"unpu_mean_s8"}


def test_mean_unsupported_rank_is_a_codegen_error():
    from ai_edge_litert import schema_py_generated as s

    from tests.test_kernels import single_op_model
    from unpu.codegen import CodegenError, read_model

    opts = s.ReducerOptionsT()
    data = single_op_model("MEAN", [1, 2, 3, 4, 5], (0.1, 0), (0.1, 0), (s.BuiltinOptions.ReducerOptions, opts),
                           [1, 2, 3, 4], axis=[4])
    with pytest.raises(CodegenError, match="MEAN"):
        read_model(data)


@pytest.mark.parametrize("model", [pytest.param("resnet", marks=pytest.mark.slow), "autoencoder",
                                   pytest.param("mobilenet", marks=pytest.mark.slow)])
def test_plan_zoo_models(zoo_tflite, model):
    from unpu.codegen import read_model
    from unpu.codegen.planner import plan_memory

    graph = read_model(zoo_tflite(model, "int8").read_bytes())
    plan = plan_memory(graph)
    _check_plan(graph, plan)
    # RESHAPE costs no memory and no code: its output shares its input's offset
    for op in graph.ops:
        if op.name == "RESHAPE":
            assert op.call is None and plan.offsets[op.outputs[0]] == plan.offsets[op.inputs[0]]


def test_plan_keras_models(ops_tflites):
    from unpu.codegen import read_model
    from unpu.codegen.planner import plan_memory

    for path in ops_tflites.values():
        graph = read_model(path.read_bytes())
        _check_plan(graph, plan_memory(graph))


# ---------------------------------------------------------------------------------------------
# Emitted C and CLI
# ---------------------------------------------------------------------------------------------

def test_emitted_api(zoo_tflite, tmp_path):
    from unpu.codegen import generate

    report = generate(zoo_tflite("dscnn", "int8").read_bytes(), tmp_path, name="dscnn")
    h, c = (tmp_path / "model.h").read_text(), (tmp_path / "model.c").read_text()
    for macro in ("MODEL_ARENA_SIZE", "MODEL_INPUT_SIZE 490", "MODEL_OUTPUT_SIZE 12", "MODEL_INPUT_SCALE",
                  "MODEL_INPUT_ZERO_POINT", "MODEL_OUTPUT_SCALE", "MODEL_OUTPUT_ZERO_POINT", "MODEL_WEIGHTS_SIZE"):
        assert f"#define {macro}" in h
    assert "int model_run(const model_input_t *input, model_output_t *output);" in h
    assert "typedef int8_t model_input_t;" in h
    assert "#ifndef UNPU_ARENA_ATTR" in c and "static uint8_t unpu_arena[MODEL_ARENA_SIZE" in c
    assert c.count("UNPU_OP_BEGIN(") == c.count("UNPU_OP_END(") >= len(report["ops"])
    # weights are const (flash), never copied: no memcpy except the model input and output
    assert c.count("memcpy(") == 2 and "static const int8_t unpu_t" in c
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["arena_bytes"] == report["arena_bytes"] > 0 and saved["weights_bytes"] > 0


@pytest.mark.slow
@needs_kernels
def test_cli_verify_one_line(zoo_tflite, tmp_path):
    path = zoo_tflite("ad_fc", "int8")
    proc = subprocess.run([sys.executable, "-m", "unpu.codegen", "--verify", str(path), "--inputs", "5"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("model.tflite: 5 inputs, max abs diff 0, arena ")
    assert " B, weights " in lines[0]


@needs_kernels
def test_float_io_api(ops_tflites, tmp_path):
    from unpu.codegen import generate

    generate(ops_tflites["mlp_float32"].read_bytes(), tmp_path)
    h = (tmp_path / "model.h").read_text()
    assert "typedef float model_input_t;" in h and "#define MODEL_INPUT_IS_FLOAT 1" in h
    assert "#define MODEL_INPUT_SIZE 80" in h


# ---------------------------------------------------------------------------------------------
# Zoo: bit-exact and memory against TFLite Micro
# ---------------------------------------------------------------------------------------------

@needs_kernels
@pytest.mark.parametrize(("model", "quant"), ZOO_CASES)
def test_zoo_bit_exact_and_arena(zoo_tflite, model, quant, record_property):
    from unpu.boards.host import min_arena
    from unpu.codegen.verify import verify

    path = zoo_tflite(model, quant)
    result = verify(path.read_bytes(), n_inputs=20, seed=0, name=model)
    tflm = min_arena(path, 8 << 20).hi
    record_property("max_abs_diff", result.max_abs_diff)
    record_property("arena_ours", result.arena_bytes)
    record_property("arena_tflm", tflm)
    record_property("weights_bytes", result.weights_bytes)
    print(f"{model}/{quant}: {result.summary()}, TFLM arena {tflm} B")
    assert result.ok and result.max_abs_diff == 0, result.summary()
    assert result.arena_bytes <= math.floor(1.5 * tflm), (result.arena_bytes, tflm)
