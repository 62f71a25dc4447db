"""Read an int8 .tflite into unpu's code-generator IR and lower every operator to one kernel call.

Parsing goes through `ai_edge_litert.schema_py_generated` (the TFLite flatbuffer schema). Every
operator and tensor type is checked against what the kernels compute exactly; anything else raises
`CodegenError` naming the operator, its index and its tensors. Every derived quantization parameter
comes from `unpu.tflite_math`, which computes it as TFLite's kernels do in their Prepare step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unpu.graph import (  # one name table for the project
    _DTYPES,
    TFLITE_IDENTIFIER,
    _builtin_names,
)
from unpu.tflite_math import (
    QuantParamError,
    activation_range,
    add_params,
    compute_padding_height_width,
    conv_per_channel_multipliers,
    fc_effective_scales,
    logistic_fixed_point_params,
    logistic_table,
    mul_params,
    requantize_params,
    softmax_gemmlowp_params,
    softmax_table,
)

SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "MEAN", "RESHAPE", "SOFTMAX", "LOGISTIC", "QUANTIZE", "DEQUANTIZE", "PAD", "PADV2", "CONCATENATION",
)  # fmt: skip

class CodegenError(Exception):
    """The model cannot be turned into C exactly (unsupported operator, type or parameter)."""


# ---------------------------------------------------------------------------------------------
# IR
# ---------------------------------------------------------------------------------------------

@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: list[float] = field(default_factory=list)
    zero_points: list[int] = field(default_factory=list)
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constants only

    @property
    def const(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> float:
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"[{','.join(str(d) for d in self.shape)}] {self.dtype}"


@dataclass
class Shape4:
    n: int
    h: int
    w: int
    c: int


@dataclass
class ConstArray:
    """A constant array emitted into model.c (flash)."""
    ctype: str  # "int8_t", "int32_t", "float", "unpu_shape4_t"
    values: list


@dataclass
class Arg:
    kind: str  # "tensor" (by index), "null", "literal" (C text), "const" (ConstArray), "tensors" (list of indices)
    value: Any = None


@dataclass
class Call:
    kernel: str  # C function
    struct: str | None  # parameter struct type (passed by pointer first), or None
    params: dict[str, Any]
    args: list[Arg]


@dataclass
class Op:
    index: int
    name: str
    inputs: list[int]  # all tensor inputs (-1 = absent)
    outputs: list[int]
    macs: int = 0
    call: Call | None = None  # None: no code (RESHAPE aliases its input)
    alias: tuple[int, int] | None = None  # (output, input) sharing one buffer


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def activations(self) -> list[int]:
        """Non-constant tensors used by the graph (they live in the arena)."""
        used: set[int] = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(i for i in op.inputs + op.outputs if i >= 0)
        return sorted(i for i in used if not self.tensors[i].const)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDING = {0: "SAME", 1: "VALID"}


def read_model(data: bytes) -> Graph:
    """Parse, check and lower a .tflite model. CodegenError (one line) if it cannot be generated."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytes(data)
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise CodegenError("not a TFLite model (missing 'TFL3' identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises assorted errors on corrupt data
        raise CodegenError(f"corrupt TFLite model: {exc}".splitlines()[0]) from None
    if not model.subgraphs:
        raise CodegenError("TFLite model has no subgraph")
    if len(model.subgraphs) > 1:
        raise CodegenError(f"TFLite model has {len(model.subgraphs)} subgraphs; unpu's code generator supports one")
    sg = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = [_tensor(i, t, buffers, data) for i, t in enumerate(sg.tensors or [])]
    names = _builtin_names(schema)
    codes = []
    for code in model.operatorCodes or []:
        b = max(code.builtinCode, code.deprecatedBuiltinCode)
        if b == schema.BuiltinOperator.CUSTOM:
            cc = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            codes.append(f"CUSTOM:{cc}")
        else:
            codes.append(names.get(b, f"BUILTIN_{b}"))
    graph = Graph(tensors, [], _ints(sg.inputs), _ints(sg.outputs))
    raw_ops = list(sg.operators or [])
    for i, op in enumerate(raw_ops):
        graph.ops.append(Op(i, codes[op.opcodeIndex], _ints(op.inputs), _ints(op.outputs)))
    # check everything before lowering anything, so the first unsupported operator is reported
    for op in graph.ops:
        if op.name not in SUPPORTED_OPS:
            raise _unsupported(op, tensors, "is not supported by unpu's code generator; supported: " + ", ".join(SUPPORTED_OPS))
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise CodegenError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                           "unpu's code generator supports exactly one of each")
    for op, raw in zip(graph.ops, raw_ops):
        _check_types(op, graph)
        try:
            _LOWER[op.name](op, raw.builtinOptions, graph)
        except QuantParamError as exc:
            raise _unsupported(op, tensors, f"has a quantization TFLite's arithmetic cannot represent: {exc}") from None
    return graph


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _tensor(index: int, t, buffers, raw: bytes) -> Tensor:
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
    dtype = _DTYPES.get(t.type, f"type{t.type}")
    shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
    q = t.quantization
    scales, zps, qdim = [], [], 0
    if q is not None and q.scale is not None and len(q.scale) > 0:
        scales = [float(s) for s in q.scale]
        zps = [int(z) for z in q.zeroPoint] if q.zeroPoint is not None and len(q.zeroPoint) else [0] * len(scales)
        qdim = int(q.quantizedDimension)
    data = None
    if not t.isVariable and 0 < t.buffer < len(buffers):
        buf = buffers[t.buffer]
        payload = None
        if buf.data is not None and len(buf.data) > 0:
            payload = np.asarray(buf.data, dtype=np.uint8).tobytes()
        elif buf.offset > 1 and buf.size > 0:
            payload = raw[buf.offset: buf.offset + buf.size]
        if payload is not None:
            if dtype not in ("int8", "int16", "int32", "int64", "float32", "uint8"):
                raise CodegenError(f"constant tensor {index} ({name}) has unsupported type {dtype}")
            data = np.frombuffer(payload, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape) if shape else \
                np.frombuffer(payload, dtype=np.dtype(dtype).newbyteorder("<"))
    return Tensor(index, name, shape, dtype, scales, zps, qdim, data)


