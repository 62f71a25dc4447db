/*
 * The model runner API the harness drives: one implementation per runtime
 * (runner_codegen.c: C from unpu.codegen; runner_tflm.cc: TFLite Micro from TFLM_DIR or a vendor SDK).
 * Stage boundaries of the DUT protocol map one-to-one onto these calls.
 */
#ifndef UNPU_RUNNER_H
#define UNPU_RUNNER_H

#include <stdint.h>

int runner_init(void);                               /* stage init: runtime/NPU bring-up, graph construction */
uint32_t runner_input_size(void);                    /* bytes the input tensor takes */
/* added: a runner-owned buffer of runner_input_size() bytes, outside the arena, where the harness
 * keeps the uploaded input between inferences (runner_init may clear the arena; no heap anywhere). */
uint8_t *runner_input_buffer(void);
int runner_load_input(const uint8_t *data, uint32_t len);   /* stage input: copy to where the kernels read it */
int runner_run(void);                                /* stage inference */
int runner_read_output(void);                        /* stage output: results copied out of the arena */
int runner_post(void);                               /* stage post: software post-processing (e.g. softmax) */
const uint8_t *runner_raw_output(uint32_t *len);     /* the model's raw output tensor (out%) */
uint32_t runner_result_count(void);                  /* values in the final (post-processed) result */
float runner_result(uint32_t index);                 /* dequantized final value (m-results-[...]) */
const char *runner_model_id(void);
uint32_t runner_arena_size(void);

#endif /* UNPU_RUNNER_H */
