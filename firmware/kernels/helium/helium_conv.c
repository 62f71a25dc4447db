/* CONV_2D int8 on Helium: every output pixel is a patch (its receptive field, HWC order, padding
 * filled with the input zero point so it adds nothing) times the OHWI filter as a [out_c][K]
 * matrix, four output channels at a time with VMLADAVA (16 MACs per instruction). A 1x1 conv reads
 * its patch straight from the input; any other builds it in a static buffer of
 * HELIUM_CONV_PATCH_BYTES. Larger patches, or more than HELIUM_MAX_CHANNELS output channels, run
 * the reference kernel. The input offset is folded into the bias per call (sum of each filter
 * row); the code generator could precompute it. */
#include "helium_requant.h"

#define HELIUM_CONV_PATCH_BYTES 4096

static int8_t patch_buf[HELIUM_CONV_PATCH_BYTES] __attribute__((aligned(16)));
static helium_channel_tables_t conv_tables;

static void fold_offsets(const unpu_conv_params_t *p, const int8_t *filter, const int32_t *bias, int32_t k)
{
    for (int32_t oc = 0; oc < p->output.c; ++oc) {
        const uint32_t folded = (uint32_t)p->input_offset * (uint32_t)helium_sum_s8(filter + oc * k, k);
        conv_tables.bias[oc] = (int32_t)(folded + (uint32_t)(bias ? bias[oc] : 0));
    }
    helium_split_shifts(p->shift, p->output.c, conv_tables.left, conv_tables.right_neg);
}

/* The receptive field of output (b, oy, ox) in patch_buf, padding as the input zero point. */
static const int8_t *gather_patch(const unpu_conv_params_t *p, const int8_t *input, int32_t b, int32_t oy, int32_t ox)
{
    const int32_t in_c = p->input.c, y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const int8_t zero_point = (int8_t)(-p->input_offset);
    int8_t *dst = patch_buf;
    const int whole_rows = p->dilation_w == 1 && x0 >= 0 && x0 + p->filter_w <= p->input.w;
    const int32_t row_bytes = p->filter_w * in_c;
    for (int32_t fy = 0; fy < p->filter_h; ++fy) {
        const int32_t y = y0 + fy * p->dilation_h;
        if (y < 0 || y >= p->input.h) {
            helium_fill(dst, zero_point, row_bytes);
            dst += row_bytes;
            continue;
        }
        const int8_t *src_row = input + (b * p->input.h + y) * p->input.w * in_c;
        if (whole_rows) {   /* the filter row's pixels are contiguous in the input */
            helium_copy(dst, src_row + x0 * in_c, row_bytes);
            dst += row_bytes;
            continue;
        }
        for (int32_t fx = 0; fx < p->filter_w; ++fx, dst += in_c) {
            const int32_t x = x0 + fx * p->dilation_w;
            if (x < 0 || x >= p->input.w)
                helium_fill(dst, zero_point, in_c);
            else
                helium_copy(dst, src_row + x * in_c, in_c);
        }
    }
    return patch_buf;
}

static const int8_t *patch_of(const unpu_conv_params_t *p, const int8_t *input, int32_t b, int32_t oy, int32_t ox)
{
    const int32_t y = oy * p->stride_h - p->pad_top, x = ox * p->stride_w - p->pad_left;
    if (p->filter_h == 1 && p->filter_w == 1 && y >= 0 && y < p->input.h && x >= 0 && x < p->input.w)
        return input + ((b * p->input.h + y) * p->input.w + x) * p->input.c;
    return gather_patch(p, input, b, oy, ox);
}

void unpu_conv2d_s8(const unpu_conv_params_t *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                    int8_t *output)
{
    const int32_t k = p->filter_h * p->filter_w * p->input.c, out_c = p->output.c;
    if (k > HELIUM_CONV_PATCH_BYTES || out_c > HELIUM_MAX_CHANNELS) {
        unpu_ref_conv2d_s8(p, input, filter, bias, output);
        return;
    }
    fold_offsets(p, filter, bias, k);
    for (int32_t b = 0; b < p->output.n; ++b) {
        for (int32_t oy = 0; oy < p->output.h; ++oy) {
            for (int32_t ox = 0; ox < p->output.w; ++ox, output += out_c) {
                const int8_t *col = patch_of(p, input, b, oy, ox);
                helium_matrix_times_vector(col, filter, out_c, k, conv_tables.bias, conv_tables.acc);
                helium_requantize_row(output, conv_tables.acc, out_c, p->multiplier, conv_tables.left,
                                      conv_tables.right_neg, p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}
