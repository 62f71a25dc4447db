"""Test harness for firmware/kernels: builds the C reference kernels into a shared library with the
host gcc, binds them with ctypes, and derives each operator's parameters from a .tflite model the
way TFLite's kernels do in their Prepare functions (LiteRT sources, tflite/kernels/*.cc).

The quantization arithmetic here (quantize_multiplier, multiply_by_quantized_multiplier, ...) is a
Python transcription of tflite/kernels/internal/quantization_util.cc, common.cc/common.h and
gemmlowp/fixedpoint/fixedpoint.h, independent of the C code it checks.
"""

from __future__ import annotations

import ctypes as C
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "firmware" / "kernels"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---- TFLite integer arithmetic (Python reference) ---------------------------------------------

def round_half_away(x: float) -> float:
    """TfLiteRound / std::round: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (quantization_util.cc), double-rounding build."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    assert q_fixed <= 1 << 31
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def _trunc_div(n: int, d: int) -> int:
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    """gemmlowp::SaturatingRoundingDoublingHighMul (int32)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _wrap32(_trunc_div(ab + nudge, 1 << 31))


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp::RoundingDivideByPOT (int32)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """tflite::MultiplyByQuantizedMultiplier(int32, ...), double rounding (common.cc)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(_wrap32(x * (1 << left)), multiplier), right)


def f32(x: float) -> np.float32:
    return np.float32(x)


def quantize_f32(f: float, scale: float, zero_point: int) -> int:
    """kernel_util.cc Quantize(): zero_point + (int)TfLiteRound(f / scale), in float32."""
    return zero_point + int(round_half_away(float(f32(f) / f32(scale))))


def activation_range(act: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (kernel_util.cc). act: schema ActivationFunctionType."""
    lo, hi = -128, 127
    if act == 1:  # RELU
        lo = max(lo, quantize_f32(0.0, scale, zero_point))
    elif act == 2:  # RELU_N1_TO_1
        lo, hi = max(lo, quantize_f32(-1.0, scale, zero_point)), min(hi, quantize_f32(1.0, scale, zero_point))
    elif act == 3:  # RELU6
        lo, hi = max(lo, quantize_f32(0.0, scale, zero_point)), min(hi, quantize_f32(6.0, scale, zero_point))
    elif act != 0:
        raise NotImplementedError(f"fused activation {act}")
    return lo, hi


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """input_multiplier, input_left_shift, diff_min as activations.cc SoftmaxPrepare (kReference)
    computes them: PreprocessSoftmaxScaling + CalculateInputRadius (quantization_util.cc)."""
    k_scaled_diff_integer_bits = 5
    real = min(float(f32(beta)) * float(f32(input_scale)) * (1 << (31 - k_scaled_diff_integer_bits)),
               (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)  # QuantizeMultiplierGreaterThanOne
    assert left_shift >= 0
    radius = math.floor(1.0 * ((1 << k_scaled_diff_integer_bits) - 1)
                        * (1 << (31 - k_scaled_diff_integer_bits)) / (1 << left_shift))
    return multiplier, left_shift, -radius


_LIBM = C.CDLL("libm.so.6")
_LIBM.expf.restype = C.c_float
_LIBM.expf.argtypes = [C.c_float]


def logistic_lut(input_scale: float, input_zero_point: int, output_scale: float = 1 / 256,
                 output_zero_point: int = -128) -> np.ndarray:
    """The 256-entry int8 table of LiteRT's LOGISTIC: detail::LUTPopulateInt8 (internal/common.h)
    with transform 1.0f / (1.0f + std::exp(-x)), all in float32; index = (uint8_t)input."""
    lut = np.zeros(256, np.int8)
    inverse_scale = f32(1.0) / f32(output_scale)
    for val in range(-128, 128):
        dequantized = f32(input_scale) * f32(val - input_zero_point)
        transformed = f32(1.0) / (f32(1.0) + f32(_LIBM.expf(float(-dequantized))))
        rescaled = round_half_away(float(f32(transformed * inverse_scale)))
        quantized = int(f32(rescaled) + f32(output_zero_point))
        lut[val & 0xFF] = min(max(quantized, -128), 127)
    return lut


def mean_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """reduce.cc PrepareMeanOrSum: QuantizeMultiplier(in_scale / out_scale) (the kernel folds 1/count)."""
    return quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))


