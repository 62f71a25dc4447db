/*
 * On-device property check of a kernel variant against the reference kernels.
 *
 * For every operator it draws CHECK_CASES random cases from a seeded PRNG (CHECK_SEED): random
 * shapes with odd channel counts and tails that no vector width divides, strides, dilations,
 * SAME/VALID padding, zero points including -128 and 127, per-channel multipliers and shifts over
 * -31..+30, biases (or none), activation ranges. Each case runs unpu_ref_<op> and unpu_<op> on the
 * same inputs (outputs pre-filled with different garbage) and compares the outputs byte for byte.
 * One line per operator:  op <name> cases <n> mismatches <m>
 * and, on a mismatch, the first failing case's parameters (a `case` line) and first differing byte.
 * The run ends with `check done mismatches <total>` and exits (semihosting) with 0 iff total is 0.
 *
 * Built by the QEMU ports with APP_SRCS replacing the harness (tests/helpers/kernel_check.py):
 *   make -C firmware/ports/qemu_m55 APP_SRCS="../../kernels/check/kernel_check.c" KERNELS=helium \
 *        BUILD_DIR=/tmp/chk EXTRA_CFLAGS="-DCHECK_CASES=2000"
 * With KERNELS=ref both sides are the same function (the check then only checks itself).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "unpu_kernels.h"
#include "unpu_port.h"

#ifndef CHECK_CASES
#define CHECK_CASES 1000
#endif
#ifndef CHECK_SEED
#define CHECK_SEED 0x2545F491u
#endif

enum { MAX_ACT = 12288, MAX_FILTER = 12288, MAX_CH = 96 };

static int8_t in1_buf[MAX_ACT], in2_buf[MAX_ACT], filter_buf[MAX_FILTER];
static int8_t out_ref[MAX_ACT + 16], out_var[MAX_ACT + 16];
static int32_t bias_buf[MAX_CH], mult_buf[MAX_CH], shift_buf[MAX_CH];
static double scale_buf[MAX_CH];
static char case_text[320];

/* ---- random numbers ---------------------------------------------------------------------- */
static uint32_t rng_state = CHECK_SEED;

static uint32_t rnd(void)
{
    /* xorshift32 */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static int32_t rnd_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }
static int chance(int percent) { return (int)(rnd() % 100u) < percent; }

static void fill_i8(int8_t *buf, int32_t n)
{
    for (int32_t i = 0; i < n; ++i)
        buf[i] = (int8_t)rnd();
}

/* a zero point: often the extremes -128 / 127, else anything */
static int32_t rnd_zero_point(void)
{
    const uint32_t r = rnd() % 8u;
    return r == 0 ? -128 : r == 1 ? 127 : r == 2 ? 0 : rnd_in(-128, 127);
}

/* a channel count: small and odd ones, multiples of 16 and 4, and tails of every size */
static int32_t rnd_channels(int32_t max)
{
    const uint32_t r = rnd() % 4u;
    const int32_t c = r == 0 ? rnd_in(1, 7) : r == 1 ? 16 * rnd_in(1, max / 16) : r == 2 ? 4 * rnd_in(1, max / 4)
                                                                                          : rnd_in(1, max);
    return c;
}

/* shift: half the time the whole legal range -31..+30, else the range real layers use */
static int32_t rnd_shift(void) { return chance(50) ? rnd_in(-31, 30) : rnd_in(-12, 1); }

static int32_t rnd_multiplier(void)
{
    const uint32_t r = rnd() % 16u;
    if (r == 0)
        return 0x7fffffff;
    if (r == 1)
        return 1 << 30;
    return (int32_t)((1u << 30) | (rnd() & 0x3fffffffu));
}

static void rnd_requant(int32_t channels, int per_channel)
{
    const int32_t m = rnd_multiplier(), s = rnd_shift();
    for (int32_t i = 0; i < channels; ++i) {
        mult_buf[i] = per_channel ? rnd_multiplier() : m;
        shift_buf[i] = per_channel ? rnd_shift() : s;
    }
}

/* bias, or NULL; magnitudes from small to large */
static const int32_t *rnd_bias(int32_t channels)
{
    if (chance(10))
        return NULL;
    const int32_t span = chance(80) ? 1 << 14 : 1 << 24;
    for (int32_t i = 0; i < channels; ++i)
        bias_buf[i] = rnd_in(-span, span);
    return bias_buf;
}

