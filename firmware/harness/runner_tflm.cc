/*
 * Model runner over TensorFlow Lite Micro (runtime=tflm), compiled only where TFLM is available
 * (TFLM_DIR or a vendor SDK); no registry ships TFLM (shared/REFERENCE.md §9), so CI does not build
 * it. The same harness drives it through unpu_runner.h, unchanged.
 *
 * The build provides:
 *   unpu_model_tflite[] / unpu_model_tflite_len   the .tflite bytes (e.g. `xxd -i`, const, in flash)
 *   -DUNPU_TFLM_ARENA_SIZE=<bytes>                 the tensor arena (host board's bisection result)
 *   -DUNPU_TFLM_INPUT_CAPACITY=<bytes>             >= the model's input size
 *   -DUNPU_MODEL_ID='"name"', and for post = softmax the same defines as runner_codegen.c.
 * No heap: the interpreter is constructed in static storage by placement new at every init.
 */
#include <new>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" {
#include "unpu_runner.h"
#ifdef UNPU_POST_SOFTMAX
#include "unpu_kernels.h"
#endif
extern const unsigned char unpu_model_tflite[];
}

#ifndef UNPU_MODEL_ID
#define UNPU_MODEL_ID "model"
#endif
#ifndef UNPU_TFLM_INPUT_CAPACITY
#define UNPU_TFLM_INPUT_CAPACITY 65536
#endif
#define OUTPUT_CAPACITY 4096

namespace {
alignas(16) uint8_t arena[UNPU_TFLM_ARENA_SIZE];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *interpreter = nullptr;
tflite::MicroMutableOpResolver<16> resolver;
uint8_t input_buffer[UNPU_TFLM_INPUT_CAPACITY];
int8_t output_copy[OUTPUT_CAPACITY];
uint32_t output_bytes = 0;
#ifdef UNPU_POST_SOFTMAX
int8_t post_output[OUTPUT_CAPACITY];
#endif

void register_ops() {
    if (resolver.FindOp(tflite::BuiltinOperator_CONV_2D) != nullptr) return;
    resolver.AddConv2D();
    resolver.AddDepthwiseConv2D();
    resolver.AddFullyConnected();
    resolver.AddAdd();
    resolver.AddMul();
    resolver.AddAveragePool2D();
    resolver.AddMaxPool2D();
    resolver.AddMean();
    resolver.AddReshape();
    resolver.AddSoftmax();
    resolver.AddLogistic();
    resolver.AddQuantize();
    resolver.AddDequantize();
    resolver.AddPad();
    resolver.AddPadV2();
    resolver.AddConcatenation();
}
}  // namespace

extern "C" int runner_init(void) {
    register_ops();
    if (interpreter != nullptr) interpreter->~MicroInterpreter();
    interpreter = new (interpreter_storage)
        tflite::MicroInterpreter(tflite::GetModel(unpu_model_tflite), resolver, arena, sizeof arena);
    if (interpreter->AllocateTensors() != kTfLiteOk) return 1;
    if (interpreter->input(0)->bytes > sizeof input_buffer || interpreter->output(0)->bytes > sizeof output_copy) return 2;
    return 0;
}

extern "C" uint32_t runner_input_size(void) {
    if (interpreter == nullptr && runner_init() != 0) return 0;
    return static_cast<uint32_t>(interpreter->input(0)->bytes);
}

extern "C" uint8_t *runner_input_buffer(void) { return input_buffer; }

extern "C" int runner_load_input(const uint8_t *data, uint32_t len) {
    TfLiteTensor *in = interpreter->input(0);
    if (len != in->bytes) return -1;
    memcpy(in->data.raw, data, len);
    return 0;
}

extern "C" int runner_run(void) { return interpreter->Invoke() == kTfLiteOk ? 0 : 1; }

extern "C" int runner_read_output(void) {
    const TfLiteTensor *out = interpreter->output(0);
    output_bytes = static_cast<uint32_t>(out->bytes);
    memcpy(output_copy, out->data.raw, output_bytes);
    return 0;
}

extern "C" int runner_post(void) {
#ifdef UNPU_POST_SOFTMAX
    const unpu_softmax_params_t p = {1, static_cast<int32_t>(output_bytes), UNPU_SOFTMAX_MULTIPLIER,
                                     UNPU_SOFTMAX_LEFT_SHIFT, UNPU_SOFTMAX_DIFF_MIN, -128};
    unpu_softmax_s8(&p, output_copy, post_output);
#endif
    return 0;
}

extern "C" const uint8_t *runner_raw_output(uint32_t *len) {
    *len = output_bytes;
    return reinterpret_cast<const uint8_t *>(output_copy);
}

extern "C" uint32_t runner_result_count(void) { return output_bytes; }  /* int8 outputs */

extern "C" float runner_result(uint32_t index) {
    if (index >= output_bytes) return 0.0f;
#ifdef UNPU_POST_SOFTMAX
    return static_cast<float>(post_output[index] + 128) / 256.0f;
#else
    const TfLiteTensor *out = interpreter->output(0);
    return static_cast<float>(output_copy[index] - out->params.zero_point) * out->params.scale;
#endif
}

extern "C" const char *runner_model_id(void) { return UNPU_MODEL_ID; }

extern "C" uint32_t runner_arena_size(void) { return UNPU_TFLM_ARENA_SIZE; }
