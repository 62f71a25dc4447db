/*
 * The input and int8-output half of unpu_runner.h, shared by the runners over a vendor runtime
 * (runner_stai.c, runner_autotiler.c, runner_cvi.c, runner_ai8x.c): they differ in how the input
 * reaches the runtime and the output comes back, not in what the harness sees of either.
 *
 * runner_io.c implements runner_input_size, runner_input_buffer, runner_post, runner_raw_output,
 * runner_result_count, runner_result and runner_model_id over the runner's `unpu_runner_io`.
 * post: TFLite's int8 softmax (unpu_softmax_s8) of the output when built with UNPU_POST_SOFTMAX and
 * its UNPU_SOFTMAX_* parameters (as runner_codegen.c), the results then on the softmax's fixed
 * scale 1/256 and zero point -128; otherwise results dequantize the output with scale/zero_point.
 */
#ifndef UNPU_RUNNER_IO_H
#define UNPU_RUNNER_IO_H

#include <stdint.h>

typedef struct {
    uint8_t *input;          /* the uploaded input, kept between inferences */
    uint32_t input_bytes;
    int8_t *output;          /* the model's int8 output as the output stage copied it (out%) */
    int8_t *post;            /* UNPU_POST_ROOM(output capacity) bytes for the softmax */
    uint32_t output_bytes;   /* bytes valid in output */
    float scale;             /* the output's quantization */
    int32_t zero_point;
} unpu_runner_io_t;

extern unpu_runner_io_t unpu_runner_io;   /* defined by the runner */

#ifdef UNPU_POST_SOFTMAX
#define UNPU_POST_ROOM(n) (n)
#else
#define UNPU_POST_ROOM(n) 1
#endif

#endif /* UNPU_RUNNER_IO_H */
