/* MAX_POOL_2D / AVERAGE_POOL_2D int8: reference_integer_ops::MaxPool / AveragePool
 * (reference/integer_ops/pooling.h). */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

typedef int32_t (*pool_fn)(const unpu_pool_params_t *, const int8_t *, int32_t, int32_t, int32_t, int32_t);

static int32_t window_bounds(int32_t origin, int32_t filter, int32_t size, int32_t *start, int32_t *end) {
    *start = origin < 0 ? -origin : 0;
    *end = filter < size - origin ? filter : size - origin;
    return *end > *start;
}

static int32_t max_window(const unpu_pool_params_t *p, const int8_t *input, int32_t b, int32_t y0, int32_t x0,
                          int32_t c) {
    int32_t fy0, fy1, fx0, fx1, fy, fx, best = -128;
    window_bounds(y0, p->filter_h, p->input.h, &fy0, &fy1);
    window_bounds(x0, p->filter_w, p->input.w, &fx0, &fx1);
    for (fy = fy0; fy < fy1; ++fy) {
        for (fx = fx0; fx < fx1; ++fx) {
            const int32_t v = input[((b * p->input.h + y0 + fy) * p->input.w + x0 + fx) * p->input.c + c];
            best = v > best ? v : best;
        }
    }
    return best;
}

static int32_t avg_window(const unpu_pool_params_t *p, const int8_t *input, int32_t b, int32_t y0, int32_t x0,
                          int32_t c) {
    int32_t fy0, fy1, fx0, fx1, fy, fx, acc = 0, count = 0;
    window_bounds(y0, p->filter_h, p->input.h, &fy0, &fy1);
    window_bounds(x0, p->filter_w, p->input.w, &fx0, &fx1);
    for (fy = fy0; fy < fy1; ++fy) {
        for (fx = fx0; fx < fx1; ++fx) {
            acc += input[((b * p->input.h + y0 + fy) * p->input.w + x0 + fx) * p->input.c + c];
            count++;
        }
    }
    if (count == 0) {
        return 0;
    }
    /* round half away from zero, as the reference does */
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

static void pool(const unpu_pool_params_t *p, const int8_t *input, int8_t *output, pool_fn fn) {
    int32_t b, oy, ox, c;
    for (b = 0; b < p->input.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            for (ox = 0; ox < p->output.w; ++ox) {
                for (c = 0; c < p->output.c; ++c) {
                    const int32_t v = fn(p, input, b, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, c);
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + c] =
                        (int8_t)unpu_clamp_i32(v, p->act_min, p->act_max);
                }
            }
        }
    }
}

void unpu_ref_max_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output) {
    pool(p, input, output, max_window);
}

void unpu_ref_avg_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output) {
    pool(p, input, output, avg_window);
}

UNPU_REF_KERNEL(max_pool_s8)
UNPU_REF_KERNEL(avg_pool_s8)
