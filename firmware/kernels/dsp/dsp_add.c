/* ADD int8 without broadcasting: each input's offset, left shift and rescale depend on its int8
 * value alone, so they are tabulated once per call (2 x 256 int32 in the scratch buffer) and each
 * element costs two table reads, the output rescale and the clamp. The same operations as
 * unpu_ref_add_s8 in the same order, hence bit-exact; broadcasting and tensors of fewer than
 * 256 elements run the reference. */
#if defined(__ARM_FEATURE_DSP)
#include "dsp_common.h"

static int same_shape(const unpu_shape4_t *a, const unpu_shape4_t *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

static void tabulate_input(int32_t *table, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift) {
    int32_t v;
    for (v = -128; v < 128; ++v) {
        const int32_t shifted = (int32_t)((uint32_t)(offset + v) << left_shift);
        table[(uint8_t)v] = dsp_requantize(shifted, multiplier, shift);
    }
}

void unpu_add_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    const int32_t size = p->output.n * p->output.h * p->output.w * p->output.c;
    int32_t *table1 = (int32_t *)dsp_scratch, *table2 = table1 + 256;
    int32_t i;
    if (!same_shape(&p->in1, &p->output) || !same_shape(&p->in2, &p->output) || size < 256) {
        unpu_ref_add_s8(p, in1, in2, output);
        return;
    }
    tabulate_input(table1, p->in1_offset, p->left_shift, p->in1_multiplier, p->in1_shift);
    tabulate_input(table2, p->in2_offset, p->left_shift, p->in2_multiplier, p->in2_shift);
    for (i = 0; i < size; ++i) {
        const int32_t sum = unpu_wadd(table1[(uint8_t)in1[i]], table2[(uint8_t)in2[i]]);
        const int32_t raw = dsp_requantize(sum, p->output_multiplier, p->output_shift) + p->output_offset;
        output[i] = (int8_t)unpu_clamp_i32(raw, p->act_min, p->act_max);
    }
}
#endif
