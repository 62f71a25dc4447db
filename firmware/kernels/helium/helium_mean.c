/* MEAN int8 on Helium over H and W (global average pooling, the zoo's case): the per-channel sums
 * in int32 lanes, four channels per vector; then QuantizedMeanOrSum's requantization (1/count
 * folded into the multiplier, as ref/mean.c) per channel. Other axes, or more than
 * HELIUM_MAX_CHANNELS channels, run the reference kernel. */
#include "helium_requant.h"

static int32_t mean_sums[HELIUM_MAX_CHANNELS] __attribute__((aligned(16)));

static int floor_log2(uint32_t v)
{
    return 31 - __builtin_clz(v);
}

void unpu_mean_s8(const unpu_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->input.c, count = p->input.h * p->input.w;
    if (p->reduce_mask != 0x6 || channels > HELIUM_MAX_CHANNELS || count == 0 || channels == 0) {
        unpu_ref_mean_s8(p, input, output);
        return;
    }
    /* fold 1/count into the multiplier exactly as QuantizedMeanOrSum does */
    int s = floor_log2((uint32_t)count);
    s = s < 31 + p->shift ? s : 31 + p->shift;
    const int32_t multiplier = (int32_t)(((int64_t)p->multiplier * ((int64_t)1 << s)) / count);
    const int32_t shift = p->shift - s;
    const int32_t zero_point_term = (int32_t)((uint32_t)p->input_zero_point * (uint32_t)count);
    for (int32_t b = 0; b < p->input.n; ++b, output += channels) {
        const int8_t *image = input + b * count * channels;
        for (int32_t c = 0; c < channels; c += 4) {
            const mve_pred16_t lanes = vctp32q((uint32_t)(channels - c));
            int32x4_t sum = vdupq_n_s32(0);
            for (int32_t i = 0; i < count; ++i)
                sum = vaddq_s32(sum, vldrbq_z_s32(image + i * channels + c, lanes));
            vstrwq_p_s32(mean_sums + c, sum, lanes);
        }
        for (int32_t c = 0; c < channels; ++c) {
            const int32_t sum = (int32_t)((uint32_t)mean_sums[c] - (uint32_t)zero_point_term);
            const int32_t out = unpu_multiply_by_quantized_multiplier(sum, multiplier, shift) + p->output_zero_point;
            output[c] = (int8_t)(out < -128 ? -128 : (out > 127 ? 127 : out));
        }
    }
}