def _describe(op: Op, tensors: list[Tensor]) -> str:
    ins = ", ".join(tensors[i].describe() if i >= 0 else "none" for i in op.inputs)
    outs = ", ".join(tensors[i].describe() for i in op.outputs)
    return f"operator {op.index} {op.name} (inputs {ins} -> {outs})"


def _unsupported(op: Op, tensors: list[Tensor], why: str) -> CodegenError:
    return CodegenError(f"{_describe(op, tensors)} {why}")


def _check_types(op: Op, g: Graph) -> None:
    t = g.tensors
    io = set(g.inputs) | set(g.outputs)
    for pos, i in enumerate(op.inputs + op.outputs):
        if i < 0:
            continue
        tensor = t[i]
        if tensor.const:
            continue  # checked per operator below
        ok = tensor.dtype == "int8"
        if tensor.dtype == "float32" and i in io:
            is_in = pos < len(op.inputs)
            ok = (op.name == "QUANTIZE" and is_in and i in g.inputs) or (op.name == "DEQUANTIZE" and not is_in and i in g.outputs)
        if not ok:
            raise _unsupported(op, t, f"has activation tensor {i} of type {tensor.dtype}; unpu's code generator supports int8 "
                                      "activations (float32 only at the model input/output around QUANTIZE/DEQUANTIZE)")
        if tensor.dtype == "int8" and (len(tensor.scales) != 1 or tensor.scales[0] <= 0):
            raise _unsupported(op, t, f"has int8 activation tensor {i} without one positive per-tensor scale")


