/* DEPTHWISE_CONV_2D int8 on Helium (depth_multiplier 1): four channels per vector, int32 lanes.
 * Per output pixel the in-bounds filter taps are listed once; an interior pixel of a 3x3 filter
 * (all nine taps in bounds) takes the unrolled path with the input offset folded into the bias
 * (bias + input_offset * sum of the channel's taps, per call); a border pixel adds the offset to
 * each in-bounds input. Depth multipliers above 1, filters with more than HELIUM_DW_MAX_TAPS taps
 * or more than HELIUM_MAX_CHANNELS channels run the reference kernel. */
#include "helium_requant.h"

#define HELIUM_DW_MAX_TAPS 64

static helium_channel_tables_t dw_tables;

static void fold_offsets(const unpu_dwconv_params_t *p, const int8_t *filter, const int32_t *bias)
{
    const int32_t channels = p->output.c, taps = p->filter_h * p->filter_w;
    for (int32_t c = 0; c < channels; ++c) {
        int32_t sum = 0;
        for (int32_t t = 0; t < taps; ++t)
            sum += filter[t * channels + c];
        dw_tables.bias[c] = (int32_t)((uint32_t)p->input_offset * (uint32_t)sum + (uint32_t)(bias ? bias[c] : 0));
    }
    helium_split_shifts(p->shift, channels, dw_tables.left, dw_tables.right_neg);
}

/* The in-bounds taps of one output pixel: input and filter pixel offsets (in elements). Returns
 * their number. */
static int32_t list_taps(const unpu_dwconv_params_t *p, int32_t b, int32_t oy, int32_t ox, int32_t *in_at,
                         int32_t *filter_at)
{
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left, c = p->input.c;
    int32_t n = 0;
    for (int32_t fy = 0; fy < p->filter_h; ++fy) {
        const int32_t y = y0 + fy * p->dilation_h;
        if (y < 0 || y >= p->input.h)
            continue;
        for (int32_t fx = 0; fx < p->filter_w; ++fx) {
            const int32_t x = x0 + fx * p->dilation_w;
            if (x < 0 || x >= p->input.w)
                continue;
            in_at[n] = ((b * p->input.h + y) * p->input.w + x) * c;
            filter_at[n++] = (fy * p->filter_w + fx) * c;
        }
    }
    return n;
}

/* the 3x3 filter re-laid per call as [channel block of 4][tap][4] (the tail block zero-padded),
 * so one pointer with immediate offsets reaches a block's nine taps */
static int8_t dw_blocks[HELIUM_MAX_CHANNELS * 9] __attribute__((aligned(16)));

static void relay_3x3(const int8_t *filter, int32_t channels)
{
    for (int32_t c = 0; c < (channels + 3) / 4 * 4; ++c)
        for (int32_t t = 0; t < 9; ++t)
            dw_blocks[c / 4 * 36 + t * 4 + c % 4] = c < channels ? filter[t * channels + c] : 0;
}

/* one block of 4 channels of an interior 3x3 window: p is the window origin + c, f its taps */
#define DW_TAP(x, t) acc = vaddq_s32(acc, vmulq_s32(x, vldrbq_s32(f + 4 * (t))))
static inline int32x4_t block_3x3(int32x4_t acc, const int8_t *p, const int8_t *f, int32_t row, int32_t col)
{
    _Pragma("GCC unroll 3") for (int r = 0; r < 3; ++r, p += row, f += 12) {
        DW_TAP(vldrbq_s32(p), 0);
        DW_TAP(vldrbq_s32(p + col), 1);
        DW_TAP(vldrbq_s32(p + 2 * col), 2);
    }
    return acc;
}

static inline int32x4_t tail_3x3(int32x4_t acc, const int8_t *p, const int8_t *f, int32_t row, int32_t col,
                                 mve_pred16_t lanes)
{
    _Pragma("GCC unroll 3") for (int r = 0; r < 3; ++r, p += row, f += 12) {
        DW_TAP(vldrbq_z_s32(p, lanes), 0);
        DW_TAP(vldrbq_z_s32(p + col, lanes), 1);
        DW_TAP(vldrbq_z_s32(p + 2 * col, lanes), 2);
    }
    return acc;
}
#undef DW_TAP

/* all nine taps of a 3x3 filter in bounds (window origin `in`, `row`/`col` the dilated strides):
 * the input offset folded into the bias */
