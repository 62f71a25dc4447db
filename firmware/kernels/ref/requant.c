/* Requantization helpers: tflite::MultiplyByQuantizedMultiplier (kernels/internal/common.cc,
 * double-rounding variant) and reference_ops::Requantize (reference/requantize.h). */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

int32_t unpu_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
#ifdef UNPU_SINGLE_ROUNDING
    /* TFLITE_SINGLE_ROUNDING variant (common.cc); not what LiteRT's pip builds use */
    const int64_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * multiplier + round) >> total_shift);
#else
    const int left_shift = shift > 0 ? (int)shift : 0;
    const int right_shift = shift > 0 ? 0 : (int)-shift;
    /* x * (1 << left_shift) wraps in TFLite (TFLITE_NO_SANITIZE_INTEGER_OVERFLOW) */
    const int32_t shifted = (int32_t)((uint32_t)x << (left_shift > 31 ? 31 : left_shift));
    return unpu_rdbpot(unpu_srdhm(shifted, multiplier), right_shift > 31 ? 31 : right_shift);
#endif
}

void unpu_ref_requantize_s8(const int8_t *input, int8_t *output, int32_t size, int32_t input_zero_point,
                        int32_t output_zero_point, int32_t multiplier, int32_t shift) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t v = unpu_multiply_by_quantized_multiplier(input[i] - input_zero_point, multiplier, shift)
                          + output_zero_point;
        output[i] = (int8_t)unpu_clamp_i32(v, -128, 127);
    }
}

UNPU_REF_KERNEL(requantize_s8)
