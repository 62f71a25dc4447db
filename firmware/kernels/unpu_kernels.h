/*
 * unpu kernel library: int8 operators with TFLite's reference integer semantics (bit-exact with
 * LiteRT's BUILTIN_REF kernels). C99, no heap, no float in the int8 path except where TFLite's
 * reference uses it (QUANTIZE/DEQUANTIZE of float tensors).
 *
 * Layouts are TFLite's: activations NHWC, CONV_2D filters OHWI, DEPTHWISE_CONV_2D filters 1HWC
 * (C = in_channels * depth_multiplier), FULLY_CONNECTED weights [out][in].
 *
 * Requantization parameters (multiplier, shift) are computed by the code generator exactly as
 * TFLite's QuantizeMultiplier does, and passed in: per output channel for per-channel
 * quantization; per-tensor quantization passes arrays whose entries are all equal.
 *
 * Variants: every kernel here is implemented in firmware/kernels/ref/ as unpu_ref_<op>, and
 * unpu_<op> is a weak alias of it (UNPU_REF_KERNEL, end of this header). A variant for an
 * instruction set (firmware/kernels/<variant>/, chosen by the board's cpu.simd) defines unpu_<op>
 * for the operators and shapes it speeds up: the linker takes the variant's definition, and the
 * variant calls unpu_ref_<op> for any case it does not handle. The generated model code only ever
 * calls unpu_<op>, and the reference stays both the fallback and the oracle the variants are tested
 * against (bit-exact, always).
 */
#ifndef UNPU_KERNELS_H
#define UNPU_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t n, h, w, c;
} unpu_shape4_t;

/* x * multiplier * 2^shift with TFLite's rounding (MultiplyByQuantizedMultiplier). */
/* added (doc): LiteRT builds use gemmlowp double rounding (TFLITE_SINGLE_ROUNDING off):
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(shift,0), multiplier), max(-shift,0)).
 * The same helper serves MultiplyByQuantizedMultiplierSmallerThanOneExp/GreaterThanOne. */
int32_t unpu_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/* ---- CONV_2D ---------------------------------------------------------------------------- */
typedef struct {
    unpu_shape4_t input, output;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_top, pad_left;          /* padding offsets as TFLite computes them */
    int32_t input_offset;               /* -input_zero_point */
    int32_t output_offset;              /* output_zero_point */
    int32_t act_min, act_max;           /* fused activation range in the output's int8 domain */
    const int32_t *multiplier;          /* [output.c] */
    const int32_t *shift;               /* [output.c] */
} unpu_conv_params_t;

void unpu_conv2d_s8(const unpu_conv_params_t *p, const int8_t *input, const int8_t *filter,
                    const int32_t *bias /* [output.c] or NULL */, int8_t *output);

/* ---- DEPTHWISE_CONV_2D ------------------------------------------------------------------ */
typedef struct {
    unpu_shape4_t input, output;
    int32_t filter_h, filter_w, depth_multiplier;
    int32_t stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
    const int32_t *multiplier;          /* [output.c] */
    const int32_t *shift;               /* [output.c] */
} unpu_dwconv_params_t;

void unpu_depthwise_conv2d_s8(const unpu_dwconv_params_t *p, const int8_t *input, const int8_t *filter,
                              const int32_t *bias, int8_t *output);

/* ---- FULLY_CONNECTED -------------------------------------------------------------------- */
typedef struct {
    int32_t batches, in_features, out_features;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;                /* 1: multiplier/shift have out_features entries */
    const int32_t *multiplier;
    const int32_t *shift;
    /* added: LiteRT's reference FULLY_CONNECTED (int8, per-tensor and per-channel) requantizes in
     * double: out = (int32)round((double)acc * s) with s = (double)in_scale * (double)filter_scale
     * / (double)out_scale (reference_integer_ops::FullyConnected[PerChannel], float-scale
     * overloads). effective_scale has out_features entries if per_channel, else 1. When it is
     * non-NULL it is used and multiplier/shift are ignored; NULL selects the multiplier/shift path
     * (TFLite Micro's semantics). */
    const double *effective_scale;
} unpu_fc_params_t;

