/*
 * Private helpers of the reference kernels: gemmlowp's scalar int32 fixed-point primitives
 * (gemmlowp/fixedpoint/fixedpoint.h), as TFLite's reference kernels use them. Signed overflow is
 * avoided with unsigned arithmetic where TFLite relies on two's complement wrap-around.
 */
#ifndef UNPU_FIXEDPOINT_H
#define UNPU_FIXEDPOINT_H

#include <stdint.h>
#include <limits.h>

static inline int32_t unpu_clamp_i32(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp::SaturatingRoundingDoublingHighMul (int32) */
static inline int32_t unpu_srdhm(int32_t a, int32_t b) {
    int64_t ab;
    int32_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp::RoundingDivideByPOT (int32), exponent in [0, 31] */
static inline int32_t unpu_rdbpot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0 */
static inline int32_t unpu_sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* wrapping int32 add/sub, as gemmlowp's Add/Sub on int32 behave in practice */
static inline int32_t unpu_wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t unpu_wsub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

static inline int unpu_clz32(uint32_t x) {
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        n++;
    }
    return n;
}

/* gemmlowp::exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31) */
static inline int32_t unpu_exp_on_interval(int32_t a) {
    const int32_t constant_term = 1895147668;       /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = unpu_wadd(a, 1 << 28);
    const int32_t x2 = unpu_srdhm(x, x);
    const int32_t x3 = unpu_srdhm(x2, x);
    const int32_t x4 = unpu_srdhm(x2, x2);
    const int32_t x4_over_4 = unpu_rdbpot(x4, 2);
    const int32_t poly = unpu_rdbpot(
        unpu_wadd(unpu_srdhm(unpu_wadd(x4_over_4, x3), constant_1_over_3), x2), 1);
    return unpu_wadd(constant_term, unpu_srdhm(constant_term, unpu_wadd(x, poly)));
}

/* gemmlowp::exp_on_negative_values for FixedPoint<int32, integer_bits> input, Q0.31 result */
static inline int32_t unpu_exp_on_negative_values(int32_t a, int integer_bits) {
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535, 720401, 242};
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = unpu_wsub(a & mask, one_quarter);
    /* Rescale<0>: multiply by 2^integer_bits, saturating */
    int32_t result = unpu_exp_on_interval(
        integer_bits > 0 ? unpu_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits)
                         : a_mod_quarter_minus_one_quarter);
    const int32_t remainder = unpu_wsub(a_mod_quarter_minus_one_quarter, a);
    int exponent;
    for (exponent = -2; exponent <= 4; ++exponent) {
        if (integer_bits > exponent) {
            const int shift = fractional_bits + exponent;
            if (remainder & ((int32_t)1 << shift)) {
                result = unpu_srdhm(result, multipliers[exponent + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

/* gemmlowp::RoundingHalfSum (int32) */
static inline int32_t unpu_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* gemmlowp::one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out) */
static inline int32_t unpu_one_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = unpu_rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    const int32_t f2_one = (int32_t)1 << 29;
    int32_t x = unpu_wadd(constant_48_over_17, unpu_srdhm(half_denominator, constant_neg_32_over_17));
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = unpu_srdhm(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = unpu_wsub(f2_one, half_denominator_times_x);
        x = unpu_wadd(x, unpu_sat_shl(unpu_srdhm(x, one_minus_half_denominator_times_x), 2));
    }
    /* Rescale<0>(ExactMulByPot<-1>(x)): Q1.30 -> Q0.31 */
    return unpu_sat_shl(x, 1);
}

#endif /* UNPU_FIXEDPOINT_H */
