"""Analog Devices ai8x-synthesis (`ai8xize.py`) for the MAX78000/MAX78002 CNN accelerator.

ai8xize takes a quantized PyTorch checkpoint, a network description YAML and a sample input
(.npy, int64 C×H×W) and writes a complete MSDK project: cnn.c/cnn.h (accelerator set-up, weight
and bias loading, start, unload), weights.h, main.c (a known-answer test), Makefile/project.mk.
https://github.com/analogdevicesinc/ai8x-synthesis/blob/develop/README.md ("Network Loader").

unpu's models are int8 TFLite; ai8x's own flow is PyTorch quantization-aware training. The route
implemented here (`lower`) reads the TFLite graph and maps it layer by layer onto ai8x layers:
CONV_2D (1×1/3×3, stride 1) with a MAX/AVERAGE_POOL_2D before it fused as in-flight pooling,
FULLY_CONNECTED as `mlp` (with `flatten` after a RESHAPE), ADD/SUB as element-wise layers, MEAN
as average pooling, TRANSPOSE_CONV 3×3/2 as `convtranspose2d`, DEPTHWISE_CONV_2D where the
device has it (MAX78002, groups = channels). Everything else is refused by name in pre-flight.
Weights are dequantized from the TFLite per-channel scales and requantized the ai8x way (8-bit,
one power-of-two `output_shift` per layer); activations use ai8x's fixed Q7 scale. So the network
structure, hence latency and memory, is the TFLite model's; its numerics are not LiteRT's.

The numbers ai8xize reports and unpu parses are those it writes into cnn.h ("SUMMARY OF OPS",
"RESOURCE USAGE"); its latency estimate is printed only with --verbose into log.txt and has no
published sample, so it is not parsed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unpu.graph import _DTYPES, inspect_tflite

AI8XIZE_TIMEOUT_S = 1800
CHECKPOINT_SCRIPT = Path(__file__).with_name("ai8x_checkpoint.py")
ARCH = "unpu"
_ACT = {0: None, 1: "ReLU", 3: "ReLU"}   # NONE, RELU, RELU6 (ai8x ReLU clamps at +127/128 anyway)
_FREE = {"QUANTIZE", "DEQUANTIZE", "SOFTMAX", "RESHAPE"}


class Ai8xError(RuntimeError):
    """The model cannot be lowered to ai8x layers, or ai8xize's output is unreadable."""


@dataclass(frozen=True)
class Device:
    """A device's limits (README, "Limitations of MAX78000/MAX78002 Networks")."""

    name: str                      # MAX78000 | MAX78002 (ai8xize --device)
    weight_bytes: int              # CNN kernel memory
    bias_bytes: int
    data_instance_bytes: int       # one of the 16 data memory instances
    max_layers: int
    max_channels: int
    max_dim: int
    depthwise: bool                # groups = channels (MAX78002 only)

    @property
    def half_offset(self) -> int:
        """The ping-pong data offset: half a data memory instance (0x4000 / 0xA000, README "Data Memory Ping-Pong")."""
        return self.data_instance_bytes // 2


@dataclass
class Layer:
    """One ai8x layer (pooling and element-wise operations may be fused into it)."""

    name: str
    source: str                    # the TFLite operator(s) it comes from, for messages
    op: str                        # conv2d | mlp | convtranspose2d | passthrough | add | sub
    in_ch: int
    out_ch: int
    in_dim: tuple[int, int]
    kernel: tuple[int, int] = (1, 1)
    pad: int = 0
    groups: int = 1
    activate: str | None = None
    pool: tuple[str, int, int] | None = None    # (max|avg, size, stride)
    flatten: bool = False
    weights: np.ndarray | None = None           # float, PyTorch layout [O, I/groups, kh, kw] or [O, I]
    bias: np.ndarray | None = None
    in_sequences: list[int] = field(default_factory=list)


@dataclass
class Lowered:
    layers: list[Layer]
    problems: list[tuple[str, str]]             # (kind, one-line text)
    input_shape: tuple[int, int, int]           # H, W, C
    softmax: bool

    @property
    def weight_bytes(self) -> int:
        return sum(int(l.weights.size) for l in self.layers if l.weights is not None)

    @property
    def bias_bytes(self) -> int:
        return sum(int(l.bias.size) for l in self.layers if l.bias is not None)


# -- TFLite -> ai8x layers -------------------------------------------------------------------------