static void rnd_act_range(int32_t *lo, int32_t *hi)
{
    *lo = chance(60) ? -128 : rnd_in(-128, 0);
    *hi = chance(60) ? 127 : rnd_in(*lo, 127);
}

/* TFLite's QuantizeMultiplier (double rounding build) */
static void quantize_multiplier(double real, int32_t *multiplier, int32_t *shift)
{
    int exp;
    if (real == 0.0) {
        *multiplier = 0;
        *shift = 0;
        return;
    }
    const double q = frexp(real, &exp);
    int64_t fixed = (int64_t)round(q * (double)(1ll << 31));
    if (fixed == (1ll << 31)) {
        fixed /= 2;
        ++exp;
    }
    if (exp < -31) {
        fixed = 0;
        exp = 0;
    }
    *multiplier = (int32_t)fixed;
    *shift = exp;
}

/* a scale 2^-e * [1, 2) */
static double rnd_scale(int lo_exp, int hi_exp)
{
    return ldexp(1.0 + (double)(rnd() % 1000u) / 1000.0, -rnd_in(lo_exp, hi_exp));
}

/* output size and leading pad of one spatial dimension, SAME or VALID as TFLite computes them */
static int spatial(int32_t in, int32_t filter, int32_t stride, int32_t dilation, int same, int32_t *out, int32_t *pad)
{
    const int32_t eff = (filter - 1) * dilation + 1;
    if (same) {
        *out = (in + stride - 1) / stride;
        const int32_t total = (*out - 1) * stride + eff - in;
        *pad = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - eff + stride) / stride;
        *pad = 0;
    }
    return *out >= 1;
}

static int32_t rnd_kernel_size(void)
{
    const uint32_t r = rnd() % 8u;
    return r < 3 ? 1 : r < 6 ? 3 : rnd_in(2, 5);
}

static unpu_shape4_t shape(int32_t n, int32_t h, int32_t w, int32_t c)
{
    unpu_shape4_t s = {n, h, w, c};
    return s;
}

static int32_t elements(const unpu_shape4_t *s) { return s->n * s->h * s->w * s->c; }

/* ---- one operator's cases ----------------------------------------------------------------- */
/* make_case draws a case into the buffers (0: not drawable, try again) and returns the output
 * size through *out_len; run_case runs it with the reference (ref != 0) or the variant. */
typedef int (*make_case_fn)(int32_t *out_len);
typedef void (*run_case_fn)(int ref, int8_t *out);

static unsigned check_op(const char *name, make_case_fn make, run_case_fn run)
{
    unsigned mismatches = 0;
    for (int i = 0; i < CHECK_CASES; ++i) {
        int32_t len = 0;
        while (!make(&len)) {
        }
        memset(out_ref, 0x5a, sizeof out_ref);
        memset(out_var, 0xa5, sizeof out_var);
        run(1, out_ref);
        run(0, out_var);
        if (memcmp(out_ref, out_var, (size_t)len) != 0 || out_var[len] != (int8_t)0xa5) {
            if (mismatches++ == 0) {
                int32_t j = 0;
                while (j < len && out_ref[j] == out_var[j])
                    ++j;
                printf("first mismatch %s case %d: %s\n", name, i, case_text);
                printf("  output byte %ld of %ld: ref %d variant %d\n", (long)j, (long)len,
                       j < len ? out_ref[j] : 0, out_var[j]);
            }
        }
    }
    printf("op %s cases %d mismatches %u\n", name, CHECK_CASES, mismatches);
    return mismatches;
}

/* ---- the spatial geometry CONV_2D, DEPTHWISE_CONV_2D and the pools share ----------------- */
typedef struct {
    unpu_shape4_t input, output;                /* output.c is the caller's */
    int32_t filter_h, filter_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
} geometry_t;

/* filter 3x3 with probability `square3` percent (else any size), strides up to max_stride,
 * dilation 2 sometimes (if `dilate`), SAME or VALID padding; 0 if the output is empty */
