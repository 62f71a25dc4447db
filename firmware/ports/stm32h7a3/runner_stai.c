/*
 * Model runner over ST Edge AI's st-ai C API (unpu_runner.h), for the C files `stedgeai generate
 * --c-api st-ai --name network` writes: the STM32 software runtime (stm32h7a3) or, with
 * -DUNPU_STAI_ATON, the Neural-ART runtime LL_ATON (stm32n6). Needs the generated network.h and the
 * ST Edge AI headers (SDK build only). API: https://stedgeai-dc.st.com/assets/embedded-docs/embedded_client_stai_api.html
 *
 * Inputs and outputs live in the activations (stedgeai's default allocate-inputs/outputs), so their
 * addresses are read after every init. The software runtime gets its activations buffer here; the
 * Neural-ART's are fixed by the memory pools. With the NPU the data cache is cleaned before and
 * invalidated after each run (the NPU reads and writes RAM behind the core's cache).
 * The build defines UNPU_INPUT_BYTES, UNPU_OUTPUT_SCALE, UNPU_OUTPUT_ZERO_POINT, UNPU_MODEL_ID and,
 * for post = softmax, the same UNPU_SOFTMAX_* defines as runner_tflm.cc.
 */
#include <stdint.h>
#include <string.h>

#include "network.h"
#include "unpu_runner.h"
#ifdef UNPU_POST_SOFTMAX
#include "unpu_kernels.h"
#endif
#ifdef UNPU_STAI_ATON
#include "stm32n6xx.h"   /* SCB cache maintenance (CMSIS) */
#endif

#ifndef UNPU_MODEL_ID
#define UNPU_MODEL_ID "model"
#endif
#define OUTPUT_CAPACITY 4096

STAI_ALIGNED(STAI_NETWORK_CONTEXT_ALIGNMENT) static stai_network net[STAI_NETWORK_CONTEXT_SIZE];
#ifndef UNPU_STAI_ATON
STAI_ALIGNED(STAI_NETWORK_ACTIVATION_1_ALIGNMENT)
static uint8_t activations[STAI_NETWORK_ACTIVATION_1_SIZE_BYTES] __attribute__((section(".unpu_arena")));
#endif
static uint8_t input_buffer[UNPU_INPUT_BYTES];
static int8_t output_copy[OUTPUT_CAPACITY];
static uint32_t output_bytes;
static stai_ptr in_ptr, out_ptr;
static int ready;
#ifdef UNPU_POST_SOFTMAX
static int8_t post_output[OUTPUT_CAPACITY];
#endif

int runner_init(void)
{
    stai_size n = 1;
    if (ready)
        stai_network_deinit(net);
    ready = 0;
    if (stai_runtime_init() != STAI_SUCCESS || stai_network_init(net) != STAI_SUCCESS)
        return 1;
#ifndef UNPU_STAI_ATON
    const stai_ptr acts[] = {activations};
    if (stai_network_set_activations(net, acts, 1) != STAI_SUCCESS)
        return 2;
#endif
    if (stai_network_get_inputs(net, &in_ptr, &n) != STAI_SUCCESS || n < 1)
        return 3;
    n = 1;
    if (stai_network_get_outputs(net, &out_ptr, &n) != STAI_SUCCESS || n < 1)
        return 3;
    if (STAI_NETWORK_IN_1_SIZE_BYTES != UNPU_INPUT_BYTES || STAI_NETWORK_OUT_1_SIZE_BYTES > OUTPUT_CAPACITY)
        return 4;
    ready = 1;
    return 0;
}

uint32_t runner_input_size(void) { return UNPU_INPUT_BYTES; }
uint8_t *runner_input_buffer(void) { return input_buffer; }

int runner_load_input(const uint8_t *data, uint32_t len)
{
    if (len != UNPU_INPUT_BYTES)
        return -1;
    memcpy((void *)in_ptr, data, len);
#ifdef UNPU_STAI_ATON
    SCB_CleanDCache_by_Addr((void *)in_ptr, (int32_t)len);
#endif
    return 0;
}

int runner_run(void)
{
    return stai_network_run(net, STAI_MODE_SYNC) == STAI_SUCCESS ? 0 : 1;
}

int runner_read_output(void)
{
    output_bytes = STAI_NETWORK_OUT_1_SIZE_BYTES;
#ifdef UNPU_STAI_ATON
    SCB_InvalidateDCache_by_Addr((void *)out_ptr, (int32_t)output_bytes);
#endif
    memcpy(output_copy, (const void *)out_ptr, output_bytes);
    return 0;
}

int runner_post(void)
{
#ifdef UNPU_POST_SOFTMAX
    const unpu_softmax_params_t p = {1, (int32_t)output_bytes, UNPU_SOFTMAX_MULTIPLIER, UNPU_SOFTMAX_LEFT_SHIFT,
                                     UNPU_SOFTMAX_DIFF_MIN, -128};
    unpu_softmax_s8(&p, output_copy, post_output);
#endif
    return 0;
}

const uint8_t *runner_raw_output(uint32_t *len)
{
    *len = output_bytes;
    return (const uint8_t *)output_copy;
}

uint32_t runner_result_count(void) { return output_bytes; }   /* int8 outputs */

float runner_result(uint32_t index)
{
    if (index >= output_bytes)
        return 0.0f;
#ifdef UNPU_POST_SOFTMAX
    return (float)(post_output[index] + 128) / 256.0f;
#else
    return (float)(output_copy[index] - UNPU_OUTPUT_ZERO_POINT) * UNPU_OUTPUT_SCALE;
#endif
}

const char *runner_model_id(void) { return UNPU_MODEL_ID; }

uint32_t runner_arena_size(void)
{
#ifdef UNPU_STAI_ATON
    return 0;   /* activations live in the Neural-ART memory pools (see the stedgeai report) */
#else
    return STAI_NETWORK_ACTIVATION_1_SIZE_BYTES;
#endif
}