void unpu_fully_connected_s8(const unpu_fc_params_t *p, const int8_t *input, const int8_t *weights,
                             const int32_t *bias, int8_t *output);
/* The reference's requantization of one FULLY_CONNECTED accumulator (either path above), for variants */
int32_t unpu_ref_fc_requantize(const unpu_fc_params_t *p, int32_t acc, int32_t oc);

/* ---- ADD / MUL (elementwise, with TFLite's 4-D broadcasting) ---------------------------- */
typedef struct {
    unpu_shape4_t in1, in2, output;     /* broadcast when a dimension is 1 in one input */
    int32_t in1_offset, in2_offset, output_offset;
    int32_t left_shift;                 /* ADD: 20 for int8 */
    int32_t in1_multiplier, in1_shift, in2_multiplier, in2_shift;   /* ADD only */
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
    /* added (doc): shifts are TFLite's signed exponents (negative = right shift). ADD: add.cc Prepare
     * with QuantizeMultiplierSmallerThanOneExp (all shifts <= 0). MUL: only output_multiplier/shift,
     * QuantizeMultiplier((double)(float)(s1 * s2 / so)), the real value computed in float32. */
} unpu_elementwise_params_t;

void unpu_add_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output);
void unpu_mul_s8(const unpu_elementwise_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* ---- MAX_POOL_2D / AVERAGE_POOL_2D ------------------------------------------------------ */
typedef struct {
    unpu_shape4_t input, output;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} unpu_pool_params_t;

void unpu_max_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output);
void unpu_avg_pool_s8(const unpu_pool_params_t *p, const int8_t *input, int8_t *output);

/* ---- MEAN over any axes (keep_dims or not; the data layout is the same) --------------- */
typedef struct {
    unpu_shape4_t input;                /* RuntimeShape::ExtendedShape(4, input shape) */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;          /* as TFLite's reference Mean computes them */
    /* added (doc): multiplier/shift are QuantizeMultiplier(in_scale / out_scale) as computed in
     * reduce.cc PrepareMeanOrSum; the kernel folds 1/(number of reduced elements) in itself exactly
     * as reference_ops::QuantizedMeanOrSum does. */
    /* added: bit d set = dimension d of the 4-D extended input (0 = n, 1 = h, 2 = w, 3 = c) is
     * reduced. The output holds the kept dimensions in input order (keep_dims only inserts 1s, so
     * the data is the same with or without it). LiteRT 2.3's BUILTIN_REF MEAN (and TFLite Micro's)
     * runs QuantizedMeanOrSum for every int8 case, also for 4-D keep_dims over H,W and for equal
     * input/output quantization (measured; older TFLite used reference_integer_ops::Mean and the
     * integer reference_ops::Mean there, which differ by 1 LSB and are not what it runs). */
    int32_t reduce_mask;
} unpu_mean_params_t;

void unpu_mean_s8(const unpu_mean_params_t *p, const int8_t *input, int8_t *output);

/* ---- SOFTMAX (TFLite's int8 reference: gemmlowp fixed point) ---------------------------- */
typedef struct {
    int32_t rows, depth;                /* softmax over the last dimension */
    int32_t input_multiplier, input_left_shift, diff_min;
    int32_t output_zero_point;          /* -128 for int8 */
    /* added (doc): PreprocessSoftmaxScaling(beta, in_scale, 5) and diff_min = -CalculateInputRadius(5,
     * input_left_shift) as activations.cc SoftmaxPrepare (kReference); output scale 1/256. */
} unpu_softmax_params_t;

void unpu_softmax_s8(const unpu_softmax_params_t *p, const int8_t *input, int8_t *output);

/* ---- LOGISTIC (TFLite's int8 reference) ------------------------------------------------- */
typedef struct {
    int32_t size;
    int32_t input_zero_point, input_range_radius, input_multiplier, input_left_shift;
    /* added: LiteRT's int8 LOGISTIC is a 256-entry lookup table built in float (LUTPopulate with
     * 1/(1+expf(-x))); lut[(uint8_t)x] is the output for input x. When non-NULL it is used and the
     * fields above are ignored; NULL selects reference_integer_ops::Logistic (fixed point, TFLite
     * Micro's semantics) with the fields above. */
    const int8_t *lut;
} unpu_logistic_params_t;