class _Graph:
    def __init__(self, data: bytes) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self.info = inspect_tflite(data)
        self.model = schema.ModelT.InitFromPackedBuf(bytes(data), 0)
        self.sub = self.model.subgraphs[0]
        self.consumers: dict[int, list[int]] = {}
        for op in self.info.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op.index)

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.sub.tensors[t].shape)

    def options(self, index: int):
        return self.sub.operators[index].builtinOptions

    def const(self, t: int) -> np.ndarray | None:
        """A constant tensor dequantized to float (per-channel scales on its quantized dimension)."""
        if t < 0:
            return None
        tensor = self.sub.tensors[t]
        buf = self.model.buffers[tensor.buffer]
        if buf.data is None or not len(buf.data):
            return None
        raw = np.frombuffer(bytes(np.asarray(buf.data, np.uint8)), dtype=_DTYPES[tensor.type]).reshape(self.shape(t))
        q = tensor.quantization
        if q is None or q.scale is None or not len(q.scale):
            return raw.astype(np.float64)
        scale = np.asarray(q.scale, np.float64)
        zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float64)
        axis = int(q.quantizedDimension or 0)
        bshape = [1] * raw.ndim
        if scale.size > 1:
            bshape[axis] = scale.size
        return (raw.astype(np.float64) - zero.reshape(bshape if zero.size > 1 else [1] * raw.ndim)) * scale.reshape(bshape)


def lower(data: bytes, device: Device) -> Lowered:
    """The ai8x layers of a TFLite model, and every reason it cannot run on `device`."""
    g = _Graph(data)
    walk = _Walk(g, device)
    for op in g.info.ops:
        walk.step(op)
    walk.finish()
    _check_limits(walk.layers, device, walk.problems)
    first_input = g.info.inputs[0].shape if g.info.inputs else ()
    return Lowered(walk.layers, walk.problems, _hwc(first_input), walk.softmax)


_SUPPORTED = "ai8x has Conv1d/Conv2d 1x1|3x3 stride 1, ConvTranspose2d 3x3/2, Linear, max/avg pooling, add/sub"


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    dims = [int(d) for d in shape[1:]] if len(shape) > 1 else [int(d) for d in shape]
    while len(dims) < 3:
        dims.insert(0, 1)
    return dims[-3], dims[-2], dims[-1]


class _Walk:
    """One pass over the operators in order, tracking which ai8x layer writes each tensor."""

    def __init__(self, g: _Graph, device: Device) -> None:
        self.g, self.device = g, device
        self.layers: list[Layer] = []
        self.problems: list[tuple[str, str]] = []
        self.made_by: dict[int, int] = {}                        # tensor -> ai8x layer index
        self.pools: dict[int, tuple[str, int, int, str, int]] = {}  # pooled tensor -> (kind, size, stride, where, input)
        self.flat: dict[int, tuple[int, int, int]] = {}          # flattened tensor -> the 2D map's H, W, C
        self.softmax = False

    def step(self, op) -> None:
        where = f"op {op.index} {op.op}"
        if op.op in _FREE:
            self.softmax |= op.op == "SOFTMAX"
            self._alias(op)
        elif op.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            self.pools[op.outputs[0]] = _pool(self.g, op, self.problems, where)
        elif op.op == "MEAN":
            self.pools[op.outputs[0]] = _mean(self.g, op, self.problems, where)
        elif op.op not in _BUILDERS:
            self.problems.append((f"op:{op.op}", f"{where}: no MAX7800x CNN operation ({_SUPPORTED})"))
        else:
            layer = _BUILDERS[op.op](self.g, op, self.device, self.problems, where)
            if layer is not None:
                self._add(layer, op)

    def _alias(self, op) -> None:
        """No accelerator work: the output is the input (a RESHAPE of a 2D map is a flatten)."""
        if not op.inputs or op.inputs[0] < 0:
            return
        src, dst = op.inputs[0], op.outputs[0]
        shape = self.g.shape(src)
        if op.op == "RESHAPE" and len(shape) == 4 and shape[1] * shape[2] > 1:
            self.flat[dst] = _hwc(shape)
        for table in (self.made_by, self.pools, self.flat):
            if src in table:
                table[dst] = table[src]

    def _add(self, layer: Layer, op) -> None:
        src = op.inputs[0] if layer.op != "convtranspose2d" else op.inputs[2]
        if src in self.pools:
            pool = self.pools.pop(src)
            if layer.op in ("conv2d", "convtranspose2d", "add", "sub"):
                layer.pool, layer.source = pool[:3], f"{pool[3]} + {layer.source}"
                h, w, _ = _hwc(self.g.shape(pool[4]))
                layer.in_dim = (h, w)
            else:
                self._passthrough(pool)
        if layer.op == "mlp" and src in self.flat:
            h, w, c = self.flat[src]
            layer.flatten, layer.in_dim = True, (h, w)
            # TFLite flattens H, W, C; PyTorch (hence ai8x) flattens C, H, W
            layer.weights = layer.weights.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(layer.weights.shape[0], -1)
        if layer.op in ("add", "sub"):
            layer.in_sequences = [self.made_by[t] for t in op.inputs[:2] if t in self.made_by]
        layer.name = f"l{len(self.layers)}"
        self.made_by[op.outputs[0]] = len(self.layers)
        self.layers.append(layer)

    def _passthrough(self, pool) -> None:
        kind, size, stride, where, src = pool
        h, w, c = _hwc(self.g.shape(src))
        self.layers.append(Layer(f"l{len(self.layers)}", where, "passthrough", c, c, (h, w), pool=(kind, size, stride)))

    def finish(self) -> None:
        for pool in self.pools.values():   # pooling that no layer consumes
            self._passthrough(pool)


