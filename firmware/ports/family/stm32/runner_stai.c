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
 * for post = softmax, the same UNPU_SOFTMAX_* defines as runner_tflm.cc; the post stage and the
 * results are harness/runner_io.c's.
 */
#include <stdint.h>
#include <string.h>

#include "network.h"
#include "unpu_runner.h"
#include "unpu_runner_io.h"
#ifdef UNPU_STAI_ATON
#include "stm32n6xx.h"   /* SCB cache maintenance (CMSIS) */
#endif

#define OUTPUT_CAPACITY 4096

STAI_ALIGNED(STAI_NETWORK_CONTEXT_ALIGNMENT) static stai_network net[STAI_NETWORK_CONTEXT_SIZE];
#ifndef UNPU_STAI_ATON
STAI_ALIGNED(STAI_NETWORK_ACTIVATION_1_ALIGNMENT)
static uint8_t activations[STAI_NETWORK_ACTIVATION_1_SIZE_BYTES] __attribute__((section(".unpu_arena")));
#endif
static uint8_t input_buffer[UNPU_INPUT_BYTES];
static int8_t output_copy[OUTPUT_CAPACITY], post_output[UNPU_POST_ROOM(OUTPUT_CAPACITY)];
static stai_ptr in_ptr, out_ptr;
static int ready;

unpu_runner_io_t unpu_runner_io = {input_buffer, UNPU_INPUT_BYTES, output_copy, post_output, 0,
                                   UNPU_OUTPUT_SCALE, UNPU_OUTPUT_ZERO_POINT};

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
    const uint32_t bytes = STAI_NETWORK_OUT_1_SIZE_BYTES;
#ifdef UNPU_STAI_ATON
    SCB_InvalidateDCache_by_Addr((void *)out_ptr, (int32_t)bytes);
#endif
    memcpy(output_copy, (const void *)out_ptr, bytes);
    unpu_runner_io.output_bytes = bytes;
    return 0;
}

uint32_t runner_arena_size(void)
{
#ifdef UNPU_STAI_ATON
    return 0;   /* activations live in the Neural-ART memory pools (see the stedgeai report) */
#else
    return STAI_NETWORK_ACTIVATION_1_SIZE_BYTES;
#endif
}
