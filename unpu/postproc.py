"""Software post-processing that runs on the device after the model (the `post` stage).

`softmax` turns a model's logits into probabilities with TFLite Micro's own SOFTMAX kernel, so the
host board spends the same work a firmware would. The one-operator model is written with the
TFLite flatbuffer schema (no TensorFlow): input quantized exactly like the model's output, output
with TFLite's fixed softmax quantization (int8: scale 1/256, zero point -128; int16: 1/32768, 0).
"""

from __future__ import annotations

import flatbuffers
import numpy as np

_TYPES = {"float32": 0, "int16": 7, "int8": 9}
_SOFTMAX_OUT_Q = {"int8": (1.0 / 256, -128), "int16": (1.0 / 32768, 0)}


def softmax_model(length: int, dtype: str, scale: float | None, zero_point: int | None) -> bytes:
    """A .tflite holding one SOFTMAX over a [1, length] tensor of `dtype`."""
    from ai_edge_litert import schema_py_generated as s

    if dtype not in _TYPES:
        raise ValueError(f"softmax post-processing supports {sorted(_TYPES)}, not {dtype}")

    def tensor(name: str, index: int, q: tuple[float, int] | None) -> "s.TensorT":
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = np.array([1, length], np.int32), _TYPES[dtype], index, name
        if q is not None:
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale = np.array([q[0]], np.float32)
            t.quantization.zeroPoint = np.array([q[1]], np.int64)
        return t

    quantized = dtype != "float32"
    graph = s.SubGraphT()
    graph.tensors = [
        tensor("logits", 1, (float(scale), int(zero_point)) if quantized else None),
        tensor("probabilities", 2, _SOFTMAX_OUT_Q[dtype] if quantized else None),
    ]
    graph.inputs, graph.outputs = np.array([0], np.int32), np.array([1], np.int32)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0], np.int32), np.array([1], np.int32)
    op.builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
    op.builtinOptions = s.SoftmaxOptionsT()
    op.builtinOptions.beta = 1.0
    graph.operators = [op]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SOFTMAX
    code.version = 1
    model = s.ModelT()
    model.version, model.description = 3, b"unpu softmax post-processing"
    model.operatorCodes, model.subgraphs = [code], [graph]
    model.buffers = [s.BufferT(), s.BufferT(), s.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
