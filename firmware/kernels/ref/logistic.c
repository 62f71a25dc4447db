/* LOGISTIC int8. LiteRT: 256-entry table from LUTPopulate (activations.cc SigmoidPrepare), looked up
 * with the input reinterpreted as uint8. Without a table: reference_integer_ops::Logistic
 * (reference/integer_ops/logistic.h, gemmlowp::logistic on Q4.27), TFLite Micro's semantics. */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

/* gemmlowp::logistic for FixedPoint<int32, 4>, Q0.31 result */
static int32_t logistic_q4(int32_t a) {
    int32_t abs_a, pos;
    if (a == 0) {
        return 1 << 30;
    }
    abs_a = a > 0 ? a : (int32_t)(0u - (uint32_t)a);
    pos = unpu_one_over_one_plus_x(unpu_exp_on_negative_values((int32_t)(0u - (uint32_t)abs_a), 4));
    return a > 0 ? pos : unpu_wsub(INT32_MAX, pos);
}

void unpu_ref_logistic_s8(const unpu_logistic_params_t *p, const int8_t *input, int8_t *output) {
    int32_t i;
    if (p->lut) {
        for (i = 0; i < p->size; ++i) {
            output[i] = p->lut[(uint8_t)input[i]];
        }
        return;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        if (x <= -p->input_range_radius) {
            output[i] = -128;
        } else if (x >= p->input_range_radius) {
            output[i] = 127;
        } else {
            const int32_t in_q4 = unpu_multiply_by_quantized_multiplier(x, p->input_multiplier, p->input_left_shift);
            const int32_t out_q23 = unpu_rdbpot(logistic_q4(in_q4), 31 - 8);
            output[i] = (int8_t)unpu_clamp_i32(out_q23 - 128, -128, 127);
        }
    }
}

UNPU_REF_KERNEL(logistic_s8)
