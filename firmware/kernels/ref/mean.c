/* MEAN over any set of axes, int8: reference_ops::QuantizedMeanOrSum (reference/reduce.h) with
 * compute_sum = false, as LiteRT's reference MEAN runs it for every int8 case (reduce.cc
 * EvalMean -> EvalQuantizedMean): int32 sums over the reduced axes, then
 * MultiplyByQuantizedMultiplier(sum - zp_in * count, multiplier / count folded in) + zp_out. */
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

void unpu_ref_mean_s8(const unpu_mean_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t dims[4] = {p->input.n, p->input.h, p->input.w, p->input.c};
    int32_t stride[4], kept[4], red[4], kept_stride[4], red_stride[4];
    int32_t n_kept = 0, n_red = 0, num_outputs = 1, i, d;
    int64_t count = 1;
    int32_t multiplier = p->multiplier, shift = p->shift;
    int s;
    stride[3] = 1;
    for (d = 2; d >= 0; --d) {
        stride[d] = stride[d + 1] * dims[d + 1];
    }
    for (d = 0; d < 4; ++d) {
        if (p->reduce_mask & (1 << d)) {
            red[n_red] = dims[d];
            red_stride[n_red++] = stride[d];
            count *= dims[d];
        } else {
            kept[n_kept] = dims[d];
            kept_stride[n_kept++] = stride[d];
            num_outputs *= dims[d];
        }
    }
    if (count == 0 || num_outputs == 0) {
        for (i = 0; i < num_outputs; ++i) {
            output[i] = 0; /* QuantizedMeanOrSum leaves the zeroed output */
        }
        return;
    }
    /* fold 1/count into the multiplier: s = 63 - clz(count), clamped to 32 and 31 + shift */
    s = floor_log2_u64((uint64_t)count);
    s = s < 32 ? s : 32;
    s = s < 31 + shift ? s : 31 + shift;
    multiplier = (int32_t)(((int64_t)multiplier * ((int64_t)1 << s)) / count);
    shift = shift - s;
    for (i = 0; i < num_outputs; ++i) {
        /* base offset of output i: its kept-dimension coordinates, row-major, in input order */
        int32_t rem = i, base = 0, sum = 0, out, j;
        for (d = n_kept - 1; d >= 0; --d) {
            base += (rem % kept[d]) * kept_stride[d];
            rem /= kept[d];
        }
        int32_t idx[4] = {0, 0, 0, 0}, off = base;
        for (j = 0; j < (int32_t)count; ++j) {
            sum += input[off];
            for (d = n_red - 1; d >= 0; --d) { /* odometer over the reduced coordinates */
                off += red_stride[d];
                if (++idx[d] < red[d]) {
                    break;
                }
                off -= red[d] * red_stride[d];
                idx[d] = 0;
            }
        }
        sum = unpu_wsub(sum, (int32_t)(p->input_zero_point * count));
        out = unpu_multiply_by_quantized_multiplier(sum, multiplier, shift) + p->output_zero_point;
        output[i] = (int8_t)unpu_clamp_i32(out, -128, 127);
    }
}

UNPU_REF_KERNEL(mean_s8)
