/* ADD / MUL int8 on Helium for inputs of the output's shape (no broadcasting), four elements per
 * vector in int32 lanes, with the vector gemmlowp requantization; broadcasting runs the reference. */
#include "helium_requant.h"

static int same_shapes(const unpu_elementwise_params_t *p)
{
    const unpu_shape4_t *a = &p->in1, *b = &p->in2, *o = &p->output;
    return a->n == o->n && a->h == o->h && a->w == o->w && a->c == o->c && b->n == o->n && b->h == o->h &&
           b->w == o->w && b->c == o->c;
}

typedef struct {
    int32x4_t multiplier, left, right_neg;
} requant_vec_t;

static requant_vec_t requant_vec(int32_t multiplier, int32_t shift)
{
    int32_t left, right_neg;
    helium_split_shifts(&shift, 1, &left, &right_neg);
    requant_vec_t r = {vdupq_n_s32(multiplier), vdupq_n_s32(left), vdupq_n_s32(right_neg)};
    return r;
}

static inline int32x4_t apply(const requant_vec_t *r, int32x4_t x)
{
    return helium_requantize(x, r->multiplier, r->left, r->right_neg);
}

static inline void store_clamped(const unpu_elementwise_params_t *p, int8_t *out, int32x4_t v, mve_pred16_t lanes)
{
    v = vaddq_n_s32(v, p->output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
    vstrbq_p_s32(out, v, lanes);
}

void unpu_add_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    if (!same_shapes(p)) {
        unpu_ref_add_s8(p, in1, in2, output);
        return;
    }
    const requant_vec_t r1 = requant_vec(p->in1_multiplier, p->in1_shift);
    const requant_vec_t r2 = requant_vec(p->in2_multiplier, p->in2_shift);
    const requant_vec_t ro = requant_vec(p->output_multiplier, p->output_shift);
    const int32x4_t left = vdupq_n_s32(p->left_shift);
    const int32_t n = p->output.n * p->output.h * p->output.w * p->output.c;
    for (int32_t i = 0; i < n; i += 4) {
        const mve_pred16_t lanes = vctp32q((uint32_t)(n - i));
        const int32x4_t a = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in1 + i, lanes), p->in1_offset), left);
        const int32x4_t b = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in2 + i, lanes), p->in2_offset), left);
        store_clamped(p, output + i, apply(&ro, vaddq_s32(apply(&r1, a), apply(&r2, b))), lanes);
    }
}

void unpu_mul_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    if (!same_shapes(p)) {
        unpu_ref_mul_s8(p, in1, in2, output);
        return;
    }
    const requant_vec_t ro = requant_vec(p->output_multiplier, p->output_shift);
    const int32_t n = p->output.n * p->output.h * p->output.w * p->output.c;
    for (int32_t i = 0; i < n; i += 4) {
        const mve_pred16_t lanes = vctp32q((uint32_t)(n - i));
        const int32x4_t a = vaddq_n_s32(vldrbq_z_s32(in1 + i, lanes), p->in1_offset);
        const int32x4_t b = vaddq_n_s32(vldrbq_z_s32(in2 + i, lanes), p->in2_offset);
        store_clamped(p, output + i, apply(&ro, vmulq_s32(a, b)), lanes);
    }
}
