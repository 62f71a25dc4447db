/*
 * Model runner (unpu_runner.h) over an AutoTiler-generated network on GAP8 (runtime=autotiler).
 * SDK-independent: the network and the cluster are behind gap_cluster.h (gap_cluster.c).
 *
 * Stages: init = <prefix>CNN_Destruct (after the first window) + <prefix>CNN_Construct: L1/L2/L3
 * allocation and the weights moved from the HyperFlash, as the generated constructor does;
 * input = the uploaded input copied (and, for NNTool's CHW graphs, transposed from the model's HWC)
 * into the network's L2 input buffer by the fabric controller; inference = the cluster task
 * running <prefix>CNN on the 8 cores; output = the network's L2 output copied out (transposed back
 * to HWC when needed); post = the int8 softmax of firmware/kernels when the model ends in logits.
 *
 * The build's defines (unpu_build.h, written by unpu/boards/gap.py):
 *   UNPU_GAP_INPUT_BYTES, UNPU_GAP_OUTPUT_BYTES      int8 tensor sizes
 *   UNPU_GAP_IN_H/W/C, UNPU_GAP_OUT_H/W/C            present when that tensor is moved between the
 *                                                    model's HWC order and the network's CHW order
 *   UNPU_GAP_OUTPUT_Q15                              the network's output is int16 Q15 (a graph ending in
 *                                                    NNTool's SQ8 softmax); output converts it to TFLite's
 *                                                    int8 softmax convention (scale 1/256, zero point -128)
 *   UNPU_OUTPUT_SCALE, UNPU_OUTPUT_ZERO_POINT        the output's quantization (m-results-[...])
 *   UNPU_GAP_ARENA_BYTES                             L2 the generated code allocates (info%)
 *   UNPU_MODEL_ID, UNPU_POST_SOFTMAX and its parameters as for the other runners
 * The input buffer, post stage and results are harness/runner_io.c's.
 */
#include <stdint.h>
#include <string.h>

#include "gap_cluster.h"
#include "unpu_runner.h"
#include "unpu_runner_io.h"

#ifndef UNPU_GAP_ARENA_BYTES
#define UNPU_GAP_ARENA_BYTES 0
#endif
#ifndef UNPU_OUTPUT_SCALE
#define UNPU_OUTPUT_SCALE 1.0f
#endif
#ifndef UNPU_OUTPUT_ZERO_POINT
#define UNPU_OUTPUT_ZERO_POINT 0
#endif

static uint8_t input_buffer[UNPU_GAP_INPUT_BYTES] __attribute__((aligned(4)));
static int8_t net_input[UNPU_GAP_INPUT_BYTES] __attribute__((aligned(4)));
#ifdef UNPU_GAP_OUTPUT_Q15
static int16_t net_output[UNPU_GAP_OUTPUT_BYTES] __attribute__((aligned(4)));   /* one per int8 output value */
#else
static int8_t net_output[UNPU_GAP_OUTPUT_BYTES] __attribute__((aligned(4)));
#endif
static int8_t output_copy[UNPU_GAP_OUTPUT_BYTES] __attribute__((aligned(4)));
static int8_t post_output[UNPU_POST_ROOM(UNPU_GAP_OUTPUT_BYTES)];
static int constructed;

unpu_runner_io_t unpu_runner_io = {input_buffer, UNPU_GAP_INPUT_BYTES, output_copy, post_output, UNPU_GAP_OUTPUT_BYTES,
                                   UNPU_OUTPUT_SCALE, UNPU_OUTPUT_ZERO_POINT};

#if defined(UNPU_GAP_IN_C) || defined(UNPU_GAP_OUT_C)
/* Between the model's HWC order and the network's CHW: chw[c][y][x] = hwc[y][x][c], or back. */
static void transpose(int8_t *dst, const int8_t *src, uint32_t h, uint32_t w, uint32_t c, int to_chw)
{
    uint32_t y, x, k;
    for (y = 0; y < h; ++y)
        for (x = 0; x < w; ++x)
            for (k = 0; k < c; ++k) {
                const uint32_t hwc = (y * w + x) * c + k, chw = (k * h + y) * w + x;
                if (to_chw)
                    dst[chw] = src[hwc];
                else
                    dst[hwc] = src[chw];
            }
}
#endif

int runner_init(void)
{
    if (unpu_gap_cluster_open() != 0)
        return 3;
    if (constructed) {
        unpu_gap_network_destruct();
        constructed = 0;
    }
    if (unpu_gap_network_construct() != 0)
        return 1;
    constructed = 1;
    return 0;
}

int runner_load_input(const uint8_t *data, uint32_t len)
{
    if (len != UNPU_GAP_INPUT_BYTES)
        return -1;
#ifdef UNPU_GAP_IN_C
    transpose(net_input, (const int8_t *)data, UNPU_GAP_IN_H, UNPU_GAP_IN_W, UNPU_GAP_IN_C, 1);
#else
    memcpy(net_input, data, len);
#endif
    return 0;
}

int runner_run(void) { return unpu_gap_network_run(net_input, net_output) == 0 ? 0 : 1; }

#ifdef UNPU_GAP_OUTPUT_Q15
/* p = q15 / 32768 -> TFLite's int8 softmax output round(256 p) - 128, saturated */
static void q15_to_int8(int8_t *dst, const int16_t *src, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        int32_t v = (((int32_t)src[i] + 64) >> 7) - 128;
        dst[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
    }
}
#endif

int runner_read_output(void)
{
#if defined(UNPU_GAP_OUTPUT_Q15)
    q15_to_int8(output_copy, net_output, UNPU_GAP_OUTPUT_BYTES);
#elif defined(UNPU_GAP_OUT_C)
    transpose(output_copy, net_output, UNPU_GAP_OUT_H, UNPU_GAP_OUT_W, UNPU_GAP_OUT_C, 0);
#else
    memcpy(output_copy, net_output, sizeof output_copy);
#endif
    return 0;
}

uint32_t runner_arena_size(void) { return UNPU_GAP_ARENA_BYTES; }
