/* MEAN over H and W, int8: reference_ops::QuantizedMeanOrSum (reference/reduce.h) with
 * compute_sum = false, as LiteRT's reference MEAN runs it for int8 (reduce.cc EvalQuantizedMean). */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

static int floor_log2_u64(uint64_t v) {
    int n = -1;
    while (v) {
        v >>= 1;
        n++;
    }
    return n;
}

void unpu_mean_hw_s8(const unpu_mean_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t n = p->input.n, h = p->input.h, w = p->input.w, ch = p->input.c;
    const int64_t count = (int64_t)h * w;
    int32_t multiplier = p->multiplier, shift = p->shift;
    int32_t b, c, i;
    int s;
    if (count == 0) {
        return;
    }
    /* fold 1/count into the multiplier: s = 63 - clz(count), clamped to 32 and 31 + shift */
    s = floor_log2_u64((uint64_t)count);
    s = s < 32 ? s : 32;
    s = s < 31 + shift ? s : 31 + shift;
    multiplier = (int32_t)(((int64_t)multiplier * ((int64_t)1 << s)) / count);
    shift = shift - s;
    for (b = 0; b < n; ++b) {
        for (c = 0; c < ch; ++c) {
            int32_t sum = 0, out;
            for (i = 0; i < h * w; ++i) {
                sum += input[(b * h * w + i) * ch + c];
            }
            sum = unpu_wsub(sum, (int32_t)(p->input_zero_point * count));
            out = unpu_multiply_by_quantized_multiplier(sum, multiplier, shift) + p->output_zero_point;
            output[b * ch + c] = (int8_t)unpu_clamp_i32(out, -128, 127);
        }
    }
}
