/* DEPTHWISE_CONV_2D int8 with the DSP extension (depth multiplier 1): 4 channels per word, input
 * offset added by SXTAB16, one SMLABB/SMLATT per channel and tap. A 3x3 window that lies wholly
 * inside the input is unrolled; border pixels and other filter sizes skip the taps outside the
 * input as the reference does. Bit-exact with unpu_ref_depthwise_conv2d_s8, which runs every
 * other depth multiplier. */
#if defined(__ARM_FEATURE_DSP)
#include "dsp_common.h"

typedef struct {
    int32_t a0, a1, a2, a3; /* channels c, c+1, c+2, c+3 */
} acc4_t;

static inline void mac4(acc4_t *a, const int8_t *in, const int8_t *w, uint32_t off2) {
    const uint32_t x = dsp_load_u32(in), f = dsp_load_u32(w);
    const uint32_t x02 = __sxtab16(off2, x), x13 = dsp_sxtab16_ror8(off2, x);
    const uint32_t f02 = __sxtb16(f), f13 = dsp_sxtb16_ror8(f);
    a->a0 = __smlabb(f02, x02, a->a0);
    a->a2 = __smlatt(f02, x02, a->a2);
    a->a1 = __smlabb(f13, x13, a->a1);
    a->a3 = __smlatt(f13, x13, a->a3);
}

#define DW_OUT(acc, oc) dsp_conv_output((acc), bias, p->multiplier, p->shift, (oc), p->output_offset, \
                                        p->act_min, p->act_max)

static void store4(const unpu_dwconv_params_t *p, const int32_t *bias, const acc4_t *a, int32_t c, int8_t *out) {
    out[c] = DW_OUT(a->a0, c);
    out[c + 1] = DW_OUT(a->a1, c + 1);
    out[c + 2] = DW_OUT(a->a2, c + 2);
    out[c + 3] = DW_OUT(a->a3, c + 3);
}

/* 3x3, dilation 1, every tap inside the input; `in` is the window's top-left pixel */
static void pixel_3x3_inner(const unpu_dwconv_params_t *p, const int8_t *in, const int8_t *filter,
                            const int32_t *bias, int8_t *out) {
    const int32_t ch = p->input.c, row = p->input.w * ch;
    const uint32_t off2 = dsp_pair(p->input_offset);
    int32_t c;
    for (c = 0; c + 4 <= ch; c += 4) {
        const int8_t *x = in + c, *w = filter + c;
        acc4_t a = {0, 0, 0, 0};
        mac4(&a, x, w, off2);
        mac4(&a, x + ch, w + ch, off2);
        mac4(&a, x + 2 * ch, w + 2 * ch, off2);
        mac4(&a, x + row, w + 3 * ch, off2);
        mac4(&a, x + row + ch, w + 4 * ch, off2);
        mac4(&a, x + row + 2 * ch, w + 5 * ch, off2);
        mac4(&a, x + 2 * row, w + 6 * ch, off2);
        mac4(&a, x + 2 * row + ch, w + 7 * ch, off2);
        mac4(&a, x + 2 * row + 2 * ch, w + 8 * ch, off2);
        store4(p, bias, &a, c, out);
    }
    for (; c < ch; ++c) {
        int32_t acc = 0, fy, fx;
        for (fy = 0; fy < 3; ++fy) {
            for (fx = 0; fx < 3; ++fx) {
                acc += filter[(fy * 3 + fx) * ch + c] * (in[fy * row + fx * ch + c] + p->input_offset);
            }
        }
        out[c] = DW_OUT(acc, c);
    }
}

/* any filter, any dilation: the taps inside the input */
static void pixel_general(const unpu_dwconv_params_t *p, const int8_t *image, int32_t in_y0, int32_t in_x0,
                          const int8_t *filter, const int32_t *bias, int8_t *out) {
    const int32_t ch = p->input.c;
    const uint32_t off2 = dsp_pair(p->input_offset);
    int32_t c, fy, fx;
    for (c = 0; c + 4 <= ch; c += 4) {
        acc4_t a = {0, 0, 0, 0};
        for (fy = 0; fy < p->filter_h; ++fy) {
            const int32_t in_y = in_y0 + p->dilation_h * fy;
            if (in_y < 0 || in_y >= p->input.h) {
                continue;
            }
            for (fx = 0; fx < p->filter_w; ++fx) {
                const int32_t in_x = in_x0 + p->dilation_w * fx;
                if (in_x >= 0 && in_x < p->input.w) {
                    mac4(&a, image + (in_y * p->input.w + in_x) * ch + c, filter + (fy * p->filter_w + fx) * ch + c,
                         off2);
                }
            }
        }
        store4(p, bias, &a, c, out);
    }
    for (; c < ch; ++c) {
        int32_t acc = 0;
        for (fy = 0; fy < p->filter_h; ++fy) {
            const int32_t in_y = in_y0 + p->dilation_h * fy;
            for (fx = 0; fx < p->filter_w; ++fx) {
                const int32_t in_x = in_x0 + p->dilation_w * fx;
                if (in_y >= 0 && in_y < p->input.h && in_x >= 0 && in_x < p->input.w) {
                    acc += filter[(fy * p->filter_w + fx) * ch + c] *
                           (image[(in_y * p->input.w + in_x) * ch + c] + p->input_offset);
                }
            }
        }
        out[c] = DW_OUT(acc, c);
    }
}

static int window_inside(const unpu_dwconv_params_t *p, int32_t in_y0, int32_t in_x0) {
    return p->filter_h == 3 && p->filter_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 && in_y0 >= 0 &&
           in_x0 >= 0 && in_y0 + 3 <= p->input.h && in_x0 + 3 <= p->input.w;
}

void unpu_depthwise_conv2d_s8(const unpu_dwconv_params_t *p, const int8_t *input, const int8_t *filter,
                              const int32_t *bias, int8_t *output) {
    const int32_t ch = p->input.c;
    int32_t b, oy, ox;
    if (p->depth_multiplier != 1 || p->output.c != ch || !dsp_offset_fits_i16(p->input_offset)) {
        unpu_ref_depthwise_conv2d_s8(p, input, filter, bias, output);
        return;
    }
    for (b = 0; b < p->input.n; ++b) {
        const int8_t *image = input + b * p->input.h * p->input.w * ch;
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + ((b * p->output.h + oy) * p->output.w + ox) * ch;
                if (window_inside(p, in_y0, in_x0)) {
                    pixel_3x3_inner(p, image + (in_y0 * p->input.w + in_x0) * ch, filter, bias, out);
                } else {
                    pixel_general(p, image, in_y0, in_x0, filter, bias, out);
                }
            }
        }
    }
}
#endif
