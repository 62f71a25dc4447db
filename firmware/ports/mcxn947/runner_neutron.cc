/*
 * Model runner (unpu_runner.h) over the MCUXpresso SDK's TensorFlow Lite Micro with NXP's Neutron
 * kernel: the converted model's `NeutronGraph` custom operators run on the eIQ Neutron NPU through
 * the SDK's Neutron driver/firmware libraries; the operators the converter left run on the M33.
 *
 * Same contract as firmware/harness/runner_tflm.cc (defines from unpu_build.h: UNPU_MODEL_ID,
 * UNPU_TFLM_ARENA_SIZE, UNPU_TFLM_INPUT_CAPACITY, softmax post-processing; the model as
 * unpu_model_tflite[]); a runner of its own because the resolver needs the Neutron operator and
 * the CPU operators the converter may leave (unpu/boards/nxp.py RUNNER_OPS lists the same ones).
 * The interpreter is rebuilt by placement new at every init; the Neutron kernel initialises the
 * driver on its first Init (neutronInit) and releases it in Free when the interpreter goes.
 */
#include <new>
#include <stdarg.h>
#include <string.h>

#include "tensorflow/lite/micro/kernels/neutron/neutron.h"
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
#define RESOLVER_SLOTS 25

namespace {
alignas(16) uint8_t arena[UNPU_TFLM_ARENA_SIZE];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *interpreter = nullptr;
tflite::MicroMutableOpResolver<RESOLVER_SLOTS> resolver;
uint8_t input_buffer[UNPU_TFLM_INPUT_CAPACITY];
int8_t output_copy[OUTPUT_CAPACITY];
uint32_t output_bytes = 0;
#ifdef UNPU_POST_SOFTMAX
int8_t post_output[OUTPUT_CAPACITY];
#endif

void register_ops() {
    if (resolver.FindOp(tflite::BuiltinOperator_CONV_2D) != nullptr) return;
    resolver.AddCustom(tflite::GetString_NEUTRON_GRAPH(), tflite::Register_NEUTRON_GRAPH());
    resolver.AddAdd();
    resolver.AddAveragePool2D();
    resolver.AddConcatenation();
    resolver.AddConv2D();
    resolver.AddDepthwiseConv2D();
    resolver.AddDequantize();
    resolver.AddFullyConnected();
    resolver.AddLogistic();
    resolver.AddMaxPool2D();
    resolver.AddMean();
    resolver.AddMul();
    resolver.AddPad();
    resolver.AddPadV2();
    resolver.AddQuantize();
    resolver.AddReshape();
    resolver.AddSoftmax();
    resolver.AddSlice();
    resolver.AddStridedSlice();
    resolver.AddTranspose();
    resolver.AddRelu();
    resolver.AddRelu6();
    resolver.AddHardSwish();
    resolver.AddLeakyRelu();
    resolver.AddSub();
}
}  // namespace

// TFLM's log hook (the SDK compiles its own debug_log.cpp, which prints to the debug console: the
// UART here carries the DUT protocol, so TFLM's messages are dropped).
extern "C" void DebugLog(const char *format, va_list args) {
    (void)format;
    (void)args;
}

extern "C" int DebugVsnprintf(char *buffer, size_t buf_size, const char *format, va_list vlist) {
    (void)format;
    (void)vlist;
    if (buf_size) buffer[0] = '\0';
    return 0;
}

extern "C" int runner_init(void) {
    register_ops();
    if (memcmp(unpu_model_tflite + 4, "TFL3", 4) != 0) return 4;
    if (interpreter != nullptr) interpreter->~MicroInterpreter();   // frees the Neutron model handles
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

extern "C" uint32_t runner_result_count(void) { return output_bytes; }   /* int8 outputs */

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