# ---------------------------------------------------------------------------------------------
# Lowering: one function per operator, filling the kernel's parameter struct
# ---------------------------------------------------------------------------------------------

def shape4(shape: tuple[int, ...], op: Op | None = None, g: Graph | None = None) -> Shape4:
    """RuntimeShape::ExtendedShape(4, shape)."""
    if len(shape) > 4:
        if op is not None and g is not None:
            raise _unsupported(op, g.tensors, "has a tensor of rank > 4")
        raise CodegenError(f"tensor of rank {len(shape)} > 4")
    s = (1,) * (4 - len(shape)) + tuple(shape)
    return Shape4(*s)


def _const_input(op: Op, g: Graph, pos: int, dtypes: tuple[str, ...], what: str) -> Tensor:
    if pos >= len(op.inputs) or op.inputs[pos] < 0:
        raise _unsupported(op, g.tensors, f"has no {what}")
    t = g.tensors[op.inputs[pos]]
    if not t.const:
        raise _unsupported(op, g.tensors, f"has a non-constant {what}; unpu's code generator needs it constant")
    if t.dtype not in dtypes:
        raise _unsupported(op, g.tensors, f"has {what} of type {t.dtype}; supported: {', '.join(dtypes)}")
    return t


def _act(op: Op, g: Graph, options, out: Tensor) -> tuple[int, int]:
    name = _ACTIVATIONS.get(int(getattr(options, "fusedActivationFunction", 0) or 0), "?")
    if name not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise _unsupported(op, g.tensors, f"has fused activation {name}, which is not supported")
    return activation_range(name, out.scale, out.zero_point)


def _bias(op: Op, g: Graph, pos: int, channels: int) -> Arg:
    if pos >= len(op.inputs) or op.inputs[pos] < 0:
        return Arg("null")
    b = _const_input(op, g, pos, ("int32",), "bias")
    if b.size != channels:
        raise _unsupported(op, g.tensors, f"has {b.size} bias values for {channels} output channels")
    return Arg("tensor", b.index)


def _check_weights(op: Op, g: Graph, w: Tensor) -> None:
    if any(z != 0 for z in w.zero_points):
        raise _unsupported(op, g.tensors, "has weights with a non-zero zero point (TFLite int8 requires 0)")
    if not w.scales:
        raise _unsupported(op, g.tensors, "has unquantized weights")