static int draw_geometry(geometry_t *g, int square3, int32_t max_stride, int dilate, int32_t max_hw, int32_t channels)
{
    const int same = chance(50);
    g->filter_h = chance(square3) ? 3 : rnd_kernel_size();
    g->filter_w = chance(80) ? g->filter_h : rnd_kernel_size();
    g->stride_h = rnd_in(1, max_stride);
    g->stride_w = chance(80) ? g->stride_h : rnd_in(1, 3);
    g->dilation_h = dilate && chance(15) ? 2 : 1;
    g->dilation_w = dilate && chance(15) ? 2 : 1;
    g->input = shape(rnd_in(1, 2), rnd_in(1, max_hw), rnd_in(1, max_hw), channels);
    g->output.n = g->input.n;
    return spatial(g->input.h, g->filter_h, g->stride_h, g->dilation_h, same, &g->output.h, &g->pad_top) &&
           spatial(g->input.w, g->filter_w, g->stride_w, g->dilation_w, same, &g->output.w, &g->pad_left);
}

static int describe_geometry(char *text, size_t size, const geometry_t *g)
{
    return snprintf(text, size,
                    "in %ldx%ldx%ldx%ld out %ldx%ldx%ldx%ld filter %ldx%ld stride %ld,%ld dilation %ld,%ld pad %ld,%ld ",
                    (long)g->input.n, (long)g->input.h, (long)g->input.w, (long)g->input.c, (long)g->output.n,
                    (long)g->output.h, (long)g->output.w, (long)g->output.c, (long)g->filter_h, (long)g->filter_w,
                    (long)g->stride_h, (long)g->stride_w, (long)g->dilation_h, (long)g->dilation_w, (long)g->pad_top,
                    (long)g->pad_left);
}

/* offsets, activation range, requantization, bias and data of a conv-like case */
static const int32_t *draw_conv_like(geometry_t *g, int32_t *input_offset, int32_t *output_offset, int32_t *act_min,
                                     int32_t *act_max, int32_t filter_len)
{
    *input_offset = -rnd_zero_point();
    *output_offset = rnd_zero_point();
    rnd_act_range(act_min, act_max);
    rnd_requant(g->output.c, chance(80));
    fill_i8(in1_buf, elements(&g->input));
    fill_i8(filter_buf, filter_len);
    const int32_t *bias = rnd_bias(g->output.c);
    const int n = describe_geometry(case_text, sizeof case_text, g);
    snprintf(case_text + n, sizeof case_text - (size_t)n,
             "input_offset %ld output_offset %ld act %ld..%ld bias %s mult0 %ld shift0 %ld", (long)*input_offset,
             (long)*output_offset, (long)*act_min, (long)*act_max, bias ? "yes" : "no", (long)mult_buf[0],
             (long)shift_buf[0]);
    return bias;
}

static int fits(const geometry_t *g, int32_t filter_len)
{
    return elements(&g->input) <= MAX_ACT && elements(&g->output) < MAX_ACT && filter_len <= MAX_FILTER;
}

/* the geometry and the requantization arrays into a conv or depthwise params struct (same field names) */
#define SET_CONV_GEOMETRY(p, g)                                                                              \
    do {                                                                                                      \
        (p)->input = (g).input;                                                                               \
        (p)->output = (g).output;                                                                             \
        (p)->filter_h = (g).filter_h;                                                                         \
        (p)->filter_w = (g).filter_w;                                                                         \
        (p)->stride_h = (g).stride_h;                                                                         \
        (p)->stride_w = (g).stride_w;                                                                         \
        (p)->dilation_h = (g).dilation_h;                                                                     \
        (p)->dilation_w = (g).dilation_w;                                                                     \
        (p)->pad_top = (g).pad_top;                                                                           \
        (p)->pad_left = (g).pad_left;                                                                         \
        (p)->multiplier = mult_buf;                                                                           \
        (p)->shift = shift_buf;                                                                               \
    } while (0)

/* ---- CONV_2D ------------------------------------------------------------------------------ */
static unpu_conv_params_t conv;
static const int32_t *conv_bias;

static int make_conv(int32_t *out_len)
{
    geometry_t g;
    if (!draw_geometry(&g, 40, 3, 1, 12, rnd_channels(MAX_CH)))
        return 0;
    g.output.c = rnd_channels(48);
    const int32_t filter_len = g.output.c * g.filter_h * g.filter_w * g.input.c;
    if (!fits(&g, filter_len) || elements(&g.output) * g.filter_h * g.filter_w * g.input.c > 200000)
        return 0;
    unpu_conv_params_t *p = &conv;
    SET_CONV_GEOMETRY(p, g);
    conv_bias = draw_conv_like(&g, &p->input_offset, &p->output_offset, &p->act_min, &p->act_max, filter_len);
    *out_len = elements(&p->output);
    return 1;
}

