/* QUANTIZE float -> int8 and DEQUANTIZE int8 -> float: reference_ops::AffineQuantize
 * (reference/quantize.h) and reference_ops::Dequantize (reference/dequantize.h). */
#include <math.h>
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

void unpu_ref_quantize_f32_s8(const float *input, int8_t *output, int32_t size, float scale, int32_t zero_point) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        /* TfLiteRound(val / scale) in float; out-of-range values saturate like the int cast on x86 */
        const float r = roundf(input[i] / scale);
        int32_t q;
        if (r >= 2147483647.0f) {
            q = INT32_MAX;
        } else if (r < -2147483648.0f || r != r) {
            q = INT32_MIN;
        } else {
            q = (int32_t)r;
        }
        q = (int32_t)((uint32_t)q + (uint32_t)zero_point);
        output[i] = (int8_t)unpu_clamp_i32(q, -128, 127);
    }
}

void unpu_ref_dequantize_s8_f32(const int8_t *input, float *output, int32_t size, float scale, int32_t zero_point) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        /* the reference computes (double)scale * (val - zp) and casts to float; that product is
         * exact in double, so a single float multiply rounds identically */
        output[i] = scale * (float)((int32_t)input[i] - zero_point);
    }
}

UNPU_REF_KERNEL(quantize_f32_s8)
UNPU_REF_KERNEL(dequantize_s8_f32)
