/* FULLY_CONNECTED int8 with the DSP extension: the input row widened once to int16 (input offset
 * added), then 2 output features per pass with SMLAD, the filter offset added by SXTAB16.
 * Requantization is the reference's, both paths: LiteRT's double effective_scale and TFLite
 * Micro's multiplier/shift. Rows longer than the scratch buffer run unpu_ref_fully_connected_s8. */
#if defined(__ARM_FEATURE_DSP)
#include "dsp_common.h"

/* the reference's requantization; the multiplier/shift path inline (the same operations) */
static int32_t fc_requantize(const unpu_fc_params_t *p, int32_t acc, int32_t oc) {
    const int32_t ch = p->per_channel ? oc : 0;
    return p->effective_scale ? unpu_ref_fc_requantize(p, acc, oc) : dsp_requantize(acc, p->multiplier[ch], p->shift[ch]);
}

static int8_t fc_output(const unpu_fc_params_t *p, const int32_t *bias, int32_t acc, int32_t oc) {
    if (bias) {
        acc += bias[oc];
    }
    acc = unpu_wadd(fc_requantize(p, acc, oc), p->output_offset);
    return (int8_t)unpu_clamp_i32(acc, p->act_min, p->act_max);
}

void unpu_fully_connected_s8(const unpu_fc_params_t *p, const int8_t *input, const int8_t *weights,
                             const int32_t *bias, int8_t *output) {
    /* per-channel weights are symmetric: the reference ignores the filter zero point there */
    const int32_t filter_offset = p->per_channel ? 0 : p->filter_offset;
    const int32_t n = p->in_features;
    int16_t *col = dsp_scratch;
    int32_t b, oc, acc0, acc1;
    if (n > DSP_SCRATCH_HALFWORDS || !dsp_offset_fits_i16(p->input_offset) || !dsp_offset_fits_i16(filter_offset)) {
        unpu_ref_fully_connected_s8(p, input, weights, bias, output);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        int8_t *out = output + b * p->out_features;
        dsp_widen(input + b * n, n, col, p->input_offset);
        for (oc = 0; oc + 2 <= p->out_features; oc += 2) {
            dsp_dot_2x1(weights + oc * n, weights + (oc + 1) * n, col, n, filter_offset, &acc0, &acc1);
            out[oc] = fc_output(p, bias, acc0, oc);
            out[oc + 1] = fc_output(p, bias, acc1, oc + 1);
        }
        for (; oc < p->out_features; ++oc) {
            out[oc] = fc_output(p, bias, dsp_dot_1x1(weights + oc * n, col, n, filter_offset), oc);
        }
    }
}
#endif
