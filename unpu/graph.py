"""Read a .tflite flatbuffer without TensorFlow: ops, tensors, MACs, parameters.

Only `ai_edge_litert.schema_py_generated` (flatbuffers + numpy) is used, so inspecting a cached
model costs ~0.1 s instead of a TensorFlow import.

MACs are counted from tensor shapes in the main subgraph (subgraph 0):
  CONV_2D            N·out_h·out_w·out_c·k_h·k_w·in_c   (in_c per group, from the filter)
  DEPTHWISE_CONV_2D  N·out_h·out_w·out_c·k_h·k_w
  CONV_3D            N·out_d·out_h·out_w·out_c·k_d·k_h·k_w·in_c
  FULLY_CONNECTED    batch·out_features·in_features
  TRANSPOSE_CONV     N·in_h·in_w·in_c·k_h·k_w·out_c     (every input pixel is scattered once)
  BATCH_MATMUL       elements(output)·K
Every other op (pooling, add, softmax, reshape, quantize, custom ops, ...) counts 0.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

TFLITE_IDENTIFIER = b"TFL3"
_QUANTIZED_DIMENSION_FIELD = 16  # vtable offset of QuantizationParameters.quantized_dimension

_DTYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}  # fmt: skip
DTYPE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2, "int8": 1,
               "float64": 8, "uint64": 8, "uint32": 4, "uint16": 2, "bfloat16": 2}
_INTEGER_IO = {"int8", "int16", "uint8", "int32"}
_INTEGER_WEIGHTS = {"int8", "int4", "int16", "uint8"}
_WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
_WEIGHT_INPUT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "CONV_3D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


class GraphError(Exception):
    """The bytes are not a readable .tflite model."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    index: int = -1
    constant: bool = False          # its values are in the model file (weights, biases): flash, not arena
    data_bytes: int = 0             # bytes of those values

    @property
    def elements(self) -> int:
        """Elements of one instance (an unknown dimension, -1, counts as 1)."""
        return math.prod(max(int(d), 1) for d in self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes in memory (4 per element for a type without a fixed size here)."""
        return self.elements * DTYPE_BYTES.get(self.dtype, 4)


@dataclass
class OpInfo:
    index: int
    op: str  # builtin name, e.g. "CONV_2D", or "CUSTOM:<custom code>"
    macs: int
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)


@dataclass
class GraphInfo:
    ops: list[OpInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    macs: int
    params: int
    quantized: bool
    op_counts: dict[str, int]
    size_bytes: int
    tensors: list[TensorInfo] = field(default_factory=list)

    def touched(self, op: OpInfo) -> list[TensorInfo]:
        """The tensors an operator reads or writes, each once."""
        return [self.tensors[i] for i in dict.fromkeys(op.inputs + op.outputs) if i >= 0]

    @property
    def weight_bytes(self) -> int:
        """Bytes of every constant tensor (weights, biases, other constants)."""
        return sum(t.data_bytes for t in self.tensors if t.constant)

    @property
    def activations(self) -> list[TensorInfo]:
        """The tensors computed at run time (inputs, outputs and intermediates)."""
        return [t for t in self.tensors if not t.constant]


def inspect_tflite(data: bytes) -> GraphInfo:
    """Parse a .tflite model; GraphError (one line) if `data` is not one."""
    data = bytes(data)
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise GraphError("not a TFLite model (missing 'TFL3' identifier)")
    try:
        return _inspect(data)
    except GraphError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on truncated/corrupt data
        raise GraphError(f"corrupt TFLite model: {exc}".splitlines()[0]) from None


def _inspect(data: bytes) -> GraphInfo:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if not model.subgraphs:
        raise GraphError("TFLite model has no subgraph")
    graph = model.subgraphs[0]
    tensors = graph.tensors or []
    buffers = model.buffers or []
    names = [_op_name(code, schema) for code in (model.operatorCodes or [])]
    ops = [_op_info(i, op, names[op.opcodeIndex], tensors) for i, op in enumerate(graph.operators or [])]
    infos = [_tensor_info(t, i, buffers) for i, t in enumerate(tensors)]
    inputs = [infos[i] for i in _ints(graph.inputs)]
    outputs = [infos[i] for i in _ints(graph.outputs)]
    op_counts: dict[str, int] = {}
    for op in ops:
        op_counts[op.op] = op_counts.get(op.op, 0) + 1
    return GraphInfo(
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        macs=sum(op.macs for op in ops),
        params=_count_params(ops, tensors, buffers),
        quantized=_is_quantized(ops, tensors, inputs + outputs),
        op_counts=op_counts,
        size_bytes=len(data),
        tensors=infos,
    )


def _ints(values) -> list[int]:
    # the object API gives numpy arrays or None (never use their truthiness)
    return [] if values is None else [int(v) for v in values]


def _op_name(code, schema) -> str:
    # Old models only fill the deprecated int8 field; builtin codes > 127 only the new one.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        return f"CUSTOM:{custom}"
    return _builtin_names(schema).get(builtin, f"BUILTIN_{builtin}")


_NAMES: dict[int, str] = {}


def _builtin_names(schema) -> dict[int, str]:
    if not _NAMES:
        ops = schema.BuiltinOperator
        _NAMES.update({v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)})
    return _NAMES


def _tensor_info(t, index: int, buffers: list) -> TensorInfo:
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
    q = t.quantization
    scale = zero_point = None
    if q is not None and q.scale is not None and len(q.scale) > 0 and q.scale[0] != 0:
        scale = float(q.scale[0])
        zero_point = int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) > 0 else 0
    constant = _is_constant(t, buffers)
    data_bytes = _data_bytes(buffers[t.buffer]) if constant else 0
    return TensorInfo(name, _shape(t), _DTYPES.get(t.type, f"type{t.type}"), scale, zero_point, index, constant,
                      data_bytes)


def _data_bytes(buf) -> int:
    return len(buf.data) if buf.data is not None and len(buf.data) else int(buf.size)


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape) if t.shape is not None else ()


def _op_info(index: int, op, name: str, tensors: list) -> OpInfo:
    inputs, outputs = _ints(op.inputs), _ints(op.outputs)
    shapes_in = [_shape(tensors[i]) if i >= 0 else () for i in inputs]
    shapes_out = [_shape(tensors[i]) for i in outputs]
    macs = _macs(name, op, shapes_in, shapes_out)
    return OpInfo(index, name, macs, inputs, outputs)


def _macs(name: str, op, ins: list[tuple[int, ...]], outs: list[tuple[int, ...]]) -> int:
    if name not in _WEIGHTED_OPS or not outs or len(ins) < 2:
        return 0
    out = outs[0]
    if name == "CONV_2D":  # filter [out_c, kh, kw, in_c/groups]
        return math.prod(out) * math.prod(ins[1][1:])
    if name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out_c]
        return math.prod(out) * math.prod(ins[1][1:3])
    if name == "CONV_3D":  # filter [kd, kh, kw, in_c, out_c]
        return math.prod(out) * math.prod(ins[1][:4])
    if name == "FULLY_CONNECTED":  # weights [out, in]; output elements = batch·out
        return math.prod(out) * ins[1][-1]
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, filter [out_c, kh, kw, in_c], input
        return math.prod(ins[2]) * math.prod(ins[1][:3]) if len(ins) > 2 else 0
    adj_x = bool(getattr(op.builtinOptions, "adjX", False))  # BATCH_MATMUL
    a = ins[0]
    k = a[-2] if adj_x else a[-1]
    return math.prod(out) * k


def _is_constant(t, buffers: list) -> bool:
    if t.isVariable or t.buffer <= 0 or t.buffer >= len(buffers):
        return False
    buf = buffers[t.buffer]
    has_data = buf.data is not None and len(buf.data) > 0
    return has_data or (buf.offset > 1 and buf.size > 0)


def _count_params(ops: list[OpInfo], tensors: list, buffers: list) -> int:
    """Elements of constant tensors feeding ops: weights and biases of weighted ops, plus
    non-integer-index constants of other ops (e.g. unfolded scale/shift); shape, axis and
    padding operands (int32/int64 constants of non-weighted ops) are not parameters."""
    seen: set[int] = set()
    total = 0
    for op in ops:
        for pos, i in enumerate(op.inputs):
            if i < 0 or i in seen or not _is_constant(tensors[i], buffers):
                continue
            if not _is_parameter(op.op, pos, _DTYPES.get(tensors[i].type, "")):
                continue
            seen.add(i)
            total += math.prod(_shape(tensors[i]))
    return total


def _is_parameter(op: str, pos: int, dtype: str) -> bool:
    if op == "TRANSPOSE_CONV":
        return pos != 0  # input 0 is the output shape
    if op in _WEIGHTED_OPS:
        return True
    return dtype not in ("int32", "int64", "bool", "string")


def _is_quantized(ops: list[OpInfo], tensors: list, io: list[TensorInfo]) -> bool:
    if not all(t.dtype in _INTEGER_IO for t in io):
        return False
    for op in ops:
        pos = _WEIGHT_INPUT.get(op.op)
        if pos is not None and len(op.inputs) > pos and op.inputs[pos] >= 0:
            if _DTYPES.get(tensors[op.inputs[pos]].type) not in _INTEGER_WEIGHTS:
                return False
    return True


def weight_scales(data: bytes) -> dict[int, np.ndarray]:
    """Quantization scales of each weighted op's weight tensor, keyed by op index
    (length 1 = per-tensor, length out_c = per-channel)."""
    from ai_edge_litert import schema_py_generated as schema

    info = inspect_tflite(data)
    tensors = schema.ModelT.InitFromPackedBuf(bytes(data), 0).subgraphs[0].tensors
    scales: dict[int, np.ndarray] = {}
    for op in info.ops:
        pos = _WEIGHT_INPUT.get(op.op)
        if pos is None or len(op.inputs) <= pos:
            continue
        q = tensors[op.inputs[pos]].quantization
        if q is not None and q.scale is not None:
            scales[op.index] = np.asarray(q.scale, dtype=np.float64)
    return scales


def activation_scales(data: bytes) -> list[float]:
    """Per-tensor scales of the non-constant integer tensors (activations) of the main graph."""
    from ai_edge_litert import schema_py_generated as schema

    inspect_tflite(data)  # validates
    model = schema.ModelT.InitFromPackedBuf(bytes(data), 0)
    buffers = model.buffers or []
    scales = []
    for t in model.subgraphs[0].tensors or []:
        q = t.quantization
        if _is_constant(t, buffers) or q is None or q.scale is None or len(q.scale) != 1:
            continue
        if _DTYPES.get(t.type) in ("int8", "int16", "uint8"):
            scales.append(float(q.scale[0]))
    return scales


def describe(info: GraphInfo) -> str:
    """What a .tflite holds, in words: e.g. "a float .tflite (float32 input, float32 weights)"."""
    weights = sorted({info.tensors[op.inputs[pos]].dtype for op in info.ops
                      if (pos := _WEIGHT_INPUT.get(op.op)) is not None and len(op.inputs) > pos and op.inputs[pos] >= 0})
    io = info.inputs[0].dtype if info.inputs else "no"
    if info.quantized:
        kind = "a quantized .tflite"
    elif weights and set(weights) <= _INTEGER_WEIGHTS:
        kind = "a quantized .tflite with a float interface"
    else:
        kind = "a float .tflite"
    return f"{kind} ({io} input, {'/'.join(weights) + ' weights' if weights else 'no weighted operators'})"


# -- LiteRT, unpu's reference interpreter -------------------------------------------------------------

def litert_compatible(data: bytes) -> tuple[bytes, list[str]]:
    """A copy of `data` that LiteRT accepts, and one line per kind of change made (empty: none).

    Older converters left `quantized_dimension` != 0 on tensors quantized per tensor (one scale),
    where the axis means nothing. TFLite Micro ignores it; LiteRT refuses the model ("quantized_dimension
    must be in range [0, rank)"). The copy has 0 there, patched in place in the flatbuffer (a
    non-zero value is always stored, so nothing else moves); the original bytes are not touched.
    """
    inspect_tflite(data)  # validates
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(data)
    model = schema.Model.GetRootAs(buf, 0)
    patched: set[int] = set()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            q = graph.Tensors(t).Quantization()
            if q is None or q.ScaleLength() != 1 or q.QuantizedDimension() == 0:
                continue
            pos = q._tab.Pos + q._tab.Offset(_QUANTIZED_DIMENSION_FIELD)
            struct.pack_into("<i", buf, pos, 0)
            patched.add(pos)
    if not patched:
        return bytes(data), []
    return bytes(buf), [f"LiteRT's copy: quantized_dimension set to 0 on {len(patched)} per-tensor-quantized tensors"]


def reference_interpreter(data: bytes) -> tuple["Interpreter", list[str]]:
    """LiteRT with TFLite's reference kernels (BUILTIN_REF) on `litert_compatible(data)`, tensors
    allocated, and the changes that copy needed. A model LiteRT refuses raises GraphError with its
    messages, each said once (`dedupe_messages`)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model, changes = litert_compatible(data)
    try:
        interpreter = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise GraphError(f"LiteRT refuses the model: {dedupe_messages(str(exc))}") from None
    return interpreter, changes


# LiteRT joins its error reporter's messages with nothing between them: "...Was 3.Tensor 30 has..."
_MESSAGE_END = re.compile(r"\n+|(?<=[A-Za-z0-9)\]]\.)(?=[A-Za-z])")


def dedupe_messages(text: str) -> str:
    """An interpreter's error text on one line, a message repeated per tensor or node (the same but
    for its numbers) said once with its count: "Tensor 30 has invalid quantization parameters. (x12)"."""
    counts: dict[str, list] = {}
    for message in (m.strip() for m in _MESSAGE_END.split(text)):
        if message:
            counts.setdefault(re.sub(r"\d+", "#", message), [message, 0])[1] += 1
    return "; ".join(first + (f" (x{n})" if n > 1 else "") for first, n in counts.values()) or text.strip()