def _pool(g: _Graph, op, problems, where: str) -> tuple[str, int, int, str, int]:
    opt = g.options(op.index)
    size_h, size_w = int(opt.filterHeight), int(opt.filterWidth)
    stride_h, stride_w = int(opt.strideH), int(opt.strideW)
    if size_h != size_w or stride_h != stride_w:
        problems.append(("pool:shape", f"{where}: pooling {size_h}x{size_w}/{stride_h}x{stride_w}: unpu lowers "
                                       f"only square pooling with equal strides"))
    if not 1 <= size_h <= 16 or not 1 <= stride_h <= 16:
        problems.append(("pool:size", f"{where}: pooling {size_h}x{size_w} stride {stride_h}: ai8x pools 1..16"))
    _, h, w, _ = g.shape(op.inputs[0])
    if int(opt.padding) == 0 and (h % stride_h or w % stride_w) and size_h > stride_h:
        problems.append(("pool:pad", f"{where}: padded (SAME) pooling: ai8x pooling has no padding"))
    return ("max" if op.op == "MAX_POOL_2D" else "avg", size_h, stride_h, where, op.inputs[0])


def _mean(g: _Graph, op, problems, where: str) -> tuple[str, int, int, str, int]:
    h, w, _ = _hwc(g.shape(op.inputs[0]))
    if h != w or h > 16:
        problems.append(("op:MEAN", f"{where}: global average over {h}x{w}: ai8x average-pools at most 16x16"))
    return ("avg", max(h, w), max(h, w), where, op.inputs[0])


def _activation(opt, problems, where: str) -> str | None:
    code = int(getattr(opt, "fusedActivationFunction", 0) or 0)
    if code not in _ACT:
        problems.append((f"act:{code}", f"{where}: fused activation {code}: ai8x has ReLU, Abs or none"))
    return _ACT.get(code)


def _conv(g: _Graph, op, device: Device, problems, where: str) -> Layer | None:
    opt = g.options(op.index)
    out_c, kh, kw, in_c = g.shape(op.inputs[1])
    h, w, _ = _hwc(g.shape(op.inputs[0]))
    _conv_checks(opt, kh, kw, problems, where, device)
    weights = g.const(op.inputs[1])
    bias = g.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if weights is None:
        problems.append(("weights", f"{where}: filter is not a constant tensor"))
        return None
    return Layer("", where, "conv2d", in_c, out_c, (h, w), (kh, kw), _pad(opt, kh), 1, _activation(opt, problems, where),
                 weights=weights.transpose(0, 3, 1, 2), bias=bias)


def _depthwise(g: _Graph, op, device: Device, problems, where: str) -> Layer | None:
    opt = g.options(op.index)
    _, kh, kw, out_c = g.shape(op.inputs[1])
    h, w, in_c = _hwc(g.shape(op.inputs[0]))
    if not device.depthwise:   # refused, but its weights still count towards the totals
        problems.append(("op:DEPTHWISE_CONV_2D", f"{where}: depthwise convolution: {device.name} has groups=1 only "
                                                 f"(depthwise is MAX78002-only)"))
    if in_c != out_c:
        problems.append(("dw:mult", f"{where}: depth multiplier {out_c // max(in_c, 1)}: ai8x depthwise needs "
                                    f"in = out channels"))
    _conv_checks(opt, kh, kw, problems, where, device)
    weights = g.const(op.inputs[1])
    bias = g.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if weights is None:
        return None
    return Layer("", where, "conv2d", in_c, out_c, (h, w), (kh, kw), _pad(opt, kh), out_c,
                 _activation(opt, problems, where), weights=weights.transpose(3, 0, 1, 2), bias=bias)