static void interior_3x3(int8_t *out, const unpu_dwconv_params_t *p, const int8_t *in, int32_t row, int32_t col,
                         int32_t channels)
{
    int32_t c = 0;
    for (; c + 4 <= channels; c += 4) {
        const int32x4_t acc = block_3x3(vldrwq_s32(dw_tables.bias + c), in + c, dw_blocks + c * 9, row, col);
        helium_store_requantized(out + c, acc, p->multiplier + c, dw_tables.left + c, dw_tables.right_neg + c,
                                 p->output_offset, p->act_min, p->act_max, 4);
    }
    if (c < channels) {
        const mve_pred16_t lanes = vctp32q((uint32_t)(channels - c));
        const int32x4_t acc =
            tail_3x3(vldrwq_z_s32(dw_tables.bias + c, lanes), in + c, dw_blocks + c * 9, row, col, lanes);
        helium_store_requantized(out + c, acc, p->multiplier + c, dw_tables.left + c, dw_tables.right_neg + c,
                                 p->output_offset, p->act_min, p->act_max, channels - c);
    }
}

/* any set of taps: sum of filter * (input + input_offset), plus the bias; a full block of four
 * channels loads without predication */
static inline int32x4_t border(const unpu_dwconv_params_t *p, const int8_t *input, const int8_t *filter,
                               const int32_t *bias, const int32_t *in_at, const int32_t *filter_at, int32_t taps,
                               int32_t c, int full, mve_pred16_t lanes)
{
    int32x4_t acc = bias ? (full ? vldrwq_s32(bias + c) : vldrwq_z_s32(bias + c, lanes)) : vdupq_n_s32(0);
    for (int32_t t = 0; t < taps; ++t) {
        const int8_t *x = input + in_at[t] + c, *f = filter + filter_at[t] + c;
        const int32x4_t xv = full ? vldrbq_s32(x) : vldrbq_z_s32(x, lanes);
        const int32x4_t fv = full ? vldrbq_s32(f) : vldrbq_z_s32(f, lanes);
        acc = vaddq_s32(acc, vmulq_s32(vaddq_n_s32(xv, p->input_offset), fv));
    }
    return acc;
}

/* an output pixel whose window leaves the input */
static void border_pixel(int8_t *out, const unpu_dwconv_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, const int32_t *in_at, const int32_t *filter_at, int32_t taps)
{
    const int32_t channels = p->output.c;
    int32_t c = 0;
    for (; c + 4 <= channels; c += 4) {
        const int32x4_t acc = border(p, input, filter, bias, in_at, filter_at, taps, c, 1, 0);
        helium_store_requantized(out + c, acc, p->multiplier + c, dw_tables.left + c, dw_tables.right_neg + c,
                                 p->output_offset, p->act_min, p->act_max, 4);
    }
    if (c < channels) {
        const mve_pred16_t lanes = vctp32q((uint32_t)(channels - c));
        const int32x4_t acc = border(p, input, filter, bias, in_at, filter_at, taps, c, 0, lanes);
        helium_store_requantized(out + c, acc, p->multiplier + c, dw_tables.left + c, dw_tables.right_neg + c,
                                 p->output_offset, p->act_min, p->act_max, channels - c);
    }
}

void unpu_depthwise_conv2d_s8(const unpu_dwconv_params_t *p, const int8_t *input, const int8_t *filter,
                              const int32_t *bias, int8_t *output)
{
    const int32_t channels = p->output.c, taps = p->filter_h * p->filter_w;
    int32_t in_at[HELIUM_DW_MAX_TAPS], filter_at[HELIUM_DW_MAX_TAPS];
    if (p->depth_multiplier != 1 || taps > HELIUM_DW_MAX_TAPS || channels > HELIUM_MAX_CHANNELS) {
        unpu_ref_depthwise_conv2d_s8(p, input, filter, bias, output);
        return;
    }
    fold_offsets(p, filter, bias);
    if (taps == 9)
        relay_3x3(filter, channels);
    for (int32_t b = 0; b < p->output.n; ++b) {
        for (int32_t oy = 0; oy < p->output.h; ++oy) {
            for (int32_t ox = 0; ox < p->output.w; ++ox, output += channels) {
                const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
                if (taps == 9 && p->filter_h == 3 && y0 >= 0 && y0 + 2 * p->dilation_h < p->input.h && x0 >= 0 &&
                    x0 + 2 * p->dilation_w < p->input.w) {
                    interior_3x3(output, p, input + ((b * p->input.h + y0) * p->input.w + x0) * channels,
                                 p->dilation_h * p->input.w * channels, p->dilation_w * channels, channels);
                    continue;
                }
                const int32_t n = list_taps(p, b, oy, ox, in_at, filter_at);
                border_pixel(output, p, input, filter, bias, in_at, filter_at, n);
            }
        }
    }
}
