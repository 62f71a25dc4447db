/* PAD / PADV2 int8: reference_ops::Pad (reference/pad.h), NHWC, constant padding. */
#include <string.h>
#include "../unpu_kernels.h"

void unpu_ref_pad_s8(const unpu_pad_params_t *p, const int8_t *input, int8_t *output) {
    const unpu_shape4_t *i = &p->input, *o = &p->output;
    int32_t b, y, x;
    memset(output, p->pad_value, (size_t)o->n * o->h * o->w * o->c);
    for (b = 0; b < i->n; ++b) {
        for (y = 0; y < i->h; ++y) {
            for (x = 0; x < i->w; ++x) {
                const int32_t ob = b + p->before[0], oy = y + p->before[1], ox = x + p->before[2];
                memcpy(output + ((ob * o->h + oy) * o->w + ox) * o->c + p->before[3],
                       input + ((b * i->h + y) * i->w + x) * i->c, (size_t)i->c);
            }
        }
    }
}

UNPU_REF_KERNEL(pad_s8)