def _conv_checks(opt, kh: int, kw: int, problems, where: str, device: Device) -> None:
    if (kh, kw) not in ((1, 1), (3, 3)):
        problems.append(("conv:kernel", f"{where}: kernel {kh}x{kw}: ai8x Conv2d kernels are 1x1 or 3x3"))
    if int(opt.strideH) != 1 or int(opt.strideW) != 1:
        problems.append(("conv:stride", f"{where}: stride {opt.strideH}x{opt.strideW}: ai8x Conv2d stride is "
                                        f"fixed to 1 (pool before the convolution instead)"))
    dil = (int(getattr(opt, "dilationHFactor", 1) or 1), int(getattr(opt, "dilationWFactor", 1) or 1))
    if dil != (1, 1) and (device.name == "MAX78000" or max(dil) > 16):
        problems.append(("conv:dilation", f"{where}: dilation {dil[0]}x{dil[1]} not supported on {device.name}"))


def _pad(opt, k: int) -> int:
    return (k // 2) if int(opt.padding) == 0 else 0     # SAME / VALID


def _fc(g: _Graph, op, device: Device, problems, where: str) -> Layer | None:
    out_f, in_f = g.shape(op.inputs[1])
    weights = g.const(op.inputs[1])
    if weights is None:
        problems.append(("weights", f"{where}: weights are not a constant tensor"))
        return None
    bias = g.const(op.inputs[2]) if len(op.inputs) > 2 else None
    h, w, c = _hwc(g.shape(op.inputs[0]))
    return Layer("", where, "mlp", in_f, out_f, (h, w), (1, 1), 0, 1,
                 _activation(g.options(op.index), problems, where), weights=weights, bias=bias)


def _eltwise(g: _Graph, op, device: Device, problems, where: str) -> Layer | None:
    a, b = (g.shape(t) for t in op.inputs[:2])
    if a != b:
        problems.append(("eltwise:bcast", f"{where}: broadcasting {a} with {b}: ai8x element-wise inputs are "
                                          f"equal-shaped"))
    h, w, c = _hwc(a)
    return Layer("", where, op.op.lower(), c, c, (h, w), activate=_activation(g.options(op.index), problems, where))


def _transpose_conv(g: _Graph, op, device: Device, problems, where: str) -> Layer | None:
    opt = g.options(op.index)
    out_c, kh, kw, in_c = g.shape(op.inputs[1])
    if (kh, kw) != (3, 3) or (int(opt.strideH), int(opt.strideW)) != (2, 2):
        problems.append(("tconv", f"{where}: {kh}x{kw} stride {opt.strideH}: ai8x ConvTranspose2d is 3x3 stride 2"))
    weights = g.const(op.inputs[1])
    if weights is None:
        return None
    h, w, _ = _hwc(g.shape(op.inputs[2]))
    bias = g.const(op.inputs[3]) if len(op.inputs) > 3 else None
    return Layer("", where, "convtranspose2d", in_c, out_c, (h, w), (3, 3), 1, 1, None,
                 weights=weights.transpose(3, 0, 1, 2), bias=bias)


_BUILDERS = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "FULLY_CONNECTED": _fc, "ADD": _eltwise,
             "SUB": _eltwise, "TRANSPOSE_CONV": _transpose_conv}


def _check_limits(layers: list[Layer], device: Device, problems) -> None:
    for layer in layers:
        for what, n in (("input", layer.in_ch), ("output", layer.out_ch)):
            if n > device.max_channels:
                problems.append(("channels", f"{layer.source}: {n} {what} channels, {device.name} allows "
                                             f"{device.max_channels} per layer"))
        if max(layer.in_dim) > device.max_dim:
            problems.append(("dim", f"{layer.source}: input {layer.in_dim[0]}x{layer.in_dim[1]}, {device.name} "
                                    f"allows {device.max_dim} rows/columns"))
        if layer.op == "mlp" and layer.flatten and (layer.in_dim[0] * layer.in_dim[1] > 256 or layer.in_ch > 16384):
            problems.append(("flatten", f"{layer.source}: flattening {layer.in_dim[0]}x{layer.in_dim[1]}: ai8x needs "
                                        f"H*W <= 256 and C*H*W <= 16384"))
        elif layer.op == "mlp" and max(layer.in_ch, layer.out_ch) > 1024:
            problems.append(("mlp", f"{layer.source}: {layer.in_ch} -> {layer.out_ch} neurons: ai8x Linear has at "
                                    f"most 1024 in and 1024 out"))


