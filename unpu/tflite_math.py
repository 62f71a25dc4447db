"""TFLite's integer arithmetic, as its kernels compute it in their Prepare step.

One small function per formula of tensorflow/lite/kernels/internal/quantization_util.cc,
kernels/padding.h, kernel_util.cc and the kernels' Prepare code, bit for bit (double vs float
casts included): the code generator's kernels and every firmware build's on-device softmax use
the same numbers, so outputs stay equal to LiteRT's reference kernels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


class QuantParamError(ValueError):
    """A quantization parameter TFLite's arithmetic cannot represent (one line)."""


def tflite_round(x: float) -> int:
    """std::round / TfLiteRound on a double: half away from zero."""
    ax = abs(x)
    r = math.floor(ax)
    if ax - r >= 0.5:
        r += 1
    return int(-r if x < 0 else r)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier: m = q * 2^shift with q a Q31 in [0.5, 1), rounded; shift > 0 is a left shift."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise QuantParamError(f"QuantizeMultiplier overflow for {m!r}")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:  # every bit would be shifted out
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(m: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp (requires 0 < m < 1)."""
    if not 0.0 < m < 1.0:
        raise QuantParamError(f"multiplier {m!r} is not in (0, 1)")
    q, shift = quantize_multiplier(m)
    if shift > 0:
        raise QuantParamError(f"multiplier {m!r} gives a positive shift")
    return q, shift


def quantize_multiplier_greater_than_one(m: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne (requires m > 1)."""
    if not m > 1.0:
        raise QuantParamError(f"multiplier {m!r} is not > 1")
    q, shift = quantize_multiplier(m)
    if shift < 0:
        raise QuantParamError(f"multiplier {m!r} gives a negative shift")
    return q, shift


def compute_out_size(padding: str, size: int, filt: int, stride: int, dilation: int = 1) -> int:
    """ComputeOutSize (kernels/padding.h)."""
    eff = (filt - 1) * dilation + 1
    if stride == 0:
        return 0
    if padding == "SAME":
        return (size + stride - 1) // stride
    if padding == "VALID":
        return (size + stride - eff) // stride
    return 0


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def compute_padding(stride: int, dilation: int, in_size: int, filt: int, out_size: int) -> int:
    """ComputePadding (kernels/padding.h): the leading (top/left) padding offset."""
    eff = (filt - 1) * dilation + 1
    pad = _c_div((out_size - 1) * stride + eff - in_size, 2)
    return pad if pad > 0 else 0


def compute_padding_height_width(padding: str, stride_h: int, stride_w: int, dil_h: int, dil_w: int,
                                 in_h: int, in_w: int, filt_h: int, filt_w: int) -> tuple[int, int, int, int]:
    """ComputePaddingHeightWidth -> (pad_top, pad_left, out_h, out_w)."""
    out_w = compute_out_size(padding, in_w, filt_w, stride_w, dil_w)
    out_h = compute_out_size(padding, in_h, filt_h, stride_h, dil_h)
    return (compute_padding(stride_h, dil_h, in_h, filt_h, out_h),
            compute_padding(stride_w, dil_w, in_w, filt_w, out_w), out_h, out_w)


def _f32(x) -> np.float32:
    return np.float32(x)


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: quantize(f) = zp + (int)TfLiteRound(f / scale) in float."""
    def quantize(f: float) -> int:
        return zero_point + tflite_round(float(_f32(f) / _f32(scale)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise QuantParamError(f"fused activation {activation} is not supported")


def conv_per_channel_multipliers(input_scale: float, filter_scales, output_scale: float,
                                 channels: int) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams: per output channel,
    (double)input_scale * (double)filter_scale / (double)output_scale (per-tensor broadcast)."""
    fs = [float(_f32(s)) for s in np.asarray(filter_scales).reshape(-1)]
    if len(fs) not in (1, channels):
        raise QuantParamError(f"filter has {len(fs)} scales for {channels} channels")
    mults, shifts = [], []
    for c in range(channels):
        m, s = quantize_multiplier(float(_f32(input_scale)) * fs[c if len(fs) > 1 else 0] / float(_f32(output_scale)))
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def fc_effective_scales(input_scale: float, filter_scales, output_scale: float) -> list[float]:
    """LiteRT's reference FULLY_CONNECTED (float-scale overloads): (double)in * (double)filter / (double)out."""
    return [float(_f32(input_scale)) * float(_f32(s)) / float(_f32(output_scale)) for s in np.asarray(filter_scales).reshape(-1)]


def add_params(s1: float, s2: float, so: float, left_shift: int = 20) -> dict[str, int]:
    """add.cc Prepare (int8 general path): twice_max_input_scale = 2 * max(s1, s2) (float),
    input multipliers s_i / twice_max, output multiplier twice_max / ((1 << left_shift) * so)."""
    twice_max = float(_f32(2) * max(_f32(s1), _f32(s2)))
    m1, sh1 = quantize_multiplier_smaller_than_one(float(_f32(s1)) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one(float(_f32(s2)) / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one(twice_max / float(_f32(1 << left_shift) * _f32(so)))
    return {"left_shift": left_shift, "in1_multiplier": m1, "in1_shift": sh1, "in2_multiplier": m2,
            "in2_shift": sh2, "output_multiplier": mo, "output_shift": sho}


def mul_params(s1: float, s2: float, so: float) -> dict[str, int]:
    """mul.cc Prepare: (double)s1 * (double)s2 / (double)so."""
    mo, sho = quantize_multiplier(float(_f32(s1)) * float(_f32(s2)) / float(_f32(so)))
    return {"output_multiplier": mo, "output_shift": sho}


def requantize_params(si: float, so: float) -> tuple[int, int]:
    """quantize.cc Prepare (int8 -> int8), reduce.cc PrepareMeanOrSum: (double)si / (double)so."""
    return quantize_multiplier(float(_f32(si)) / float(_f32(so)))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """CalculateInputRadius."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def softmax_gemmlowp_params(beta: float, input_scale: float, scaled_diff_integer_bits: int = 5) -> dict[str, int]:
    """PreprocessSoftmaxScaling + diff_min (the fixed-point int8 softmax of TFLite Micro / older TFLite)."""
    max_real = float((1 << 31) - 1)
    real = min(float(_f32(beta)) * float(_f32(input_scale)) * float(1 << (31 - scaled_diff_integer_bits)), max_real)
    mult, left_shift = quantize_multiplier_greater_than_one(real)
    diff_min = int(-1.0 * calculate_input_radius(scaled_diff_integer_bits, left_shift))
    return {"input_multiplier": mult, "input_left_shift": left_shift, "diff_min": diff_min}


_LIBM = None


def _expf(x: np.float32) -> np.float32:
    """The C library's expf (what LiteRT's std::exp(float) calls on this host)."""
    global _LIBM
    if _LIBM is None:
        _LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        _LIBM.expf.restype = ctypes.c_float
        _LIBM.expf.argtypes = [ctypes.c_float]
    return np.float32(_LIBM.expf(float(x)))


def softmax_table(beta: float, input_scale: float) -> list[float]:
    """optimized_ops::PopulateSoftmaxLookupTable (LiteRT's int8 SOFTMAX, also with BUILTIN_REF):
    table[255 - v] = expf(-input_scale * beta * v) in float, v = 0..255."""
    scale = np.float32(-_f32(input_scale) * _f32(beta))
    table = [0.0] * 256
    for v in range(256):
        table[255 - v] = float(_expf(np.float32(scale * np.float32(v))))
    return table


def logistic_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> list[int]:
    """activations.cc PopulateLookupTable<int8_t> with 1/(1+expf(-x)) (LiteRT's int8 LOGISTIC under
    BUILTIN_REF): entry [uint8(v)] for v = -128..127."""
    inverse_scale = np.float32(np.float32(1) / _f32(output_scale))
    table = [0] * 256
    for v in range(-128, 128):
        deq = np.float32(_f32(input_scale) * np.float32(v - input_zp))
        tr = np.float32(np.float32(1) / np.float32(np.float32(1) + _expf(np.float32(-deq))))
        rescaled = np.float32(tflite_round(float(np.float32(tr * inverse_scale))))
        q = int(np.float32(rescaled + np.float32(output_zp)))
        table[v & 0xFF] = max(min(INT8_MAX, q), INT8_MIN)
    return table


def logistic_fixed_point_params(input_scale: float) -> dict[str, int]:
    """SigmoidPrepare, kFixedPointOptimized branch (Q4 input, 16-bit multiplier)."""
    real = float(_f32(input_scale)) * float(1 << (15 - 4))
    q, left_shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 15))
    return {"input_multiplier": int(np.int16(q_fixed)) if q_fixed < 32768 else 32767, "input_left_shift": left_shift,
            "input_range_radius": calculate_input_radius(4, left_shift, 15)}
