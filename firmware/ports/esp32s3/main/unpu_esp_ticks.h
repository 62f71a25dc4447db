/*
 * The ESP32-S3 port's timekeeping arithmetic, free of ESP-IDF headers so that it compiles (and is
 * tested) anywhere: extending the Xtensa core's 32-bit cycle counter (CCOUNT) to 64 bits, and
 * splitting an idle wait into RTOS ticks and a busy-waited remainder.
 */
#ifndef UNPU_ESP_TICKS_H
#define UNPU_ESP_TICKS_H

#include <stdint.h>

typedef struct {
    uint32_t last;   /* the previous 32-bit reading */
    uint64_t high;   /* wraps seen so far, << 32 */
} unpu_ticks_t;

/* `now` extended to 64 bits. Correct as long as it is called at least once per counter period
 * (2^32 cycles: 17.9 s at 240 MHz); port_idle_us() calls it at least once a second. */
uint64_t unpu_ticks_extend(unpu_ticks_t *state, uint32_t now);

/* The longest piece port_idle_us() waits in one go before it refreshes the extension. */
#define UNPU_IDLE_CHUNK_US 1000000u

/* `us` as whole RTOS ticks of `tick_us` each (for vTaskDelay) plus the remaining microseconds. */
void unpu_idle_split(uint32_t us, uint32_t tick_us, uint32_t *ticks, uint32_t *rest_us);

#endif /* UNPU_ESP_TICKS_H */