def add_params(s1: float, s2: float, so: float) -> dict[str, int]:
    """add.cc Prepare, int8 general path (left_shift 20, QuantizeMultiplierSmallerThanOneExp)."""
    twice_max = float(f32(2) * max(f32(s1), f32(s2)))
    m1, sh1 = quantize_multiplier(float(f32(s1)) / twice_max)
    m2, sh2 = quantize_multiplier(float(f32(s2)) / twice_max)
    mo, sho = quantize_multiplier(twice_max / float(f32(1 << 20) * f32(so)))
    return dict(left_shift=20, in1_multiplier=m1, in1_shift=sh1, in2_multiplier=m2, in2_shift=sh2,
                output_multiplier=mo, output_shift=sho)


def mul_params(s1: float, s2: float, so: float) -> tuple[int, int]:
    """mul.cc Prepare: the real multiplier is computed in float32 (float * float / float)."""
    return quantize_multiplier(float(f32(s1) * f32(s2) / f32(so)))


def conv_scales(input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int) -> list[float]:
    """PopulateConvolutionQuantizationParams (kernel_util.cc) / FC per-channel: in double."""
    scales = [float(f32(s)) for s in np.atleast_1d(filter_scales)]
    if len(scales) == 1:
        scales = scales * channels
    return [float(f32(input_scale)) * s / float(f32(output_scale)) for s in scales]


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """ComputePaddingHeightWidth (kernels/padding.h), the leading pad."""
    effective = (filter_size - 1) * dilation + 1
    total = (out_size - 1) * stride + effective - in_size
    return max(total // 2, 0)


# ---- ctypes bindings ------------------------------------------------------------------------------

class Shape4(C.Structure):
    _fields_ = [("n", C.c_int32), ("h", C.c_int32), ("w", C.c_int32), ("c", C.c_int32)]


def shape4(shape) -> Shape4:
    dims = [int(d) for d in shape]
    dims = [1] * (4 - len(dims)) + dims
    return Shape4(*dims)


_P32 = C.POINTER(C.c_int32)


class ConvParams(C.Structure):
    _fields_ = [("input", Shape4), ("output", Shape4), ("filter_h", C.c_int32), ("filter_w", C.c_int32),
                ("stride_h", C.c_int32), ("stride_w", C.c_int32), ("dilation_h", C.c_int32),
                ("dilation_w", C.c_int32), ("pad_top", C.c_int32), ("pad_left", C.c_int32),
                ("input_offset", C.c_int32), ("output_offset", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32), ("multiplier", _P32), ("shift", _P32)]


class DwConvParams(C.Structure):
    _fields_ = [("input", Shape4), ("output", Shape4), ("filter_h", C.c_int32), ("filter_w", C.c_int32),
                ("depth_multiplier", C.c_int32), ("stride_h", C.c_int32), ("stride_w", C.c_int32),
                ("dilation_h", C.c_int32), ("dilation_w", C.c_int32), ("pad_top", C.c_int32),
                ("pad_left", C.c_int32), ("input_offset", C.c_int32), ("output_offset", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32), ("multiplier", _P32), ("shift", _P32)]


class FcParams(C.Structure):
    _fields_ = [("batches", C.c_int32), ("in_features", C.c_int32), ("out_features", C.c_int32),
                ("input_offset", C.c_int32), ("filter_offset", C.c_int32), ("output_offset", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32), ("per_channel", C.c_int32),
                ("multiplier", _P32), ("shift", _P32), ("effective_scale", C.POINTER(C.c_double))]


class ElementwiseParams(C.Structure):
    _fields_ = [("in1", Shape4), ("in2", Shape4), ("output", Shape4), ("in1_offset", C.c_int32),
                ("in2_offset", C.c_int32), ("output_offset", C.c_int32), ("left_shift", C.c_int32),
                ("in1_multiplier", C.c_int32), ("in1_shift", C.c_int32), ("in2_multiplier", C.c_int32),
                ("in2_shift", C.c_int32), ("output_multiplier", C.c_int32), ("output_shift", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32)]


class PoolParams(C.Structure):
    _fields_ = [("input", Shape4), ("output", Shape4), ("filter_h", C.c_int32), ("filter_w", C.c_int32),
                ("stride_h", C.c_int32), ("stride_w", C.c_int32), ("pad_top", C.c_int32),
                ("pad_left", C.c_int32), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class MeanParams(C.Structure):
    _fields_ = [("input", Shape4), ("input_zero_point", C.c_int32), ("output_zero_point", C.c_int32),
                ("multiplier", C.c_int32), ("shift", C.c_int32), ("reduce_mask", C.c_int32)]


class SoftmaxParams(C.Structure):
    _fields_ = [("rows", C.c_int32), ("depth", C.c_int32), ("input_multiplier", C.c_int32),
                ("input_left_shift", C.c_int32), ("diff_min", C.c_int32), ("output_zero_point", C.c_int32)]


class LogisticParams(C.Structure):
    _fields_ = [("size", C.c_int32), ("input_zero_point", C.c_int32), ("input_range_radius", C.c_int32),
                ("input_multiplier", C.c_int32), ("input_left_shift", C.c_int32),
                ("lut", C.POINTER(C.c_int8))]


class PadParams(C.Structure):
    _fields_ = [("input", Shape4), ("output", Shape4), ("before", C.c_int32 * 4), ("pad_value", C.c_int8)]


class ConcatParams(C.Structure):
    _fields_ = [("count", C.c_int32), ("axis", C.c_int32), ("shapes", C.POINTER(Shape4)), ("output", Shape4),
                ("zero_points", _P32), ("scales", C.POINTER(C.c_float)), ("output_zero_point", C.c_int32),
                ("output_scale", C.c_float)]


def build_library(out_dir: Path) -> C.CDLL:
    """Compile firmware/kernels/ref/*.c with the strict flags into out_dir/libunpu_kernels.so."""
    sources = sorted(str(p) for p in (KERNELS / "ref").glob("*.c"))
    lib_path = out_dir / "libunpu_kernels.so"
    subprocess.run(["gcc", *CFLAGS, "-I", str(KERNELS), *sources, "-o", str(lib_path), "-lm"], check=True,
                   capture_output=True, text=True)
    lib = C.CDLL(str(lib_path))
    lib.unpu_multiply_by_quantized_multiplier.restype = C.c_int32
    lib.unpu_multiply_by_quantized_multiplier.argtypes = [C.c_int32, C.c_int32, C.c_int32]
    return lib


def ptr(a: np.ndarray, ctype=C.c_int8):
    return a.ctypes.data_as(C.POINTER(ctype))


def i32(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int32))


# ---- one kernel call per operator -----------------------------------------------------------------

@dataclass
class Tensor:
    """A tensor of the model with its runtime value (from LiteRT) and quantization."""

    value: np.ndarray
    scale: np.ndarray  # float32, 1 entry unless per-channel
    zero_point: np.ndarray

    @property
    def s(self) -> float:
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


class KernelRunner:
    """Calls the C kernel for one TFLite operator, with parameters derived as TFLite's Prepare does."""

    def __init__(self, lib: C.CDLL):
        self.lib = lib

    def run(self, op_name: str, options, ins: list[Tensor | None], out: Tensor) -> np.ndarray:
        fn = getattr(self, "_" + op_name.lower(), None)
        if fn is None:
            raise NotImplementedError(op_name)
        result = np.zeros(out.value.shape, dtype=out.value.dtype)
        fn(options, ins, out, result)
        return result

    def _conv_2d(self, o, ins, out, result) -> None:
        x, w, b = ins
        mult, shift = self._per_channel(x, w, out, w.value.shape[0])
        p = ConvParams()
        p.input, p.output = shape4(x.value.shape), shape4(out.value.shape)
        p.filter_h, p.filter_w = w.value.shape[1], w.value.shape[2]
        p.stride_h, p.stride_w, p.dilation_h, p.dilation_w = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
        p.pad_top, p.pad_left = self._pads(o.padding, x.value.shape, out.value.shape, p.filter_h, p.filter_w,
                                           o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor)
        p.input_offset, p.output_offset = -x.zp, out.zp
        p.act_min, p.act_max = activation_range(o.fusedActivationFunction, out.s, out.zp)
        p.multiplier, p.shift = ptr(mult, C.c_int32), ptr(shift, C.c_int32)
        self.lib.unpu_conv2d_s8(C.byref(p), ptr(x.value), ptr(w.value), self._bias(b), ptr(result))

    def _depthwise_conv_2d(self, o, ins, out, result) -> None:
        x, w, b = ins
        mult, shift = self._per_channel(x, w, out, w.value.shape[3])
        p = DwConvParams()
        p.input, p.output = shape4(x.value.shape), shape4(out.value.shape)
        p.filter_h, p.filter_w = w.value.shape[1], w.value.shape[2]
        p.depth_multiplier = w.value.shape[3] // x.value.shape[3]
        p.stride_h, p.stride_w, p.dilation_h, p.dilation_w = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
        p.pad_top, p.pad_left = self._pads(o.padding, x.value.shape, out.value.shape, p.filter_h, p.filter_w,
                                           o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor)
        p.input_offset, p.output_offset = -x.zp, out.zp
        p.act_min, p.act_max = activation_range(o.fusedActivationFunction, out.s, out.zp)
        p.multiplier, p.shift = ptr(mult, C.c_int32), ptr(shift, C.c_int32)
        self.lib.unpu_depthwise_conv2d_s8(C.byref(p), ptr(x.value), ptr(w.value), self._bias(b), ptr(result))

    def _fully_connected(self, o, ins, out, result) -> None:
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        out_f, in_f = w.value.shape
        per_channel = len(w.scale) > 1
        scales = np.ascontiguousarray(conv_scales(x.s, w.scale, out.s, out_f if per_channel else 1), np.float64)
        mult, shift = (i32(v) for v in zip(*(quantize_multiplier(s) for s in scales)))
        p = FcParams()
        p.batches, p.in_features, p.out_features = x.value.size // in_f, in_f, out_f
        p.input_offset, p.filter_offset, p.output_offset = -x.zp, -w.zp, out.zp
        p.act_min, p.act_max = activation_range(o.fusedActivationFunction, out.s, out.zp)
        p.per_channel = int(per_channel)
        p.multiplier, p.shift = ptr(mult, C.c_int32), ptr(shift, C.c_int32)
        p.effective_scale = ptr(scales, C.c_double) if self.fc_float else None
        self.lib.unpu_fully_connected_s8(C.byref(p), ptr(x.value), ptr(w.value), self._bias(b), ptr(result))

    fc_float = True  # LiteRT's reference FC requantizes in double

    def _add(self, o, ins, out, result) -> None:
        a, b = ins
        p = self._elementwise(a, b, out, o)
        for k, v in add_params(a.s, b.s, out.s).items():
            setattr(p, k, v)
        self.lib.unpu_add_s8(C.byref(p), ptr(a.value), ptr(b.value), ptr(result))

    def _mul(self, o, ins, out, result) -> None:
        a, b = ins
        p = self._elementwise(a, b, out, o)
        p.output_multiplier, p.output_shift = mul_params(a.s, b.s, out.s)
        self.lib.unpu_mul_s8(C.byref(p), ptr(a.value), ptr(b.value), ptr(result))

    def _max_pool_2d(self, o, ins, out, result) -> None:
        self.lib.unpu_max_pool_s8(C.byref(self._pool(o, ins[0], out)), ptr(ins[0].value), ptr(result))

    def _average_pool_2d(self, o, ins, out, result) -> None:
        self.lib.unpu_avg_pool_s8(C.byref(self._pool(o, ins[0], out)), ptr(ins[0].value), ptr(result))

    def _mean(self, o, ins, out, result) -> None:
        x, axis = ins
        rank = x.value.ndim
        axes = {int(a) + rank if int(a) < 0 else int(a) for a in axis.value.ravel()}
        p = MeanParams()
        p.input = shape4(x.value.shape)
        p.input_zero_point, p.output_zero_point = x.zp, out.zp
        p.multiplier, p.shift = mean_params(x.s, out.s)
        p.reduce_mask = sum(1 << (a + 4 - rank) for a in axes)
        self.lib.unpu_mean_s8(C.byref(p), ptr(x.value), ptr(result))

    def _softmax(self, o, ins, out, result) -> None:
        x = ins[0]
        p = SoftmaxParams()
        p.depth = x.value.shape[-1]
        p.rows = x.value.size // p.depth
        p.input_multiplier, p.input_left_shift, p.diff_min = softmax_params(o.beta, x.s)
        p.output_zero_point = out.zp
        self.lib.unpu_softmax_s8(C.byref(p), ptr(x.value), ptr(result))

    def _logistic(self, o, ins, out, result) -> None:
        x = ins[0]
        lut = logistic_lut(x.s, x.zp, out.s, out.zp)
        p = LogisticParams(size=x.value.size, input_zero_point=x.zp, lut=ptr(lut))
        self.lib.unpu_logistic_s8(C.byref(p), ptr(x.value), ptr(result))

    def _reshape(self, o, ins, out, result) -> None:
        result[...] = ins[0].value.reshape(result.shape)  # no kernel: the generator aliases or copies

    def _quantize(self, o, ins, out, result) -> None:
        x = ins[0]
        if x.value.dtype == np.float32:
            self.lib.unpu_quantize_f32_s8(ptr(x.value, C.c_float), ptr(result), x.value.size, C.c_float(out.s), out.zp)
        else:
            m, s = quantize_multiplier(float(f32(x.s)) / float(f32(out.s)))
            self.lib.unpu_requantize_s8(ptr(x.value), ptr(result), x.value.size, x.zp, out.zp, m, s)

    def _dequantize(self, o, ins, out, result) -> None:
        x = ins[0]
        self.lib.unpu_dequantize_s8_f32(ptr(x.value), ptr(result, C.c_float), x.value.size, C.c_float(x.s), x.zp)

    def _pad(self, o, ins, out, result) -> None:
        x, paddings = ins[0], ins[1]
        value = int(ins[2].value.ravel()[0]) if len(ins) > 2 and ins[2] is not None else out.zp
        p = PadParams()
        p.input, p.output = shape4(x.value.shape), shape4(out.value.shape)
        before = [int(v) for v in paddings.value[:, 0]]
        p.before[:] = [0] * (4 - len(before)) + before
        p.pad_value = value
        self.lib.unpu_pad_s8(C.byref(p), ptr(x.value), ptr(result))

    _padv2 = _pad

    def _concatenation(self, o, ins, out, result) -> None:
        rank = out.value.ndim
        axis = o.axis % rank + (4 - rank)
        shapes = (Shape4 * len(ins))(*(shape4(t.value.shape) for t in ins))
        zps = i32([t.zp for t in ins])
        scales = np.ascontiguousarray([t.s for t in ins], np.float32)
        p = ConcatParams(count=len(ins), axis=axis, shapes=shapes, output=shape4(out.value.shape),
                         zero_points=ptr(zps, C.c_int32), scales=ptr(scales, C.c_float),
                         output_zero_point=out.zp, output_scale=out.s)
        arrays = [np.ascontiguousarray(t.value) for t in ins]
        inputs = (C.POINTER(C.c_int8) * len(ins))(*(ptr(a) for a in arrays))
        self.lib.unpu_concatenation_s8(C.byref(p), inputs, ptr(result))

    # helpers
    @staticmethod
    def _per_channel(x: Tensor, w: Tensor, out: Tensor, channels: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [quantize_multiplier(s) for s in conv_scales(x.s, w.scale, out.s, channels)]
        return i32([m for m, _ in pairs]), i32([s for _, s in pairs])

    @staticmethod
    def _bias(b: Tensor | None):
        return None if b is None else ptr(np.ascontiguousarray(b.value, np.int32), C.c_int32)

    @staticmethod
    def _pads(padding: int, in_shape, out_shape, fh, fw, sh, sw, dh=1, dw=1) -> tuple[int, int]:
        if padding == 1:  # VALID
            return 0, 0
        return (same_padding(in_shape[1], fh, sh, dh, out_shape[1]), same_padding(in_shape[2], fw, sw, dw, out_shape[2]))

    @staticmethod
    def _elementwise(a: Tensor, b: Tensor, out: Tensor, o) -> ElementwiseParams:
        p = ElementwiseParams()
        p.in1, p.in2, p.output = shape4(a.value.shape), shape4(b.value.shape), shape4(out.value.shape)
        p.in1_offset, p.in2_offset, p.output_offset = -a.zp, -b.zp, out.zp
        p.act_min, p.act_max = activation_range(o.fusedActivationFunction if o else 0, out.s, out.zp)
        return p

    def _pool(self, o, x: Tensor, out: Tensor) -> PoolParams:
        p = PoolParams()
        p.input, p.output = shape4(x.value.shape), shape4(out.value.shape)
        p.filter_h, p.filter_w, p.stride_h, p.stride_w = o.filterHeight, o.filterWidth, o.strideH, o.strideW
        p.pad_top, p.pad_left = self._pads(o.padding, x.value.shape, out.value.shape, o.filterHeight, o.filterWidth,
                                           o.strideH, o.strideW)
        p.act_min, p.act_max = activation_range(o.fusedActivationFunction, out.s, out.zp)
        return p


def logistic_fixed_point_params(input_scale: float) -> tuple[int, int, int]:
    """input_multiplier, input_left_shift, input_range_radius for the table-less LOGISTIC path, as
    TFLite Micro computes them (micro/kernels/logistic_common.cc CalculateArithmeticOpDataLogistic)."""
    k_input_integer_bits = 4
    q, left_shift = math.frexp(float(f32(input_scale)) * (1 << (31 - k_input_integer_bits)))
    multiplier = _wrap32(int(round_half_away(q * (1 << 31))))  # no renormalisation in TFLM
    radius = math.floor(1.0 * ((1 << k_input_integer_bits) - 1) * (1 << (31 - k_input_integer_bits))
                        / (1 << left_shift))
    return multiplier, left_shift, radius


def mean_ops(data: bytes) -> list[tuple[tuple[int, ...], bool, bool]]:
    """(resolved axes, keep_dims, equal input/output quantization) of every MEAN in a .tflite."""
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromPackedBuf(data, 0)
    g = model.subgraphs[0]
    found = []
    for op in g.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != s.BuiltinOperator.MEAN:
            continue
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        rank = len(x.shape)
        raw = np.frombuffer(bytes(model.buffers[g.tensors[op.inputs[1]].buffer].data), np.int32)
        axes = tuple(sorted({int(a) + rank if a < 0 else int(a) for a in raw}))
        same = (float(x.quantization.scale[0]) == float(y.quantization.scale[0])
                and int(x.quantization.zeroPoint[0]) == int(y.quantization.zeroPoint[0]))
        found.append((axes, bool(op.builtinOptions.keepDims), same))
    return found
