"""unpu.graph: reading .tflite flatbuffers without TensorFlow (models converted with real TF)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unpu.graph import GraphError, activation_scales, inspect_tflite, weight_scales
from unpu.models import build_model
from unpu.models.seed import SIMPLENET
from unpu.quantize import quantize

REPO = Path(__file__).resolve().parent.parent


def _convert(model, mode: str) -> bytes:
    x = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    return quantize(model, mode, x, x[:0]).tflite  # no held-out samples: conversion only


@pytest.fixture(scope="module")
def simplenet_int8() -> bytes:
    return _convert(build_model("simplenet"), "int8")


def _simplenet_macs() -> int:
    """From the architecture table: a pool halves the side before its conv; "same" padding."""
    side, in_c, macs = 32, 3, 0
    for conv in SIMPLENET:
        side //= 2 if conv.pool else 1
        macs += side * side * conv.filters * conv.kernel * conv.kernel * in_c
        in_c = conv.filters
    return macs


def test_simplenet_macs_params_and_io(simplenet_int8):
    info = inspect_tflite(simplenet_int8)
    assert info.macs == _simplenet_macs() == 18_461_184  # docs/models.md: ~18.5 M
    assert info.params == 383_012  # all 14 kernels and biases (biases as int32)
    assert info.op_counts == {"CONV_2D": 14, "MAX_POOL_2D": 5, "RESHAPE": 1}
    assert info.quantized and info.size_bytes == len(simplenet_int8)
    (inp,), (out,) = info.inputs, info.outputs
    assert (inp.shape, inp.dtype, out.shape, out.dtype) == ((1, 32, 32, 3), "int8", (1, 100), "int8")
    assert inp.scale > 0 and isinstance(inp.zero_point, int)
    assert sum(op.macs for op in info.ops) == info.macs
    assert [op.index for op in info.ops] == list(range(len(info.ops)))


def test_scales(simplenet_int8):
    scales = weight_scales(simplenet_int8)
    assert len(scales) == 14 and all(len(s) > 1 for s in scales.values())  # per-channel
    assert len(activation_scales(simplenet_int8)) >= 20


def _tiny_model():
    import keras
    from keras import layers, ops

    inputs = keras.Input((6, 6, 4), batch_size=1, name="input")
    x = layers.Conv2D(8, 3, padding="same", name="conv")(inputs)  # 6·6·8 · 3·3·4
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)  # 6·6·8 · 3·3
    x = layers.Conv2DTranspose(4, 2, strides=2, name="tconv")(x)  # 6·6·8 (input) · 2·2·4
    x = layers.Reshape((144, 4), name="reshape")(x)
    x = layers.Dense(5, name="fc")(x)  # 144 rows · 5·4
    x = layers.Lambda(lambda t: ops.matmul(ops.transpose(t, (0, 2, 1)), t), name="gram")(x)  # 5·5 · 144
    return keras.Model(inputs, x)


EXPECTED_TINY = {
    "CONV_2D": 6 * 6 * 8 * 3 * 3 * 4,
    "DEPTHWISE_CONV_2D": 6 * 6 * 8 * 3 * 3,
    "TRANSPOSE_CONV": 6 * 6 * 8 * 2 * 2 * 4,
    "FULLY_CONNECTED": 144 * 5 * 4,
    "BATCH_MATMUL": 5 * 5 * 144,
    "RESHAPE": 0,
}


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_tiny_model_macs_per_op(mode):
    info = inspect_tflite(_convert(_tiny_model(), mode))
    assert {op.op: op.macs for op in info.ops} == EXPECTED_TINY
    assert info.macs == sum(EXPECTED_TINY.values()) == 24_048
    assert info.quantized == (mode == "int8")
    assert info.inputs[0].dtype == ("int8" if mode == "int8" else "float32")
    scale = info.inputs[0].scale
    assert scale is None if mode == "float32" else scale > 0


def _repacked(data: bytes, edit) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    edit(model, schema)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_custom_op_name(simplenet_int8):
    def to_ethos_u(model, schema):
        code = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "ethos-u"

    info = inspect_tflite(_repacked(simplenet_int8, to_ethos_u))
    assert info.ops[0].op == "CUSTOM:ethos-u" and info.op_counts["CUSTOM:ethos-u"] == 14  # all convs share the code
    assert info.macs == 0  # custom ops count no MACs


@pytest.mark.parametrize(
    "data",
    [b"", b"TFL3", b"\x00" * 64, b"PK\x03\x04" + b"\x00" * 60, b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8],
    ids=["empty", "short", "zeros", "zip", "truncated-header"],
)
def test_not_tflite_raises_graph_error(data):
    with pytest.raises(GraphError) as err:
        inspect_tflite(data)
    assert "\n" not in str(err.value)


def test_truncated_and_damaged_models(simplenet_int8):
    for data in (simplenet_int8[: len(simplenet_int8) // 2], simplenet_int8[:200]):
        with pytest.raises(GraphError, match="^corrupt TFLite model"):
            inspect_tflite(data)
    damaged = b"\xff\xff\xff\x7f" + simplenet_int8[4:]  # root table offset far outside the file
    with pytest.raises(GraphError, match="^corrupt TFLite model"):
        inspect_tflite(damaged)


def test_graph_never_imports_tensorflow(simplenet_int8, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(simplenet_int8)
    code = (
        "import sys\nfrom unpu.graph import inspect_tflite\n"
        f"info = inspect_tflite(open({str(path)!r}, 'rb').read())\n"
        "assert info.macs == 18461184\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
