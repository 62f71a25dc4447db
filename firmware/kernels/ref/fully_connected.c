/* FULLY_CONNECTED int8: reference_integer_ops::FullyConnected / FullyConnectedPerChannel
 * (reference/integer_ops/fully_connected.h). LiteRT's reference kernel uses the overloads that
 * take the float scales and requantize in double; TFLite Micro uses multiplier/shift. */
#include <math.h>
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

int32_t unpu_ref_fc_requantize(const unpu_fc_params_t *p, int32_t acc, int32_t oc) {
    const int32_t ch = p->per_channel ? oc : 0;
    if (p->effective_scale) {
        const double scaled = round((double)acc * p->effective_scale[ch]);
        /* the reference casts to int32 before clamping; keep the cast in range */
        if (scaled > 2147483647.0) {
            return INT32_MAX;
        }
        if (scaled < -2147483648.0) {
            return INT32_MIN;
        }
        return (int32_t)scaled;
    }
    return unpu_multiply_by_quantized_multiplier(acc, p->multiplier[ch], p->shift[ch]);
}

void unpu_ref_fully_connected_s8(const unpu_fc_params_t *p, const int8_t *input, const int8_t *weights,
                             const int32_t *bias, int8_t *output) {
    /* per-channel weights are symmetric: the reference ignores the filter zero point there */
    const int32_t filter_offset = p->per_channel ? 0 : p->filter_offset;
    int32_t b, oc, d;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_row = input + b * p->in_features;
        for (oc = 0; oc < p->out_features; ++oc) {
            const int8_t *w_row = weights + oc * p->in_features;
            int32_t acc = 0;
            for (d = 0; d < p->in_features; ++d) {
                acc += ((int32_t)w_row[d] + filter_offset) * ((int32_t)in_row[d] + p->input_offset);
            }
            if (bias) {
                acc += bias[oc];
            }
            acc = unpu_wadd(unpu_ref_fc_requantize(p, acc, oc), p->output_offset);
            output[b * p->out_features + oc] = (int8_t)unpu_clamp_i32(acc, p->act_min, p->act_max);
        }
    }
}

UNPU_REF_KERNEL(fully_connected_s8)
