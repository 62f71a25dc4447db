/* CONV_2D int8: reference_integer_ops::ConvPerChannel (reference/integer_ops/conv.h). */
#include "../unpu_kernels.h"
#include "unpu_fixedpoint.h"

void unpu_ref_conv2d_s8(const unpu_conv_params_t *p, const int8_t *input, const int8_t *filter,
                    const int32_t *bias, int8_t *output) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w, out_c = p->output.c;
    int32_t b, oy, ox, oc, fy, fx, ic;
    for (b = 0; b < p->input.n; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_left;
                for (oc = 0; oc < out_c; ++oc) {
                    int32_t acc = 0;
                    for (fy = 0; fy < p->filter_h; ++fy) {
                        const int32_t in_y = in_y0 + p->dilation_h * fy;
                        if (in_y < 0 || in_y >= in_h) {
                            continue;
                        }
                        for (fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t in_x = in_x0 + p->dilation_w * fx;
                            const int8_t *in_px;
                            const int8_t *f_px;
                            if (in_x < 0 || in_x >= in_w) {
                                continue;
                            }
                            in_px = input + ((b * in_h + in_y) * in_w + in_x) * in_c;
                            f_px = filter + ((oc * p->filter_h + fy) * p->filter_w + fx) * in_c;
                            for (ic = 0; ic < in_c; ++ic) {
                                acc += (int32_t)f_px[ic] * ((int32_t)in_px[ic] + p->input_offset);
                            }
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = unpu_multiply_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
                    acc += p->output_offset;
                    output[((b * out_h + oy) * out_w + ox) * out_c + oc] =
                        (int8_t)unpu_clamp_i32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

UNPU_REF_KERNEL(conv2d_s8)
