/*
 * Private helpers of the DSP-extension (SIMD32) kernels for Cortex-M4/M7/M33: packed 16-bit
 * multiply-accumulate over int8 data widened with SXTB16/SXTAB16, and requantization that is
 * bit-exact with the reference kernels (gemmlowp's SaturatingRoundingDoublingHighMul +
 * RoundingDivideByPOT, unpu_multiply_by_quantized_multiplier).
 *
 * Widened operands use the order SXTB16 produces: each group of 4 int8 values x0..x3 becomes the
 * pair words (x0, x2) and (x1, x3), so one SMLAD against the weights widened the same way adds
 * w0*x0 + w2*x2 and the next w1*x1 + w3*x3; a tail shorter than 4 stays in natural order.
 *
 * Integer sums wrap modulo 2^32 exactly as the reference's do, so the order of the additions does
 * not change a single bit of the result.
 */
#ifndef DSP_COMMON_H
#define DSP_COMMON_H

#include <stdint.h>
#include <string.h>
#include <arm_acle.h>
#include "unpu_kernels.h"
#include "unpu_fixedpoint.h"

/* Scratch shared by the kernels (one kernel runs at a time): the im2col columns of CONV_2D and the
 * widened input row of FULLY_CONNECTED. A layer that needs more falls back to the reference. */
#define DSP_SCRATCH_HALFWORDS 4096
extern int16_t dsp_scratch[DSP_SCRATCH_HALFWORDS];

static inline uint32_t dsp_load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void dsp_store_u32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

/* SXTB16 / SXTAB16 of the odd bytes: GCC does not fold a rotation into their operand */
static inline uint32_t dsp_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t dsp_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* an int16 value in both halves, the addend of SXTAB16 */
static inline uint32_t dsp_pair(int32_t v) { return (uint32_t)(uint16_t)v * 0x00010001u; }

/* (x0 + off, x1 + off, ...) in int16 fits when off lies in this range */
static inline int dsp_offset_fits_i16(int32_t off) { return off >= -32640 && off <= 32640; }

/* src[0..n) + off as int16, groups of 4 in SXTB16 order (see above) */
static inline void dsp_widen(const int8_t *src, int32_t n, int16_t *dst, int32_t off) {
    const uint32_t off2 = dsp_pair(off);
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        const uint32_t x = dsp_load_u32(src + i);
        dsp_store_u32(dst + i, (uint32_t)__sxtab16(off2, x));
        dsp_store_u32(dst + i + 2, (uint32_t)dsp_sxtab16_ror8(off2, x));
    }
    for (; i < n; ++i) {
        dst[i] = (int16_t)(src[i] + off);
    }
}

/* Σ (w[k] + w_off) * col[k] for two weight rows against one widened column */
static inline void dsp_dot_2x1(const int8_t *w0, const int8_t *w1, const int16_t *col, int32_t n,
                               int32_t w_off, int32_t *acc0, int32_t *acc1) {
    const uint32_t woff2 = dsp_pair(w_off);
    int32_t a0 = 0, a1 = 0, k;
    for (k = 0; k + 4 <= n; k += 4) {
        const uint32_t x02 = dsp_load_u32(col + k), x13 = dsp_load_u32(col + k + 2);
        const uint32_t u = dsp_load_u32(w0 + k), v = dsp_load_u32(w1 + k);
        a0 = __smlad(__sxtab16(woff2, u), x02, a0);
        a0 = __smlad(dsp_sxtab16_ror8(woff2, u), x13, a0);
        a1 = __smlad(__sxtab16(woff2, v), x02, a1);
        a1 = __smlad(dsp_sxtab16_ror8(woff2, v), x13, a1);
    }
    for (; k < n; ++k) {
        a0 += (w0[k] + w_off) * col[k];
        a1 += (w1[k] + w_off) * col[k];
    }
    *acc0 = a0;
    *acc1 = a1;
}

static inline int32_t dsp_dot_1x1(const int8_t *w, const int16_t *col, int32_t n, int32_t w_off) {
    const uint32_t woff2 = dsp_pair(w_off);
    int32_t a = 0, k;
    for (k = 0; k + 4 <= n; k += 4) {
        const uint32_t u = dsp_load_u32(w + k);
        a = __smlad(__sxtab16(woff2, u), dsp_load_u32(col + k), a);
        a = __smlad(dsp_sxtab16_ror8(woff2, u), dsp_load_u32(col + k + 2), a);
    }
    for (; k < n; ++k) {
        a += (w[k] + w_off) * col[k];
    }
    return a;
}

/* unpu_multiply_by_quantized_multiplier, inlined. The reference's SaturatingRoundingDoublingHighMul
 * adds a nudge of 2^30 (or 1 - 2^30 below zero) and truncates toward zero; both cases equal
 * floor((a*b + 2^30) / 2^31), an arithmetic shift, except a == b == INT32_MIN (saturates). */
static inline int32_t dsp_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const int left_shift = shift > 0 ? (shift > 31 ? 31 : (int)shift) : 0;
    const int right_shift = shift > 0 ? 0 : (shift < -31 ? 31 : (int)-shift);
    const int32_t a = (int32_t)((uint32_t)x << left_shift);
    int32_t high;
    if (a == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else {
        high = (int32_t)(((int64_t)a * multiplier + ((int64_t)1 << 30)) >> 31);
    }
    return unpu_rdbpot(high, right_shift);
}

/* bias, requantization, output zero point and activation clamp of one per-channel output */
static inline int8_t dsp_conv_output(int32_t acc, const int32_t *bias, const int32_t *multiplier,
                                     const int32_t *shift, int32_t oc, int32_t output_offset,
                                     int32_t act_min, int32_t act_max) {
    if (bias) {
        acc += bias[oc];
    }
    acc = dsp_requantize(acc, multiplier[oc], shift[oc]) + output_offset;
    return (int8_t)unpu_clamp_i32(acc, act_min, act_max);
}

#endif /* DSP_COMMON_H */
