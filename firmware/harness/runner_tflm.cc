/*
 * Model runner over TensorFlow Lite Micro (runtime=tflm), compiled only where TFLM is available
 * (TFLM_DIR or a vendor SDK); no registry ships TFLM (docs/tool-facts.md#what-no-package-registry-ships), so CI does not build
 * it. The same harness drives it through unpu_runner.h, unchanged.
 *
 * The build provides:
 *   unpu_model_tflite[] / unpu_model_tflite_len   the .tflite bytes (e.g. `xxd -i`, const, in flash),
 *   or -DUNPU_MODEL_ADDR=<addr>                    where a separately flashed model is mapped (hxwe2: XIP flash)
 *   -DUNPU_TFLM_ARENA_SIZE=<bytes>                 the tensor arena (host board's bisection result)
 *   -DUNPU_TFLM_INPUT_CAPACITY=<bytes>             >= the model's input size
 *   -DUNPU_MODEL_ID='"name"', and for post = softmax the same defines as runner_codegen.c.
 *   -DUNPU_ARENA_ATTR=...                          where the arena goes (an NPU must be able to reach it)
 * No heap: the interpreter is constructed in static storage by placement new at every init.
 *
 * Arm Ethos-U (a Vela-optimised model, its `ethos-u` custom operator), with -DUNPU_ETHOSU:
 *   -DUNPU_ETHOSU_BASE=<addr>  the NPU's register base as the core sees it
 *   -DUNPU_ETHOSU_SECURE=0|1, -DUNPU_ETHOSU_PRIVILEGED=0|1   the NPU's transaction attributes
 * and the port provides port_npu_irq_enable(), which routes the NPU interrupt to
 * unpu_ethosu_irq_handler() (and, on cores with a data cache, the driver's cache hooks).
 * init (re)initialises the Ethos-U core driver; the driver's inference begin/end hooks read the
 * NPU PMU around every NPU job: CCNT (NPU clock cycles of the job), NPU_ACTIVE cycles and AXI
 * data beats, summed over the jobs of an inference. With -DUNPU_PMU the harness reports them
 * (`pmu%`, docs/protocol.md).
 *
 * NXP eIQ Neutron (a neutron-converter model, its `NeutronGraph` custom operator), with
 * -DUNPU_NEUTRON: the MCUXpresso SDK's TFLM Neutron kernel runs it on the NPU (it initialises the
 * driver on its first Init and releases it when the interpreter goes); TFLM's log is dropped,
 * because the SDK's DebugLog prints to the UART that carries the DUT protocol.
 */
#include <new>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifdef UNPU_NEUTRON
#include <stdarg.h>
#include "tensorflow/lite/micro/kernels/neutron/neutron.h"
#endif

#ifdef UNPU_ETHOSU
extern "C" {
#include "ethosu_driver.h"
#include "pmu_ethosu.h"
void port_npu_irq_enable(void);
void unpu_ethosu_irq_handler(void);
}
#ifndef UNPU_ETHOSU_SECURE
#define UNPU_ETHOSU_SECURE 1
#endif
#ifndef UNPU_ETHOSU_PRIVILEGED
#define UNPU_ETHOSU_PRIVILEGED 1
#endif
#endif

extern "C" {
#include "unpu_runner.h"
#ifdef UNPU_POST_SOFTMAX
#include "unpu_kernels.h"
#endif
#ifndef UNPU_MODEL_ADDR
extern const unsigned char unpu_model_tflite[];
#endif
}
#ifdef UNPU_MODEL_ADDR
#define unpu_model_tflite (reinterpret_cast<const unsigned char *>(UNPU_MODEL_ADDR))
#endif

#ifndef UNPU_MODEL_ID
#define UNPU_MODEL_ID "model"
#endif
#ifndef UNPU_TFLM_INPUT_CAPACITY
#define UNPU_TFLM_INPUT_CAPACITY 65536
#endif
#define OUTPUT_CAPACITY 4096
#ifndef UNPU_ARENA_ATTR
#define UNPU_ARENA_ATTR
#endif
#define RESOLVER_SLOTS 26

namespace {
UNPU_ARENA_ATTR alignas(16) uint8_t arena[UNPU_TFLM_ARENA_SIZE];
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
    resolver.AddSlice();
    resolver.AddStridedSlice();
    resolver.AddTranspose();
    resolver.AddRelu();
    resolver.AddRelu6();
    resolver.AddHardSwish();
    resolver.AddLeakyRelu();
    resolver.AddSub();
#ifdef UNPU_ETHOSU
    resolver.AddEthosU();
#endif
#ifdef UNPU_NEUTRON
    resolver.AddCustom(tflite::GetString_NEUTRON_GRAPH(), tflite::Register_NEUTRON_GRAPH());
#endif
}

