/* CONV_2D int8 with the DSP extension: im2col into int16 (input offset added, padding taps 0)
 * and a matrix product of 2 output channels x 2 output pixels per inner loop (8 SMLAD per 4 taps).
 * A 1x1 convolution without padding reads its pixels straight from the input. Bit-exact with
 * unpu_ref_conv2d_s8, which runs every layer whose column exceeds the scratch buffer. */
#if defined(__ARM_FEATURE_DSP)
#include "dsp_common.h"

int16_t dsp_scratch[DSP_SCRATCH_HALFWORDS] __attribute__((aligned(4)));

/* two int16 columns + one int8 staging column of DSP_CONV_MAX_K each */
#define DSP_CONV_MAX_K (DSP_SCRATCH_HALFWORDS * 2 / 5 / 4 * 4)

typedef struct {
    int16_t *col[2];
    int8_t *stage;
    int32_t k;
} conv_scratch_t;

static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n) {
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        dsp_store_u32(dst + i, dsp_load_u32(src + i));
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

static void fill_bytes(int8_t *dst, int8_t value, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = value;
    }
}

/* the filter window of one output pixel in OHWI order; taps outside the input hold the input
 * zero point, which the offset turns into 0 (the reference skips them) */
static const int8_t *gather_window(const unpu_conv_params_t *p, const int8_t *input, int32_t b,
                                   int32_t oy, int32_t ox, int8_t *stage) {
    const int32_t in_c = p->input.c, row_len = p->filter_w * in_c;
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t in_y0 = oy * p->stride_h - p->pad_top, in_x0 = ox * p->stride_w - p->pad_left;
    const int32_t last_x = in_x0 + p->dilation_w * (p->filter_w - 1);
    int32_t fy, fx;
    for (fy = 0; fy < p->filter_h; ++fy) {
        const int32_t in_y = in_y0 + p->dilation_h * fy;
        int8_t *dst = stage + fy * row_len;
        const int8_t *row = input + (b * p->input.h + in_y) * p->input.w * in_c;
        if (in_y < 0 || in_y >= p->input.h) {
            fill_bytes(dst, pad, row_len);
        } else if (p->dilation_w == 1 && in_x0 >= 0 && last_x < p->input.w) {
            copy_bytes(dst, row + in_x0 * in_c, row_len);
        } else {
            for (fx = 0; fx < p->filter_w; ++fx) {
                const int32_t in_x = in_x0 + p->dilation_w * fx;
                if (in_x < 0 || in_x >= p->input.w) {
                    fill_bytes(dst + fx * in_c, pad, in_c);
                } else {
                    copy_bytes(dst + fx * in_c, row + in_x * in_c, in_c);
                }
            }
        }
    }
    return stage;
}

static void build_column(const unpu_conv_params_t *p, const int8_t *input, int32_t pixel,
                         const conv_scratch_t *s, int16_t *col) {
    const int32_t ox = pixel % p->output.w, rows = pixel / p->output.w;
    const int32_t oy = rows % p->output.h, b = rows / p->output.h;
    const int8_t *window;
    if (p->filter_h == 1 && p->filter_w == 1 && p->pad_top == 0 && p->pad_left == 0) {
        window = input + ((b * p->input.h + oy * p->stride_h) * p->input.w + ox * p->stride_w) * p->input.c;
    } else {
        window = gather_window(p, input, b, oy, ox, s->stage);
    }
    dsp_widen(window, s->k, col, p->input_offset);
}

