/*
 * Private helpers of the Helium (MVE) kernels: gemmlowp's requantization on four int32 lanes,
 * bit-exact with unpu_multiply_by_quantized_multiplier (ref/requant.c), and the per-call tables
 * the kernels build (the code generator does not precompute them yet).
 */
#ifndef HELIUM_REQUANT_H
#define HELIUM_REQUANT_H

#include <arm_mve.h>
#include <stdint.h>

#include "unpu_kernels.h"

/* Channels a kernel's per-call tables hold; a layer with more runs the reference kernel. */
#define HELIUM_MAX_CHANNELS 1024

/* Per output channel: the bias with the input offset folded in (bias + input_offset * sum of the
 * channel's weights, wrapping as the reference's int32 accumulator does), the left shift and the
 * negated right shift of its multiplier. */
typedef struct {
    int32_t bias[HELIUM_MAX_CHANNELS];
    int32_t left[HELIUM_MAX_CHANNELS];
    int32_t right_neg[HELIUM_MAX_CHANNELS];
} helium_channel_tables_t;

/* x << left (wrapping, as the reference), SaturatingRoundingDoublingHighMul (VQRDMULH is exactly
 * it, ties and the INT32_MIN square included), then RoundingDivideByPOT: VRSHL rounds halves up,
 * so a negative value is first lowered by one (only when a right shift happens) to round halves
 * away from zero. */
static inline int32x4_t helium_requantize(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t right_neg)
{
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(x, left), multiplier);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, right_neg), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), right_neg);
}

/* Requantize, add the output offset, clamp and store the first `count` (<= 4) lanes as int8. */
static inline void helium_store_requantized(int8_t *out, int32x4_t acc, const int32_t *multiplier,
                                            const int32_t *left, const int32_t *right_neg, int32_t output_offset,
                                            int32_t act_min, int32_t act_max, int32_t count)
{
    const mve_pred16_t lanes = vctp32q((uint32_t)count);
    int32x4_t v = helium_requantize(acc, vldrwq_z_s32(multiplier, lanes), vldrwq_z_s32(left, lanes),
                                    vldrwq_z_s32(right_neg, lanes));
    v = vaddq_n_s32(v, output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
    vstrbq_p_s32(out, v, lanes);
}

/* left / right_neg tables of a per-channel multiplier shift array */
static inline void helium_split_shifts(const int32_t *shift, int32_t channels, int32_t *left, int32_t *right_neg)
{
    for (int32_t c = 0; c < channels; ++c) {
        left[c] = shift[c] > 0 ? shift[c] : 0;
        right_neg[c] = shift[c] > 0 ? 0 : (shift[c] < -31 ? -31 : shift[c]);
    }
}

/* sum of n int8 values */
static inline int32_t helium_sum_s8(const int8_t *x, int32_t n)
{
    int32_t sum = 0;
    for (; n > 0; n -= 16, x += 16)
        sum = vaddvaq_p_s8(sum, vldrbq_z_s8(x, vctp8q((uint32_t)n)), vctp8q((uint32_t)n));
    return sum;
}

/* Dot products of one int8 vector `col` (length k) with four weight rows, accumulated onto acc. */
static inline int32x4_t helium_dot4(const int8_t *col, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                    const int8_t *r3, int32_t k)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t c = vldrbq_s8(col + i);
        a0 = vmladavaq_s8(a0, c, vldrbq_s8(r0 + i));
        a1 = vmladavaq_s8(a1, c, vldrbq_s8(r1 + i));
        a2 = vmladavaq_s8(a2, c, vldrbq_s8(r2 + i));
        a3 = vmladavaq_s8(a3, c, vldrbq_s8(r3 + i));
    }
    if (i < k) {
        const mve_pred16_t tail = vctp8q((uint32_t)(k - i));
        const int8x16_t c = vldrbq_z_s8(col + i, tail);
        a0 = vmladavaq_s8(a0, c, vldrbq_z_s8(r0 + i, tail));
        a1 = vmladavaq_s8(a1, c, vldrbq_z_s8(r1 + i, tail));
        a2 = vmladavaq_s8(a2, c, vldrbq_z_s8(r2 + i, tail));
        a3 = vmladavaq_s8(a3, c, vldrbq_z_s8(r3 + i, tail));
    }
    int32x4_t acc = vdupq_n_s32(a0);
    acc = vsetq_lane_s32(a1, acc, 1);
    acc = vsetq_lane_s32(a2, acc, 2);
    return vsetq_lane_s32(a3, acc, 3);
}

/* The four weight rows from row `first` of a [rows][k] matrix; rows past the end repeat the last
 * (their lanes are never stored). */
static inline void helium_rows4(const int8_t *w, int32_t first, int32_t rows, int32_t k, const int8_t *r[4])
{
    for (int j = 0; j < 4; ++j)
        r[j] = w + (first + j < rows ? first + j : rows - 1) * k;
}

#endif /* HELIUM_REQUANT_H */