void unpu_logistic_s8(const unpu_logistic_params_t *p, const int8_t *input, int8_t *output);

/* ---- QUANTIZE / DEQUANTIZE -------------------------------------------------------------- */
void unpu_quantize_f32_s8(const float *input, int8_t *output, int32_t size, float scale, int32_t zero_point);
void unpu_dequantize_s8_f32(const int8_t *input, float *output, int32_t size, float scale, int32_t zero_point);
/* QUANTIZE int8 -> int8 (a requantization between two scales) */
void unpu_requantize_s8(const int8_t *input, int8_t *output, int32_t size, int32_t input_zero_point,
                        int32_t output_zero_point, int32_t multiplier, int32_t shift);

/* ---- PAD / CONCATENATION ---------------------------------------------------------------- */
typedef struct {
    unpu_shape4_t input, output;
    int32_t before[4];                  /* leading padding per NHWC dimension */
    int8_t pad_value;                   /* the output zero point unless the model gives a value */
} unpu_pad_params_t;

void unpu_pad_s8(const unpu_pad_params_t *p, const int8_t *input, int8_t *output);

/* Concatenation along `axis` of NHWC tensors. Inputs whose quantization differs from the
 * output's are requantized as TFLite's reference does. */
/* added (doc): LiteRT rejects int8 CONCATENATION with differing scales/zero points (concatenation.cc
 * Prepare), and the converter always emits equal ones; the differing case follows
 * reference_ops::ConcatenationWithScaling (float) for completeness. */
typedef struct {
    int32_t count, axis;
    const unpu_shape4_t *shapes;        /* [count] */
    unpu_shape4_t output;
    const int32_t *zero_points;         /* [count] */
    const float *scales;                /* [count], TFLite's reference requantizes in float */
    int32_t output_zero_point;
    float output_scale;
} unpu_concat_params_t;

void unpu_concatenation_s8(const unpu_concat_params_t *p, const int8_t *const *inputs, int8_t *output);

/* ---- the reference kernels under their own names (see "Variants" above) ---------------- */
extern __typeof__(unpu_conv2d_s8) unpu_ref_conv2d_s8;
extern __typeof__(unpu_depthwise_conv2d_s8) unpu_ref_depthwise_conv2d_s8;
extern __typeof__(unpu_fully_connected_s8) unpu_ref_fully_connected_s8;
extern __typeof__(unpu_add_s8) unpu_ref_add_s8;
extern __typeof__(unpu_mul_s8) unpu_ref_mul_s8;
extern __typeof__(unpu_max_pool_s8) unpu_ref_max_pool_s8;
extern __typeof__(unpu_avg_pool_s8) unpu_ref_avg_pool_s8;
extern __typeof__(unpu_mean_s8) unpu_ref_mean_s8;
extern __typeof__(unpu_softmax_s8) unpu_ref_softmax_s8;
extern __typeof__(unpu_logistic_s8) unpu_ref_logistic_s8;
extern __typeof__(unpu_quantize_f32_s8) unpu_ref_quantize_f32_s8;
extern __typeof__(unpu_dequantize_s8_f32) unpu_ref_dequantize_s8_f32;
extern __typeof__(unpu_requantize_s8) unpu_ref_requantize_s8;
extern __typeof__(unpu_pad_s8) unpu_ref_pad_s8;
extern __typeof__(unpu_concatenation_s8) unpu_ref_concatenation_s8;

/* In a reference kernel's file: unpu_<op> is a weak alias of unpu_ref_<op>, which a variant overrides. */
#define UNPU_REF_KERNEL(op) extern __typeof__(unpu_ref_##op) unpu_##op __attribute__((weak, alias("unpu_ref_" #op)));

#ifdef __cplusplus
}
#endif
#endif /* UNPU_KERNELS_H */
