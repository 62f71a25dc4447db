/* ADD / MUL int8 with 4-D broadcasting: reference_integer_ops::AddFunc / MulElementwise and
 * BroadcastAdd6DSlow / BroadcastMul6DSlow (reference/integer_ops/add.h, mul.h). */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

static int32_t bidx(const unpu_shape4_t *s, int32_t b, int32_t y, int32_t x, int32_t c) {
    b = s->n == 1 ? 0 : b;
    y = s->h == 1 ? 0 : y;
    x = s->w == 1 ? 0 : x;
    c = s->c == 1 ? 0 : c;
    return ((b * s->h + y) * s->w + x) * s->c + c;
}

static int8_t add_one(const unpu_elementwise_params_t *p, int8_t a, int8_t b) {
    const int32_t in1 = p->in1_offset + a;
    const int32_t in2 = p->in2_offset + b;
    const int32_t shifted1 = (int32_t)((uint32_t)in1 << p->left_shift);
    const int32_t shifted2 = (int32_t)((uint32_t)in2 << p->left_shift);
    const int32_t scaled1 = unpu_multiply_by_quantized_multiplier(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = unpu_multiply_by_quantized_multiplier(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t raw = unpu_multiply_by_quantized_multiplier(unpu_wadd(scaled1, scaled2), p->output_multiplier,
                                                              p->output_shift) + p->output_offset;
    return (int8_t)unpu_clamp_i32(raw, p->act_min, p->act_max);
}

static int8_t mul_one(const unpu_elementwise_params_t *p, int8_t a, int8_t b) {
    const int32_t in1 = p->in1_offset + a;
    const int32_t in2 = p->in2_offset + b;
    const int32_t raw = unpu_multiply_by_quantized_multiplier(in1 * in2, p->output_multiplier, p->output_shift)
                        + p->output_offset;
    return (int8_t)unpu_clamp_i32(raw, p->act_min, p->act_max);
}

static void broadcast(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output,
                      int8_t (*op)(const unpu_elementwise_params_t *, int8_t, int8_t)) {
    const unpu_shape4_t *o = &p->output;
    int32_t b, y, x, c, i = 0;
    for (b = 0; b < o->n; ++b) {
        for (y = 0; y < o->h; ++y) {
            for (x = 0; x < o->w; ++x) {
                for (c = 0; c < o->c; ++c) {
                    output[i++] = op(p, in1[bidx(&p->in1, b, y, x, c)], in2[bidx(&p->in2, b, y, x, c)]);
                }
            }
        }
    }
}

void unpu_ref_add_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    broadcast(p, in1, in2, output, add_one);
}

void unpu_ref_mul_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    broadcast(p, in1, in2, output, mul_one);
}

UNPU_REF_KERNEL(add_s8)
UNPU_REF_KERNEL(mul_s8)
