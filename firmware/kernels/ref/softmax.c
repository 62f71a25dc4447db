/* SOFTMAX int8 -> int8: reference_ops::Softmax for quantized types (reference/softmax.h), gemmlowp
 * fixed point with Q5.26 scaled differences and a Q12.19 accumulator. */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

enum { kScaledDiffIntegerBits = 5, kAccumulationIntegerBits = 12 };

static int32_t exp_of_diff(const unpu_softmax_params_t *p, int32_t diff) {
    /* MultiplyByQuantizedMultiplierGreaterThanOne */
    const int32_t rescaled = unpu_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
    return unpu_exp_on_negative_values(rescaled, kScaledDiffIntegerBits);
}

void unpu_ref_softmax_s8(const unpu_softmax_params_t *p, const int8_t *input, int8_t *output) {
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in_row = -128, sum_of_exps = 0, shifted_scale, shifted_sum_minus_one;
        int headroom_plus_one, num_bits_over_unit, exponent;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                /* Rescale<kAccumulationIntegerBits> of a Q0.31 value */
                sum_of_exps = unpu_wadd(sum_of_exps, unpu_rdbpot(exp_of_diff(p, diff), kAccumulationIntegerBits));
            }
        }
        /* GetReciprocal (kernels/internal/common.h) */
        headroom_plus_one = unpu_clz32((uint32_t)sum_of_exps);
        num_bits_over_unit = kAccumulationIntegerBits - headroom_plus_one;
        shifted_sum_minus_one = (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        shifted_scale = unpu_one_over_one_plus_x(shifted_sum_minus_one);
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t unsat = unpu_rdbpot(unpu_srdhm(shifted_scale, exp_of_diff(p, diff)), exponent);
                out[c] = (int8_t)unpu_clamp_i32(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
}

UNPU_REF_KERNEL(softmax_s8)