/* out[px][oc], out[px][oc+1], out[px+1][oc], out[px+1][oc+1] */
static void dot_2x2(const int8_t *w0, const int8_t *w1, const int16_t *c0, const int16_t *c1, int32_t n,
                    int32_t acc[4]) {
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0, k;
    for (k = 0; k + 4 <= n; k += 4) {
        const uint32_t u = dsp_load_u32(w0 + k), v = dsp_load_u32(w1 + k);
        const uint32_t u02 = __sxtb16(u), u13 = dsp_sxtb16_ror8(u);
        const uint32_t v02 = __sxtb16(v), v13 = dsp_sxtb16_ror8(v);
        uint32_t x02 = dsp_load_u32(c0 + k), x13 = dsp_load_u32(c0 + k + 2);
        a00 = __smlad(u02, x02, a00);
        a00 = __smlad(u13, x13, a00);
        a01 = __smlad(v02, x02, a01);
        a01 = __smlad(v13, x13, a01);
        x02 = dsp_load_u32(c1 + k);
        x13 = dsp_load_u32(c1 + k + 2);
        a10 = __smlad(u02, x02, a10);
        a10 = __smlad(u13, x13, a10);
        a11 = __smlad(v02, x02, a11);
        a11 = __smlad(v13, x13, a11);
    }
    for (; k < n; ++k) {
        a00 += w0[k] * c0[k];
        a01 += w1[k] * c0[k];
        a10 += w0[k] * c1[k];
        a11 += w1[k] * c1[k];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#define CONV_OUT(acc, oc) dsp_conv_output((acc), bias, p->multiplier, p->shift, (oc), p->output_offset, \
                                          p->act_min, p->act_max)

/* all output channels of `count` (1 or 2) consecutive pixels whose columns are built */
static void conv_pixels(const unpu_conv_params_t *p, const int8_t *filter, const int32_t *bias,
                        const conv_scratch_t *s, int32_t count, int8_t *out) {
    const int32_t out_c = p->output.c, k = s->k;
    int32_t oc = 0, acc[4];
    if (count == 2) {
        for (; oc + 2 <= out_c; oc += 2) {
            dot_2x2(filter + oc * k, filter + (oc + 1) * k, s->col[0], s->col[1], k, acc);
            out[oc] = CONV_OUT(acc[0], oc);
            out[oc + 1] = CONV_OUT(acc[1], oc + 1);
            out[out_c + oc] = CONV_OUT(acc[2], oc);
            out[out_c + oc + 1] = CONV_OUT(acc[3], oc + 1);
        }
        for (; oc < out_c; ++oc) {
            out[oc] = CONV_OUT(dsp_dot_1x1(filter + oc * k, s->col[0], k, 0), oc);
            out[out_c + oc] = CONV_OUT(dsp_dot_1x1(filter + oc * k, s->col[1], k, 0), oc);
        }
        return;
    }
    for (; oc + 2 <= out_c; oc += 2) {
        dsp_dot_2x1(filter + oc * k, filter + (oc + 1) * k, s->col[0], k, 0, &acc[0], &acc[1]);
        out[oc] = CONV_OUT(acc[0], oc);
        out[oc + 1] = CONV_OUT(acc[1], oc + 1);
    }
    for (; oc < out_c; ++oc) {
        out[oc] = CONV_OUT(dsp_dot_1x1(filter + oc * k, s->col[0], k, 0), oc);
    }
}

void unpu_conv2d_s8(const unpu_conv_params_t *p, const int8_t *input, const int8_t *filter,
                    const int32_t *bias, int8_t *output) {
    const int32_t k = p->filter_h * p->filter_w * p->input.c;
    const int32_t pixels = p->input.n * p->output.h * p->output.w;
    conv_scratch_t s;
    int32_t px;
    /* the padding taps hold -input_offset as int8, so it must be an int8 zero point */
    if (k > DSP_CONV_MAX_K || p->input_offset < -127 || p->input_offset > 128) {
        unpu_ref_conv2d_s8(p, input, filter, bias, output);
        return;
    }
    s.k = k;
    s.col[0] = dsp_scratch;
    s.col[1] = dsp_scratch + DSP_CONV_MAX_K;
    s.stage = (int8_t *)(dsp_scratch + 2 * DSP_CONV_MAX_K);
    for (px = 0; px < pixels; px += 2) {
        const int32_t count = px + 1 < pixels ? 2 : 1;
        build_column(p, input, px, &s, s.col[0]);
        if (count == 2) {
            build_column(p, input, px + 1, &s, s.col[1]);
        }
        conv_pixels(p, filter, bias, &s, count, output + px * p->output.c);
    }
}
#endif
