/* MAX_POOL_2D / AVERAGE_POOL_2D int8 on Helium: per output pixel, the in-bounds window is walked
 * with the channels in vectors (16 per VMAX for max; 8 int16 sums per vector for average, exact
 * while a window has at most 256 elements). The average's division (rounding half away from zero,
 * as the reference) is scalar, once per output. Windows over 256 elements or more than
 * HELIUM_POOL_MAX_CHANNELS channels run the reference kernel. */
#include "helium_requant.h"

#define HELIUM_POOL_MAX_CHANNELS 1024

static int16_t pool_sums[HELIUM_POOL_MAX_CHANNELS] __attribute__((aligned(16)));

/* the in-bounds window of an output pixel: [y0, y1) x [x0, x1) in input coordinates */
static void window(const unpu_pool_params_t *p, int32_t oy, int32_t ox, int32_t *y0, int32_t *y1, int32_t *x0,
                   int32_t *x1)
{
    const int32_t oy0 = oy * p->stride_h - p->pad_top, ox0 = ox * p->stride_w - p->pad_left;
    *y0 = oy0 < 0 ? 0 : oy0;
    *x0 = ox0 < 0 ? 0 : ox0;
    *y1 = oy0 + p->filter_h < p->input.h ? oy0 + p->filter_h : p->input.h;
    *x1 = ox0 + p->filter_w < p->input.w ? ox0 + p->filter_w : p->input.w;
}

/* one output pixel: `image` is its batch's input, [y0, y1) x [x0, x1) its in-bounds window */
typedef void (*pool_pixel_fn)(const unpu_pool_params_t *p, const int8_t *image, int32_t y0, int32_t y1, int32_t x0,
                              int32_t x1, int8_t *out);

static void each_pixel(const unpu_pool_params_t *p, const int8_t *input, int8_t *output, pool_pixel_fn pixel)
{
    const int32_t channels = p->output.c;
    for (int32_t b = 0; b < p->output.n; ++b) {
        const int8_t *image = input + b * p->input.h * p->input.w * channels;
        for (int32_t oy = 0; oy < p->output.h; ++oy) {
            for (int32_t ox = 0; ox < p->output.w; ++ox, output += channels) {
                int32_t y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                pixel(p, image, y0, y1, x0, x1, output);
            }
        }
    }
}

static void max_pixel(const unpu_pool_params_t *p, const int8_t *image, int32_t y0, int32_t y1, int32_t x0, int32_t x1,
                      int8_t *out)
{
    const int32_t channels = p->output.c;
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    for (int32_t c = 0; c < channels; c += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(channels - c));
        int8x16_t best = vdupq_n_s8(-128);
        for (int32_t y = y0; y < y1; ++y)
            for (int32_t x = x0; x < x1; ++x)
                best = vmaxq_s8(best, vldrbq_z_s8(image + (y * p->input.w + x) * channels + c, lanes));
        vstrbq_p_s8(out + c, vminq_s8(vmaxq_s8(best, lo), hi), lanes);
    }
}

static void avg_pixel(const unpu_pool_params_t *p, const int8_t *image, int32_t y0, int32_t y1, int32_t x0, int32_t x1,
                      int8_t *out)
{
    const int32_t channels = p->output.c;
    const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
    for (int32_t c = 0; c < channels; c += 8) {
        const mve_pred16_t lanes = vctp16q((uint32_t)(channels - c));
        int16x8_t sum = vdupq_n_s16(0);
        for (int32_t y = y0; y < y1; ++y)
            for (int32_t x = x0; x < x1; ++x)
                sum = vaddq_s16(sum, vldrbq_z_s16(image + (y * p->input.w + x) * channels + c, lanes));
        vstrhq_p_s16(pool_sums + c, sum, lanes);
    }
    for (int32_t c = 0; c < channels; ++c) {
        const int32_t acc = pool_sums[c];
        int32_t v = count == 0 ? 0 : acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
        v = v < p->act_min ? p->act_min : v;
        out[c] = (int8_t)(v > p->act_max ? p->act_max : v);
    }
}

void unpu_max_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output)
{
    each_pixel(p, input, output, max_pixel);
}

void unpu_avg_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output)
{
    if (p->filter_h * p->filter_w > 256 || p->output.c > HELIUM_POOL_MAX_CHANNELS) {
        unpu_ref_avg_pool_s8(p, input, output);
        return;
    }
    each_pixel(p, input, output, avg_pixel);
}
