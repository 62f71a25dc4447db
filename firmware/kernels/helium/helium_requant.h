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
    int32_t acc[HELIUM_MAX_CHANNELS];       /* one output pixel's accumulators */
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

/* Requantize, add the output offset, clamp and store the first `count` (<= 4) lanes as int8; a full
 * vector needs no predication (each predicated instruction costs a VPST more). */
static inline void helium_store_requantized(int8_t *out, int32x4_t acc, const int32_t *multiplier,
                                            const int32_t *left, const int32_t *right_neg, int32_t output_offset,
                                            int32_t act_min, int32_t act_max, int32_t count)
{
    int32x4_t v;
    if (count >= 4) {
        v = helium_requantize(acc, vldrwq_s32(multiplier), vldrwq_s32(left), vldrwq_s32(right_neg));
    } else {
        const mve_pred16_t lanes = vctp32q((uint32_t)count);
        v = helium_requantize(acc, vldrwq_z_s32(multiplier, lanes), vldrwq_z_s32(left, lanes),
                              vldrwq_z_s32(right_neg, lanes));
    }
    v = vaddq_n_s32(v, output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
    if (count >= 4)
        vstrbq_s32(out, v);
    else
        vstrbq_p_s32(out, v, vctp32q((uint32_t)count));
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

/* acc[r] = dot(col, w[r]) + bias[r] for the rows of a [rows][k] int8 matrix, four rows at a time
 * with VMLADAVA; a tail of k not divisible by 16 uses predicated loads (zeros add nothing). */
static inline void helium_matrix_times_vector(const int8_t *col, const int8_t *w, int32_t rows, int32_t k,
                                              const int32_t *bias, int32_t *acc)
{
    const int32_t full = k & ~15;
    const mve_pred16_t tail = vctp8q((uint32_t)(k - full));
    const int8x16_t col_tail = vldrbq_z_s8(col + full, tail);
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4, w += 4 * k) {
        int32_t a0 = bias[r], a1 = bias[r + 1], a2 = bias[r + 2], a3 = bias[r + 3];
        const int8_t *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
        for (int32_t i = 0; i < full; i += 16) {
            const int8x16_t c = vldrbq_s8(col + i);
            a0 = vmladavaq_s8(a0, c, vldrbq_s8(w0 + i));
            a1 = vmladavaq_s8(a1, c, vldrbq_s8(w1 + i));
            a2 = vmladavaq_s8(a2, c, vldrbq_s8(w2 + i));
            a3 = vmladavaq_s8(a3, c, vldrbq_s8(w3 + i));
        }
        if (full < k && (rows - r - 4) * k >= 16) {
            /* the tail lanes of c are zero, so the weights may be read on into the next rows */
            a0 = vmladavaq_s8(a0, col_tail, vldrbq_s8(w0 + full));
            a1 = vmladavaq_s8(a1, col_tail, vldrbq_s8(w1 + full));
            a2 = vmladavaq_s8(a2, col_tail, vldrbq_s8(w2 + full));
            a3 = vmladavaq_s8(a3, col_tail, vldrbq_s8(w3 + full));
        } else if (full < k) {
            a0 = vmladavaq_s8(a0, col_tail, vldrbq_z_s8(w0 + full, tail));
            a1 = vmladavaq_s8(a1, col_tail, vldrbq_z_s8(w1 + full, tail));
            a2 = vmladavaq_s8(a2, col_tail, vldrbq_z_s8(w2 + full, tail));
            a3 = vmladavaq_s8(a3, col_tail, vldrbq_z_s8(w3 + full, tail));
        }
        acc[r] = a0;
        acc[r + 1] = a1;
        acc[r + 2] = a2;
        acc[r + 3] = a3;
    }
    for (; r < rows; ++r, w += k) {
        int32_t a = bias[r];
        for (int32_t i = 0; i < k; i += 16) {
            const mve_pred16_t lanes = vctp8q((uint32_t)(k - i));
            a = vmladavaq_s8(a, vldrbq_z_s8(col + i, lanes), vldrbq_z_s8(w + i, lanes));
        }
        acc[r] = a;
    }
}

/* out[c] = clamp(requantize(acc[c]) + output_offset) for c < n, four at a time */
static inline void helium_requantize_row(int8_t *out, const int32_t *acc, int32_t n, const int32_t *multiplier,
                                         const int32_t *left, const int32_t *right_neg, int32_t output_offset,
                                         int32_t act_min, int32_t act_max)
{
    int32_t c = 0;
    for (; c + 4 <= n; c += 4)
        helium_store_requantized(out + c, vldrwq_s32(acc + c), multiplier + c, left + c, right_neg + c, output_offset,
                                 act_min, act_max, 4);
    if (c < n)
        helium_store_requantized(out + c, vldrwq_z_s32(acc + c, vctp32q((uint32_t)(n - c))), multiplier + c, left + c,
                                 right_neg + c, output_offset, act_min, act_max, n - c);
}

/* copy n bytes / set n bytes, 16 per vector */
static inline void helium_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n > 0; n -= 16, dst += 16, src += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, lanes), lanes);
    }
}

static inline void helium_fill(int8_t *dst, int8_t value, int32_t n)
{
    const int8x16_t v = vdupq_n_s8(value);
    for (; n > 0; n -= 16, dst += 16)
        vstrbq_p_s8(dst, v, vctp8q((uint32_t)n));
}

#endif /* HELIUM_REQUANT_H */