static void run_conv(int ref, int8_t *out)
{
    (ref ? unpu_ref_conv2d_s8 : unpu_conv2d_s8)(&conv, in1_buf, filter_buf, conv_bias, out);
}

/* ---- DEPTHWISE_CONV_2D -------------------------------------------------------------------- */
static unpu_dwconv_params_t dw;
static const int32_t *dw_bias;

static int make_depthwise(int32_t *out_len)
{
    geometry_t g;
    const int32_t depth_multiplier = chance(80) ? 1 : rnd_in(2, 3);
    if (!draw_geometry(&g, 60, 2, 1, 14, rnd_channels(MAX_CH / 3)))
        return 0;
    g.output.c = g.input.c * depth_multiplier;
    const int32_t filter_len = g.filter_h * g.filter_w * g.output.c;
    if (!fits(&g, filter_len))
        return 0;
    unpu_dwconv_params_t *p = &dw;
    p->depth_multiplier = depth_multiplier;
    SET_CONV_GEOMETRY(p, g);
    dw_bias = draw_conv_like(&g, &p->input_offset, &p->output_offset, &p->act_min, &p->act_max, filter_len);
    *out_len = elements(&p->output);
    return 1;
}

static void run_depthwise(int ref, int8_t *out)
{
    (ref ? unpu_ref_depthwise_conv2d_s8 : unpu_depthwise_conv2d_s8)(&dw, in1_buf, filter_buf, dw_bias, out);
}

/* ---- FULLY_CONNECTED (multiplier/shift and LiteRT's double effective_scale paths) --------- */
static unpu_fc_params_t fc;
static const int32_t *fc_bias;

static int make_fc(int32_t *out_len)
{
    unpu_fc_params_t *p = &fc;
    p->batches = rnd_in(1, 3);
    p->in_features = chance(30) ? rnd_in(1, 40) : rnd_in(1, 600);
    p->out_features = rnd_channels(MAX_CH);
    if (p->batches * p->in_features > MAX_ACT || p->in_features * p->out_features > MAX_FILTER)
        return 0;
    p->per_channel = chance(50);
    p->input_offset = -rnd_zero_point();
    p->filter_offset = chance(70) ? 0 : -rnd_zero_point();
    p->output_offset = rnd_zero_point();
    rnd_act_range(&p->act_min, &p->act_max);
    rnd_requant(p->out_features, p->per_channel);
    p->multiplier = mult_buf;
    p->shift = shift_buf;
    p->effective_scale = NULL;
    if (chance(50)) {
        for (int32_t i = 0; i < p->out_features; ++i)
            scale_buf[i] = rnd_scale(2, 22);
        p->effective_scale = scale_buf;
    }
    fc_bias = rnd_bias(p->out_features);
    fill_i8(in1_buf, p->batches * p->in_features);
    fill_i8(filter_buf, p->in_features * p->out_features);
    snprintf(case_text, sizeof case_text,
             "batches %ld in %ld out %ld per_channel %ld input_offset %ld filter_offset %ld output_offset %ld "
             "act %ld..%ld bias %s path %s",
             (long)p->batches, (long)p->in_features, (long)p->out_features, (long)p->per_channel,
             (long)p->input_offset, (long)p->filter_offset, (long)p->output_offset, (long)p->act_min,
             (long)p->act_max, fc_bias ? "yes" : "no", p->effective_scale ? "double" : "multiplier");
    *out_len = p->batches * p->out_features;
    return 1;
}

static void run_fc(int ref, int8_t *out)
{
    (ref ? unpu_ref_fully_connected_s8 : unpu_fully_connected_s8)(&fc, in1_buf, filter_buf, fc_bias, out);
}

/* ---- ADD / MUL (same shapes or 4-D broadcasting) ------------------------------------------ */
static unpu_elementwise_params_t ew;

static unpu_shape4_t broadcast_of(const unpu_shape4_t *full)
{
    unpu_shape4_t s = *full;
    if (chance(50))
        return s;
    s.n = chance(50) ? 1 : s.n;
    s.h = chance(50) ? 1 : s.h;
    s.w = chance(50) ? 1 : s.w;
    s.c = chance(30) ? 1 : s.c;
    return s;
}

