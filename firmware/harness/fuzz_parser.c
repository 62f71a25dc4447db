/*
 * libFuzzer target for the harness's command parser (issue 4, item 8): random byte streams go
 * through unpu_harness_feed with a stub port (output checked, then dropped; a fake timer) and a
 * stub runner (16-byte input, trivial "inference"). Built by bench/fuzz_harness with
 *   clang -fsanitize=fuzzer,address,undefined -DUNPU_MAX_ITERATIONS=64
 * The harness state persists between inputs, like a device that keeps serving; every 64th input
 * resets it so the fuzzer also explores from a fresh boot.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unpu_harness.h"
#include "unpu_port.h"
#include "unpu_runner.h"

#define STUB_INPUT 16
#define STUB_OUTPUT 12

static uint64_t fake_ticks;
static uint32_t line_bytes;   /* bytes of the answer line being written */

/* ---- stub port ---- */
void port_init(void) {}
int port_uart_getc(void) { return -1; }
void port_uart_write(const uint8_t *data, uint32_t len) {
    uint32_t i;
    for (i = 0; i < len; ++i) {  /* answers are printable ASCII lines of bounded length */
        if (data[i] == '\n') {
            line_bytes = 0;
            continue;
        }
        if ((data[i] < 0x20 && data[i] != '\r') || data[i] >= 0x7f || ++line_bytes > 4096) abort();
    }
}
uint64_t port_timer_ticks(void) { return fake_ticks += 7; }
uint32_t port_timer_hz(void) { return 1000000000u; }
const char *port_timer_name(void) { return "os"; }
void port_pin_timestamp(int level) { (void)level; }
void port_pin_stage(int level) { (void)level; }
void port_delay_us(uint32_t us) { (void)us; }
void port_idle_us(uint32_t us) { (void)us; }
void port_exit(int code) { exit(code); }

/* ---- stub runner ---- */
static uint8_t input_buffer[STUB_INPUT], tensor[STUB_INPUT];
static int8_t output[STUB_OUTPUT];

int runner_init(void) { memset(tensor, 0, sizeof tensor); return 0; }
uint32_t runner_input_size(void) { return STUB_INPUT; }
uint8_t *runner_input_buffer(void) { return input_buffer; }
int runner_load_input(const uint8_t *data, uint32_t len) {
    if (len != STUB_INPUT) abort();  /* the harness only runs with a complete input */
    memcpy(tensor, data, len);
    return 0;
}
int runner_run(void) {
    int i;
    for (i = 0; i < STUB_OUTPUT; ++i) output[i] = (int8_t)(tensor[i] ^ tensor[i + 4]);
    return tensor[0] == 0xEE ? 3 : 0;  /* a runner failure path, reachable by uploading 0xEE first */
}
int runner_read_output(void) { return 0; }
int runner_post(void) { return 0; }
const uint8_t *runner_raw_output(uint32_t *len) { *len = STUB_OUTPUT; return (const uint8_t *)output; }
uint32_t runner_result_count(void) { return STUB_OUTPUT; }
float runner_result(uint32_t index) { return index < STUB_OUTPUT ? (float)output[index] * 0.125f : 0.0f; }
const char *runner_model_id(void) { return "fuzz"; }
uint32_t runner_arena_size(void) { return 64; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned calls;
    if (calls++ % 64 == 0) unpu_harness_reset();
    unpu_harness_feed(data, size);
    return 0;
}