def _filtered(op: Op, g: Graph) -> tuple[Tensor, Tensor, Tensor, Shape4, Shape4]:
    """Input, output and int8 filter (checked) of a convolution, and its 4-D input and output shapes."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    w = _const_input(op, g, 1, ("int8",), "filter")
    _check_weights(op, g, w)
    return inp, out, w, shape4(inp.shape, op, g), shape4(out.shape, op, g)


def _lower_conv(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out, w, i4, o4 = _filtered(op, g)
    oc, kh, kw, ic = w.shape
    if ic != i4.c:
        raise _unsupported(op, t, f"is a grouped convolution ({i4.c} input channels, filter depth {ic}), which is not supported")
    if len(w.scales) > 1 and w.quantized_dimension != 0:
        raise _unsupported(op, t, "has filter scales along a dimension other than 0")
    params = _conv_window_params(op, opt, g, i4, o4, kh, kw, oc, inp, w, out)
    op.macs = o4.n * o4.h * o4.w * oc * kh * kw * ic
    op.call = Call("unpu_conv2d_s8", "unpu_conv_params_t", params,
                   [Arg("tensor", inp.index), Arg("tensor", w.index), _bias(op, g, 2, oc), Arg("tensor", out.index)])


def _conv_window_params(op: Op, opt, g: Graph, i4, o4, kh: int, kw: int, oc: int, inp, w, out) -> dict:
    """Strides, dilation, TFLite's padding, offsets, activation range and per-channel multipliers
    shared by CONV_2D and DEPTHWISE_CONV_2D."""
    sh, sw = int(opt.strideH), int(opt.strideW)
    dh, dw = int(opt.dilationHFactor or 1), int(opt.dilationWFactor or 1)
    pad_top, pad_left, oh, ow = compute_padding_height_width(_PADDING[opt.padding], sh, sw, dh, dw, i4.h, i4.w, kh, kw)
    if (oh, ow, oc) != (o4.h, o4.w, o4.c):
        raise _unsupported(op, g.tensors, f"has output {o4.h}x{o4.w}x{o4.c}, TFLite's padding rule gives {oh}x{ow}x{oc}")
    mults, shifts = conv_per_channel_multipliers(inp.scale, w.scales, out.scale, oc)
    act_min, act_max = _act(op, g, opt, out)
    return {"input": i4, "output": o4, "filter_h": kh, "filter_w": kw, "stride_h": sh, "stride_w": sw,
            "dilation_h": dh, "dilation_w": dw, "pad_top": pad_top, "pad_left": pad_left,
            "input_offset": -inp.zero_point, "output_offset": out.zero_point, "act_min": act_min, "act_max": act_max,
            "multiplier": ConstArray("int32_t", mults), "shift": ConstArray("int32_t", shifts)}


def _lower_dwconv(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out, w, i4, o4 = _filtered(op, g)
    one, kh, kw, oc = w.shape
    if one != 1 or oc % i4.c:
        raise _unsupported(op, t, "has a depthwise filter whose shape does not match its input")
    if len(w.scales) > 1 and w.quantized_dimension != 3:
        raise _unsupported(op, t, "has filter scales along a dimension other than 3")
    depth_multiplier = oc // i4.c
    params = _conv_window_params(op, opt, g, i4, o4, kh, kw, oc, inp, w, out)
    params["depth_multiplier"] = depth_multiplier
    op.macs = o4.n * o4.h * o4.w * oc * kh * kw
    op.call = Call("unpu_depthwise_conv2d_s8", "unpu_dwconv_params_t", params,
                   [Arg("tensor", inp.index), Arg("tensor", w.index), _bias(op, g, 2, oc), Arg("tensor", out.index)])


def _lower_fc(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    w = _const_input(op, g, 1, ("int8",), "weights")
    _check_weights(op, g, w)
    if opt is not None and int(getattr(opt, "weightsFormat", 0) or 0) != 0:
        raise _unsupported(op, t, "uses a shuffled weights format")
    if len(w.shape) != 2:
        raise _unsupported(op, t, "has weights that are not 2-D")
    out_f, in_f = w.shape
    if inp.size % in_f:
        raise _unsupported(op, t, f"has an input of {inp.size} values, not a multiple of {in_f}")
    batches = inp.size // in_f
    if out.size != batches * out_f:
        raise _unsupported(op, t, "has an output size that does not match batches x out_features")
    per_channel = len(w.scales) > 1
    mults, shifts = conv_per_channel_multipliers(inp.scale, w.scales, out.scale, out_f if per_channel else 1)
    act_min, act_max = _act(op, g, opt, out)
    params = {"batches": batches, "in_features": in_f, "out_features": out_f, "input_offset": -inp.zero_point,
              "filter_offset": -w.zero_point, "output_offset": out.zero_point, "act_min": act_min, "act_max": act_max,
              "per_channel": int(per_channel), "multiplier": ConstArray("int32_t", mults),
              "shift": ConstArray("int32_t", shifts),
              "effective_scale": ConstArray("double", fc_effective_scales(inp.scale, w.scales, out.scale))}
    op.macs = batches * out_f * in_f
    op.call = Call("unpu_fully_connected_s8", "unpu_fc_params_t", params,
                   [Arg("tensor", inp.index), Arg("tensor", w.index), _bias(op, g, 2, out_f), Arg("tensor", out.index)])


def _broadcast_shapes(op: Op, g: Graph) -> tuple[Shape4, Shape4, Shape4]:
    t = g.tensors
    a, b, o = (shape4(t[i].shape, op, g) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    for x, y, z in zip(vars(a).values(), vars(b).values(), vars(o).values()):
        if not (x in (1, z) and y in (1, z)):
            raise _unsupported(op, t, "has shapes that do not broadcast to its output")
    return a, b, o


def _elementwise_inputs(op: Op, g: Graph) -> list[Tensor]:
    ins = [g.tensors[i] for i in op.inputs[:2]]
    for x in ins:
        if x.dtype != "int8" or len(x.scales) != 1:
            raise _unsupported(op, g.tensors, "has an input that is not a per-tensor int8 tensor")
    return ins


def _lower_elementwise(op: Op, opt, g: Graph, kernel: str, scales: dict[str, int]) -> None:
    """ADD and MUL: int8 per-tensor inputs with broadcast, the operator's own rescaling `scales`."""
    a, b = _elementwise_inputs(op, g)
    out = g.tensors[op.outputs[0]]
    s1, s2, so = _broadcast_shapes(op, g)
    act_min, act_max = _act(op, g, opt, out)
    params = {"in1": s1, "in2": s2, "output": so, "in1_offset": -a.zero_point, "in2_offset": -b.zero_point,
              "output_offset": out.zero_point, **scales, "act_min": act_min, "act_max": act_max}
    op.call = Call(kernel, "unpu_elementwise_params_t", params,
                   [Arg("tensor", a.index), Arg("tensor", b.index), Arg("tensor", out.index)])


