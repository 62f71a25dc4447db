/* CONCATENATION int8: reference_ops::Concatenation, or reference_ops::ConcatenationWithScaling
 * (reference/concatenation.h) for an input whose quantization differs from the output's. */
#include <math.h>
#include <string.h>
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

static int32_t dim(const unpu_shape4_t *s, int32_t axis) {
    const int32_t d[4] = {s->n, s->h, s->w, s->c};
    return d[axis];
}

void unpu_ref_concatenation_s8(const unpu_concat_params_t *p, const int8_t *const *inputs, int8_t *output) {
    int32_t outer = 1, base_inner = 1, a, k, i, o;
    int8_t *out = output;
    for (a = 0; a < p->axis; ++a) {
        outer *= dim(&p->output, a);
    }
    for (a = p->axis + 1; a < 4; ++a) {
        base_inner *= dim(&p->output, a);
    }
    for (o = 0; o < outer; ++o) {
        for (k = 0; k < p->count; ++k) {
            const int32_t copy = dim(&p->shapes[k], p->axis) * base_inner;
            const int8_t *in = inputs[k] + o * copy;
            if (p->zero_points[k] == p->output_zero_point && p->scales[k] == p->output_scale) {
                memcpy(out, in, (size_t)copy);
            } else {
                const float inverse_output_scale = 1.f / p->output_scale;
                const float scale = p->scales[k] * inverse_output_scale;
                const float bias = -(float)p->zero_points[k] * scale;
                for (i = 0; i < copy; ++i) {
                    const int32_t v = (int32_t)roundf((float)in[i] * scale + bias) + p->output_zero_point;
                    out[i] = (int8_t)unpu_clamp_i32(v, -128, 127);
                }
            }
            out += copy;
        }
    }
}

UNPU_REF_KERNEL(concatenation_s8)