# -- pre-flight summary ----------------------------------------------------------------------------

def fit_problems(lowered: Lowered, device: Device) -> list[str]:
    """Every reason the model does not fit, memory totals first, one entry per kind of problem."""
    out: list[str] = []
    w, b = lowered.weight_bytes, lowered.bias_bytes
    if w > device.weight_bytes:
        out.append(f"its {w:,} B of 8-bit weights exceed the {device.weight_bytes:,} B CNN weight memory")
    if b > device.bias_bytes:
        out.append(f"its {b:,} B of biases exceed the {device.bias_bytes:,} B bias memory")
    n = sum(1 for l in lowered.layers)
    if n > device.max_layers:
        out.append(f"{n} layers, {device.name} runs at most {device.max_layers}")
    h, w_, _ = lowered.input_shape
    if 4 * h * w_ > device.data_instance_bytes:
        out.append(f"input {h}x{w_}: four HWC channels of it exceed one {device.data_instance_bytes:,} B data memory "
                   f"(streaming/folding not generated by unpu)")
    seen: dict[str, list[str]] = {}
    for kind, text in lowered.problems:
        seen.setdefault(kind, []).append(text)
    for texts in seen.values():
        out.append(texts[0] + (f" (and {len(texts) - 1} more like it)" if len(texts) > 1 else ""))
    return out


# -- ai8xize inputs ---------------------------------------------------------------------------------

def _processors(channels: int) -> int:
    """Processor count for `channels` inputs: multi-pass rounds channels/passes up to a multiple of 4."""
    passes = math.ceil(channels / 64)
    return min(64, math.ceil(math.ceil(channels / passes) / 4) * 4) if channels > 4 else channels