#ifdef UNPU_NEUTRON
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
#endif

#ifdef UNPU_ETHOSU
struct ethosu_driver npu;
bool npu_ready = false;

// PMU event counters 0..3 (an Ethos-U55/U65 has four); CCNT is read beside them.
const ethosu_pmu_event_type pmu_events[] = {ETHOSU_PMU_NPU_ACTIVE, ETHOSU_PMU_AXI0_RD_DATA_BEAT_RECEIVED,
                                            ETHOSU_PMU_AXI0_WR_DATA_BEAT_WRITTEN,
                                            ETHOSU_PMU_AXI1_RD_DATA_BEAT_RECEIVED};
const char *const pmu_names[] = {"npu_cycles", "npu_active", "axi0_rd_beats", "axi0_wr_beats", "axi1_rd_beats",
                                 "npu_jobs"};
constexpr uint32_t PMU_EVENTS = sizeof pmu_events / sizeof pmu_events[0];
constexpr uint32_t PMU_COUNTERS = sizeof pmu_names / sizeof pmu_names[0];
constexpr uint32_t PMU_MASK = ETHOSU_PMU_CCNT_Msk | ETHOSU_PMU_CNT1_Msk | ETHOSU_PMU_CNT2_Msk |
                              ETHOSU_PMU_CNT3_Msk | ETHOSU_PMU_CNT4_Msk;
uint64_t pmu_sum[PMU_COUNTERS];

// ethosu_init registers the driver for the TFLM kernel to reserve; a second init without deinit
// would register it twice, so every init starts from a deinit (each window's init does the same work).
int npu_init() {
    if (npu_ready) ethosu_deinit(&npu);
    else port_npu_irq_enable();
    npu_ready = ethosu_init(&npu, reinterpret_cast<void *>(UNPU_ETHOSU_BASE), nullptr, 0, UNPU_ETHOSU_SECURE,
                            UNPU_ETHOSU_PRIVILEGED) == 0;
    return npu_ready ? 0 : 3;
}
#endif
}  // namespace

#ifdef UNPU_ETHOSU
extern "C" void unpu_ethosu_irq_handler(void) { ethosu_irq_handler(&npu); }

// The driver calls these around every NPU job (weak in the driver). The NPU may be reset between
// jobs, so the PMU is configured at each begin.
extern "C" void ethosu_inference_begin(struct ethosu_driver *drv, void *) {
    ETHOSU_PMU_Enable(drv);
    for (uint32_t i = 0; i < PMU_EVENTS; ++i) ETHOSU_PMU_Set_EVTYPER(drv, i, pmu_events[i]);
    ETHOSU_PMU_CYCCNT_Reset(drv);
    ETHOSU_PMU_EVCNTR_ALL_Reset(drv);
    ETHOSU_PMU_CNTR_Enable(drv, PMU_MASK);
}

extern "C" void ethosu_inference_end(struct ethosu_driver *drv, void *) {
    ETHOSU_PMU_CNTR_Disable(drv, PMU_MASK);
    pmu_sum[0] += ETHOSU_PMU_Get_CCNTR(drv);
    for (uint32_t i = 0; i < PMU_EVENTS; ++i) pmu_sum[1 + i] += ETHOSU_PMU_Get_EVCNTR(drv, i);
    pmu_sum[PMU_COUNTERS - 1] += 1;
    ETHOSU_PMU_Disable(drv);
}

extern "C" void unpu_pmu_reset(void) { memset(pmu_sum, 0, sizeof pmu_sum); }
extern "C" uint32_t unpu_pmu_count(void) { return PMU_COUNTERS; }
extern "C" const char *unpu_pmu_name(uint32_t index) { return index < PMU_COUNTERS ? pmu_names[index] : "none"; }
extern "C" uint64_t unpu_pmu_value(uint32_t index) { return index < PMU_COUNTERS ? pmu_sum[index] : 0; }
#endif

extern "C" int runner_init(void) {
    register_ops();
#ifdef UNPU_ETHOSU
    if (npu_init() != 0) return 3;
#endif
    // a model flashed apart from the firmware (hxwe2) may be missing or stale: check its identifier
    if (memcmp(unpu_model_tflite + 4, "TFL3", 4) != 0) return 4;
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