static int make_elementwise(int32_t *out_len, int is_add)
{
    unpu_elementwise_params_t *p = &ew;
    p->output = shape(rnd_in(1, 2), rnd_in(1, 10), rnd_in(1, 10), rnd_channels(MAX_CH));
    if (elements(&p->output) >= MAX_ACT)
        return 0;
    p->in1 = broadcast_of(&p->output);
    p->in2 = chance(50) ? p->output : broadcast_of(&p->output);
    p->in1_offset = -rnd_zero_point();
    p->in2_offset = -rnd_zero_point();
    p->output_offset = rnd_zero_point();
    rnd_act_range(&p->act_min, &p->act_max);
    const double s1 = rnd_scale(3, 9), s2 = rnd_scale(3, 9), so = rnd_scale(2, 10);
    if (is_add) {
        const double twice_max = 2.0 * (s1 > s2 ? s1 : s2);
        p->left_shift = 20;
        quantize_multiplier(s1 / twice_max, &p->in1_multiplier, &p->in1_shift);
        quantize_multiplier(s2 / twice_max, &p->in2_multiplier, &p->in2_shift);
        quantize_multiplier(twice_max / ((double)(1 << 20) * so), &p->output_multiplier, &p->output_shift);
    } else {
        p->left_shift = 0;
        p->in1_multiplier = p->in2_multiplier = p->in1_shift = p->in2_shift = 0;
        quantize_multiplier((double)(float)(s1 * s2 / so), &p->output_multiplier, &p->output_shift);
    }
    fill_i8(in1_buf, elements(&p->in1));
    fill_i8(in2_buf, elements(&p->in2));
    snprintf(case_text, sizeof case_text,
             "out %ldx%ldx%ldx%ld in1 %ldx%ldx%ldx%ld in2 %ldx%ldx%ldx%ld offsets %ld,%ld,%ld act %ld..%ld "
             "m1 %ld/%ld m2 %ld/%ld mo %ld/%ld",
             (long)p->output.n, (long)p->output.h, (long)p->output.w, (long)p->output.c, (long)p->in1.n,
             (long)p->in1.h, (long)p->in1.w, (long)p->in1.c, (long)p->in2.n, (long)p->in2.h, (long)p->in2.w,
             (long)p->in2.c, (long)p->in1_offset, (long)p->in2_offset, (long)p->output_offset, (long)p->act_min,
             (long)p->act_max, (long)p->in1_multiplier, (long)p->in1_shift, (long)p->in2_multiplier,
             (long)p->in2_shift, (long)p->output_multiplier, (long)p->output_shift);
    *out_len = elements(&p->output);
    return 1;
}

static int make_add(int32_t *out_len) { return make_elementwise(out_len, 1); }
static int make_mul(int32_t *out_len) { return make_elementwise(out_len, 0); }
static void run_add(int ref, int8_t *out) { (ref ? unpu_ref_add_s8 : unpu_add_s8)(&ew, in1_buf, in2_buf, out); }
static void run_mul(int ref, int8_t *out) { (ref ? unpu_ref_mul_s8 : unpu_mul_s8)(&ew, in1_buf, in2_buf, out); }

/* ---- MAX_POOL_2D / AVERAGE_POOL_2D -------------------------------------------------------- */
static unpu_pool_params_t pool;

static int make_pool(int32_t *out_len)
{
    geometry_t g;
    if (!draw_geometry(&g, 20, 3, 0, 14, rnd_channels(MAX_CH)))
        return 0;
    g.output.c = g.input.c;
    if (!fits(&g, 0))
        return 0;
    unpu_pool_params_t *p = &pool;
    p->input = g.input;
    p->output = g.output;
    p->filter_h = g.filter_h;
    p->filter_w = g.filter_w;
    p->stride_h = g.stride_h;
    p->stride_w = g.stride_w;
    p->pad_top = g.pad_top;
    p->pad_left = g.pad_left;
    rnd_act_range(&p->act_min, &p->act_max);
    fill_i8(in1_buf, elements(&p->input));
    const int n = describe_geometry(case_text, sizeof case_text, &g);
    snprintf(case_text + n, sizeof case_text - (size_t)n, "act %ld..%ld", (long)p->act_min, (long)p->act_max);
    *out_len = elements(&p->output);
    return 1;
}

static void run_max_pool(int ref, int8_t *out) { (ref ? unpu_ref_max_pool_s8 : unpu_max_pool_s8)(&pool, in1_buf, out); }
static void run_avg_pool(int ref, int8_t *out) { (ref ? unpu_ref_avg_pool_s8 : unpu_avg_pool_s8)(&pool, in1_buf, out); }

