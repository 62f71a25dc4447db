/* See unpu_runner_io.h. */
#include "unpu_runner.h"
#include "unpu_runner_io.h"
#ifdef UNPU_POST_SOFTMAX
#include "unpu_kernels.h"
#endif

#ifndef UNPU_MODEL_ID
#define UNPU_MODEL_ID "model"
#endif

uint32_t runner_input_size(void) { return unpu_runner_io.input_bytes; }

uint8_t *runner_input_buffer(void) { return unpu_runner_io.input; }

int runner_post(void)
{
#ifdef UNPU_POST_SOFTMAX
    const unpu_softmax_params_t p = {1, (int32_t)unpu_runner_io.output_bytes, UNPU_SOFTMAX_MULTIPLIER,
                                     UNPU_SOFTMAX_LEFT_SHIFT, UNPU_SOFTMAX_DIFF_MIN, -128};
    unpu_softmax_s8(&p, unpu_runner_io.output, unpu_runner_io.post);
#endif
    return 0;
}

const uint8_t *runner_raw_output(uint32_t *len)
{
    *len = unpu_runner_io.output_bytes;
    return (const uint8_t *)unpu_runner_io.output;
}

uint32_t runner_result_count(void) { return unpu_runner_io.output_bytes; }

float runner_result(uint32_t index)
{
    if (index >= unpu_runner_io.output_bytes)
        return 0.0f;
#ifdef UNPU_POST_SOFTMAX
    return (float)(unpu_runner_io.post[index] + 128) / 256.0f;
#else
    return (float)(unpu_runner_io.output[index] - unpu_runner_io.zero_point) * unpu_runner_io.scale;
#endif
}

const char *runner_model_id(void) { return UNPU_MODEL_ID; }
