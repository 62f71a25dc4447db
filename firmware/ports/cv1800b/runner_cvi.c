/*
 * Model runner over cviruntime's C API (cviruntime.h from the cvitek_tpu_sdk, TPU_SDK_PATH):
 * the .cvimodel TPU-MLIR compiled, loaded from the path the port got on its command line.
 *   init      CVI_NN_RegisterModel + CVI_NN_GetInputOutputTensors (a fresh model every window)
 *   input     the uploaded TFLite-int8 bytes -> the model's input tensor: dequantized with the
 *             TFLite input scale/zero point for an fp32 input, re-quantized with the tensor's
 *             qscale (CVI_NN_TensorQuantScale: int8 = fp32 * qscale) for an int8 input
 *   inference CVI_NN_Forward (blocking)
 *   output    the output tensor -> int8 with the TFLite output scale/zero point, so `out%` is
 *             comparable with LiteRT's int8 output
 *   post      TFLite's int8 softmax (unpu_softmax_s8) when built with UNPU_POST_SOFTMAX
 * (the input buffer, post stage and results are harness/runner_io.c's)
 * Defines (unpu_build.h): UNPU_INPUT_BYTES, UNPU_OUTPUT_BYTES, UNPU_IN_SCALE, UNPU_IN_ZP,
 * UNPU_OUT_SCALE, UNPU_OUT_ZP, UNPU_CVI_ION_BYTES (reported as the arena), UNPU_MODEL_ID.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "cviruntime.h"
#include "unpu_runner.h"
#include "unpu_runner_io.h"

#ifndef UNPU_CVI_ION_BYTES
#define UNPU_CVI_ION_BYTES 0
#endif

extern const char *unpu_cvi_model_path;

static CVI_MODEL_HANDLE model;
static CVI_TENSOR *inputs, *outputs;
static int32_t input_num, output_num;
static uint8_t input_buffer[UNPU_INPUT_BYTES];
static int8_t output_copy[UNPU_OUTPUT_BYTES], post_output[UNPU_POST_ROOM(UNPU_OUTPUT_BYTES)];

unpu_runner_io_t unpu_runner_io = {input_buffer, UNPU_INPUT_BYTES, output_copy, post_output, UNPU_OUTPUT_BYTES,
                                   UNPU_OUT_SCALE, UNPU_OUT_ZP};

static int8_t saturate(long v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }

int runner_init(void) {
    if (model != NULL) {
        CVI_NN_CleanupModel(model);
        model = NULL;
    }
    if (CVI_NN_RegisterModel(unpu_cvi_model_path, &model) != CVI_RC_SUCCESS) return 1;
    if (CVI_NN_GetInputOutputTensors(model, &inputs, &input_num, &outputs, &output_num) != CVI_RC_SUCCESS) return 2;
    if (input_num != 1 || output_num < 1) return 3;
    if (CVI_NN_TensorCount(&inputs[0]) != UNPU_INPUT_BYTES || CVI_NN_TensorCount(&outputs[0]) != UNPU_OUTPUT_BYTES)
        return 4;   /* the cvimodel is not this build's model */
    return 0;
}

int runner_load_input(const uint8_t *data, uint32_t len) {
    CVI_TENSOR *t = &inputs[0];
    const int8_t *q = (const int8_t *)data;
    uint32_t i;
    if (len != UNPU_INPUT_BYTES) return -1;
    if (t->fmt == CVI_FMT_FP32) {
        float *dst = (float *)CVI_NN_TensorPtr(t);
        for (i = 0; i < len; ++i) dst[i] = (float)(q[i] - UNPU_IN_ZP) * UNPU_IN_SCALE;
    } else if (t->fmt == CVI_FMT_INT8) {
        int8_t *dst = (int8_t *)CVI_NN_TensorPtr(t);
        const float qscale = CVI_NN_TensorQuantScale(t);
        for (i = 0; i < len; ++i) dst[i] = saturate(lrintf((float)(q[i] - UNPU_IN_ZP) * UNPU_IN_SCALE * qscale));
    } else {
        return -2;
    }
    return 0;
}

int runner_run(void) {
    return CVI_NN_Forward(model, inputs, input_num, outputs, output_num) == CVI_RC_SUCCESS ? 0 : 1;
}

int runner_read_output(void) {
    CVI_TENSOR *t = &outputs[0];
    uint32_t i;
    if (t->fmt == CVI_FMT_FP32) {
        const float *src = (const float *)CVI_NN_TensorPtr(t);
        for (i = 0; i < UNPU_OUTPUT_BYTES; ++i) output_copy[i] = saturate(lrintf(src[i] / UNPU_OUT_SCALE) + UNPU_OUT_ZP);
    } else if (t->fmt == CVI_FMT_INT8) {
        const int8_t *src = (const int8_t *)CVI_NN_TensorPtr(t);
        const float qscale = CVI_NN_TensorQuantScale(t);
        for (i = 0; i < UNPU_OUTPUT_BYTES; ++i)
            output_copy[i] = saturate(lrintf((float)src[i] / qscale / UNPU_OUT_SCALE) + UNPU_OUT_ZP);
    } else {
        return -2;
    }
    return 0;
}

uint32_t runner_arena_size(void) { return UNPU_CVI_ION_BYTES; }
