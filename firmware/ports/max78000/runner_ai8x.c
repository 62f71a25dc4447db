/*
 * unpu_runner.h over the C that ai8x-synthesis generated for the model (cnn.c / cnn.h: weights,
 * biases and layer configuration of the MAX7800x CNN accelerator). Stages:
 *   init      cnn_enable (CNN clock as the generated main.c chose it), cnn_init, cnn_load_weights,
 *             cnn_load_bias, cnn_configure
 *   input     the uploaded NHWC int8 input packed into the CNN data memory words (ai8x_layout.c) at
 *             the addresses the generated load_input() used (UNPU_AI8X_INPUT_* in unpu_build.h)
 *   inference cnn_start, then sleep (WFI) until the CNN interrupt (CNN_ISR in cnn.c) sets cnn_time
 *   output    cnn_unload
 *   post      nothing (ai8x's software softmax is not used; results are the raw Q7 outputs / 128)
 * The input buffer, raw output and results are harness/runner_io.c's.
 */
#include <stddef.h>
#include <stdint.h>

#include "ai8x_layout.h"
#include "cnn.h"
#include "mxc.h"
#include "unpu_runner.h"
#include "unpu_runner_io.h"

volatile uint32_t cnn_time;   /* set by CNN_ISR in the generated cnn.c when the accelerator is done */

#define INPUT_BYTES (UNPU_AI8X_INPUT_H * UNPU_AI8X_INPUT_W * UNPU_AI8X_INPUT_C)
#define PIXELS (UNPU_AI8X_INPUT_H * UNPU_AI8X_INPUT_W)

static const uint32_t chunk_addr[UNPU_AI8X_INPUT_CHUNKS] = UNPU_AI8X_INPUT_ADDRS;
static const uint32_t chunk_first_ch[UNPU_AI8X_INPUT_CHUNKS] = UNPU_AI8X_INPUT_FIRST_CH;
static uint8_t input[INPUT_BYTES];
static uint32_t words[PIXELS];
static uint32_t out_words[CNN_NUM_OUTPUTS];   /* room for 32-bit outputs; 8-bit ones use the first quarter */

unpu_runner_io_t unpu_runner_io = {input, INPUT_BYTES, (int8_t *)out_words, NULL, CNN_NUM_OUTPUTS, 1.0f / 128.0f, 0};

int runner_init(void)
{
    UNPU_AI8X_CNN_ENABLE();
    if (cnn_init() != CNN_OK || cnn_load_weights() != CNN_OK || cnn_load_bias() != CNN_OK ||
        cnn_configure() != CNN_OK)
        return -1;
    return 0;
}

int runner_load_input(const uint8_t *data, uint32_t len)
{
    if (len != INPUT_BYTES)
        return -1;
    for (uint32_t k = 0; k < UNPU_AI8X_INPUT_CHUNKS; k++) {
        ai8x_pack_hwc((const int8_t *)data, UNPU_AI8X_INPUT_H, UNPU_AI8X_INPUT_W, UNPU_AI8X_INPUT_C,
                      chunk_first_ch[k], words);
        volatile uint32_t *dst = (volatile uint32_t *)chunk_addr[k];
        for (uint32_t i = 0; i < PIXELS; i++)
            dst[i] = words[i];
    }
    return 0;
}

int runner_run(void)
{
    cnn_time = 0;
    if (cnn_start() != CNN_OK)
        return -1;
    SCB->SCR &= ~SCB_SCR_SLEEPDEEP_Msk;
    while (cnn_time == 0)
        __WFI();
    return 0;
}

int runner_read_output(void) { return cnn_unload(out_words) == CNN_OK ? 0 : -1; }
uint32_t runner_arena_size(void) { return 0; }   /* no tensor arena: activations live in the CNN data memory */
