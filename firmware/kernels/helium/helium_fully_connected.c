/* FULLY_CONNECTED int8 on Helium: four output features at a time with VMLADAVA. The offsets are
 * expanded, sum (w + fo)(x + io) = sum w*x + io*sum w + fo*sum x + fo*io*K, with the weight row
 * sums computed per call (the code generator could precompute them) and each input row's sum once.
 * The multiplier/shift path requantizes in vector form; LiteRT's double effective_scale path
 * (round(acc * scale) in double) cannot be vectorised exactly: its MACs are, and each value is
 * requantized in scalar code as the reference does. More than HELIUM_MAX_CHANNELS output features
 * run the reference kernel. */
#include <math.h>

#include "helium_requant.h"

static helium_channel_tables_t fc_tables;
static int32_t fc_multiplier[HELIUM_MAX_CHANNELS];

static void fold_offsets(const unpu_fc_params_t *p, const int8_t *weights, const int32_t *bias, int32_t filter_offset)
{
    const int32_t k = p->in_features;
    const uint32_t both = (uint32_t)filter_offset * (uint32_t)p->input_offset * (uint32_t)k;
    for (int32_t oc = 0; oc < p->out_features; ++oc) {
        const uint32_t folded = (uint32_t)p->input_offset * (uint32_t)helium_sum_s8(weights + oc * k, k);
        const int32_t ch = p->per_channel ? oc : 0;
        fc_tables.bias[oc] = (int32_t)(folded + both + (uint32_t)(bias ? bias[oc] : 0));
        if (!p->effective_scale) {
            fc_multiplier[oc] = p->multiplier[ch];
            helium_split_shifts(p->shift + ch, 1, fc_tables.left + oc, fc_tables.right_neg + oc);
        }
    }
}

/* LiteRT's double requantization (as ref/fully_connected.c), one value */
static int32_t scale_in_double(double scale, int32_t acc)
{
    const double scaled = round((double)acc * scale);
    if (scaled > 2147483647.0)
        return INT32_MAX;
    if (scaled < -2147483648.0)
        return INT32_MIN;
    return (int32_t)scaled;
}

static void store_double_path(const unpu_fc_params_t *p, int8_t *out, const int32_t *acc, int32_t n)
{
    for (int32_t oc = 0; oc < n; ++oc) {
        const double scale = p->effective_scale[p->per_channel ? oc : 0];
        const int32_t v = (int32_t)((uint32_t)scale_in_double(scale, acc[oc]) + (uint32_t)p->output_offset);
        out[oc] = (int8_t)(v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v));
    }
}

void unpu_fully_connected_s8(const unpu_fc_params_t *p, const int8_t *input, const int8_t *weights,
                             const int32_t *bias, int8_t *output)
{
    /* per-channel weights are symmetric: the reference ignores the filter zero point there */
    const int32_t filter_offset = p->per_channel ? 0 : p->filter_offset;
    const int32_t k = p->in_features, out_c = p->out_features;
    if (out_c > HELIUM_MAX_CHANNELS) {
        unpu_ref_fully_connected_s8(p, input, weights, bias, output);
        return;
    }
    fold_offsets(p, weights, bias, filter_offset);
    for (int32_t b = 0; b < p->batches; ++b, input += k, output += out_c) {
        const uint32_t row_term = (uint32_t)filter_offset * (uint32_t)helium_sum_s8(input, k);
        helium_matrix_times_vector(input, weights, out_c, k, fc_tables.bias, fc_tables.acc);
        for (int32_t oc = 0; oc < out_c; ++oc)
            fc_tables.acc[oc] = (int32_t)((uint32_t)fc_tables.acc[oc] + row_term);
        if (p->effective_scale)
            store_double_path(p, output, fc_tables.acc, out_c);
        else
            helium_requantize_row(output, fc_tables.acc, out_c, fc_multiplier, fc_tables.left, fc_tables.right_neg,
                                  p->output_offset, p->act_min, p->act_max);
    }
}