/* ---- MEAN --------------------------------------------------------------------------------- */
static unpu_mean_params_t mean;

static int make_mean(int32_t *out_len)
{
    unpu_mean_params_t *p = &mean;
    p->input = shape(rnd_in(1, 2), rnd_in(1, 12), rnd_in(1, 12), rnd_channels(MAX_CH));
    if (elements(&p->input) > MAX_ACT)
        return 0;
    /* mostly over H and W (global average pooling), else any non-empty set of axes */
    p->reduce_mask = chance(60) ? 0x6 : rnd_in(1, 15);
    p->input_zero_point = rnd_zero_point();
    p->output_zero_point = rnd_zero_point();
    quantize_multiplier(rnd_scale(-2, 2) / 4.0, &p->multiplier, &p->shift);
    fill_i8(in1_buf, elements(&p->input));
    int32_t outputs = 1;
    const int32_t dims[4] = {p->input.n, p->input.h, p->input.w, p->input.c};
    for (int d = 0; d < 4; ++d)
        outputs *= (p->reduce_mask & (1 << d)) ? 1 : dims[d];
    snprintf(case_text, sizeof case_text, "in %ldx%ldx%ldx%ld axes 0x%lx zp %ld,%ld mult %ld shift %ld",
             (long)p->input.n, (long)p->input.h, (long)p->input.w, (long)p->input.c, (long)p->reduce_mask,
             (long)p->input_zero_point, (long)p->output_zero_point, (long)p->multiplier, (long)p->shift);
    *out_len = outputs;
    return 1;
}

static void run_mean(int ref, int8_t *out) { (ref ? unpu_ref_mean_s8 : unpu_mean_s8)(&mean, in1_buf, out); }

/* ---- SOFTMAX (beta 1, as activations.cc SoftmaxPrepare computes the parameters) ----------- */
static unpu_softmax_params_t softmax;

static int make_softmax(int32_t *out_len)
{
    unpu_softmax_params_t *p = &softmax;
    enum { kScaledDiffIntegerBits = 5 };
    p->rows = rnd_in(1, 4);
    p->depth = chance(30) ? rnd_in(1, 12) : rnd_in(1, 300);
    const double real = rnd_scale(1, 8) * (double)(1 << (31 - kScaledDiffIntegerBits));
    /* PreprocessSoftmaxScaling: min(beta * scale * 2^26, 2^31 - 1), QuantizeMultiplierGreaterThanOne */
    quantize_multiplier(real < 2147483647.0 ? real : 2147483647.0, &p->input_multiplier, &p->input_left_shift);
    /* CalculateInputRadius(5, left_shift, 31) */
    const double radius = 31.0 * (double)(1ll << (31 - kScaledDiffIntegerBits)) / (double)(1ll << p->input_left_shift);
    p->diff_min = -(int32_t)floor(radius);
    p->output_zero_point = -128;
    fill_i8(in1_buf, p->rows * p->depth);
    snprintf(case_text, sizeof case_text, "rows %ld depth %ld multiplier %ld left_shift %ld diff_min %ld",
             (long)p->rows, (long)p->depth, (long)p->input_multiplier, (long)p->input_left_shift,
             (long)p->diff_min);
    *out_len = p->rows * p->depth;
    return 1;
}

static void run_softmax(int ref, int8_t *out) { (ref ? unpu_ref_softmax_s8 : unpu_softmax_s8)(&softmax, in1_buf, out); }

int main(void)
{
    unsigned total = 0;
    port_init();
    printf("check seed 0x%08lx cases %d\n", (unsigned long)CHECK_SEED, CHECK_CASES);
    total += check_op("conv2d", make_conv, run_conv);
    total += check_op("depthwise_conv2d", make_depthwise, run_depthwise);
    total += check_op("fully_connected", make_fc, run_fc);
    total += check_op("add", make_add, run_add);
    total += check_op("mul", make_mul, run_mul);
    total += check_op("max_pool", make_pool, run_max_pool);
    total += check_op("avg_pool", make_pool, run_avg_pool);
    total += check_op("mean", make_mean, run_mean);
    total += check_op("softmax", make_softmax, run_softmax);
    printf("check done mismatches %u\n", total);
    port_exit(total == 0 ? 0 : 1);
    return 0;
}