def _lower_add(op: Op, opt, g: Graph) -> None:
    a, b = _elementwise_inputs(op, g)
    _lower_elementwise(op, opt, g, "unpu_add_s8", add_params(a.scale, b.scale, g.tensors[op.outputs[0]].scale))


def _lower_mul(op: Op, opt, g: Graph) -> None:
    a, b = _elementwise_inputs(op, g)
    unused = {"left_shift": 0, "in1_multiplier": 0, "in1_shift": 0, "in2_multiplier": 0, "in2_shift": 0}
    _lower_elementwise(op, opt, g, "unpu_mul_s8", {**unused, **mul_params(a.scale, b.scale, g.tensors[op.outputs[0]].scale)})


def _lower_pool(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
        raise _unsupported(op, t, "has different input and output quantization")
    i4, o4 = shape4(inp.shape, op, g), shape4(out.shape, op, g)
    fh, fw, sh, sw = int(opt.filterHeight), int(opt.filterWidth), int(opt.strideH), int(opt.strideW)
    pad_top, pad_left, oh, ow = compute_padding_height_width(_PADDING[opt.padding], sh, sw, 1, 1, i4.h, i4.w, fh, fw)
    if (oh, ow) != (o4.h, o4.w):
        raise _unsupported(op, t, f"has output {o4.h}x{o4.w}, TFLite's padding rule gives {oh}x{ow}")
    act_min, act_max = _act(op, g, opt, out)
    params = {"input": i4, "output": o4, "filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
              "pad_top": pad_top, "pad_left": pad_left, "act_min": act_min, "act_max": act_max}
    kernel = "unpu_max_pool_s8" if op.name == "MAX_POOL_2D" else "unpu_avg_pool_s8"
    op.call = Call(kernel, "unpu_pool_params_t", params, [Arg("tensor", inp.index), Arg("tensor", out.index)])


def _lower_mean(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    axis = _const_input(op, g, 1, ("int32",), "axis")
    rank = len(inp.shape)
    raw = [int(a) for a in axis.data.reshape(-1)]
    if rank == 0 or rank > 4 or any(not -rank <= a < rank for a in raw):
        raise _unsupported(op, t, f"reduces axes {raw} of a rank-{rank} tensor; unpu supports MEAN of "
                                  "rank-1 to rank-4 tensors over valid axes")
    axes = sorted({a + rank if a < 0 else a for a in raw})  # reference_ops::ResolveAxis
    kept = [d for i, d in enumerate(inp.shape) if i not in axes]
    if int(np.prod(kept, dtype=np.int64)) != out.size:
        raise _unsupported(op, t, f"has {out.size} output elements, reducing axes {axes} gives {int(np.prod(kept))}")
    # LiteRT's BUILTIN_REF MEAN runs reference_ops::QuantizedMeanOrSum for every int8 case (reduce.cc
    # EvalMean -> EvalQuantizedMean), also for 4-D keep_dims over H,W and for equal input/output
    # quantization (checked against LiteRT 2.3; tests/test_kernels.py test_mean_*): one kernel, any axes.
    mult, shift = requantize_params(inp.scale, out.scale)
    offset = 4 - rank  # axes of the 4-D extended shape
    params = {"input": shape4(inp.shape, op, g), "input_zero_point": inp.zero_point,
              "output_zero_point": out.zero_point, "multiplier": mult, "shift": shift,
              "reduce_mask": sum(1 << (a + offset) for a in axes)}
    op.call = Call("unpu_mean_s8", "unpu_mean_params_t", params, [Arg("tensor", inp.index), Arg("tensor", out.index)])


def _lower_reshape(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if inp.size != out.size or inp.dtype != out.dtype:
        raise _unsupported(op, t, "changes the number of elements or the type")
    if inp.dtype == "int8" and (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
        raise _unsupported(op, t, "changes the quantization")
    op.alias = (out.index, inp.index)
    op.call = None


def _lower_softmax(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    beta = float(np.float32(opt.beta)) if opt is not None else 1.0
    depth = inp.shape[-1] if inp.shape else 1
    rows = inp.size // depth
    params = {"rows": rows, "depth": depth, "output_zero_point": out.zero_point,
              "output_scale": float(np.float32(out.scale)), "input_scale": float(np.float32(inp.scale)), "beta": beta,
              "table": ConstArray("float", softmax_table(beta, inp.scale)),
              "lut": ConstArray("float", softmax_table(beta, inp.scale))}
    try:
        params.update(softmax_gemmlowp_params(beta, inp.scale))
    except CodegenError:
        pass  # only needed by a fixed-point kernel; reported if the header asks for it
    op.call = Call("unpu_softmax_s8", "unpu_softmax_params_t", params, [Arg("tensor", inp.index), Arg("tensor", out.index)])


def _lower_logistic(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if out.scale != 1.0 / 256 or out.zero_point != -128:
        raise _unsupported(op, t, "has an output quantization other than scale 1/256, zero point -128")
    params = {"size": inp.size, "input_zero_point": inp.zero_point, **logistic_fixed_point_params(inp.scale),
              "lut": ConstArray("int8_t", logistic_table(inp.scale, inp.zero_point, out.scale, out.zero_point))}
    op.call = Call("unpu_logistic_s8", "unpu_logistic_params_t", params, [Arg("tensor", inp.index), Arg("tensor", out.index)])


def _lower_quantize(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if out.dtype != "int8" or len(out.scales) != 1:
        raise _unsupported(op, t, "does not produce a per-tensor int8 tensor")
    if inp.dtype == "float32":
        op.call = Call("unpu_quantize_f32_s8", None, {}, [
            Arg("tensor", inp.index), Arg("tensor", out.index), Arg("literal", str(inp.size)),
            Arg("literal", _float_literal(out.scale)), Arg("literal", str(out.zero_point))])
        return
    mult, shift = requantize_params(inp.scale, out.scale)
    op.call = Call("unpu_requantize_s8", None, {}, [
        Arg("tensor", inp.index), Arg("tensor", out.index), Arg("literal", str(inp.size)),
        Arg("literal", str(inp.zero_point)), Arg("literal", str(out.zero_point)), Arg("literal", str(mult)),
        Arg("literal", str(shift))])


def _lower_dequantize(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if inp.dtype != "int8" or out.dtype != "float32":
        raise _unsupported(op, t, "is not an int8 -> float32 dequantization")
    op.call = Call("unpu_dequantize_s8_f32", None, {}, [
        Arg("tensor", inp.index), Arg("tensor", out.index), Arg("literal", str(inp.size)),
        Arg("literal", _float_literal(inp.scale)), Arg("literal", str(inp.zero_point))])


def _lower_pad(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    inp, out = t[op.inputs[0]], t[op.outputs[0]]
    if (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
        raise _unsupported(op, t, "has different input and output quantization")
    pads = _const_input(op, g, 1, ("int32", "int64"), "paddings").data.reshape(-1, 2)
    rank = len(inp.shape)
    if pads.shape[0] != rank or rank > 4 or (pads < 0).any():
        raise _unsupported(op, t, "has paddings unpu cannot apply")
    before = [0] * (4 - rank) + [int(p) for p in pads[:, 0]]
    pad_value = out.zero_point
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = _const_input(op, g, 2, ("int8",), "constant value")
        pad_value = int(v.data.reshape(-1)[0])
    params = {"input": shape4(inp.shape, op, g), "output": shape4(out.shape, op, g), "before": before,
              "pad_value": pad_value}
    op.call = Call("unpu_pad_s8", "unpu_pad_params_t", params, [Arg("tensor", inp.index), Arg("tensor", out.index)])


def _lower_concat(op: Op, opt, g: Graph) -> None:
    t = g.tensors
    out = t[op.outputs[0]]
    ins = [t[i] for i in op.inputs]
    if any(x.const for x in ins):
        raise _unsupported(op, t, "has a constant input, which is not supported")
    act = _ACTIVATIONS.get(int(getattr(opt, "fusedActivationFunction", 0) or 0), "?")
    if act != "NONE":
        raise _unsupported(op, t, f"has fused activation {act}, which is not supported")
    rank = len(out.shape)
    axis = int(opt.axis)
    axis = axis + rank if axis < 0 else axis
    axis4 = axis + (4 - rank)
    params = {"count": len(ins), "axis": axis4,
              "shapes": ConstArray("unpu_shape4_t", [shape4(x.shape, op, g) for x in ins]),
              "output": shape4(out.shape, op, g),
              "zero_points": ConstArray("int32_t", [x.zero_point for x in ins]),
              "scales": ConstArray("float", [float(np.float32(x.scale)) for x in ins]),
              "output_zero_point": out.zero_point, "output_scale": float(np.float32(out.scale))}
    op.call = Call("unpu_concatenation_s8", "unpu_concat_params_t", params,
                   [Arg("tensors", [x.index for x in ins]), Arg("tensor", out.index)])


def _float_literal(x: float) -> str:
    v = float(np.float32(x))
    if not math.isfinite(v):
        raise CodegenError(f"non-finite quantization parameter {v}")
    return f"{v:.9g}f" if ("e" in f"{v:.9g}" or "." in f"{v:.9g}") else f"{v:.9g}.0f"


_LOWER = {
    "CONV_2D": _lower_conv, "DEPTHWISE_CONV_2D": _lower_dwconv, "FULLY_CONNECTED": _lower_fc,
    "ADD": _lower_add, "MUL": _lower_mul, "AVERAGE_POOL_2D": _lower_pool, "MAX_POOL_2D": _lower_pool,
    "MEAN": _lower_mean, "RESHAPE": _lower_reshape, "SOFTMAX": _lower_softmax, "LOGISTIC": _lower_logistic,
    "QUANTIZE": _lower_quantize, "DEQUANTIZE": _lower_dequantize, "PAD": _lower_pad, "PADV2": _lower_pad,
    "CONCATENATION": _lower_concat,
}  # fmt: skip