def network_yaml(lowered: Lowered, device: Device) -> dict[str, Any]:
    """The network description ai8xize reads (README, "Network Loader Configuration Language")."""
    layers = []
    for i, layer in enumerate(lowered.layers):
        procs = _processors(layer.in_ch if not layer.flatten else layer.in_ch // max(layer.in_dim[0] * layer.in_dim[1], 1))
        entry: dict[str, Any] = {"name": layer.name, "processors": f"0x{(1 << procs) - 1:016x}",
                                 "out_offset": f"0x{device.half_offset if i % 2 == 0 else 0:04x}",
                                 "op": layer.op}
        if i == 0:
            entry["data_format"] = "HWC"
        if layer.op in ("conv2d", "convtranspose2d"):
            entry.update({"kernel_size": f"{layer.kernel[0]}x{layer.kernel[1]}", "pad": layer.pad})
        if layer.groups > 1:
            entry["groups"] = layer.groups
        if layer.pool:
            kind, size, stride = layer.pool
            entry.update({f"{kind}_pool": size, "pool_stride": stride})
        if layer.activate:
            entry["activate"] = layer.activate
        if layer.flatten:
            entry["flatten"] = True
        if layer.in_sequences:
            entry["in_sequences"] = layer.in_sequences
        layers.append(entry)
    return {"arch": ARCH, "dataset": "unpu", "layers": layers}


def requantize(weights: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """8-bit ai8x weights: one power-of-two scale per layer (its `output_shift`), rounded and clamped.
    The bias goes on the same scale, multiplied by 128 as in ai8x-training's quantized checkpoints."""
    peak = float(np.max(np.abs(weights))) or 1.0
    shift = int(np.clip(math.ceil(math.log2(peak)), -15, 15))
    w = np.clip(np.round(weights / 2.0 ** shift * 128), -128, 127).astype(np.int64)
    b = None if bias is None else np.clip(np.round(bias / 2.0 ** shift * 128), -128, 127).astype(np.int64) * 128
    return w, b, shift


def checkpoint_arrays(lowered: Lowered) -> dict[str, np.ndarray]:
    """The state_dict ai8x_checkpoint.py saves: `<layer>.op.weight|bias`, `<layer>.output_shift`,
    `<layer>.weight_bits` (key names as izer/checkpoint.py reads them). Layers without weights
    (pooling, element-wise) have no entries."""
    out: dict[str, np.ndarray] = {}
    for layer in lowered.layers:
        if layer.weights is None:
            continue
        w, b, shift = requantize(layer.weights, layer.bias)
        out[f"{layer.name}.op.weight"] = w
        if b is not None:
            out[f"{layer.name}.op.bias"] = b
        out[f"{layer.name}.output_shift"] = np.array([shift], np.int64)
        out[f"{layer.name}.weight_bits"] = np.array([8], np.int64)
    return out


def sample_input(lowered: Lowered, seed: int = 0) -> np.ndarray:
    """A random sample input as ai8xize wants it: int64, C×H×W, values in [-128, 127]."""
    h, w, c = lowered.input_shape
    return np.random.default_rng(seed).integers(-128, 128, size=(c, h, w), dtype=np.int64)


# -- commands ---------------------------------------------------------------------------------------

def checkpoint_command(python: str, npz: Path, out: Path) -> list[str]:
    return [python, str(CHECKPOINT_SCRIPT), str(npz), str(out), "--arch", ARCH]


def ai8xize_command(python: str, synthesis: Path, test_dir: Path, prefix: str, checkpoint: Path, config: Path,
                    sample: Path, device: str, board_name: str) -> list[str]:
    """README "Network Loader": the documented example plus --overwrite, --board-name and
    --no-version-check (no network access at build time)."""
    return [python, str(synthesis / "ai8xize.py"), "--test-dir", str(test_dir), "--prefix", prefix,
            "--checkpoint-file", str(checkpoint), "--config-file", str(config), "--sample-input", str(sample),
            "--device", device, "--board-name", board_name, "--compact-data", "--mexpress", "--overwrite",
            "--no-version-check", "--verbose"]


# -- what ai8xize wrote -----------------------------------------------------------------------------

_WEIGHT = re.compile(r"Weight memory:\s*([\d,]+) bytes out of ([\d,]+) bytes total")
_BIAS = re.compile(r"Bias memory:\s*([\d,]+) bytes out of ([\d,]+) bytes total")
_HW = re.compile(r"Hardware:\s*([\d,]+) ops \(([\d,]+) macc; ([\d,]+) comp; ([\d,]+) add; ([\d,]+) mul; ([\d,]+) bitwise\)")
_LAYER = re.compile(r"^\s*Layer (\d+)[^:]*: ([\d,]+) ops \(([\d,]+) macc", re.M)
_OUTPUTS = re.compile(r"#define CNN_NUM_OUTPUTS (\d+)")
_LOAD = re.compile(r"memcpy32\(\s*\(uint32_t\s*\*\)\s*(0x[0-9a-fA-F]+)\s*,\s*(\w+)\s*,\s*(\d+)\s*\)")


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def parse_cnn_h(text: str) -> dict[str, float]:
    """The statistics ai8xize writes into cnn.h (izer/stats.py; e.g. MSDK
    Examples/MAX78000/CNN/mnist/cnn.h) as metrics."""
    out: dict[str, float] = {}
    if m := _WEIGHT.search(text):
        out["memory/npu_weights"] = float(_int(m.group(1)))
        out["ai8x/weight_memory_bytes"] = float(_int(m.group(2)))
    if m := _BIAS.search(text):
        out["ai8x/bias_bytes"] = float(_int(m.group(1)))
        out["ai8x/bias_memory_bytes"] = float(_int(m.group(2)))
    if m := _HW.search(text):
        out["ai8x/hw_ops"], out["ai8x/hw_macc"] = float(_int(m.group(1))), float(_int(m.group(2)))
    out["ai8x/layers"] = float(len(_LAYER.findall(text)))
    if m := _OUTPUTS.search(text):
        out["ai8x/outputs"] = float(m.group(1))
    if "memory/npu_weights" not in out:
        raise Ai8xError("cnn.h has no 'Weight memory: N bytes out of M bytes total' line (not ai8xize output?)")
    return out


def parse_load_input(main_c: str) -> list[tuple[int, str, int]]:
    """Where the generated main.c's load_input() copies the input: (address, array, 32-bit words)."""
    start = main_c.find("void load_input(void)")
    body = main_c[start:main_c.find("\n}", start)] if start >= 0 else ""
    loads = [(int(a, 16), name, int(n)) for a, name, n in _LOAD.findall(body)]
    if not loads:
        raise Ai8xError("the generated main.c has no memcpy32 input loads in load_input() (FIFO input is not supported)")
    return loads
